// End to end into a real Prometheus: the bookinfo mesh runs through the release filter into a collector
// process whose remote-write exporter writes to Prometheus (Debian's package, started here on loopback with
// the remote-write receiver and native histograms). On the way Prometheus is stopped for a while (the
// exporter must fall behind without holding up the warehouse, then catch up), and the collector is
// SIGKILLed twice — once while Prometheus is away, once just after it returns, in the middle of the
// catch-up — and restarted on the same data directory. Prometheus' totals are then compared with the
// traffic generator's ground truth, which never touches the filter's or the collector's code.
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bucketIndex, DEFAULT_SCALE } from "../../shared/node.ts";
import { startCollectorProcess, type CollectorProcess } from "../../sim/collector-process.ts";
import { ManualClock } from "../../sim/host/index.ts";
import { drain, meshOnCollector, tallySummaries, type SummaryTally } from "../../sim/pipeline.ts";
import { GroundTruth, TrafficGenerator, bookinfo, type Stats } from "../../sim/traffic/index.ts";
import { PrometheusProcess, freePort, prometheusBinary, type PromSample } from "./prometheus-process.ts";

const BIN = prometheusBinary();
if (!BIN) console.warn("prometheus binary not found (apt-get install prometheus, or set PROMETHEUS_BIN): skipping the remote-write tests against a real Prometheus");

const TOKEN = "e2e-prometheus";

let dir: string;
let prom: PrometheusProcess;
let collector: CollectorProcess | undefined;
let truth: GroundTruth;
let tally: SummaryTally;
let startS: number;
/** Collector metrics read while Prometheus was down. */
let duringOutage: { accepted: number; loaded: number; failures: number; lagSeconds: number };
let beforeOutage: number;
let caughtUpAfterOutage: boolean;
/** Time of the last sample and a range reaching back past the first. */
let endS: number;
let range: string;

async function collectorMetrics(c: CollectorProcess): Promise<Map<string, number>> {
  const text = await (await fetch(`${c.url}/metrics`)).text();
  const m = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match) m.set(match[1] + (match[2] ?? ""), (m.get(match[1] + (match[2] ?? "")) ?? 0) + Number(match[3]));
  }
  return m;
}

const sumOf = (m: Map<string, number>, name: string) => [...m].filter(([k]) => k === name || k.startsWith(`${name}{`)).reduce((a, [, v]) => a + v, 0);

async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function exportedRequests(): Promise<number> {
  const r = await prom.query("sum(meshlook_requests_total)");
  return r.length === 0 ? 0 : Number(r[0].value[1]);
}

beforeAll(async () => {
  if (!BIN) return;
  dir = mkdtempSync(join(tmpdir(), "meshlook-e2e-prom-"));
  prom = await PrometheusProcess.start(BIN, join(dir, "prometheus"));
  startS = Date.now() / 1000;
  const port = String(await freePort());
  const settings = {
    MESHLOOK_PORT: port,
    MESHLOOK_LOAD_INTERVAL_S: "1",
    MESHLOOK_REMOTE_WRITE_URL: prom.remoteWriteUrl,
    MESHLOOK_REMOTE_WRITE_INTERVAL_S: "1",
  };
  const collectorDir = join(dir, "collector");
  const start = () => startCollectorProcess({ dataDir: collectorDir, token: TOKEN, settings });
  const kill = async (c: CollectorProcess) => {
    c.child.kill("SIGKILL");
    await new Promise((resolve) => c.child.once("exit", resolve));
  };
  collector = await start();
  const model = bookinfo({ durationS: 80 });
  const generator = new TrafficGenerator(model, { seed: 1818, requestsPerSecond: 300 });
  truth = new GroundTruth();
  const clock = new ManualClock(generator.startTimeMs);
  const mesh = await meshOnCollector(model, collector, TOKEN, clock);
  try {
    await mesh.run(generator, { durationS: 20, truth });
    await until("the first totals in Prometheus", async () => (await exportedRequests()) > 0);
    beforeOutage = await exportedRequests();

    await prom.pause();
    await mesh.run(generator, { durationS: 40, truth });
    const c = collector;
    await until("the warehouse to load everything acknowledged while Prometheus is down", async () => {
      const m = await collectorMetrics(c);
      return sumOf(m, "meshlook_summaries_loaded_total") === sumOf(m, "meshlook_summaries_accepted_total") && sumOf(m, "meshlook_remote_write_failures_total") > 0;
    });
    const m = await collectorMetrics(c);
    duringOutage = {
      accepted: sumOf(m, "meshlook_summaries_accepted_total"),
      loaded: sumOf(m, "meshlook_summaries_loaded_total"),
      failures: sumOf(m, "meshlook_remote_write_failures_total"),
      lagSeconds: sumOf(m, "meshlook_remote_write_lag_seconds"),
    };
    // Killed with totals persisted but not delivered.
    await kill(collector);
    collector = await start();
    await mesh.run(generator, { durationS: 60, truth });

    await prom.resume();
    // The first catch-up request is in: kill again in the middle of the catch-up.
    await until("the exporter to resume", async () => (await exportedRequests()) > beforeOutage);
    await kill(collector);
    collector = await start();
    await mesh.run(generator, { durationS: 80, truth });
    await drain(mesh, clock, 15);
    tally = tallySummaries(mesh);
    for (let i = 0; i < 10 && tally.acknowledged.size < tally.sent.size; i++) {
      await drain(mesh, clock, 30);
      tally = tallySummaries(mesh);
    }
    // Without a shutdown: the exporter catches up on its own.
    const c2 = collector;
    caughtUpAfterOutage = await until("the exporter to catch up", async () => {
      const mm = await collectorMetrics(c2);
      return sumOf(mm, "meshlook_remote_write_lag_bytes") === 0 && sumOf(mm, "meshlook_remote_write_lag_seconds") === 0 && sumOf(mm, "meshlook_remote_write_summaries_total") > 0;
    }).then(
      () => true,
      () => false,
    );
  } finally {
    await mesh.close();
  }
  await collector.stop();
  collector = undefined;
  const last = await prom.query("max(timestamp(meshlook_requests_total))");
  endS = Number(last[0].value[1]);
  range = `${Math.ceil(endS - startS + 60)}s`;
}, 400_000);

