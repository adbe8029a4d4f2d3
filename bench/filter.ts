// Filter benchmarks (printed, not asserted): per-request cost against the do-nothing proxy-runtime
// filter in the same host and process; wire bytes per request; summary bytes and linear memory at the series cap.
// Run: `npx tsx bench/filter.ts [section …]` (after `npm run build`). MESHLOOK_FILTER_WASM=<file> measures
// another build of the filter (one built from an older commit, say) against the same baselines.
import { dirname, join } from "node:path";
import { ManualClock } from "../sim/host/index.ts";
import { COLLECTOR_CLUSTER, NOOP_WASM, decodeBody, loadModule, startCollector, syntheticStream } from "../test/filter/fixtures.ts";
import { measureFilterCost, timeRound } from "./lib/filter-cost.ts";
import { attackStages, latencyNs, measureAttackMemory, measureSeriesMixes, MESHLOOK_UNFLUSHED, sidecarFor, workload } from "./lib/filter-scale.ts";
import { median, spread } from "./lib/stats.ts";
import { atMost, judged } from "./lib/targets.ts";

// BENCH_ROUNDS: more rounds when the machine is shared and the spread is wide.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const f = (x: number, w: number) => x.toFixed(0).padStart(w);

const PROBE_WASM = join(dirname(NOOP_WASM), "reads.wasm");

/**
 * ns/request of meshlook against the do-nothing proxy-runtime filter, and where the difference goes: the
 * probe (bench/filters/reads.ts) runs meshlook's SDK seam with an empty on_log ("seam"), then with only
 * meshlook's per-request property reads ("reads"). reads - seam = host calls an Envoy would also answer;
 * meshlook - reads = the filter's own wasm work (key, interning, table, sketch).
 */
async function perRequestCost(meshlook: WebAssembly.Module, noop: WebAssembly.Module, probe: WebAssembly.Module) {
  const N = 20_000;
  console.log(
    `\nper-request cost (CPU ns/request, median of ${ROUNDS} rounds of ${N} streams, added: median and min..max of the rounds' differences; same host, same process) and meshlook's linear memory`,
  );
  console.log(`${"callers".padEnd(38)}  noop  meshlook   added (min..max)  ratio |  seam  reads  host calls  filter's own | memory KiB`);
  const subjects = [
    { wasm: noop, rootId: "noop", config: {} },
    { wasm: meshlook, rootId: "meshlook", config: MESHLOOK_UNFLUSHED },
    { wasm: probe, rootId: "probe", config: "none" },
    { wasm: probe, rootId: "probe", config: "reads" },
  ];
  for (const mix of await measureSeriesMixes(subjects, N, ROUNDS)) {
    const [noopNs, meshNs, seamNs, readsNs] = mix.ns.map(median);
    const addedRounds = mix.ns[1].map((t, r) => t - mix.ns[0][r]);
    const added = `${f(median(addedRounds), 7)} (${spread(addedRounds)})`;
    console.log(
      `${mix.label.padEnd(38)} ${f(noopNs, 5)} ${f(meshNs, 9)} ${added.padEnd(19)} ${(meshNs / noopNs).toFixed(2).padStart(5)} |` +
        ` ${f(seamNs, 5)} ${f(readsNs, 6)} ${f(readsNs - seamNs, 11)} ${f(meshNs - readsNs, 13)} | ${f(mix.afterBytes[1] / 1024, 10)}`,
    );
  }
}

/**
 * Bookinfo traffic as productpage's sidecar sees both ends of each hop: every request on a new connection
 * (the filter reads each connection's facts anew), and connections carrying several requests between
 * the same two workloads (keep-alive, HTTP/2), where the per-connection fact cache answers.
 */
