/**
 * The whole meshlook path in one call: a collector process on a fresh data directory, a simulated mesh
 * whose sidecars run the release filter and POST to it, traffic until the run's limit, a drain that
 * lets every filter flush its last window and get it acknowledged, and a graceful collector stop (its
 * final load), after which the DuckDB file is complete and can be opened read-only.
 * Shared by the demo and the end-to-end tests.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { decodeSummary } from "../shared/node.ts";
import { startCollectorProcess, type CollectorProcess } from "./collector-process.ts";
import { ManualClock } from "./host/index.ts";
import { Mesh, type MeshProgress } from "./mesh.ts";
import type { GroundTruth, MeshModel, TrafficGenerator } from "./traffic/index.ts";

export const RELEASE_WASM = join(import.meta.dirname, "..", "dist", "meshlook.wasm");
export const COLLECTOR_CLUSTER = "outbound|8080||meshlook-collector.meshlook.svc.cluster.local";

export interface PipelineOptions {
  model: MeshModel;
  generator: TrafficGenerator;
  /** Records every delivered request (configure it like the filter: directions, end user, dimensions). */
  truth: GroundTruth;
  /** pluginConfig fields besides `collector` (docs/filter-config.md). */
  filterConfig?: Record<string, unknown>;
  /** Filter VMs per sidecar. Default 2. */
  workers?: number;
  dataDir: string;
  /** Extra collector settings (`MESHLOOK_*`). */
  collectorSettings?: Record<string, string>;
  durationS?: number;
  requests?: number;
  onStart?: (collector: CollectorProcess, mesh: Mesh) => void;
  onStep?: (progress: MeshProgress) => void;
}

export interface PipelineResult extends DriveResult {
  duckdbPath: string;
}

export interface SummaryTally {
  /** `producer#seq` of every distinct summary the filters POSTed, and of those answered with a 2xx. */
  sent: Set<string>;
  acknowledged: Set<string>;
  /** Calls not answered with a 2xx (refused, failed, timed out). */
  failedCalls: number;
  /**
   * Those calls by answer: the status and the collector's error code (`403 identity_mismatch`), or `no
   * response` (reset, timeout, not answered yet). The collector logs no refusal, so this is where a
   * sender learns why.
   */
  refusals: Map<string, number>;
}

/** What a refused call was told: `<status> <error code>` from the collector's JSON error body. */
function refusal(outcome: { status: number | null; body: Uint8Array } | undefined): string {
  if (!outcome || outcome.status === null) return "no response";
  try {
    const { error } = JSON.parse(Buffer.from(outcome.body).toString("utf8")) as { error?: unknown };
    if (typeof error === "string") return `${outcome.status} ${error}`;
  } catch {
    // not the collector's JSON (a proxy's page): the status says enough
  }
  return String(outcome.status);
}

/** What the mesh's filters have POSTed so far (canary VMs aside), read from the callouts' bodies. */
export function tallySummaries(mesh: Mesh): SummaryTally {
  const tally: SummaryTally = { sent: new Set(), acknowledged: new Set(), failedCalls: 0, refusals: new Map() };
  for (const sidecar of mesh.sidecars.values()) {
    for (const c of sidecar.callouts) {
      if (c.worker === "canary") continue;
      const decoded = decodeSummary(c.body);
      if (!decoded.ok) throw new Error(`the filter POSTed an undecodable summary: ${decoded.reason}: ${decoded.message}`);
      const id = `${decoded.summary.producerId}#${decoded.summary.seq}`;
      tally.sent.add(id);
      const status = c.outcome?.status;
      if (status !== undefined && status !== null && status >= 200 && status <= 299) tally.acknowledged.add(id);
      else {
        tally.failedCalls++;
        const why = refusal(c.outcome);
        tally.refusals.set(why, (tally.refusals.get(why) ?? 0) + 1);
      }
    }
  }
  return tally;
}

/**
 * Runs simulated time on by `seconds` without traffic, a second at a time, waiting for callouts after each
 * step. Mesh.drain does the same but measures time through the clock's nanoseconds, which at today's epoch
 * can read a millisecond behind the clock's own milliseconds (f64 rounding of ms·1e6) — and then it never
 * reaches its target; this loop reads the clock's milliseconds.
 */
