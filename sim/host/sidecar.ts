// A simulated Envoy sidecar running one proxy-wasm HTTP filter plugin: it loads and checks the module
// as Envoy does, runs Envoy's configuration canary, starts one VM per worker thread, and drives HTTP
// streams, ticks and callouts through them. See docs/host.md for what is modelled and what is not.
import http from "node:http";
import { readFile } from "node:fs/promises";
import { checkModule, WasmLoadError, type CheckedModule } from "./abi.ts";
import { ManualClock, type Clock, type Timer } from "./clock.ts";
import { HeaderMap, type HeaderInput } from "./headers.ts";
import { parseTarget, sendHttpCall, type CallTarget } from "./http-call.ts";
import { Phase, type PluginView, type StreamAttributes } from "./properties.ts";
import { LOG_LEVELS, SharedData, SharedQueues, type LogEntry, type LogLevel, type Metric, type MetricType } from "./shared.ts";
import { nodeMessage, type NodeInfo } from "./values.ts";
import { R, Vm, type Ctx, type PendingCall, type StreamState, type VmHost } from "./vm.ts";

export type FailStrategy = "FAIL_OPEN" | "FAIL_CLOSE" | "FAIL_RELOAD";

export interface SidecarOptions {
  /** The module: bytes, a path to a .wasm file, or an already compiled module (shared across sidecars). */
  wasm: Uint8Array | string | WebAssembly.Module;
  /** Plugin root id (Istio WasmPlugin pluginName → Envoy root_id); matched by the SDK's registerRootContext. */
  rootId?: string;
  /** plugin_name property; defaults to the root id. */
  pluginName?: string;
  /** VM id: scopes shared data and queues; plugin_vm_id property. */
  vmId?: string;
  /** Plugin configuration (WasmPlugin pluginConfig as JSON text). */
  pluginConfig?: string | Uint8Array;
  /** VM configuration (vm_config.configuration). */
  vmConfig?: string | Uint8Array;
  /** VM environment variables (WasmPlugin vmConfig.env), read by the module through WASI environ_get. */
  env?: Record<string, string>;
  /** Cluster name → "host:port" the callout connects to, e.g. {"outbound|8080||collector.ns.svc.cluster.local": "127.0.0.1:8080"}. */
  clusters?: Record<string, string | CallTarget>;
  /** Worker threads, each with its own VM (Envoy --concurrency; Istio sidecars default to 2). */
  workers?: number;
  /** Bootstrap node: id, cluster, and Istio's node metadata (NAME, NAMESPACE, WORKLOAD_NAME, LABELS, …). */
  node?: NodeInfo;
  /** Time source; a ManualClock is created when omitted. */
  clock?: Clock;
  /** Envoy's wasm log level: messages below it are discarded before decoding (default "info"). */
  logLevel?: LogLevel;
  /** What a VM failure means for traffic (Istio WasmPlugin failStrategy; default FAIL_OPEN). */
  failStrategy?: FailStrategy;
  /** Also answer the Wasm-only names Envoy removed in 1.33 (node, cluster_name, route_name, …); default false. */
  legacyAttributes?: boolean;
  /** Run Envoy's configuration canary (a throwaway VM that must start and configure) at startup; default true. configure() always runs it. */
  canary?: boolean;
  /**
   * How the plugin reaches Envoy. "static" (default): in the listener itself, so a refused plugin fails
   * createSidecar (Envoy rejects the listener). "ecds": as Istio delivers a WasmPlugin, through extension
   * config discovery: a refused plugin is NACKed (`sidecar.nacks`) and, with no earlier configuration,
   * every stream meets Envoy's missing-config filter (500, response flag NFCF).
   */
  configDelivery?: "static" | "ecds";
  /**
   * How long close() waits, in the sidecar's clock time, for root contexts whose proxy_on_done answered
   * false to call proxy_done (default 30 000: Kubernetes' terminationGracePeriodSeconds, after which the pod
   * is killed; Envoy itself waits without a bound).
   */
  shutdownGraceMs?: number;
  /** Keep at most this many log entries (the oldest tenth is dropped when full; default 100 000). */
  maxLogEntries?: number;
  /** Called for every captured log entry (e.g. to print them in the demo). */
  onLog?: (entry: LogEntry) => void;
}

export interface StreamInput {
  /** Request headers including the pseudo-headers :method, :path, :authority (and :scheme). */
  requestHeaders: HeaderInput;
  requestBody?: string | Uint8Array;
  requestTrailers?: HeaderInput;
  /** Response headers with :status; omit for a stream that ends without a response (reset, timeout). */
  responseHeaders?: HeaderInput;
  responseBody?: string | Uint8Array;
  responseTrailers?: HeaderInput;
  /** Stream info the filter reads as properties: request.time/duration/protocol, connection.*, source.*, … */
  attributes?: StreamAttributes;
  /** Worker (VM) to run on; round-robin when omitted. */
  worker?: number;
}

