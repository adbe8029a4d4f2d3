/**
 * The simulated mesh: one proxy-wasm sidecar (several VMs) per Envoy workload of a model, fed with
 * generated requests in simulated time. Each request is delivered to the sidecars that observe it at the
 * moment it ends (`endNs`), so windows, ticks and callouts happen where they would in a real mesh.
 *
 * Clocks: with a ManualClock (default) time jumps from request to request — as fast as the CPU allows, or
 * paced at `speed` simulated seconds per wall second — and every `stepMs` of simulated time the runner
 * waits for in-flight callouts, so a real HTTP round trip never outlasts a simulated timeout. With a
 * RealClock the runner waits for wall time to reach each request's end.
 */
import { compileModule, createSidecar, ManualClock, RealClock, type Sidecar, type SidecarOptions } from "./host/index.ts";
import { streamInput, workloadNode } from "./sidecar.ts";
import type { SimRequest, TrafficGenerator } from "./traffic/generator.ts";
import type { MeshModel, Workload } from "./traffic/model.ts";
import type { GroundTruth } from "./traffic/truth.ts";

export interface MeshOptions {
  model: MeshModel;
  /** The filter: bytes, a path, or a compiled module (compiled once and shared by every VM). */
  wasm: Uint8Array | string | WebAssembly.Module;
  /** WasmPlugin pluginConfig: JSON text or an object to stringify. */
  pluginConfig: string | Record<string, unknown>;
  /** Envoy worker threads (VMs) per sidecar. Default 2, Istio's sidecar default. */
  workers?: number;
  /** ManualClock (default: one at the generator's default start) or RealClock. */
  clock?: ManualClock | RealClock;
  /**
   * Which worker takes a stream: `round-robin` (default) or `connection` — Envoy binds a connection to one
   * worker, so all requests of a client (source workload) land on the same VM.
   */
  routing?: "round-robin" | "connection";
  /** Send filler request/response bodies (body callbacks run); default false, sizes come as attributes. */
  withBodies?: boolean;
  /** Root id (default `meshlook`), collector cluster map, VM env and the rest, as for createSidecar. */
  rootId?: string;
  clusters?: SidecarOptions["clusters"];
  env?: SidecarOptions["env"];
  failStrategy?: SidecarOptions["failStrategy"];
  logLevel?: SidecarOptions["logLevel"];
  onLog?: SidecarOptions["onLog"];
  legacyAttributes?: boolean;
  canary?: boolean;
}

export interface RunOptions {
  /** Stop after this many requests. */
  requests?: number;
  /** Stop at the first request ending this many simulated seconds after the generator's start. */
  durationS?: number;
  /** Record every delivered request here (the ground truth of exactly what the sidecars saw). */
  truth?: GroundTruth;
  /** Simulated ms between waits for in-flight callouts (and progress reports). Default 1000. */
  stepMs?: number;
  /** ManualClock only: simulated seconds per wall second; default Infinity (no pacing). */
  speed?: number;
  /** Called after every step. */
  onStep?: (progress: MeshProgress) => void;
  signal?: AbortSignal;
}

export interface MeshProgress {
  /** Requests delivered. */
  requests: number;
  /** Sidecar streams run (a request observed by both sides counts twice). */
  streams: number;
  /** Streams the filter did not see because its VM had failed, and streams during which a VM trapped. */
  skipped: number;
  trapped: number;
  /** Traps on every path: canary, configure, reconfigure, streams, ticks, callouts, VM stop. */
  vmTraps: number;
  /** Callouts started, answered with a 2xx, and answered otherwise (including resets). */
  callouts: number;
  acknowledged: number;
  rejected: number;
  /** Simulated time, Unix ms. */
  nowMs: number;
}

export class Mesh {
  readonly model: MeshModel;
  readonly clock: ManualClock | RealClock;
  /** Sidecars by workload id (workloads with an Envoy: sidecar or gateway). */
  readonly sidecars: ReadonlyMap<number, Sidecar>;
  private requests = 0;
  private streams = 0;
  private skipped = 0;
  private trapped = 0;
  private readonly routing: "round-robin" | "connection";
  private readonly withBodies: boolean;
  private readonly workers: number;
  /** A request pulled past a run's limit, delivered first by the next run over the same generator. */
  private held: { generator: TrafficGenerator; request: SimRequest } | null = null;

  private constructor(options: MeshOptions, clock: ManualClock | RealClock, sidecars: Map<number, Sidecar>) {
    this.model = options.model;
    this.clock = clock;
    this.sidecars = sidecars;
    this.routing = options.routing ?? "round-robin";
    this.withBodies = options.withBodies ?? false;
    this.workers = options.workers ?? 2;
  }

  /** Starts one sidecar per Envoy workload; throws (WasmLoadError) when Envoy would refuse the plugin. */
  static async create(options: MeshOptions): Promise<Mesh> {
    const clock = options.clock ?? new ManualClock();
    const module = options.wasm instanceof WebAssembly.Module ? options.wasm : await compileModule(options.wasm);
    const pluginConfig = typeof options.pluginConfig === "string" ? options.pluginConfig : JSON.stringify(options.pluginConfig);
    const sidecars = new Map<number, Sidecar>();
    try {
      for (const w of options.model.workloads) {
        if (w.proxy !== "sidecar" && w.proxy !== "gateway") continue;
        sidecars.set(
          w.id,
          await createSidecar({
            wasm: module,
            rootId: options.rootId ?? "meshlook",
            pluginConfig,
            env: options.env,
            clusters: options.clusters,
            workers: options.workers ?? 2,
            node: workloadNode(w, options.model),
            clock,
            logLevel: options.logLevel,
            failStrategy: options.failStrategy,
            legacyAttributes: options.legacyAttributes,
            canary: options.canary,
            onLog: options.onLog,
          }),
        );
      }
    } catch (e) {
      await Promise.all([...sidecars.values()].map((s) => s.close()));
      throw e;
    }
    return new Mesh(options, clock, sidecars);
  }

