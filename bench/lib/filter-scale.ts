// The filter at scale, on synthetic callers (bench/filter.ts prints these; bench/run.ts puts them in its
// table): CPU per request and linear memory at 100 series, at the 2,000-series cap and overflowing it,
// against the do-nothing proxy-runtime filter in the same host and process; and the linear memory of one
// VM at the cap and through windows of a cardinality attack, against the same VM right after configure.
import { createSidecar, ManualClock, type Sidecar, type StreamInput } from "../../sim/host/index.ts";
import { COLLECTOR_CLUSTER, LOCAL_NODE, startCollector, syntheticStream } from "../../test/filter/fixtures.ts";
import { timeRound } from "./filter-cost.ts";

/** Deterministic latency spread (about 2.2–7.3 ms, every 97th request 20× slower), no Math.random. */
export function latencyNs(i: number): number {
  const u = ((i * 2654435761) >>> 0) / 2 ** 32;
  return Math.round(4e6 * Math.exp(1.2 * (u - 0.5)) * (i % 97 === 0 ? 20 : 1));
}

/**
 * `n` streams over `series` distinct callers (principals), each caller on its own connection; a caller
 * sends `burst` requests in a row. Callers are numbered from `first`.
 */
export function workload(n: number, series: number, burst = 1, first = 0): StreamInput[] {
  return Array.from({ length: n }, (_, i) => {
    const caller = first + (Math.floor(i / burst) % series);
    return syntheticStream({
      principal: `spiffe://cluster.local/ns/tenants/sa/caller-${caller}`,
      workload: `caller-${caller}`,
      code: i % 50 === 0 ? 503 : 200,
      durationNs: latencyNs(i),
      requestBytes: 200 + (i % 300),
      responseBytes: 1000 + (i % 4000),
    });
  });
}

export async function sidecarFor(wasm: WebAssembly.Module, rootId: string, config: object | string, clusters: Record<string, string> = {}, clock = new ManualClock()) {
  return createSidecar({
    wasm,
    rootId,
    clock,
    canary: false,
    workers: 1,
    node: LOCAL_NODE,
    clusters,
    configDelivery: "ecds",
    pluginConfig: typeof config === "string" ? config : JSON.stringify(config),
    env: { MESHLOOK_INGEST_TOKEN: "bench" },
  });
}

/** meshlook as the timing runs configure it: no flush during timing, the window outlasts the run. */
export const MESHLOOK_UNFLUSHED = { collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: 3600 };

/**
 * The caller mixes: 100 callers on known connections, 1,998 (the cap, with room for the overflow series
 * and one spare), and overflow: every request from a caller not seen in the round (so never on a cached
 * connection); "overflow x4": the same callers sending four requests in a row each.
 */
export const SERIES_MIXES = [
  { label: "100 series", series: 100, burst: 1 },
  { label: "2,000 series (the cap)", series: 1998, burst: 1 },
  { label: "overflow (every request a new caller)", series: Infinity, burst: 1 },
  { label: "overflow, 4 requests per caller", series: Infinity, burst: 4 },
] as const;

export interface Subject {
  wasm: WebAssembly.Module;
  rootId: string;
  config: object | string;
}

export interface MixCost {
  label: string;
  /** CPU ns per stream of each subject, one per round (all subjects ran in every round, interleaved). */
  ns: number[][];
  /** Linear memory of each subject's VM right after configure and after the rounds, bytes. */
  configuredBytes: number[];
  afterBytes: number[];
}

