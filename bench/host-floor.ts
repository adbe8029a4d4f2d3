// The floor later filter benchmarks compare against: what one HTTP stream costs in the simulated
// sidecar with the do-nothing proxy-runtime filter (dist/fixtures/noop.wasm, bench/filters/noop.ts).
// Baseline in the same process: the same stream through a module that exports no callbacks, i.e. the
// host's own per-stream work. Prints ns/request (median of several runs) and the ratio.
import { createSidecar } from "../sim/host/index.ts";
import { buildModule, MINIMAL_EXPORTS } from "../test/host/wasm-builder.ts";

const RUNS = Number(process.env.HOST_FLOOR_RUNS ?? 7);
const STREAMS = Number(process.env.HOST_FLOOR_STREAMS ?? 50_000);

const input = {
  requestHeaders: [[":method", "GET"], [":path", "/reviews/1"], [":authority", "reviews.shop.svc.cluster.local"], ["x-request-id", "r-1"]] as [string, string][],
  responseHeaders: [[":status", "200"], ["content-length", "0"]] as [string, string][],
};

// proxy-runtime's default onConfigure traps on an empty configuration (docs/host.md), so pass one.
const noop = await createSidecar({ wasm: "dist/fixtures/noop.wasm", rootId: "noop", pluginConfig: "{}" });
const bare = await createSidecar({ wasm: buildModule({ exports: MINIMAL_EXPORTS }) });

function nsPerStream(sidecar: typeof noop): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < STREAMS; i++) sidecar.stream(input);
  return Number(process.hrtime.bigint() - t0) / STREAMS;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

nsPerStream(noop); // warm-up: JIT and the module's tier-up
nsPerStream(bare);
const noopRuns: number[] = [];
const bareRuns: number[] = [];
for (let r = 0; r < RUNS; r++) {
  noopRuns.push(nsPerStream(noop));
  bareRuns.push(nsPerStream(bare));
}
if (noop.traps.length > 0 || bare.traps.length > 0) throw new Error("a module trapped during the benchmark");
const n = median(noopRuns);
const b = median(bareRuns);
console.log(`host floor: ${RUNS} runs x ${STREAMS} streams (request + response headers, one worker)`);
console.log(`  baseline (host only, no callbacks):   ${b.toFixed(0)} ns/request`);
console.log(`  noop proxy-runtime 0.1.8 filter:      ${n.toFixed(0)} ns/request`);
console.log(`  ratio noop / baseline:                ${(n / b).toFixed(2)}x`);
await noop.close();
await bare.close();
