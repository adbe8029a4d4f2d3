// Per-request cost of three filters on the same streams in the same host and process: the do-nothing
// proxy-runtime filter (the floor), meshlook, and the access-log baseline (one JSON line per request handed
// to the host). The streams are bookinfo requests as both sidecars of each hop see them.
import { dirname, join } from "node:path";
import { compileModule, createSidecar, ManualClock, type LogEntry, type Sidecar, type StreamInput } from "../../sim/host/index.ts";
import { streamInput, workloadNode } from "../../sim/sidecar.ts";
import { TrafficGenerator, bookinfo, type Reporter } from "../../sim/traffic/index.ts";
import { NOOP_WASM, RELEASE_WASM } from "../../test/filter/fixtures.ts";
import { median } from "./stats.ts";

const ACCESSLOG_WASM = join(dirname(NOOP_WASM), "accesslog.wasm");

export interface FilterCost {
  /** Median CPU ns per stream over the rounds. */
  noopNs: number;
  meshlookNs: number;
  accessLogNs: number;
  /** meshlook - no-op per round (both ran in that round), ns per stream: the spread of the added cost. */
  addedRounds: number[];
  /** Mean bytes of one access-log line (plus its newline), as the baseline filter produced it. */
  accessLogLineBytes: number;
  accessLogSample: string;
  streams: number;
  rounds: number;
}

/**
 * The stream inputs of `requests` bookinfo requests, each as every observing sidecar sees it; each
 * connection between two workloads carries `requestsPerConnection` of them (1: every request a new one).
 */
export function bookinfoStreams(requests: number, seed = 7, requestsPerConnection = 1): StreamInput[] {
  const model = bookinfo();
  const generator = new TrafficGenerator(model, { seed, requestsPerSecond: 1000, requestsPerConnection });
  const out: StreamInput[] = [];
  for (let i = 0; i < requests; i++) {
    const request = generator.next();
    for (const reporter of ["source", "destination"] as Reporter[]) {
      if (reporter === "source" ? request.sourceReports : request.destinationReports) out.push(streamInput(request, reporter));
    }
  }
  return out;
}

/**
 * CPU time of this process per stream, ns: steadier than wall time when other work shares the cores (the
 * stream path is synchronous, so the process's CPU time is this loop's, plus a little GC).
 */
export function timeRound(sidecar: Sidecar, inputs: readonly StreamInput[]): number {
  const c0 = process.cpuUsage();
  for (const input of inputs) sidecar.stream(input);
  const c = process.cpuUsage(c0);
  return ((c.user + c.system) * 1000) / inputs.length;
}

export async function measureFilterCost(requests = 10_000, rounds = 7, requestsPerConnection = 1): Promise<FilterCost> {
  const inputs = bookinfoStreams(requests, 7, requestsPerConnection);
  const model = bookinfo();
  // One sidecar per filter, as productpage's; the node only sets the local labels.
  const node = workloadNode(model.workloads.find((w) => w.name === "productpage-v1")!, model);
  let lines = 0;
  let lineBytes = 0;
  let sample = "";
  const onLog = (e: LogEntry) => {
    if (e.level !== "info" || e.source !== "proxy_log") return;
    lines++;
    lineBytes += Buffer.byteLength(e.message) + 1;
    sample = e.message;
  };
  const make = async (wasm: string, rootId: string, pluginConfig: string, log?: (e: LogEntry) => void) =>
    createSidecar({ wasm: await compileModule(wasm), rootId, pluginConfig, node, clock: new ManualClock(), canary: false, workers: 1, maxLogEntries: 1000, onLog: log });
  const noop = await make(NOOP_WASM, "noop", "{}");
  // No flush during timing: the window outlasts the run (flushing is measured by the wire-bytes figures).
  // RELEASE_WASM: the filter as built, or the build MESHLOOK_FILTER_WASM names (an older one, to compare).
  const meshlook = await make(RELEASE_WASM, "meshlook", JSON.stringify({ collector: { cluster: "outbound|8080||meshlook-collector" }, flush_interval_s: 3600 }));
  const accessLog = await make(ACCESSLOG_WASM, "accesslog", "{}", onLog);
  const sidecars = [noop, meshlook, accessLog];
  try {
    for (const s of sidecars) timeRound(s, inputs); // warm-up: JIT tiers, table growth
    const times: number[][] = [[], [], []];
    for (let r = 0; r < rounds; r++) sidecars.forEach((s, i) => times[i].push(timeRound(s, inputs)));
    sidecars.forEach((s, i) => {
      if (s.traps.length > 0) throw new Error(`filter ${i} trapped: ${JSON.stringify(s.traps[0]).slice(0, 800)}`);
    });
    if (lines !== inputs.length * (rounds + 1)) throw new Error(`the access-log baseline logged ${lines} lines for ${inputs.length * (rounds + 1)} streams`);
    JSON.parse(sample); // a well-formed JSON line
    return {
      noopNs: median(times[0]),
      meshlookNs: median(times[1]),
      accessLogNs: median(times[2]),
      addedRounds: times[1].map((t, r) => t - times[0][r]),
      accessLogLineBytes: lineBytes / lines,
      accessLogSample: sample,
      streams: inputs.length,
      rounds,
    };
  } finally {
    await Promise.all(sidecars.map((s) => s.close()));
  }
}