afterAll(async () => {
  collector?.child.kill("SIGKILL");
  await prom?.pause();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const byKey = (samples: PromSample[], key: (m: Record<string, string>) => string) => new Map(samples.map((s) => [key(s.metric), Number(s.value[1])]));

describe.skipIf(!BIN)("remote write into a real Prometheus, through an outage and two collector crashes", () => {
  it("fell behind while Prometheus was down without delaying the warehouse, then caught up by itself", () => {
    expect(beforeOutage).toBeGreaterThan(0);
    expect(duringOutage.failures).toBeGreaterThan(0);
    expect(duringOutage.lagSeconds).toBeGreaterThan(0);
    expect(duringOutage.loaded).toBe(duringOutage.accepted);
    expect(caughtUpAfterOutage).toBe(true);
    expect([...tally.acknowledged].sort()).toEqual([...tally.sent].sort());
  });

  it("left no spool segment behind once both the warehouse and Prometheus had everything", () => {
    expect(readdirSync(join(dir, "collector", "spool")).filter((f) => f.endsWith(".seg"))).toEqual([]);
  });

  it("sum(increase(...)) of requests, errors and request bytes per reporter and source identity equals the ground truth exactly", async () => {
    const want = truth.aggregate((row) => `${row.dims.reporter}|${row.dims.source_principal}`);
    expect(want.size).toBeGreaterThan(4);
    const key = (m: Record<string, string>) => `${m.reporter}|${m.source_principal}`;
    const q = (metric: string) => prom.query(`sum by (reporter, source_principal) (increase(${metric}[${range}]))`, endS);
    const [requests, errors, bytes] = await Promise.all([q("meshlook_requests_total"), q("meshlook_request_errors_total"), q("meshlook_request_bytes_total")]);
    const pick = (f: (s: Stats) => number) => new Map([...want].map(([k, s]) => [k, f(s)]));
    expect(byKey(requests, key)).toEqual(pick((s) => s.requests));
    expect(byKey(errors, key)).toEqual(pick((s) => s.errors));
    expect(byKey(bytes, key)).toEqual(pick((s) => s.requestBytes));
    expect([...want.values()].some((s) => s.errors > 0)).toBe(true);
  });

  it("histogram_quantile(0.99, ...) per destination service lies in the sketch bucket of the exact p99", async () => {
    const want = truth.aggregate((row) => (row.dims.reporter === "destination" ? row.dims.destination_service : "-"));
    want.delete("-");
    const got = byKey(
      await prom.query(`histogram_quantile(0.99, sum by (destination_service) (increase(meshlook_request_duration_microseconds{reporter="destination"}[${range}])))`, endS),
      (m) => m.destination_service,
    );
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    const base = 2 ** (2 ** -DEFAULT_SCALE);
    for (const [service, stats] of want) {
      const exact = stats.quantile(0.99);
      const i = bucketIndex(exact, DEFAULT_SCALE);
      const estimate = got.get(service)!;
      // Prometheus interpolates inside the native bucket (base^i, base^(i+1)] holding the exact value.
      expect(estimate, service).toBeGreaterThanOrEqual(base ** i * (1 - 1e-12));
      expect(estimate, service).toBeLessThanOrEqual(base ** (i + 1) * (1 + 1e-12));
      expect(Math.abs(estimate - exact) / exact, service).toBeLessThanOrEqual(base - 1);
    }
  });

  it("labels the series with Istio's standard metric label names", async () => {
    const [one] = await prom.query(`meshlook_requests_total{reporter="destination"}`, endS);
    for (const label of [
      "source_principal",
      "source_workload",
      "source_workload_namespace",
      "destination_service",
      "destination_workload_namespace",
      "response_code",
      "grpc_response_status",
      "meshlook_collector",
    ]) {
      expect(one.metric, label).toHaveProperty(label);
    }
  });
});
