// Prometheus remote write: what it costs and what it gives.
//   1. Cost per exported label set, in-process: heap of the cumulative state, bytes of its persisted
//      snapshot, and bytes of one remote-write request (snappy-compressed protobuf: 4 counters + 1 native
//      histogram), next to what one Istio label set costs a scrape (istio_requests_total + 3 classic
//      histograms with Envoy's default buckets, exposition text) — the baseline.
//   2. Accuracy in a real Prometheus (skipped when the `prometheus` binary is missing): the bookinfo mesh
//      through the release filter and a collector exporting to Prometheus; the same traffic's latencies
//      also written as classic histograms with Envoy's default buckets (what Istio would report). Both
//      are queried with histogram_quantile(q, sum by (destination_service) (increase(...))) and compared
//      with the exact quantiles of the ground truth.
// Run: `npx tsx bench/remote-write.ts` (BENCH_SERIES, BENCH_RPS to resize; PROMETHEUS_BIN=none skips part 2).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runInNewContext } from "node:vm";
import { setFlagsFromString } from "node:v8";
import { request } from "undici";
import { encodeWriteRequest, REMOTE_WRITE_HEADERS, WriteRequestWriter, type TimeSeries } from "../collector/remote-write/protocol.ts";
import { ExportState } from "../collector/remote-write/state.ts";
import { runPipeline } from "../sim/pipeline.ts";
import { formatTable } from "../sim/report.ts";
import { GroundTruth, TrafficGenerator, bookinfo, exactQuantile } from "../sim/traffic/index.ts";
import { PrometheusProcess, prometheusBinary } from "../test/e2e/prometheus-process.ts";
import { dims, latencies, series, summary } from "../test/collector/helpers.ts";
import { ENVOY_DEFAULT_BUCKETS, IstioStats } from "./lib/prometheus.ts";
import { encodeSummary } from "../shared/node.ts";
import { decodeSummary } from "../collector/summary.ts";

