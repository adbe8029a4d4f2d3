// One bookinfo run through the release filter (simulated sidecars, loopback collector recording every
// POST) measures what meshlook ships, next to what Istio's Prometheus stats would expose for the same
// requests over the same interval, and compares latency quantiles: meshlook's merged sketches and
// Envoy's default buckets under histogram_quantile, both against the exact values of the ground truth.
import { decodeSummary, sketchFromJson, sketchToJson, type Sketch } from "../../shared/node.ts";
import { meshQuantile } from "../../shared/quantile.ts";
import { ManualClock } from "../../sim/host/index.ts";
import { Mesh } from "../../sim/mesh.ts";
import { COLLECTOR_CLUSTER, drain } from "../../sim/pipeline.ts";
import { reportingWorkload } from "../../sim/sidecar.ts";
import { GroundTruth, TrafficGenerator, bookinfo, expectedSeries, seriesKey, type Reporter, type SeriesDims, type SimRequest } from "../../sim/traffic/index.ts";
// RELEASE_WASM: the filter as built, or the build MESHLOOK_FILTER_WASM names, as in the other filter figures.
import { RELEASE_WASM, startCollector } from "../../test/filter/fixtures.ts";
import { IstioStats, histogramQuantile } from "./prometheus.ts";

export const QUANTILES = [0.5, 0.9, 0.99, 0.999];

export interface WireFigures {
  requests: number;
  /** Sidecar observations (a request seen by both sidecars counts twice): the unit "per request" means here. */
  observations: number;
  summaries: number;
  meshlookBytes: number;
  prometheusBytes: number;
  prometheusGzipBytes: number;
  scrapes: number;
  flushIntervalS: number;
  /** Per quantile: worst and mean relative error over the series with enough samples. */
  quantileError: { q: number; meshlookMax: number; meshlookMean: number; envoyMax: number; envoyMean: number }[];
  seriesCompared: number;
}

/** The ground truth, and each reporting sidecar's Istio stats fed with the same requests. */
class TruthWithIstioStats extends GroundTruth {
  constructor(private readonly istio: Map<number, IstioStats>) {
    super();
  }

  override record(request: SimRequest): void {
    super.record(request);
    for (const reporter of ["source", "destination"] as Reporter[]) {
      if (!(reporter === "source" ? request.sourceReports : request.destinationReports)) continue;
      const w = reportingWorkload(request, reporter);
      let stats = this.istio.get(w.id);
      if (!stats) this.istio.set(w.id, (stats = new IstioStats()));
      const durationNs = reporter === "source" ? request.sourceDurationNs : request.destinationDurationNs;
      stats.record(
        expectedSeries(request, reporter),
        Math.floor(durationNs / 1000),
        request.requestHeaderBytes + request.requestBodyBytes,
        request.responseHeaderBytes + request.responseBodyBytes,
      );
    }
  }
}

export async function measureWire(options: { rps?: number; durationS?: number; seed?: number } = {}): Promise<WireFigures> {
  const rps = options.rps ?? 1000;
  const durationS = options.durationS ?? 60;
  const flushIntervalS = 10;
  const model = bookinfo({ durationS });
  const generator = new TrafficGenerator(model, { seed: options.seed ?? 11, requestsPerSecond: rps });
  const collector = await startCollector();
  const clock = new ManualClock(generator.startTimeMs);
  const mesh = await Mesh.create({
    model,
    wasm: RELEASE_WASM,
    pluginConfig: { collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: flushIntervalS },
    clusters: { [COLLECTOR_CLUSTER]: collector.address },
    env: { MESHLOOK_INGEST_TOKEN: "bench" },
    clock,
  });

  // Istio's stats for the same requests: one exposition per sidecar, scraped every flush interval.
  const istio = new Map<number, IstioStats>();
  let prometheusBytes = 0;
  let prometheusGzipBytes = 0;
  let scrapes = 0;
  const scrapeAll = async () => {
    for (const stats of istio.values()) {
      const s = await stats.scrape();
      prometheusBytes += s.bytes;
      prometheusGzipBytes += s.gzipBytes;
      scrapes++;
    }
  };
  const truth = new TruthWithIstioStats(istio);
  // Prometheus scrapes every sidecar at the end of each interval: run the mesh interval by interval.
  const windows = Math.ceil(durationS / flushIntervalS);
  for (let w = 1; w <= windows; w++) {
    await mesh.run(generator, { durationS: Math.min(durationS, w * flushIntervalS), truth });
    await scrapeAll();
  }
  const progress = await drain(mesh, clock, flushIntervalS + 5);
  await mesh.close();
  await collector.close();
  // A callout can fail before it reaches the collector (on a shared machine, a kept-alive connection the
  // loopback server closes as the call goes out: the filter is handed a reset and sends the summary again),
  // so callouts need not all be acknowledged. What the figures need: every summary received once and
  // acknowledged (a response lost after the collector read the body would count it twice), and the
  // summaries together accounting for every request the sidecars observed (none left unsent).
  if (collector.bodies.length !== progress.acknowledged) {
    throw new Error(`the loopback collector received ${collector.bodies.length} summaries, the filters saw ${progress.acknowledged} acknowledged (${progress.callouts} callouts)`);
  }

  // The filter's sketches, merged per series over every summary.
  const sketches = new Map<string, Sketch>();
  let meshlookBytes = 0;
  let shipped = 0;
  for (const { body } of collector.bodies) {
    meshlookBytes += body.length;
    const decoded = decodeSummary(body);
    if (!decoded.ok) throw new Error(`undecodable summary: ${decoded.reason}`);
    for (const s of decoded.summary.series) {
      shipped += s.requests;
      const key = seriesKey(s.dimensions as unknown as SeriesDims);
      const sketch = sketchFromJson(s.sketch);
      const merged = sketches.get(key);
      if (merged) merged.merge(sketch);
      else sketches.set(key, sketch);
    }
  }

  if (shipped !== truth.observations) {
    throw new Error(
      `the summaries account for ${shipped} requests, the sidecars observed ${truth.observations} (${progress.callouts} callouts, ${progress.acknowledged} acknowledged)`,
    );
  }

  const errors = QUANTILES.map(() => ({ meshlook: [] as number[], envoy: [] as number[] }));
  let seriesCompared = 0;
  for (const [key, stats] of truth.aggregate((row) => row.key)) {
    if (stats.requests < 500) continue;
    const sketch = sketches.get(key);
    if (!sketch) throw new Error(`series missing from the summaries: ${key}`);
    const valuesMs = Float64Array.from(stats.latencies(), (us) => us / 1000);
    seriesCompared++;
    QUANTILES.forEach((q, i) => {
      const exact = stats.quantile(q);
      if (exact === 0) return;
      errors[i].meshlook.push(Math.abs(meshQuantile([sketchToJson(sketch)], q)! - exact) / exact);
      errors[i].envoy.push(Math.abs(histogramQuantile(valuesMs, q) * 1000 - exact) / exact);
    });
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    requests: progress.requests,
    observations: truth.observations,
    summaries: collector.bodies.length,
    meshlookBytes,
    prometheusBytes,
    prometheusGzipBytes,
    scrapes,
    flushIntervalS,
    quantileError: QUANTILES.map((q, i) => ({
      q,
      meshlookMax: Math.max(...errors[i].meshlook),
      meshlookMean: mean(errors[i].meshlook),
      envoyMax: Math.max(...errors[i].envoy),
      envoyMean: mean(errors[i].envoy),
    })),
    seriesCompared,
  };
}
