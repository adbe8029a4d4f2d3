// Exactness end to end: 100 000 requests of a mixed synthetic mesh (59 identities, gRPC and HTTP,
// errors, plaintext and proxyless callers, gateways with end users, long-tail latency) replayed
// through the release filter in one simulated sidecar per workload (2 worker VMs each); every summary
// the loopback collector receives is decoded with the shared decoder, and the merged series must equal
// the generator's ground truth: counters and byte sums exactly, quantiles within 1 %.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSidecar, ManualClock, type Sidecar } from "../../sim/host/index.ts";
import { reportingWorkload, streamInput, workloadNode } from "../../sim/sidecar.ts";
import { GroundTruth, TrafficGenerator, mixed, seriesKey, type Reporter, type SeriesDims, type Stats, type Workload } from "../../sim/traffic/index.ts";
import { decodeSummary, SeriesStats, sketchToJson, statsOf, type DecodedSummary, type Sketch } from "../../shared/node.ts";
import { meshQuantile } from "../../shared/quantile.ts";
import { COLLECTOR_CLUSTER, loadModule, startCollector } from "./fixtures.ts";

const REQUESTS = 100_000;
const QUANTILES = [0.5, 0.9, 0.99, 0.999];

let summaries: DecodedSummary[] = [];
let truth: GroundTruth;
let rejected: string[] = [];
let workers = 0;

beforeAll(async () => {
  const wasm = await loadModule();
  const collector = await startCollector();
  const model = mixed();
  const generator = new TrafficGenerator(model, { seed: 20260101, requestsPerSecond: 2000 });
  truth = new GroundTruth({ endUserPrincipal: true });
  const clock = new ManualClock(generator.startTimeMs);
  const sidecars = new Map<Workload, Sidecar>();
  const sidecarOf = async (w: Workload) => {
    let s = sidecars.get(w);
    if (!s) {
      s = await createSidecar({
        wasm,
        rootId: "meshlook",
        clock,
        workers: 2,
        canary: false,
        node: workloadNode(w, model),
        pluginConfig: JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, end_user_principal: true }),
        env: { MESHLOOK_INGEST_TOKEN: "exactness" },
        clusters: { [COLLECTOR_CLUSTER]: collector.address },
      });
      sidecars.set(w, s);
      workers += 2;
    }
    return s;
  };
  for (let i = 0; i < REQUESTS; i++) {
    const request = generator.next();
    truth.record(request);
    clock.advanceTo(Number(request.endNs / 1_000_000n));
    for (const reporter of ["source", "destination"] as Reporter[]) {
      if (!(reporter === "source" ? request.sourceReports : request.destinationReports)) continue;
      const input = streamInput(request, reporter);
      const sidecar = await sidecarOf(reportingWorkload(request, reporter));
      const result = sidecar.stream({
        requestHeaders: input.requestHeaders,
        responseHeaders: input.responseHeaders ?? undefined,
        responseTrailers: input.responseTrailers ?? undefined,
        attributes: input.attributes,
      });
      expect(result.trapped).toBe(false);
    }
    if (i % 5000 === 0) await Promise.all([...sidecars.values()].map((s) => s.settle()));
  }
  clock.advance(15_000); // close the last windows
  for (const s of sidecars.values()) {
    await s.settle();
    expect(s.traps).toEqual([]);
    await s.close();
  }
  await collector.close();
  for (const { body } of collector.bodies) {
    const r = decodeSummary(body);
    if (r.ok) summaries.push(r.summary);
    else rejected.push(`${r.reason}: ${r.message}`);
  }
}, 300_000);

afterAll(() => {
  summaries = [];
});

/** Every decoded series merged per key with the shared aggregate (exact merge, as the collector rolls up). */
function mergeSeries(): Map<string, SeriesStats> {
  const out = new Map<string, SeriesStats>();
  for (const summary of summaries) {
    for (const s of summary.series) {
      const key = seriesKey(s.dimensions as unknown as SeriesDims);
      const m = out.get(key);
      if (m) m.merge(statsOf(s));
      else out.set(key, statsOf(s));
    }
  }
  return out;
}

describe("filter exactness on a mixed mesh", () => {
  it("delivers decodable summaries, each (producer, seq) once, from every worker VM", () => {
    expect(rejected).toEqual([]);
    const ids = summaries.map((s) => `${s.producerId}#${s.seq}`);
    expect(new Set(ids).size).toBe(ids.length);
    const producers = new Set(summaries.map((s) => s.producerId));
    expect(producers.size).toBe(workers);
    for (const s of summaries) {
      expect(s.droppedRequests).toBe(0);
      expect(s.overflowKeys).toBe(0);
    }
  });

  it("counts every request, error and byte of every series exactly", () => {
    const merged = mergeSeries();
    const expected = truth.aggregate((row) => row.key);
    expect(truth.observations).toBeGreaterThan(REQUESTS);
    expect(expected.size).toBeGreaterThan(200);
    expect([...merged.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [key, t] of expected) {
      const m = merged.get(key)!;
      const got = [m.requests, m.errors, m.requestBytes, m.responseBytes, m.latencySumUs, m.latencyMinUs, m.latencyMaxUs];
      const want = [t.requests, t.errors, t.requestBytes, t.responseBytes, t.latencySumUs, t.latencyMinUs, t.latencyMaxUs];
      expect(got, key).toEqual(want);
    }
  });

  it("answers p50/p90/p99/p99.9 within 1 % of the exact quantiles, per series and per reporter", () => {
    const merged = mergeSeries();
    const check = (label: string, sketch: Sketch, exact: Stats) => {
      for (const q of QUANTILES) {
        const want = exact.quantile(q);
        const got = meshQuantile([sketchToJson(sketch)], q)!;
        if (want === 0) expect(got, `${label} q${q}`).toBe(0);
        else expect(Math.abs(got - want) / want, `${label} q${q}: ${got} vs ${want}`).toBeLessThanOrEqual(0.01);
      }
    };
    for (const [key, t] of truth.aggregate((row) => row.key)) check(key, merged.get(key)!.sketch, t);
    for (const reporter of ["source", "destination"]) {
      const all = [...merged.entries()].filter(([k]) => k.startsWith(reporter + "\u0001"));
      const total = new SeriesStats(6);
      for (const [, m] of all) total.merge(m);
      check(reporter, total.sketch, truth.aggregate((row) => row.dims.reporter).get(reporter)!);
    }
  });
});