export async function drain(mesh: Mesh, clock: ManualClock, seconds: number, onStep?: (p: MeshProgress) => void): Promise<MeshProgress> {
  const target = clock.nowMs() + seconds * 1000;
  while (clock.nowMs() < target) {
    clock.advanceTo(Math.min(target, clock.nowMs() + 1000));
    await mesh.settle();
    onStep?.(mesh.progress());
  }
  return mesh.progress();
}

/** The mesh of `model` running the release filter in its sidecars, POSTing to `collector` with `token`. */
export function meshOnCollector(
  model: MeshModel,
  collector: Pick<CollectorProcess, "address">,
  token: string,
  clock: ManualClock,
  filterConfig: Record<string, unknown> = {},
  workers = 2,
): Promise<Mesh> {
  return Mesh.create({
    model,
    wasm: RELEASE_WASM,
    pluginConfig: { collector: { cluster: COLLECTOR_CLUSTER }, ...filterConfig },
    clusters: { [COLLECTOR_CLUSTER]: collector.address },
    env: { MESHLOOK_INGEST_TOKEN: token },
    workers,
    clock,
  });
}

export interface DriveOptions extends Omit<PipelineOptions, "dataDir" | "collectorSettings" | "onStart"> {
  /** `host:port` of the collector the sidecars' cluster resolves to. */
  address: string;
  /** Bearer token the filters send (their `MESHLOOK_INGEST_TOKEN`). */
  token: string;
  onStart?: (mesh: Mesh) => void;
}

export interface DriveResult extends SummaryTally {
  progress: MeshProgress;
  /** Callouts in total (retries included). */
  callouts: number;
  /** Wall seconds from the first request to the last acknowledgement. */
  wallS: number;
}

/**
 * Runs the simulated mesh against a collector already listening at `address`: traffic until the run's
 * limit, then a drain that lets every filter flush its last window and get it acknowledged (or give up
 * after ten more windows). Used by runPipeline and by `meshlook send`.
 */
export async function driveMesh(options: DriveOptions): Promise<DriveResult> {
  const flushIntervalS = Number(options.filterConfig?.flush_interval_s ?? 10);
  // Windows line up with minutes when the clock starts on one (the generator's start is a whole minute).
  const clock = new ManualClock(options.generator.startTimeMs);
  const mesh = await meshOnCollector(options.model, options, options.token, clock, options.filterConfig, options.workers);
  let closed = false;
  try {
    options.onStart?.(mesh);
    const wallStart = performance.now();
    await mesh.run(options.generator, {
      durationS: options.durationS,
      requests: options.requests,
      truth: options.truth,
      onStep: options.onStep,
    });
    // Ticks close the last windows; their summaries, and any retries, go out while simulated time runs on.
    let progress = await drain(mesh, clock, flushIntervalS + 5, options.onStep);
    let summaries = tallySummaries(mesh);
    for (let extra = 0; summaries.acknowledged.size < summaries.sent.size && extra < 10; extra++) {
      progress = await drain(mesh, clock, flushIntervalS, options.onStep);
      summaries = tallySummaries(mesh);
    }
    const wallS = (performance.now() - wallStart) / 1000;
    closed = true;
    await mesh.close();
    // VM stop runs filter code too (the last flush): its traps count.
    progress = mesh.progress();
    return { progress, ...summaries, callouts: progress.callouts, wallS };
  } finally {
    if (!closed) await mesh.close();
  }
}

export async function runPipeline(options: PipelineOptions): Promise<PipelineResult> {
  const token = randomBytes(24).toString("base64url");
  const collector = await startCollectorProcess({ dataDir: options.dataDir, token, settings: options.collectorSettings });
  try {
    const result = await driveMesh({
      ...options,
      address: collector.address,
      token,
      onStart: (mesh) => options.onStart?.(collector, mesh),
    });
    await collector.stop();
    return { ...result, duckdbPath: collector.duckdbPath };
  } finally {
    if (collector.child.exitCode === null) collector.child.kill("SIGKILL");
  }
}
