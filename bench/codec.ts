// Shared-core benchmarks (printed, not asserted): wire bytes per request, decode throughput of the
// portable codec run as TypeScript in Node versus the same code compiled to wasm and called through
// @assemblyscript/loader, and the per-request cost of recording into a series.
// Run: `npx tsx bench/codec.ts` (builds dist/fixtures/codec_wire.wasm when missing).
import { SeriesStats, decodeSummary, decodeWire, encodeSummary, seriesOf, type DecodedSeries, type DecodedSummary } from "../shared/node.ts";
import { SeriesColumns, decodeColumns } from "../shared/wire.ts";
import { DIMENSIONS } from "../shared/schema.ts";
import { inboundDims } from "../test/fixtures/wire/vectors.ts";
import { loadWasmCodec } from "../test/shared/codec-wasm.ts";
import { lognormal, mulberry32 } from "../test/shared/random.ts";

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};

/**
 * Median rate (calls per CPU second of this process) of each function over `rounds` rounds of about `ms`
 * CPU time each. CPU time rather than wall time, and interleaved rounds, because the machine is shared:
 * other processes then slow the figures less and all functions alike.
 */
function rates(fns: Array<() => unknown>, rounds = 7, ms = 250): number[] {
  const samples: number[][] = fns.map(() => []);
  for (let r = 0; r < rounds; r++) {
    fns.forEach((fn, k) => {
      let calls = 0;
      const start = cpuNs();
      let elapsed = 0;
      while (elapsed < ms * 1e6) {
        for (let i = 0; i < 10; i++) fn();
        calls += 10;
        elapsed = cpuNs() - start;
      }
      samples[k].push(calls / (elapsed / 1e9));
    });
  }
  return samples.map(median);
}

/** An inbound sidecar's window: `series` callers × `perSeries` requests, every dimension reported. */
function window(series: number, perSeries: number, seed: number): DecodedSummary {
  const rnd = mulberry32(seed);
  const out: DecodedSeries[] = [];
  for (let i = 0; i < series; i++) {
    const stats = new SeriesStats();
    for (let r = 0; r < perSeries; r++) {
      stats.record(Math.floor(lognormal(rnd, Math.log(5000), 0.8)), 200 + Math.floor(rnd() * 600), 500 + Math.floor(rnd() * 20000), rnd() < 0.01);
    }
    const code = [200, 200, 404, 503][Math.floor(i / 40) % 4];
    out.push(seriesOf(inboundDims(`caller-${i % 40}`, { code, grpc: i % 7 === 0, plaintext: false }), stats));
  }
  return {
    producerId: "sidecar~10.0.3.7~reviews-v2-5d9f.shop~shop.svc.cluster.local/1764000000123456789",
    seq: 1,
    windowStartMs: 1764000000000,
    windowEndMs: 1764000010000,
    flags: 0,
    droppedRequests: 0,
    droppedWindows: 0,
    overflowKeys: 0,
    reported: [...DIMENSIONS],
    series: out,
  };
}

console.log("wire size (100 series, 10 s window, lognormal latency around 5 ms, every dimension reported):");
for (const [rps, perSeries] of [
  [1000, 100],
  [10000, 1000],
]) {
  const bytes = encodeSummary(window(100, perSeries, rps)).length;
  const requests = 100 * perSeries;
  console.log(
    `  ${String(rps).padStart(5)} rps: ${bytes} bytes for ${requests} requests = ${(bytes / requests).toFixed(3)} bytes/request, ${(bytes / 100).toFixed(0)} bytes/series`,
  );
}

const wasm = loadWasmCodec();
const summary = encodeSummary(window(100, 100, 1));
if (wasm.decodeSeriesCount(summary) !== 100 || !decodeSummary(summary).ok) throw new Error("benchmark summary does not decode");
console.log(`\ndecode, summary of 100 series × 100 requests (${summary.length} bytes), median of 7 interleaved rounds, per CPU second:`);
const columns = new SeriesColumns();
const [core, inWasm, flat, edge, objects] = rates([
  () => decodeWire(summary),
  () => wasm.decodeSeriesCount(summary),
  () => decodeColumns(summary, columns),
  () => decodeSummary(summary),
  () => {
    const r = decodeSummary(summary);
    return r.ok && r.summary.series;
  },
]).map((r) => r * 100);
const fmt = (x: number) => `${(x / 1000).toFixed(0).padStart(6)}k series/s`;
console.log(`  portable core as TypeScript (decodeWire, objects):   ${fmt(core)}  (baseline)`);
console.log(`  same core compiled to wasm, via loader (+ copy-in):  ${fmt(inWasm)}  ratio ${(inWasm / core).toFixed(2)}`);
console.log(`  portable core into flat columns (decodeColumns):     ${fmt(flat)}  ratio ${(flat / core).toFixed(2)}`);
console.log(`  Node edge, strings + owned columns (decodeSummary):  ${fmt(edge)}  ratio ${(edge / core).toFixed(2)}`);
console.log(`  … and its series objects read (sketch JSON):         ${fmt(objects)}  ratio ${(objects / core).toFixed(2)}`);
console.log("  (wasm leaves its result in linear memory; handing strings and sketches to the collector would add to it)");

const N = 100_000;
const jsStats = new SeriesStats();
const [wasmRecord, wasmBase, jsRecord, jsBase] = rates([
  () => wasm.recordValues(N),
  () => wasm.baselineValues(N),
  () => {
    let s = 0x9e3779b9 | 0;
    for (let i = 0; i < N; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      jsStats.record(100 + (s & 0x3ffff), 300, 1500, (s & 0xff) === 0);
    }
  },
  () => {
    let s = 0x9e3779b9 | 0;
    let sum = 0;
    for (let i = 0; i < N; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      sum += 100 + (s & 0x3ffff);
    }
    return sum;
  },
]).map((r) => 1e9 / (r * N));
console.log("\nSeriesStats.record per request (xorshift latencies over 100 µs … 262 ms, scale 6), median of 7 interleaved rounds, per CPU second:");
for (const [where, rec, base] of [
  ["wasm", wasmRecord, wasmBase],
  ["Node", jsRecord, jsBase],
] as const) {
  console.log(`  ${where}: ${rec.toFixed(1)} ns with recording, ${base.toFixed(1)} ns generator only → ${(rec - base).toFixed(1)} ns per record`);
}