export interface StreamResult {
  worker: number;
  /** The filter did not run: the plugin's VM had failed (FAIL_OPEN skips the filter). */
  skipped: boolean;
  /** The VM trapped during this stream. */
  trapped: boolean;
  /** Request headers as they leave the filter (towards the upstream). */
  requestHeaders: [string, string][];
  requestBody: Uint8Array;
  /** Response headers as they leave the filter (towards the client); empty when there was no response. */
  responseHeaders: [string, string][];
  responseBody: Uint8Array;
  /** Set when the filter (or FAIL_CLOSE) answered with a local reply instead of the upstream response. */
  localReply: { code: number; details: string; body: Uint8Array; headers: [string, string][] } | null;
  /** Response flags the host itself set (NFCF: the missing-config filter answered). */
  responseFlags: string[];
  /**
   * True while the filter holds the stream (a callback stopped iteration): the rest runs when it calls
   * proxy_continue_stream or sends a local reply; `done` resolves then with this result completed.
   */
  held: boolean;
  /** Set once the stream was held: resolves when it ends. */
  done?: Promise<StreamResult>;
  /** Filter statuses as Envoy received them from each callback that ran (0 = Continue; see docs/host.md). */
  statuses: Partial<Record<"requestHeaders" | "requestBody" | "requestTrailers" | "responseHeaders" | "responseBody" | "responseTrailers", number>>;
}

export interface TrapRecord {
  worker: number | "canary";
  /** The exported function that was running, e.g. proxy_on_request_headers. */
  function: string;
  /** Envoy's message: "Function: <name> failed: <trap message>". */
  message: string;
  error: unknown;
}

export interface CalloutRecord {
  worker: number | "canary";
  cluster: string;
  headers: [string, string][];
  body: Uint8Array;
  timeoutMs: number;
  /** What the filter was handed: a response (possibly Envoy's 503/504 local reply) or a reset (zero headers). */
  outcome?: { status: number | null; body: Uint8Array };
}

/** Where a stream stands: the next filter callback (or host step) to run. */
const enum Step {
  RequestHeaders,
  RequestBody,
  RequestTrailers,
  Upstream,
  ResponseHeaders,
  ResponseBody,
  ResponseTrailers,
  End,
}

/** A stream in progress (held by the filter, or running). */
interface ActiveStream {
  vm: Vm;
  ctx: Ctx;
  s: StreamState;
  input: StreamInput;
  result: StreamResult;
  step: Step;
  /** The direction the filter holds, or null while running. */
  held: "request" | "response" | null;
  /** A local reply replaced the upstream response once its headers had reached the filter (sent directly, see replyDirect). */
  replaced: boolean;
  /** Resolves result.done once a held stream ends. */
  settle: ((r: StreamResult) => void) | null;
}

/** An ECDS update Envoy rejected: the canary (or a worker) refused to start or configure the plugin. */
export interface ConfigRejection {
  pluginConfig: Uint8Array;
  error: WasmLoadError;
}

const enc = new TextEncoder();
// One empty body for every stream without one: nothing can be written into a zero-length array, and
// bodies are replaced, never changed in place.
const NO_BODY = new Uint8Array(0);
const toBytes = (v: string | Uint8Array | undefined) => (v === undefined ? NO_BODY : typeof v === "string" ? enc.encode(v) : v);

/** Loads, checks and starts a plugin; throws WasmLoadError when Envoy would refuse it. */
export async function createSidecar(opts: SidecarOptions): Promise<Sidecar> {
  let bytes: Uint8Array | undefined;
  let module: WebAssembly.Module;
  if (opts.wasm instanceof WebAssembly.Module) {
    module = opts.wasm;
  } else {
    bytes = typeof opts.wasm === "string" ? new Uint8Array(await readFile(opts.wasm)) : opts.wasm;
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  }
  const checked = checkedModules.get(module) ?? checkModule(bytes!);
  checkedModules.set(module, checked);
  const sidecar = new Sidecar(opts, module, checked);
  sidecar.start();
  return sidecar;
}

/** Compiles a module once so many sidecars can share it (the check result is cached with it). */
export async function compileModule(wasm: Uint8Array | string): Promise<WebAssembly.Module> {
  const bytes = typeof wasm === "string" ? new Uint8Array(await readFile(wasm)) : wasm;
  const checked = checkModule(bytes);
  const module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  checkedModules.set(module, checked);
  return module;
}

const checkedModules = new WeakMap<WebAssembly.Module, CheckedModule>();

