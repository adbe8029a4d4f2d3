// The floor later filter benchmarks compare against: what one HTTP stream costs in the simulated
// sidecar with the do-nothing proxy-runtime filter (dist/fixtures/noop.wasm, bench/filters/noop.ts).
// Baseline in the same process: the same stream through a module that exports no callbacks, i.e. the
// host's own per-stream work. Prints ns/request (median of several runs) and the ratio, as wall time
// and as CPU time of this process (steadier when other work shares the cores).
import { createSidecar } from "../sim/host/index.ts";
import { buildModule, MINIMAL_EXPORTS } from "../test/host/wasm-builder.ts";

const RUNS = Number(process.env.HOST_FLOOR_RUNS ?? 7);
const STREAMS = Number(process.env.HOST_FLOOR_STREAMS ?? 50_000);

const input = {
  requestHeaders: [
    [":method", "GET"],
    [":path", "/reviews/1"],
    [":authority", "reviews.shop.svc.cluster.local"],
    ["x-request-id", "r-1"],
  ] as [string, string][],
  responseHeaders: [
    [":status", "200"],
    ["content-length", "0"],
  ] as [string, string][],
};

// proxy-runtime's default onConfigure traps on an empty configuration (docs/host.md), so pass one.
const noop = await createSidecar({ wasm: "dist/fixtures/noop.wasm", rootId: "noop", pluginConfig: "{}" });
const bare = await createSidecar({ wasm: buildModule({ exports: MINIMAL_EXPORTS }) });

interface Run {
  wall: number;
  cpu: number;
}

function nsPerStream(sidecar: typeof noop): Run {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < STREAMS; i++) sidecar.stream(input);
  const wall = Number(process.hrtime.bigint() - t0) / STREAMS;
  const c = process.cpuUsage(c0);
  return { wall, cpu: ((c.user + c.system) * 1000) / STREAMS };
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

nsPerStream(noop); // warm-up: JIT and the module's tier-up
nsPerStream(bare);
const noopRuns: Run[] = [];
const bareRuns: Run[] = [];
for (let r = 0; r < RUNS; r++) {
  noopRuns.push(nsPerStream(noop));
  bareRuns.push(nsPerStream(bare));
}
if (noop.traps.length > 0 || bare.traps.length > 0) throw new Error("a module trapped during the benchmark");
console.log(`host floor: ${RUNS} runs x ${STREAMS} streams (request + response headers, one worker), medians`);
console.log("                                        wall ns/request   cpu ns/request");
for (const [label, runs] of [
  ["baseline (host only, no callbacks)", bareRuns],
  ["noop proxy-runtime 0.1.8 filter", noopRuns],
] as const) {
  const w = median(runs.map((r) => r.wall));
  const c = median(runs.map((r) => r.cpu));
  console.log(`  ${label.padEnd(36)} ${w.toFixed(0).padStart(15)} ${c.toFixed(0).padStart(16)}`);
}
const ratio = (pick: (r: Run) => number) => (median(noopRuns.map(pick)) / median(bareRuns.map(pick))).toFixed(2);
console.log(`  ratio noop / baseline                ${ratio((r) => r.wall).padStart(14)}x ${ratio((r) => r.cpu).padStart(15)}x`);
await noop.close();
await bare.close();
