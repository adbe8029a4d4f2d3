// Filter benchmarks (printed, not asserted): per-request cost against the do-nothing proxy-runtime
// filter in the same host and process; wire bytes per request; linear memory at the series cap.
// Run: `npx tsx bench/filter.ts` (after `npm run build`).
import { createSidecar, ManualClock, type Sidecar, type StreamInput } from "../sim/host/index.ts";
import {
  COLLECTOR_CLUSTER, LOCAL_NODE, NOOP_WASM, loadModule, startCollector, syntheticStream,
} from "../test/filter/fixtures.ts";

/** Deterministic latency spread (about 2.2–7.3 ms, every 97th request 20× slower), no Math.random. */
function latencyNs(i: number): number {
  const u = ((i * 2654435761) >>> 0) / 2 ** 32;
  return Math.round(4e6 * Math.exp(1.2 * (u - 0.5)) * (i % 97 === 0 ? 20 : 1));
}

/** `n` streams over `series` distinct callers (principals). */
function workload(n: number, series: number): StreamInput[] {
  return Array.from({ length: n }, (_, i) =>
    syntheticStream({
      principal: `spiffe://cluster.local/ns/tenants/sa/caller-${i % series}`,
      workload: `caller-${i % series}`,
      code: i % 50 === 0 ? 503 : 200,
      durationNs: latencyNs(i),
      requestBytes: 200 + (i % 300),
      responseBytes: 1000 + (i % 4000),
    }),
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function sidecarFor(wasm: WebAssembly.Module, rootId: string, config: object, clusters: Record<string, string> = {}, clock = new ManualClock()) {
  return createSidecar({
    wasm, rootId, clock, canary: false, workers: 1, node: LOCAL_NODE, clusters,
    pluginConfig: JSON.stringify(config), env: { MESHLOOK_INGEST_TOKEN: "bench" },
  });
}

function timeRound(sidecar: Sidecar, inputs: StreamInput[]): number {
  const t0 = process.hrtime.bigint();
  for (const input of inputs) sidecar.stream(input);
  return Number(process.hrtime.bigint() - t0) / inputs.length;
}

async function perRequestCost(meshlook: WebAssembly.Module, noop: WebAssembly.Module) {
  const N = 20_000;
  const ROUNDS = 7;
  console.log(`\nper-request cost (ns/request, median of ${ROUNDS} rounds of ${N} streams; same host, same process)`);
  console.log("series      noop     meshlook  added   ratio");
  for (const [label, series] of [["100", 100], ["2k (cap)", 1998], ["overflow", 20_000]] as const) {
    const inputs = workload(N, series);
    // No flush during timing: the window outlasts the run.
    const m = await sidecarFor(meshlook, "meshlook", { collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: 3600 });
    const n = await sidecarFor(noop, "noop", {});
    for (const s of [m, n]) timeRound(s, inputs.slice(0, 5000)); // warm-up (JIT, table growth)
    const mt: number[] = [];
    const nt: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      nt.push(timeRound(n, inputs));
      mt.push(timeRound(m, inputs));
    }
    const [a, b] = [median(nt), median(mt)];
    console.log(`${label.padEnd(10)} ${a.toFixed(0).padStart(6)}  ${b.toFixed(0).padStart(8)}  ${(b - a).toFixed(0).padStart(6)}  ${(b / a).toFixed(2).padStart(5)}`);
    await m.close();
    await n.close();
  }
}

async function wireBytes(meshlook: WebAssembly.Module) {
  console.log("\nwire bytes per request (10 s windows, 100 series, 3 windows)");
  for (const rps of [1000, 10_000]) {
    const collector = await startCollector();
    const clock = new ManualClock();
    const s = await sidecarFor(meshlook, "meshlook", { collector: { cluster: COLLECTOR_CLUSTER } }, { [COLLECTOR_CLUSTER]: collector.address }, clock);
    const perWindow = rps * 10;
    const inputs = workload(perWindow, 100);
    for (let w = 0; w < 3; w++) {
      for (let i = 0; i < perWindow; i++) {
        s.stream(inputs[i]);
        if (i % rps === rps - 1) clock.advance(1000);
      }
      await s.settle();
    }
    clock.advance(1000);
    await s.settle();
    const bytes = collector.bodies.reduce((t, b) => t + b.body.length, 0);
    const perSummary = bytes / collector.bodies.length;
    console.log(
      `${String(rps).padStart(6)} rps: ${collector.bodies.length} summaries of ${perSummary.toFixed(0)} bytes ` +
        `(${(perSummary / 100).toFixed(0)} bytes/series, mostly latency buckets), ${(bytes / (3 * perWindow)).toFixed(3)} bytes/request`,
    );
    await s.close();
    await collector.close();
  }
}

async function memoryAtCap(meshlook: WebAssembly.Module) {
  console.log("\nlinear memory (one VM)");
  const s = await sidecarFor(meshlook, "meshlook", { collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: 3600 });
  console.log(`configured, empty:           ${(s.linearMemoryBytes[0] / 1024).toFixed(0)} KiB`);
  for (const input of workload(40_000, 1998)) s.stream(input);
  console.log(`at the cap (2000 series):    ${(s.linearMemoryBytes[0] / 1024).toFixed(0)} KiB`);
  for (const input of workload(100_000, 100_000)) s.stream(input);
  console.log(`after 100k distinct keys:    ${(s.linearMemoryBytes[0] / 1024).toFixed(0)} KiB`);
  await s.close();
}

const meshlook = await loadModule();
const noop = await loadModule(NOOP_WASM);
await perRequestCost(meshlook, noop);
await wireBytes(meshlook);
await memoryAtCap(meshlook);