export class Sidecar {
  readonly clock: Clock;
  /** Captured log entries at or above the log level, oldest first. */
  readonly logs: LogEntry[] = [];
  /** Custom metrics by name (without Envoy's "wasmcustom." prefix), shared by all workers. */
  readonly metrics = new Map<string, Metric>();
  readonly traps: TrapRecord[] = [];
  readonly callouts: CalloutRecord[] = [];
  /** Per worker: how many times its VM was recreated after a failure (FAIL_RELOAD). */
  readonly reloads: number[];
  readonly failStrategy: FailStrategy;
  /** ECDS updates Envoy rejected (configDelivery "ecds"), oldest first. */
  readonly nacks: ConfigRejection[] = [];

  private readonly vms: Vm[] = [];
  private readonly host: VmHost;
  private readonly pending = new Set<Promise<unknown>>();
  private readonly timers = new Map<Vm, Map<number, { timer: Timer; period: number }>>();
  private readonly clusters: Map<string, CallTarget>;
  private readonly agent = new http.Agent({ keepAlive: true });
  private readonly maxLogs: number;
  private nextWorker = 0;
  private readonly nowNs = () => this.clock.nowNs();
  private closed = false;
  private closing = false;
  /** The plugin configuration in force; null while none was accepted (ECDS: the missing-config filter). */
  private pluginConfig: Uint8Array | null = null;
  /** Streams the filter holds, by stream context. */
  private readonly held = new Map<Ctx, ActiveStream>();
  /** Root contexts a reconfiguration replaced, shut down once no stream runs under them. */
  private readonly retired = new Map<Vm, Set<number>>();