  /** The sidecar of a workload, if it runs an Envoy. */
  sidecarOf(w: Workload): Sidecar | undefined {
    return this.sidecars.get(w.id);
  }

  /**
   * Runs one request through the sidecars that observe it, at the current clock time (the caller moves
   * the clock; `run` does). Synchronous: callouts the filter starts complete later (`settle`).
   */
  deliver(request: SimRequest): void {
    if (request.sourceReports) this.observe(request, "source", request.source);
    if (request.destinationReports) this.observe(request, "destination", request.destination);
    this.requests++;
  }

  private observe(request: SimRequest, reporter: "source" | "destination", w: Workload): void {
    const sidecar = this.sidecars.get(w.id);
    if (!sidecar) throw new Error(`request ${request.seq}: workload ${w.namespace}/${w.name} has no sidecar`);
    const input = streamInput(request, reporter, this.withBodies);
    if (this.routing === "connection") input.worker = (reporter === "source" ? w.id : request.source.id) % this.workers;
    const result = sidecar.stream(input);
    this.streams++;
    if (result.skipped) this.skipped++;
    if (result.trapped) this.trapped++;
  }

  /**
   * Pulls requests from the generator and delivers each at its end time until `requests` or `durationS`
   * is reached (at least one of them is required). Resolves with the progress after the last request.
   */
  async run(generator: TrafficGenerator, options: RunOptions): Promise<MeshProgress> {
    if (options.requests === undefined && options.durationS === undefined) {
      throw new Error("Mesh.run needs requests or durationS");
    }
    const stepMs = options.stepMs ?? 1000;
    if (!(stepMs > 0)) throw new Error("stepMs must be > 0");
    const speed = options.speed ?? Infinity;
    const limitNs = options.durationS === undefined ? Infinity : options.durationS * 1e9;
    const maxRequests = options.requests ?? Infinity;
    const manual = this.clock instanceof ManualClock ? this.clock : null;
    const wallStart = Date.now();
    const simStartMs = this.nowMs();
    let nextStepMs = simStartMs + stepMs;
    let delivered = 0;

    while (delivered < maxRequests) {
      if (options.signal?.aborted) break;
      const request = this.held?.generator === generator ? this.held.request : generator.next();
      this.held = null;
      if (request.offsetNs >= limitNs) {
        this.held = { generator, request };
        break;
      }
      const endMs = Number(request.endNs / 1_000_000n);
      while (endMs >= nextStepMs) {
        await this.stepTo(nextStepMs, manual, speed, wallStart, simStartMs);
        options.onStep?.(this.progress());
        nextStepMs += stepMs;
      }
      if (manual) {
        if (endMs > manual.nowMs()) manual.advanceTo(endMs);
      } else if (endMs > Date.now()) {
        await sleep(endMs - Date.now());
      }
      this.deliver(request);
      options.truth?.record(request);
      delivered++;
    }
    await this.settle();
    const progress = this.progress();
    options.onStep?.(progress);
    return progress;
  }

  /**
   * Lets simulated time run on without traffic (ticks close the open windows, summaries go out), waiting
   * for callouts after every step. With a RealClock it simply waits.
   */
  async drain(seconds: number, stepMs = 1000, onStep?: (progress: MeshProgress) => void): Promise<MeshProgress> {
    const manual = this.clock instanceof ManualClock ? this.clock : null;
    const target = this.nowMs() + seconds * 1000;
    while (this.nowMs() < target) {
      await this.stepTo(Math.min(target, this.nowMs() + stepMs), manual, Infinity, Date.now(), this.nowMs());
      onStep?.(this.progress());
    }
    await this.settle();
    return this.progress();
  }

  private async stepTo(ms: number, manual: ManualClock | null, speed: number, wallStart: number, simStart: number) {
    if (manual) {
      manual.advanceTo(ms);
      if (Number.isFinite(speed)) await sleep(wallStart + (ms - simStart) / speed - Date.now());
    } else {
      await sleep(ms - Date.now());
    }
    await this.settle();
  }

  /** Waits until every callout in flight has been answered and handed to the filter. */
  async settle(): Promise<void> {
    await Promise.all([...this.sidecars.values()].map((s) => s.settle()));
  }

  nowMs(): number {
    return Number(this.clock.nowNs() / 1_000_000n);
  }

  progress(): MeshProgress {
    let callouts = 0;
    let acknowledged = 0;
    let rejected = 0;
    for (const s of this.sidecars.values()) {
      for (const c of s.callouts) {
        if (c.worker === "canary") continue;
        callouts++;
        if (!c.outcome) continue;
        const status = c.outcome.status;
        if (status !== null && status >= 200 && status <= 299) acknowledged++;
        else rejected++;
      }
    }
    let vmTraps = 0;
    for (const s of this.sidecars.values()) vmTraps += s.traps.length;
    return {
      requests: this.requests,
      streams: this.streams,
      skipped: this.skipped,
      trapped: this.trapped,
      vmTraps,
      callouts,
      acknowledged,
      rejected,
      nowMs: this.nowMs(),
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.sidecars.values()].map((s) => s.close()));
  }
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