setFlagsFromString("--expose_gc");
const gc = runInNewContext("gc") as () => void;
const fmt = (n: number, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

// --- 1. cost per label set ------------------------------------------------------------------------
const SERIES = Number(process.env.BENCH_SERIES ?? 10_000);
{
  // Realistic label values (Istio-length names) and a latency spread of ~100 µs to ~1 s per label set.
  const labelled = (i: number) => {
    const d = dims(`svc-${i % 500}.shop-${i % 20}.svc.cluster.local`, [200, 404, 503][i % 3]);
    d.reporter = i % 2 ? "source" : "destination";
    d.source_principal = `spiffe://cluster.local/ns/shop-${i % 20}/sa/client-${i % 97}`;
    d.source_workload = `client-${i % 97}-v1`;
    d.source_namespace = `shop-${i % 20}`;
    d.destination_workload = `svc-${i % 500}-v1`;
    d.destination_namespace = `shop-${i % 20}`;
    d.destination_principal = `spiffe://cluster.local/ns/shop-${i % 20}/sa/svc-${i % 500}`;
    return d;
  };
  const bodies = Array.from({ length: SERIES }, (_, i) => encodeSummary(summary(i, 1, [{ ...series("x", latencies(200)), dimensions: labelled(i) }], "p")));
  const decoded = bodies.map((b) => {
    const d = decodeSummary(b);
    if (!d.ok) throw new Error(d.reason);
    void d.summary.series; // build the series objects outside the measured heap
    return d.summary;
  });
  gc();
  const before = process.memoryUsage().heapUsed;
  const state = new ExportState("bench", SERIES + 10);
  for (const s of decoded) state.apply(s, 0);
  gc();
  const heapPerSeries = (process.memoryUsage().heapUsed - before) / SERIES;
  const snapshotPerSeries = Buffer.byteLength(JSON.stringify(state.snapshot())) / SERIES;
  // The first request encodes every label set's labels (kept for the next ones); later ones only values.
  // CPU time of this process, not wall time: the machine may be shared.
  const encodeOnce = () => {
    const t0 = process.cpuUsage();
    const writer = new WriteRequestWriter();
    state.encode("values", Date.now(), writer);
    const body = writer.finish([]);
    const used = process.cpuUsage(t0);
    return { body, us: (used.user + used.system) / SERIES };
  };
  const first = encodeOnce();
  const body = first.body;
  const encodeUs = Math.min(...[0, 1, 2].map(() => encodeOnce().us));
  const requestPerSeries = body.length / SERIES;
  const buckets = [...state.series.values()].reduce((n, s) => n + s.sketch.nonEmptyBuckets(), 0) / SERIES;

  const istio = new IstioStats();
  const oneSeries = (d: ReturnType<typeof labelled>) => ({ ...(d as object) }) as never;
  for (let i = 0; i < 100; i++) for (const v of latencies(200)) istio.record(oneSeries({ ...labelled(i), source_namespace: `shop-${i % 20}` }), v, 100, 1000);
  const scrape = await istio.scrape();
  const istioPerSeries = scrape.bytes / 100;
  console.log(`cost per exported label set (${fmt(SERIES)} label sets, ~${fmt(buckets)} non-empty sketch buckets each):`);
  console.log(
    formatTable(
      ["figure", "meshlook", "baseline", "baseline is"],
      [
        ["collector heap per label set (B)", fmt(heapPerSeries), "-", "-"],
        ["persisted snapshot per label set (B)", fmt(snapshotPerSeries), "-", "-"],
        [
          "remote-write bytes per label set per interval",
          fmt(requestPerSeries),
          fmt(istioPerSeries),
          `one Istio label set in a scrape (text, Envoy buckets; gzip ${fmt(scrape.gzipBytes / 100)})`,
        ],
        ["encode CPU per label set per request (µs; first request)", `${fmt(encodeUs, 1)} (${fmt(first.us, 1)})`, "-", "-"],
      ],
      ["left", "right", "right", "left"],
    ),
  );
  console.log(
    `ratio remote-write bytes / Istio scrape bytes per label set: ${fmt(requestPerSeries / istioPerSeries, 4)} (against the gzip-compressed scrape: ${fmt(requestPerSeries / (scrape.gzipBytes / 100), 2)})`,
  );
}

// --- 2. accuracy in a real Prometheus ------------------------------------------------------------------
const bin = prometheusBinary();
if (!bin) {
  console.log("\naccuracy in Prometheus: skipped (no prometheus binary; apt-get install prometheus)");
} else {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-bench-rw-"));
  const prom = await PrometheusProcess.start(bin, join(dir, "prometheus"));
  try {
    const startMs = Date.now();
    const model = bookinfo({ durationS: 120 });
    const truth = new GroundTruth({ reporters: ["destination"] });
    await runPipeline({
      model,
      generator: new TrafficGenerator(model, { seed: 7, requestsPerSecond: Number(process.env.BENCH_RPS ?? 500) }),
      truth,
      filterConfig: { directions: ["inbound"] },
      dataDir: join(dir, "collector"),
      durationS: 120,
      collectorSettings: { MESHLOOK_REMOTE_WRITE_URL: prom.remoteWriteUrl, MESHLOOK_REMOTE_WRITE_INTERVAL_S: "1", MESHLOOK_LOAD_INTERVAL_S: "1" },
    });
    const endMs = Number((await prom.query("max(timestamp(meshlook_requests_total))"))[0].value[1]) * 1000;
    const byService = truth.aggregate((row) => row.dims.destination_service);
    // The same latencies as classic histograms with Envoy's default buckets (ms), started at 0 like a
    // fresh Envoy and written at the native histograms' last timestamp.
    const classic: TimeSeries[] = [];
    for (const [service, stats] of byService) {
      const ms = Array.from(stats.latencies(), (us) => us / 1000);
      for (const le of [...ENVOY_DEFAULT_BUCKETS, Infinity]) {
        const labels = [
          { name: "__name__", value: "istio_request_duration_milliseconds_bucket" },
          { name: "destination_service", value: service },
          { name: "le", value: le === Infinity ? "+Inf" : String(le) },
        ];
        const n = ms.filter((v) => v <= le).length;
        classic.push({
          labels,
          samples: [
            { value: 0, timestamp: startMs },
            { value: n, timestamp: endMs },
          ],
        });
      }
    }
    const res = await request(prom.remoteWriteUrl, { method: "POST", headers: { ...REMOTE_WRITE_HEADERS }, body: encodeWriteRequest(classic) });
    if (res.statusCode !== 204) throw new Error(`classic histograms refused: ${res.statusCode} ${await res.body.text()}`);
    await res.body.dump();
    const range = `${Math.ceil((endMs - startMs) / 1000) + 60}s`;
    const rows: string[][] = [];
    const errors = { native: [] as number[], classic: [] as number[] };
    for (const q of [0.5, 0.9, 0.99, 0.999]) {
      const native = await prom.query(`histogram_quantile(${q}, sum by (destination_service) (increase(meshlook_request_duration_microseconds[${range}])))`, endMs / 1000);
      const envoy = await prom.query(`histogram_quantile(${q}, sum by (destination_service, le) (increase(istio_request_duration_milliseconds_bucket[${range}])))`, endMs / 1000);
      for (const [service, stats] of byService) {
        const exact = exactQuantile(stats.sortedLatencies(), q);
        const n = Number(native.find((s) => s.metric.destination_service === service)?.value[1]);
        const c = Number(envoy.find((s) => s.metric.destination_service === service)?.value[1]) * 1000;
        const en = Math.abs(n - exact) / exact;
        const ec = Math.abs(c - exact) / exact;
        errors.native.push(en);
        errors.classic.push(ec);
        rows.push([service.split(".")[0], `p${q * 100}`, fmt(exact), `${fmt(n)} (${fmt(100 * en, 2)} %)`, `${fmt(c)} (${fmt(100 * ec, 2)} %)`]);
      }
    }
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    console.log(`\naccuracy in Prometheus (${bin}; bookinfo, ${fmt(truth.observations)} inbound observations, histogram_quantile over increase(...) per destination service), µs:`);
    console.log(formatTable(["service", "q", "exact", "meshlook native (error)", "Envoy buckets (error)"], rows, ["left", "left", "right", "right", "right"]));
    console.log(
      `mean relative error: meshlook native ${fmt(100 * mean(errors.native), 3)} %, Envoy buckets ${fmt(100 * mean(errors.classic), 2)} %; ` +
        `worst: ${fmt(100 * Math.max(...errors.native), 3)} % vs ${fmt(100 * Math.max(...errors.classic), 2)} %; ratio of means ${fmt(mean(errors.native) / mean(errors.classic), 4)}`,
    );
  } finally {
    await prom.pause();
    rmSync(dir, { recursive: true, force: true });
  }
}