  constructor(
    private readonly opts: SidecarOptions,
    private readonly module: WebAssembly.Module,
    private readonly checked: CheckedModule,
  ) {
    this.clock = opts.clock ?? new ManualClock();
    this.failStrategy = opts.failStrategy ?? "FAIL_OPEN";
    this.maxLogs = opts.maxLogEntries ?? 100_000;
    const workers = opts.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1) throw new RangeError(`workers must be a positive integer, got ${workers}`);
    this.reloads = new Array(workers).fill(0);
    this.clusters = new Map(Object.entries(opts.clusters ?? {}).map(([k, v]) => [k, parseTarget(v)]));
    const rootId = opts.rootId ?? "";
    const plugin: PluginView = {
      pluginName: opts.pluginName ?? rootId,
      rootId,
      vmId: opts.vmId ?? "",
      node: nodeMessage(opts.node ?? {}),
      legacyAttributes: opts.legacyAttributes ?? false,
      cache: new Map(),
    };
    const logLevel = LOG_LEVELS.indexOf(opts.logLevel ?? "info");
    if (logLevel < 0) throw new RangeError(`logLevel must be one of ${LOG_LEVELS.join(", ")}`);
    const sharedData = new SharedData();
    const queues = new SharedQueues();
    const clock = this.clock;
    this.host = {
      plugin,
      vmConfig: toBytes(opts.vmConfig),
      env: Object.entries(opts.env ?? {}),
      logLevel,
      nowNs: () => clock.nowNs(),
      monotonicNs: () => clock.monotonicNs(),
      log: (worker, level, message, source) => this.addLog({ level, message, worker, source }),
      failed: (vm, fn, error) => this.onVmFailed(vm, fn, error),
      setTickPeriod: (vm, rootId, period) => this.setTickPeriod(vm, rootId, period),
      metrics: {
        define: (type, name) => this.defineMetric(type, name),
        add: (name, delta) => (this.metrics.get(name)!.value += delta),
        set: (name, value) => (this.metrics.get(name)!.value = value),
        record: (name, value) => this.metrics.get(name)!.samples.push(value),
        get: (name) => this.metrics.get(name)!.value,
      },
      sharedData,
      queues,
      httpCall: (vm, cluster, headers, body, timeoutMs) => this.httpCall(vm, cluster, headers, body, timeoutMs),
      track: (p) => this.track(p),
      rootGone: (vm, rootId) => this.clearRootTimer(vm, rootId),
      streamAction: (vm, ctx, action) => this.streamAction(vm, ctx, action),
    };
  }

  /**
   * Envoy's order: a canary VM must start and configure, then one VM per worker does the same. A refusal
   * throws (static listener config) or is NACKed (ECDS).
   */
  start() {
    const config = toBytes(this.opts.pluginConfig);
    try {
      this.startWorkers(config);
    } catch (err) {
      if (!(err instanceof WasmLoadError) || this.opts.configDelivery !== "ecds") throw err;
      this.nacks.push({ pluginConfig: config, error: err });
    }
  }

  private startWorkers(config: Uint8Array) {
    this.runCanary(config);
    const vms: Vm[] = [];
    try {
      for (let w = 0; w < this.reloads.length; w++) vms.push(this.startVm(w, config));
    } catch (err) {
      for (const vm of vms) this.discard(vm);
      throw err;
    }
    this.vms.push(...vms);
    this.pluginConfig = config;
  }

  /**
   * cpp-host WasmHandleBase::canary: a clone starts and configures the plugin, then is dropped with kill()
   * (no proxy_on_done or proxy_on_delete reaches it); a refusal fails the configuration.
   */
  private runCanary(config: Uint8Array) {
    if (!(this.opts.canary ?? true)) return;
    this.discard(this.startVm("canary", config));
  }

  /** A VM dropped without shutdown callbacks: its timers and callouts end with it. */
  private discard(vm: Vm) {
    this.clearTimers(vm);
    vm.cancelCalls();
  }

  /**
   * An ECDS update of the plugin configuration reaching the running sidecar, as Envoy applies it: the same
   * configuration is the same plugin (nothing happens); otherwise the canary must start and configure it
   * (else the update is NACKed and the previous configuration stays in force), then every worker VM creates
   * a new root context for it (cpp-host getOrCreateThreadLocalPlugin on the VM the worker already has) and
   * new streams run under it, while the replaced root context is shut down (PluginHandleBase destructor:
   * startShutdown(plugin key) — proxy_on_done, proxy_on_delete or a deferred proxy_done) once no stream
   * still runs under it. Returns whether Envoy accepted (ACKed) the update.
   */
  configure(pluginConfig: string | Uint8Array): boolean {
    if (this.closing) throw new Error("sidecar is closed");
    if (this.opts.configDelivery !== "ecds") throw new Error('configure() needs configDelivery: "ecds" (a static listener is not updated)');
    const config = toBytes(pluginConfig);
    if (this.pluginConfig !== null && sameBytes(config, this.pluginConfig)) return true;
    try {
      if (this.pluginConfig === null) {
        this.startWorkers(config);
        return true;
      }
      // The canary option only spares the startup canary: an update is always tried on one first.
      this.discard(this.startVm("canary", config));
    } catch (err) {
      if (!(err instanceof WasmLoadError)) throw err;
      this.nacks.push({ pluginConfig: config, error: err });
      return false;
    }
    this.pluginConfig = config;
    for (const vm of this.vms) {
      if (vm.failed) continue;
      const old = vm.rootContextId;
      if (vm.startPlugin(config) !== "ok") continue;
      this.retire(vm, old);
    }
    return true;
  }

  private retire(vm: Vm, rootId: number) {
    if (vm.streamsUnder(rootId) === 0) {
      vm.shutdownRoot(rootId);
      return;
    }
    let set = this.retired.get(vm);
    if (!set) this.retired.set(vm, (set = new Set()));
    set.add(rootId);
  }

  private startVm(worker: number | "canary", config: Uint8Array): Vm {
    let vm: Vm;
    try {
      vm = new Vm(this.module, this.checked, this.host, worker);
    } catch (err) {
      if (err instanceof WasmLoadError) throw err;
      throw new WasmLoadError(`Failed to initialize Wasm code: ${(err as Error).message}`, "start");
    }
    vm.startVm();
    if (vm.failed) throw new WasmLoadError(`Failed to initialize Wasm code: ${vm.failure}`, "start");
    const state = vm.startPlugin(config);
    if (state === "start_failed") {
      this.discard(vm);
      throw new WasmLoadError(vm.failure ?? "Failed to start base Wasm", "start");
    }
    if (state === "configure_failed") {
      this.discard(vm);
      throw new WasmLoadError(vm.failure ?? "Failed to configure base Wasm plugin", "configure");
    }
    return vm;
  }

  /** Whether each worker's VM is healthy (false after a trap until FAIL_RELOAD replaces it). */
  get healthy(): boolean[] {
    return this.vms.map((vm) => !vm.failed);
  }

  /** Linear memory size of each worker's VM, in bytes (it only grows, as wasm memory does). */
  get linearMemoryBytes(): number[] {
    return this.vms.map((vm) => vm.memoryBytes);
  }

  /** Property reads (proxy_get_property calls) each worker's VM has made so far. */
  get propertyReads(): number[] {
    return this.vms.map((vm) => vm.propertyReads);
  }

  // ------------------------------------------------------------------------------- streams

  /**
   * Runs one HTTP stream through the filter, as Envoy's HTTP filter chain does: context creation,
   * request headers/body/trailers, response headers/body/trailers, then on_log, on_done, on_delete.
   * Bodies arrive in one piece. Synchronous unless the filter holds the stream (`held`, `done`): callouts
   * started by the filter complete later (settle()), and a held stream goes on when the filter continues it.
   */
  stream(input: StreamInput): StreamResult {
    if (this.closing) throw new Error("sidecar is closed");
    const workers = this.reloads.length;
    const worker = input.worker ?? this.nextWorker++ % workers;
    if (!(worker >= 0 && worker < workers)) throw new RangeError(`worker ${worker} out of range`);
    if (this.pluginConfig === null) return this.missingConfig(input, worker);
    let vm = this.vms[worker];
    if (vm.failed && this.failStrategy === "FAIL_RELOAD") vm = this.reload(worker);

    const now = this.clock.nowNs();
    const s: StreamState = {
      phase: Phase.Created,
      attrs: input.attributes ?? {},
      requestHeaders: new HeaderMap(input.requestHeaders),
      requestTrailers: input.requestTrailers ? new HeaderMap(input.requestTrailers) : null,
      responseHeaders: null,
      responseTrailers: null,
      bytesReceived: 0,
      bytesSent: 0,
      startNs: now,
      nowNs: this.nowNs,
      localReplyDetails: null,
      wasmState: new Map(),
      requestBody: toBytes(input.requestBody),
      responseBody: toBytes(input.responseBody),
      localReply: null,
    };
    const result: StreamResult = {
      worker,
      skipped: false,
      trapped: false,
      requestHeaders: [],
      requestBody: s.requestBody,
      responseHeaders: [],
      responseBody: s.responseBody,
      localReply: null,
      responseFlags: [],
      held: false,
      statuses: {},
    };
    if (vm.failed) {
      return this.passThrough(s, input, result, this.failStrategy === "FAIL_CLOSE");
    }

    const ctx = vm.newContext(vm.rootContextId, s);
    vm.call("proxy_on_context_create", ctx, ctx.id, vm.rootContextId);
    const a: ActiveStream = { vm, ctx, s, input, result, step: Step.RequestHeaders, held: null, replaced: false, settle: null };
    this.run(a);
    return result;
  }

  /**
   * Drives a stream from its current step until it ends or the filter holds it. A callback that answers
   * anything but Continue holds the stream (cpp-host converts StopIteration from a header callback to
   * StopAllIterationAndWatermark, context.cc convertVmCallResultToFilterHeadersStatus) until the filter
   * calls proxy_continue_stream or sends a local reply (Envoy Context::continueStream / sendLocalResponse,
   * both run after the call into the VM returns).
   */
  private run(a: ActiveStream): void {
    const { vm, ctx, s, input, result } = a;
    for (;;) {
      if (vm.failed) {
        this.done(a, this.afterTrap(vm, ctx, s, input, result));
        return;
      }
      switch (a.step++) {
        case Step.RequestHeaders: {
          const more = s.requestBody.length > 0 || s.requestTrailers !== null;
          if (this.phase(a, Phase.RequestHeaders, "proxy_on_request_headers", "requestHeaders", s.requestHeaders.size, more ? 0 : 1)) return;
          break;
        }
        case Step.RequestBody:
          if (s.requestBody.length === 0 || s.localReply) break;
          s.bytesReceived = s.requestBody.length;
          if (this.phase(a, Phase.RequestBody, "proxy_on_request_body", "requestBody", s.requestBody.length, s.requestTrailers ? 0 : 1)) return;
          break;
        case Step.RequestTrailers:
          if (!s.requestTrailers || s.localReply) break;
          if (this.phase(a, Phase.RequestTrailers, "proxy_on_request_trailers", "requestTrailers", s.requestTrailers.size)) return;
          break;
        case Step.Upstream:
          result.requestHeaders = s.requestHeaders.entries();
          result.requestBody = s.requestBody;
          if (s.localReply) this.applyLocalReply(s);
          else if (input.responseHeaders) {
            s.responseHeaders = new HeaderMap(input.responseHeaders);
            s.responseTrailers = input.responseTrailers ? new HeaderMap(input.responseTrailers) : null;
          }
          break;
        case Step.ResponseHeaders: {
          if (!s.responseHeaders) break;
          const more = s.responseBody.length > 0 || s.responseTrailers !== null;
          if (this.phase(a, Phase.ResponseHeaders, "proxy_on_response_headers", "responseHeaders", s.responseHeaders.size, more ? 0 : 1)) return;
          break;
        }
        case Step.ResponseBody:
          if (!s.responseHeaders || s.responseBody.length === 0 || a.replaced) break;
          s.bytesSent = s.responseBody.length;
          if (this.phase(a, Phase.ResponseBody, "proxy_on_response_body", "responseBody", s.responseBody.length, s.responseTrailers ? 0 : 1)) return;
          break;
        case Step.ResponseTrailers:
          if (!s.responseTrailers || a.replaced) break;
          if (this.phase(a, Phase.ResponseTrailers, "proxy_on_response_trailers", "responseTrailers", s.responseTrailers.size)) return;
          break;
        default:
          this.endStream(vm, ctx, s);
          this.done(a, vm.failed ? this.afterTrap(vm, ctx, s, input, result) : this.finish(s, result));
          return;
      }
    }
  }

  /** The stream ended: a stream that was held gets its promise resolved. */
  private done(a: ActiveStream, result: StreamResult) {
    result.held = false;
    if (a.settle === null) return;
    this.held.delete(a.ctx);
    const settle = a.settle;
    a.settle = null;
    settle(result);
  }

  /**
   * Envoy's teardown of a finished stream, ConnectionManagerImpl::doDeferredStreamDestroy: the access log
   * first (filter_manager_.log() — the Wasm filter is also an access logger: Context::log → proxy_on_log),
   * then destroyFilters() → Context::onDestroy → onDone, onDelete (source/extensions/common/wasm/context.cc).
   */
  private endStream(vm: Vm, ctx: Ctx, s: StreamState) {
    s.phase = Phase.Log;
    vm.call("proxy_on_log", ctx, ctx.id);
    vm.call("proxy_on_done", ctx, ctx.id);
    vm.call("proxy_on_delete", ctx, ctx.id);
    this.dropStream(vm, ctx);
  }

  /** Deletes a stream context; a replaced root context with no stream left under it shuts down. */
  private dropStream(vm: Vm, ctx: Ctx) {
    vm.deleteContext(ctx);
    const retired = this.retired.get(vm);
    if (retired?.has(ctx.rootId) && vm.streamsUnder(ctx.rootId) === 0) {
      retired.delete(ctx.rootId);
      vm.shutdownRoot(ctx.rootId);
    }
  }

  /**
   * Runs one filter callback and records its status as Envoy receives it (cpp-host context.cc
   * convertVmCallResultToFilter*Status: a local reply sent during the call — isNextIterationStopped — or a
   * value past the last status gives StopAllIterationAndWatermark (4) for headers, StopIterationNoBuffer (3)
   * for bodies, StopIteration (1) for trailers; StopIteration (1) from a header callback becomes 4 too).
   * Returns true when the stream is now held.
   */
  private phase(a: ActiveStream, phase: Phase, name: string, key: keyof StreamResult["statuses"], size: number, endOfStream?: number): boolean {
    const { vm, ctx, s, result } = a;
    s.phase = phase;
    vm.stopIteration = false;
    const raw = vm.call(name, ctx, ctx.id, size, endOfStream);
    if (raw === undefined) return false;
    const value = raw >>> 0;
    const stopped = vm.stopIteration;
    let status: number;
    if (key === "requestHeaders" || key === "responseHeaders") {
      status = stopped || value > 4 || value === 1 ? 4 : value;
      if (status === 2) status = 0; // ContinueAndEndStream: the stream goes on (the rest of the body is not modelled)
    } else if (key === "requestBody" || key === "responseBody") status = stopped || value > 3 ? 3 : value;
    else status = stopped || value > 1 ? 1 : value;
    result.statuses[key] = status;
    // A reply sent from the response headers callback reaches the client directly (see replyDirect).
    if (s.localReply && phase === Phase.ResponseHeaders && !a.replaced) this.replyDirect(a);
    if (status === 0 || s.localReply) return false;
    this.hold(a, phase <= Phase.RequestTrailers ? "request" : "response");
    return true;
  }

  private hold(a: ActiveStream, direction: "request" | "response") {
    a.held = direction;
    this.held.set(a.ctx, a);
    a.result.held = true;
    a.result.done ??= new Promise((resolve) => (a.settle = resolve));
  }

  /**
   * proxy_continue_stream (0.2.x) / proxy_continue_request|response (0.1.0) and proxy_send_local_response
   * on a held stream, applied once the call into the VM returned. Continuing a direction that is not held
   * does nothing, as continueDecoding/continueEncoding on a filter that did not stop.
   */
  private streamAction(vm: Vm, ctx: Ctx, action: "request" | "response" | "local-reply") {
    const a = this.held.get(ctx);
    if (!a) return;
    vm.defer(() => {
      if (a.held === null) return;
      if (action === "local-reply") {
        if (a.held === "response") this.replyDirect(a);
      } else if (action !== a.held) return;
      a.held = null;
      a.result.held = false;
      this.run(a);
    });
  }

  /**
   * A local reply once the response headers started through the filters but before they reached the
   * client replaces the response without re-entering the filter chain: Envoy FilterManager::sendLocalReply
   * (source/common/http/filter_manager.cc) aborts the encoder chain and calls sendDirectLocalReply, so the
   * filter sees no more of the upstream response.
   */
  private replyDirect(a: ActiveStream) {
    this.applyLocalReply(a.s);
    a.replaced = true;
  }

  private finish(s: StreamState, result: StreamResult): StreamResult {
    result.responseHeaders = s.responseHeaders?.entries() ?? [];
    result.responseBody = s.responseBody;
    if (s.localReply) {
      const { code, details, body, headers } = s.localReply;
      result.localReply = { code, details, body, headers };
    }
    return result;
  }

  /** The response a local reply produces, as Envoy's sendLocalReply builds it. */
  private applyLocalReply(s: StreamState) {
    const lr = s.localReply!;
    const headers: [string, string][] = [[":status", String(lr.code)]];
    if (lr.body.length > 0) headers.push(["content-length", String(lr.body.length)], ["content-type", "text/plain"]);
    headers.push(...lr.headers);
    s.responseHeaders = new HeaderMap(headers);
    s.responseTrailers = null;
    s.responseBody = lr.body;
    s.localReplyDetails = lr.details;
  }

  /** A stream that meets a failed VM: FAIL_OPEN passes it untouched, FAIL_CLOSE answers 503. */
  private passThrough(s: StreamState, input: StreamInput, result: StreamResult, failClose: boolean): StreamResult {
    result.skipped = true;
    result.requestHeaders = s.requestHeaders.entries();
    if (failClose) {
      s.localReply = { code: 503, details: "wasm_fail_stream", body: new Uint8Array(0), headers: [], grpcStatus: 14 };
      this.applyLocalReply(s);
    } else if (input.responseHeaders) {
      s.responseHeaders = new HeaderMap(input.responseHeaders);
    }
    return this.finish(s, result);
  }

  /** The rest of a stream whose VM trapped: the filter is skipped from here on (CHECK_FAIL_HTTP). */
  private afterTrap(vm: Vm, ctx: Ctx, s: StreamState, input: StreamInput, result: StreamResult): StreamResult {
    this.dropStream(vm, ctx);
    result.trapped = true;
    result.requestHeaders = s.requestHeaders.entries();
    if (this.failStrategy === "FAIL_CLOSE") {
      s.localReply = { code: 503, details: "wasm_fail_stream", body: new Uint8Array(0), headers: [], grpcStatus: 14 };
      this.applyLocalReply(s);
    } else if (!s.responseHeaders && input.responseHeaders && !s.localReply) {
      s.responseHeaders = new HeaderMap(input.responseHeaders);
    }
    return this.finish(s, result);
  }

  /**
   * Envoy's MissingConfigFilter (source/common/http/filter_chain_helper.h, added by
   * FilterChainUtility::createFilterChainForFactories when an ECDS filter has no configuration): it sets
   * NoFilterConfigFound and sends a 500 local reply with empty details from decodeHeaders.
   */
  private missingConfig(input: StreamInput, worker: number): StreamResult {
    const headers = new HeaderMap(input.requestHeaders);
    return {
      worker,
      skipped: true,
      trapped: false,
      requestHeaders: headers.entries(),
      requestBody: toBytes(input.requestBody),
      responseHeaders: [[":status", "500"]],
      responseBody: NO_BODY,
      localReply: { code: 500, details: "", body: NO_BODY, headers: [] },
      responseFlags: ["NFCF"],
      held: false,
      statuses: {},
    };
  }

  private reload(worker: number): Vm {
    const old = this.vms[worker];
    this.discard(old);
    const vm = this.startVm(worker, this.pluginConfig!);
    this.vms[worker] = vm;
    this.reloads[worker]++;
    return vm;
  }

  private onVmFailed(vm: Vm, fn: string, error: unknown) {
    const message = vm.failure ?? `Function: ${fn} failed`;
    this.traps.push({ worker: vm.worker, function: fn, message, error });
    this.addLog({ level: "critical", message, worker: "host", source: "host" });
    this.clearTimers(vm);
    // Streams the filter held on that VM go on without it, as the stream that trapped does.
    for (const a of [...this.held.values()]) {
      if (a.vm !== vm) continue;
      a.held = null;
      this.run(a);
    }
  }

  // ------------------------------------------------------------------------------- ticks

  private setTickPeriod(vm: Vm, rootId: number, period: number) {
    let perVm = this.timers.get(vm);
    if (!perVm) this.timers.set(vm, (perVm = new Map()));
    perVm.get(rootId)?.timer.cancel();
    if (period === 0) {
      perVm.delete(rootId);
      return;
    }
    const arm = () => {
      const entry = {
        period,
        timer: this.clock.setTimer(period, () => {
          if (vm.failed || this.closed) return;
          vm.tick(rootId);
          // The handler re-arms with the current period, unless the tick changed or cleared it.
          if (perVm!.get(rootId) === entry && !vm.failed && !this.closed) arm();
        }),
      };
      perVm!.set(rootId, entry);
    };
    arm();
  }

  private clearRootTimer(vm: Vm, rootId: number) {
    const perVm = this.timers.get(vm);
    perVm?.get(rootId)?.timer.cancel();
    perVm?.delete(rootId);
  }

  private clearTimers(vm: Vm) {
    const perVm = this.timers.get(vm);
    if (!perVm) return;
    for (const { timer } of perVm.values()) timer.cancel();
    this.timers.delete(vm);
  }

  // ------------------------------------------------------------------------------- callouts

  private httpCall(vm: Vm, cluster: string, headers: [string, string][], body: Uint8Array, timeoutMs: number): R | PendingCall {
    const target = this.clusters.get(cluster);
    if (!target) return R.BadArgument;
    const has = (k: string) => headers.some(([hk]) => hk === k);
    if (!has(":path") || !has(":method") || !has(":authority")) return R.BadArgument;
    const record: CalloutRecord = { worker: vm.worker, cluster, headers, body, timeoutMs };
    this.callouts.push(record);
    const call = sendHttpCall(target, headers, body, timeoutMs, this.clock, this.agent);
    return {
      done: call.done.then((outcome) => {
        record.outcome = outcome.kind === "reset" ? { status: null, body: new Uint8Array(0) } : { status: Number(outcome.headers[0][1]), body: outcome.body };
        return outcome;
      }),
      cancel: call.cancel,
    };
  }

  private track(p: Promise<unknown>) {
    const tracked = p.catch((err) => this.addLog({ level: "error", message: `host: ${(err as Error).message}`, worker: "host", source: "host" }));
    this.pending.add(tracked);
    tracked.finally(() => this.pending.delete(tracked));
  }

  /** Resolves once every outstanding callout and queue notification has been delivered to the module. */
  async settle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  // ------------------------------------------------------------------------------- logs and metrics

  private addLog(entry: LogEntry) {
    this.logs.push(entry);
    // Trim a tenth at a time: dropping one entry per log line would copy the whole array each time.
    if (this.logs.length > this.maxLogs) this.logs.splice(0, this.logs.length - Math.floor(this.maxLogs * 0.9));
    this.opts.onLog?.(entry);
  }

  /** Messages logged at the given level (or at it and above with `andAbove`). */
  logMessages(level: LogLevel, andAbove = false): string[] {
    const min = LOG_LEVELS.indexOf(level);
    return this.logs.filter((e) => (andAbove ? LOG_LEVELS.indexOf(e.level) >= min : e.level === level)).map((e) => e.message);
  }

  private defineMetric(type: MetricType, name: string) {
    if (!this.metrics.has(name)) this.metrics.set(name, { name, type, value: 0n, samples: [] });
  }

  // ------------------------------------------------------------------------------- shutdown

  /**
   * Shuts the plugin down as Envoy does when its Wasm handles go: every root context gets proxy_on_done
   * and, when it answers true, proxy_on_delete (cpp-host WasmBase::startShutdown). A root that answers false
   * keeps its timers and callouts until it calls proxy_done (WasmBase::done, then onDelete after that call
   * returns); Envoy holds server exit for it (the ShutdownExit lifecycle callback Wasm::initializeLifecycle
   * registers completes only in ~Wasm). close() waits for that at most shutdownGraceMs of the sidecar's
   * clock; a ManualClock is moved forward while it waits (nothing else would move it), so ticks fire as
   * they would. Then everything left is cancelled.
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    // Streams still held end with the server (reset: no more callbacks but the teardown ones).
    for (const a of [...this.held.values()]) {
      a.held = null;
      a.step = Step.End;
      this.run(a);
    }
    for (const vm of this.vms) vm.shutdown();
    await this.awaitDeferredShutdown();
    for (const vm of this.vms) this.discard(vm);
    this.closed = true;
    await this.settle();
    this.agent.destroy();
  }

  /** Roots whose proxy_on_done deferred, still waiting for proxy_done. */
  get shutdownPending(): boolean {
    return this.vms.some((vm) => !vm.failed && vm.pendingShutdown);
  }

  private async awaitDeferredShutdown() {
    if (!this.shutdownPending) return;
    const grace = this.opts.shutdownGraceMs ?? 30_000;
    const clock = this.clock;
    if (clock instanceof ManualClock) {
      const deadline = clock.nowMs() + grace;
      for (;;) {
        await this.settle();
        if (!this.shutdownPending || clock.nowMs() >= deadline) return;
        clock.advance(Math.min(SHUTDOWN_STEP_MS, deadline - clock.nowMs()));
      }
    }
    let expired = false;
    const timer = clock.setTimer(grace, () => (expired = true));
    try {
      for (;;) {
        await this.settle();
        if (!this.shutdownPending || expired) return;
        await new Promise((r) => setTimeout(r, SHUTDOWN_STEP_MS));
      }
    } finally {
      timer.cancel();
    }
  }
}

/** Clock step while close() waits for deferred root contexts. */
const SHUTDOWN_STEP_MS = 10;

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