async function bookinfoCost() {
  const REQUESTS = 10_000;
  console.log(`\nbookinfo streams (CPU ns/request, median of ${ROUNDS} rounds, added: median and min..max of the rounds' differences; same host, same process)`);
  console.log("requests/connection    noop  meshlook   added (min..max)  ratio   target");
  for (const perConnection of [1, 10]) {
    const { noopNs, meshlookNs: meshNs, addedRounds } = await measureFilterCost(REQUESTS, ROUNDS, perConnection);
    // Targets (issue 19): at most 1 µs over the no-op on new connections, nothing over it on keep-alive;
    // held, as in bench/run.ts, to the median of the rounds' differences.
    const added = median(addedRounds);
    const { target, verdict } = judged(atMost(added, perConnection === 1 ? 1000 : 0, (n) => `${n.toFixed(0)} ns`));
    console.log(
      `${String(perConnection).padEnd(19)} ${f(noopNs, 7)} ${f(meshNs, 9)} ${`${f(added, 7)} (${spread(addedRounds)})`.padEnd(19)} ${(meshNs / noopNs).toFixed(2).padStart(5)}   ${target}: ${verdict}`,
    );
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

/**
 * Encoded size of one window at the series cap, for sizing max_pending_bytes (a summary larger than it is
 * dropped unsent): every series its own caller (principal and peer workload, as distinct as label values
 * get), `perSeries` requests each with latencies spread log-uniformly over 2–150 ms. The live series can
 * stop short of the cap when the window's distinct values fill the string table (docs/filter-config.md).
 */
async function summarySize(meshlook: WebAssembly.Module) {
  console.log("\nsummary bytes at the series cap (one 10 s window, inbound, every series a distinct caller)");
  for (const [maxSeries, perSeries] of [
    [2000, 1],
    [2000, 8],
    [2000, 100],
    [20_000, 1],
    [65_536, 1],
    [65_536, 4],
  ]) {
    const collector = await startCollector();
    const clock = new ManualClock();
    const config = { collector: { cluster: COLLECTOR_CLUSTER }, max_series: maxSeries, max_pending_bytes: 64 * 1024 * 1024, directions: ["inbound"] };
    const s = await sidecarFor(meshlook, "meshlook", config, { [COLLECTOR_CLUSTER]: collector.address }, clock);
    for (let i = 0; i < maxSeries; i++) {
      for (let k = 0; k < perSeries; k++) {
        const ms = 2 * 75 ** (k / Math.max(1, perSeries - 1));
        s.stream(
          syntheticStream({
            principal: `spiffe://cluster.local/ns/tenant-${i % 500}/sa/svc-account-${i}`,
            workload: `workload-${i}-v1`,
            durationNs: Math.round(ms * 1e6),
            requestBytes: 100 + i,
            responseBytes: 900 + k,
          }),
        );
      }
    }
    clock.advance(10_000);
    await s.settle();
    const body = collector.bodies[0].body;
    const series = decodeBody(body).series.length;
    console.log(
      `max_series ${String(maxSeries).padStart(6)}, ${String(perSeries).padStart(3)} req/series: ${String(series).padStart(6)} series, ` +
        `${(body.length / 1024).toFixed(0).padStart(5)} KiB (${(body.length / series).toFixed(0)} bytes/series)`,
    );
    await s.close();
    await collector.close();
  }
}

const ATTACK_WINDOWS = 6;

async function memoryUnderAttack(meshlook: WebAssembly.Module) {
  const m = await measureAttackMemory(meshlook, ATTACK_WINDOWS);
  console.log(`\nlinear memory, KiB (one VM, default configuration; 10 s windows of ${m.callersPerWindow} new callers, each flushed: the encoder's and outbox's buffers count)`);
  console.log(`${"".padEnd(40)} ${"collector up".padStart(14)} ${"refusing (503)".padStart(14)}`);
  for (const s of attackStages(m)) console.log(`${s.label.padEnd(40)} ${f(s.upBytes / 1024, 14)} ${f(s.refusingBytes / 1024, 14)}`);
  console.log("target: ≤ 4096 KiB at the cap, flat under attack (issue 19)");
}

/** Printable ASCII bytes (0x21..0x7e) drawn from an LCG seeded with `seed`: the same ones on every run. */
function printableBytes(seed: number): () => number {
  return () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return 0x21 + ((seed >>> 8) % 94);
  };
}

/**
 * `n` distinct printable 24-byte values with one 64-bit hash under filter/interner.ts hashBytes left
 * unkeyed (seed 0): every step of it is invertible, so the last word of each is solved from the first
 * two, and kept when all its bytes are printable. What a caller could send if the hash had no key.
 */
function unkeyedCollisions(n: number): string[] {
  const M = (1n << 64n) - 1n;
  const MUL = 0xc6a4a7935bd1e995n;
  let inverse = 1n;
  for (let i = 0; i < 6; i++) inverse = (inverse * (2n - MUL * inverse)) & M; // Newton: MUL * inverse = 1 mod 2^64
  const mixWord = (w: bigint) => {
    const x = (w * MUL) & M;
    return ((x ^ (x >> 47n)) * MUL) & M;
  };
  const unmixWord = (k: bigint) => {
    const y = (k * inverse) & M;
    return ((y ^ (y >> 47n)) * inverse) & M; // xor-shift by 47 is its own inverse
  };
  const step = (h: bigint, w: bigint) => ((h ^ mixWord(w)) * MUL) & M;
  const target = 0x0123456789abcdefn; // the shared state before the finalizer
  const needed = (target * inverse) & M;
  const h0 = (24n * MUL) & M;
  const nextByte = printableBytes(7);
  const printableWord = () => {
    let w = 0n;
    for (let j = 0; j < 8; j++) w = (w << 8n) | BigInt(nextByte());
    return w;
  };
  const bytesOf = (w: bigint) => Array.from({ length: 8 }, (_, j) => Number((w >> BigInt(8 * j)) & 0xffn));
  const out: string[] = [];
  while (out.length < n) {
    const w1 = printableWord();
    const w2 = printableWord();
    const last = bytesOf(unmixWord(step(step(h0, w1), w2) ^ needed));
    if (last.every((c) => c >= 0x21 && c <= 0x7e)) out.push(Buffer.from([...bytesOf(w1), ...bytesOf(w2), ...last]).toString("latin1"));
  }
  return out;
}

/**
 * ns/request with callers whose workload names collide under the unkeyed hash, against callers with
 * ordinary names of the same length, every request on a new connection so each name is looked up in
 * the string table. With a keyed hash the two cost the same; unkeyed, every lookup of a crafted name
 * walks the run of all the others.
 */
async function collisionCost(meshlook: WebAssembly.Module) {
  const N = 20_000;
  const CALLERS = 1500;
  const crafted = unkeyedCollisions(CALLERS);
  const nextByte = printableBytes(99);
  const ordinary = crafted.map(() => String.fromCharCode(...Array.from({ length: 24 }, nextByte)));
  const streams = (names: string[]) =>
    Array.from({ length: N }, (_, i) =>
      syntheticStream({ principal: "spiffe://cluster.local/ns/t/sa/caller", workload: names[i % names.length], durationNs: latencyNs(i), connectionId: i + 1 }),
    );
  const inputs = [streams(ordinary), streams(crafted)];
  const sidecars = [await sidecarFor(meshlook, "meshlook", MESHLOOK_UNFLUSHED), await sidecarFor(meshlook, "meshlook", MESHLOOK_UNFLUSHED)];
  sidecars.forEach((s, i) => timeRound(s, inputs[i])); // warm-up, and every name interned
  const times: number[][] = [[], []];
  for (let r = 0; r < ROUNDS; r++) sidecars.forEach((s, i) => times[i].push(timeRound(s, inputs[i])));
  if (sidecars.some((s) => s.traps.length > 0)) throw new Error("the filter trapped during the collision benchmark");
  const [ordinaryNs, craftedNs] = times.map(median);
  console.log(`\ncallers named to collide under an unkeyed hash (CPU ns/request, median of ${ROUNDS} rounds of ${N} streams, ${CALLERS} callers, a new connection each)`);
  console.log(`ordinary names ${f(ordinaryNs, 6)} (${spread(times[0])})   colliding names ${f(craftedNs, 6)} (${spread(times[1])})   ratio ${(craftedNs / ordinaryNs).toFixed(2)}`);
  await Promise.all(sidecars.map((s) => s.close()));
}

// Sections to run (all by default): `npx tsx bench/filter.ts memory per-request`.
const SECTIONS = ["per-request", "bookinfo", "wire", "summary-size", "memory", "collisions"];
const chosen = process.argv.slice(2);
for (const name of chosen) if (!SECTIONS.includes(name)) throw new Error(`unknown section "${name}" (one of ${SECTIONS.join(", ")})`);
const wanted = (name: string) => chosen.length === 0 || chosen.includes(name);
const meshlook = await loadModule();
if (wanted("per-request")) await perRequestCost(meshlook, await loadModule(NOOP_WASM), await loadModule(PROBE_WASM));
if (wanted("bookinfo")) await bookinfoCost();
if (wanted("wire")) await wireBytes(meshlook);
if (wanted("summary-size")) await summarySize(meshlook);
if (wanted("memory")) await memoryUnderAttack(meshlook);
if (wanted("collisions")) await collisionCost(meshlook);