/** Each subject over `requests` streams of each mix, `rounds` rounds after a warm-up. */
export async function measureSeriesMixes(subjects: readonly Subject[], requests: number, rounds: number): Promise<MixCost[]> {
  const out: MixCost[] = [];
  for (const mix of SERIES_MIXES) {
    const inputs = workload(requests, Math.min(mix.series, requests), mix.burst);
    const sidecars: Sidecar[] = [];
    for (const s of subjects) sidecars.push(await sidecarFor(s.wasm, s.rootId, s.config));
    try {
      const configuredBytes = sidecars.map((s) => s.linearMemoryBytes[0]);
      for (const s of sidecars) timeRound(s, inputs.slice(0, 5000)); // warm-up (JIT, table growth)
      const ns: number[][] = sidecars.map(() => []);
      for (let r = 0; r < rounds; r++) sidecars.forEach((s, i) => ns[i].push(timeRound(s, inputs)));
      if (sidecars.some((s) => s.traps.length > 0)) throw new Error("a filter trapped during the benchmark");
      out.push({ label: mix.label, ns, configuredBytes, afterBytes: sidecars.map((s) => s.linearMemoryBytes[0]) });
    } finally {
      await Promise.all(sidecars.map((s) => s.close()));
    }
  }
  return out;
}

export interface AttackStage {
  label: string;
  /** Linear memory of the VM with the collector acknowledging, and with it answering 503, bytes. */
  upBytes: number;
  refusingBytes: number;
}

export interface AttackMemory {
  configured: AttackStage;
  atCap: AttackStage;
  flushed: AttackStage;
  /** After each attack window, flushed. */
  windows: AttackStage[];
  /** After a plugin update at the cap (both root contexts held for a moment), flushed. */
  reconfigured: AttackStage;
  callersPerWindow: number;
}

/**
 * Linear memory of one VM (default configuration, 10 s windows, each flushed: the encoder's and outbox's
 * buffers count) at the cap and through `windows` windows of attack (`callersPerWindow` distinct callers
 * each, every one with its own principal and peer metadata), side by side with the collector answering
 * and refusing (503: every summary stays in the outbox, which fills its max_pending_bytes and then drops
 * the oldest), then after a plugin update.
 */
export async function measureAttackMemory(meshlook: WebAssembly.Module, windows: number, callersPerWindow = 100_000): Promise<AttackMemory> {
  const runs = await Promise.all(
    [200, 503].map(async (status) => {
      const collector = await startCollector(() => ({ status }));
      const clock = new ManualClock();
      const sidecar = await sidecarFor(meshlook, "meshlook", { collector: { cluster: COLLECTOR_CLUSTER } }, { [COLLECTOR_CLUSTER]: collector.address }, clock);
      return { collector, clock, sidecar };
    }),
  );
  try {
    const stage = (label: string): AttackStage => ({ label, upBytes: runs[0].sidecar.linearMemoryBytes[0], refusingBytes: runs[1].sidecar.linearMemoryBytes[0] });
    const feed = async (inputs: StreamInput[], flush: boolean) => {
      for (const r of runs) {
        for (const input of inputs) r.sidecar.stream(input);
        if (flush) {
          r.clock.advance(10_000);
          await r.sidecar.settle();
        }
      }
    };
    const configured = stage("configured, empty");
    await feed(workload(40_000, 1998), false);
    const atCap = stage("at the cap (2,000 series)");
    await feed([], true);
    const flushed = stage("after flushing it");
    const attack: AttackStage[] = [];
    for (let w = 1; w <= windows; w++) {
      await feed(workload(callersPerWindow, callersPerWindow, 1, w * callersPerWindow), true); // callers never seen before
      attack.push(stage(`attack window ${w}, flushed`));
    }
    // A plugin update: Envoy starts a new root context in the same VM (its own tables and outbox) before the
    // replaced one stops, so both are held for a moment; memory the VM has grown is never returned.
    for (const r of runs) r.sidecar.configure(JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: 10 }));
    await feed(workload(40_000, 1998), true);
    const reconfigured = stage("reconfigured, at the cap again, flushed");
    if (runs.some((r) => r.sidecar.traps.length > 0)) throw new Error("the filter trapped during the memory benchmark");
    return { configured, atCap, flushed, windows: attack, reconfigured, callersPerWindow };
  } finally {
    for (const r of runs) {
      await r.sidecar.close();
      await r.collector.close();
    }
  }
}

/** Every stage of an attack run in order, for printing. */
export const attackStages = (m: AttackMemory): AttackStage[] => [m.configured, m.atCap, m.flushed, ...m.windows, m.reconfigured];
