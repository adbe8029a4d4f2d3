// One instance of the module, as one Envoy worker thread holds it: the host functions (the import
// table of abi.json, implemented as proxy-wasm-cpp-host and Envoy's Context do), the contexts (a
// root context for the plugin, one context per stream), and the calls into the module with trap
// capture. A trap marks the VM failed, as V8 in Envoy does: no further calls enter it.
import { hostFunctions, type CheckedModule } from "./abi.ts";
import { HeaderMap } from "./headers.ts";
import { getProperty, parsePath, Phase, type ParsedPath, type PluginView, type StreamView } from "./properties.ts";
import { decodePairs, type Encoded } from "./values.ts";
import type { LogLevel, MetricType, QueueOwner } from "./shared.ts";
import { LOG_LEVELS, METRIC_TYPES } from "./shared.ts";
import type { CallOutcome } from "./http-call.ts";

export interface PendingCall {
  done: Promise<CallOutcome>;
  cancel(): void;
}

/** WasmResult codes of the proxy-wasm ABI. */
export const enum R {
  Ok = 0,
  NotFound = 1,
  BadArgument = 2,
  SerializationFailure = 3,
  ParseFailure = 4,
  InvalidMemoryAccess = 6,
  Empty = 7,
  CasMismatch = 8,
  InternalFailure = 10,
  Unimplemented = 12,
}

/** Buffer types of the ABI. */
const enum Buf {
  HttpRequestBody = 0,
  HttpResponseBody = 1,
  NetworkDownstreamData = 2,
  NetworkUpstreamData = 3,
  HttpCallResponseBody = 4,
  GrpcReceiveBuffer = 5,
  VmConfiguration = 6,
  PluginConfiguration = 7,
  CallData = 8,
}

/** Everything a VM needs from its sidecar. */
export interface VmHost {
  readonly plugin: PluginView;
  readonly vmConfig: Uint8Array;
  readonly env: [string, string][];
  readonly logLevel: number;
  nowNs(): bigint;
  monotonicNs(): bigint;
  log(worker: number | "canary", level: LogLevel, message: string, source: "proxy_log" | "stdout" | "stderr"): void;
  /** Reports a trap or other VM failure; the VM has already marked itself failed. */
  failed(vm: Vm, fn: string, error: unknown): void;
  setTickPeriod(vm: Vm, rootId: number, periodMs: number): void;
  metrics: {
    define(type: MetricType, name: string): void;
    add(name: string, delta: bigint): void;
    set(name: string, value: bigint): void;
    record(name: string, value: bigint): void;
    get(name: string): bigint;
  };
  sharedData: { get(vmId: string, key: string): { value: Uint8Array; cas: number } | undefined; set(vmId: string, key: string, value: Uint8Array, cas: number): 0 | 8 };
  queues: {
    register(vmId: string, name: string, owner: QueueOwner): number;
    resolve(vmId: string, name: string): number | undefined;
    dequeue(token: number): Uint8Array | 1 | 7;
    enqueue(token: number, data: Uint8Array): 0 | 1;
  };
  /**
   * Starts a callout. Returns BadArgument, as Envoy does, for an unknown cluster or when :path,
   * :method or :authority is missing; else the pending outcome.
   */
  httpCall(vm: Vm, cluster: string, headers: [string, string][], body: Uint8Array, timeoutMs: number): R | PendingCall;
  /** Tracks async work (callout responses, queue notifications) so settle() can await it. */
  track(p: Promise<unknown>): void;
  /** A root context was deleted (its tick timer goes with it). */
  rootGone(vm: Vm, rootId: number): void;
  /** The filter continued a stream direction or sent a local reply (for a stream it may be holding). */
  streamAction(vm: Vm, ctx: Ctx, action: "request" | "response" | "local-reply"): void;
}

/** A live HTTP stream as the host functions see it. */
export interface StreamState extends StreamView {
  requestBody: Uint8Array;
  responseBody: Uint8Array;
  localReply: { code: number; details: string; body: Uint8Array; headers: [string, string][]; grpcStatus: number } | null;
}

export interface Ctx {
  id: number;
  rootId: number;
  stream: StreamState | null;
  /** Set on the root context while proxy_on_http_call_response runs. */
  callResponse: Extract<CallOutcome, { kind: "response" }> | null;
  status: { code: number; message: string };
  /** Root contexts: proxy_on_done returned false and the plugin has not called proxy_done yet. */
  pendingDone?: boolean;
}

const WASI_ENOSYS = 52;
const WASI_EBADF = 8;
const WASI_EFAULT = 21;
const WASI_ENOTSUP = 58;
const WASI_EINVAL = 28;
const WASI_NOENT = 44;
const WASI_ENOTDIR = 20;

/** Host functions the module may call while Envoy runs _initialize/_start (startVm). */
const START_ALLOWED = new Set([
  "env.emscripten_notify_memory_growth",
  "env.proxy_log",
  ...[
    "fd_write",
    "args_sizes_get",
    "args_get",
    "environ_sizes_get",
    "environ_get",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "poll_oneoff",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_advise",
    "fd_allocate",
    "fd_datasync",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "fd_pwrite",
    "fd_readdir",
    "fd_renumber",
    "fd_sync",
    "fd_tell",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
  ].flatMap((f) => [`wasi_unstable.${f}`, `wasi_snapshot_preview1.${f}`]),
]);
/** Host functions allowed while the host runs the module's allocator (allocMemory). */
const MALLOC_ALLOWED = new Set([
  "env.proxy_log",
  "wasi_unstable.fd_write",
  "wasi_snapshot_preview1.fd_write",
  "wasi_unstable.clock_time_get",
  "wasi_snapshot_preview1.clock_time_get",
  "wasi_unstable.poll_oneoff",
  "wasi_snapshot_preview1.poll_oneoff",
]);

class RestrictedCall extends Error {
  constructor() {
    super("restricted_callback");
  }
}

/** A property path's bytes (also as little-endian 32-bit words, for comparing) and its parsed form. */
interface PathEntry {
  bytes: Uint8Array;
  words: Int32Array;
  parsed: ParsedPath;
}

const dec = new TextDecoder();
const te = new TextEncoder();
const EMPTY = new Uint8Array(0);

export class Vm implements QueueOwner {
  readonly instance: WebAssembly.Instance;
  failed = false;
  failure: string | null = null;
  /** Root context id of the plugin once started. */
  rootContextId = 0;

  private readonly exports: Record<string, (...args: any[]) => any>;
  /** Exported callbacks Envoy would call, resolved once (absent ones are not called). */
  private readonly fns = new Map<string, (...args: any[]) => any>();
  private readonly memory: WebAssembly.Memory;
  /** The module's allocator export (malloc or proxy_on_memory_allocate), called for every value handed over. */
  private readonly malloc: (size: number) => number;

  /** proxy_get_property calls the module made (answered or not): test instrumentation (Envoy has no such count), a filter's read budget. */
  propertyReads = 0;

  /** Bytes of the module's linear memory now: what Envoy accounts for the plugin's heap. */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }
  private buf: ArrayBuffer;
  private u8: Uint8Array;
  private dv: DataView;
  private readonly contexts = new Map<number, Ctx>();
  private nextContextId = 1;
  private nextCallId = 0;
  private readonly metricNames = new Map<number, string>();
  /** Property paths seen, by a hash of their bytes and by the address they were last read from. */
  private readonly paths = new Map<number, PathEntry>();
  private readonly pathsByPtr = new Map<number, PathEntry>();
  private readonly metricIds = { counter: 0, gauge: 1, histogram: 2 };
  /** Callouts in flight by token, with the root context that made each (cancelled when that root goes). */
  private readonly calls = new Map<number, { cancel: () => void; rootId: number }>();
  /** Work proxy-wasm-cpp-host defers until the outermost call into the VM returns (addAfterVmCallAction). */
  private afterCall: (() => void)[] = [];
  private depth = 0;
  /** Context stack: the context each active call into the VM runs for (Envoy's current_context_). */
  private current: Ctx | null = null;
  private effective = 0;
  private restricted: Set<string> | null = null;
  /** Set by proxy_send_local_response: the callback's status is overridden to stop iteration. */
  stopIteration = false;
  /** The plugin configuration being applied: readable only while a root context is created and configured, as Envoy's temp_plugin_. */
  private configuring: Uint8Array | null = null;

  constructor(
    module: WebAssembly.Module,
    private readonly checked: CheckedModule,
    private readonly host: VmHost,
    readonly worker: number | "canary",
  ) {
    const imports: Record<string, Record<string, (...args: any[]) => any>> = {};
    const impls = this.hostImpls();
    for (const key of hostFunctions(checked.abiVersion).keys()) {
      const [mod, name] = key.split(".");
      const impl = impls[mod === "env" ? name : `wasi.${name}`];
      (imports[mod] ??= {})[name] = this.guard(key, impl);
    }
    this.instance = new WebAssembly.Instance(module, imports as WebAssembly.Imports);
    this.exports = this.instance.exports as Record<string, (...args: any[]) => any>;
    for (const name of checked.callbacks) this.fns.set(name, this.exports[name]);
    this.memory = this.instance.exports.memory as WebAssembly.Memory;
    this.malloc = this.exports[checked.malloc];
    this.buf = this.memory.buffer;
    this.u8 = new Uint8Array(this.buf);
    this.dv = new DataView(this.buf);
  }

  // ---------------------------------------------------------------- calls into the module

  private guard(key: string, impl: ((...args: any[]) => any) | undefined) {
    if (!impl) throw new Error(`host function ${key} has no implementation`);
    // Fixed parameters (the most any import of the ABI table takes) instead of rest/spread, which
    // allocated an array on every host call; the implementations take fixed parameters, so the extra
    // undefined arguments are ignored.
    return (a: any, b: any, c: any, d: any, e: any, f: any, g: any, h: any, i: any, j: any, k: any, l: any) => {
      if (this.restricted !== null && !this.restricted.has(key)) throw new RestrictedCall();
      return impl(a, b, c, d, e, f, g, h, i, j, k, l);
    };
  }

  has(name: string): boolean {
    return this.checked.callbacks.has(name);
  }

  /**
   * Calls an exported callback for a context, as proxy-wasm-cpp-host does (SaveRestoreContext); a
   * trap fails the VM and returns undefined.
   */
  call(name: string, ctx: Ctx | null, a?: number, b?: number, c?: number, d?: number, e?: number): any {
    const fn = this.fns.get(name);
    if (fn === undefined) return undefined;
    return this.invoke(name, fn, ctx, a, b, c, d, e);
  }

  /** call() with the export already resolved (the allocator, on every value handed over). */
  private invoke(name: string, fn: (...args: any[]) => any, ctx: Ctx | null, a?: number, b?: number, c?: number, d?: number, e?: number): any {
    if (this.failed) return undefined;
    const saved = this.current;
    const savedEffective = this.effective;
    this.current = ctx;
    this.effective = 0;
    this.depth++;
    try {
      return fn(a, b, c, d, e);
    } catch (err) {
      this.fail(name, err);
      return undefined;
    } finally {
      this.current = saved;
      this.effective = savedEffective;
      if (--this.depth === 0 && this.afterCall.length > 0) this.runAfterCall();
    }
  }

  /** cpp-host DeferAfterCallActions: actions queued during a call run once the outermost call returned. */
  private runAfterCall() {
    while (this.afterCall.length > 0) this.afterCall.shift()!();
  }

  /** Queues work to run after the current call into the VM returns (at once when none is running). */
  defer(action: () => void) {
    this.afterCall.push(action);
    if (this.depth === 0) this.runAfterCall();
  }

  fail(fn: string, err: unknown) {
    if (this.failed) return;
    this.failed = true;
    const reason = err instanceof RestrictedCall ? "restricted_callback" : ((err as Error)?.message ?? String(err));
    this.failure = `Function: ${fn} failed: ${reason}`;
    for (const c of this.calls.values()) c.cancel();
    this.calls.clear();
    this.host.failed(this, fn, err);
  }

  /** Runs _initialize (+ main/__main_void) or _start with the restricted callback set of startVm. */
  startVm(): void {
    this.restricted = START_ALLOWED;
    try {
      if (this.has("_initialize")) {
        this.call("_initialize", null);
        if (this.has("main")) this.call("main", null, 0, 0);
        else if (this.has("__main_void")) this.call("__main_void", null);
      } else if (this.has("_start")) {
        this.call("_start", null);
      }
    } finally {
      this.restricted = null;
    }
  }

  /**
   * Creates a root context for a plugin configuration (cpp-host WasmBase::start, then configure):
   * on_context_create, proxy_on_vm_start, proxy_on_configure. On success it becomes the root new streams
   * run under; a VM holds one root per plugin configuration it has been given (a reconfiguration adds one).
   */
  startPlugin(pluginConfig: Uint8Array): "ok" | "start_failed" | "configure_failed" {
    const root = this.newContext(0, null);
    const state = this.createRoot(root, pluginConfig);
    if (state === "ok") this.rootContextId = root.id;
    else this.dropRoot(root);
    return state;
  }

  private createRoot(root: Ctx, pluginConfig: Uint8Array): "ok" | "start_failed" | "configure_failed" {
    try {
      this.configuring = pluginConfig;
      this.call("proxy_on_context_create", root, root.id, 0);
      this.configuring = null;
      if (this.has("proxy_on_vm_start")) {
        const ok = this.call("proxy_on_vm_start", root, root.id, this.host.vmConfig.length);
        if (this.failed || !ok) return "start_failed";
      }
      if (this.failed) return "start_failed";
      if (this.has("proxy_on_configure")) {
        this.configuring = pluginConfig;
        const ok = this.call("proxy_on_configure", root, root.id, pluginConfig.length);
        if (this.failed || !ok) return "configure_failed";
      }
    } finally {
      this.configuring = null;
    }
    return this.failed ? "configure_failed" : "ok";
  }

  newContext(rootId: number, stream: StreamState | null): Ctx {
    const ctx: Ctx = {
      id: this.nextContextId++,
      rootId,
      stream,
      callResponse: null,
      status: { code: 0, message: "" },
    };
    this.contexts.set(ctx.id, ctx);
    return ctx;
  }

  deleteContext(ctx: Ctx) {
    this.contexts.delete(ctx.id);
  }

  /** Stream contexts open under a root context. */
  streamsUnder(rootId: number): number {
    let n = 0;
    for (const c of this.contexts.values()) if (c.rootId === rootId) n++;
    return n;
  }

  tick(rootId: number) {
    const root = this.contexts.get(rootId);
    if (root && !this.failed) this.call("proxy_on_tick", root, rootId);
  }

  /** QueueOwner: Envoy posts onQueueReady to the registering VM's dispatcher. */
  notify(token: number) {
    this.host.track(
      Promise.resolve().then(() => {
        const root = this.contexts.get(this.rootContextId);
        if (root && !this.failed) this.call("proxy_on_queue_ready", root, root.id, token);
      }),
    );
  }

  /** Delivers a callout result to the root context that issued it. */
  deliverCall(rootId: number, token: number, outcome: CallOutcome) {
    if (!this.calls.delete(token) || this.failed) return;
    const root = this.contexts.get(rootId);
    if (!root) return;
    if (outcome.kind === "reset") {
      root.status = { code: 11, message: "reset" };
      this.call("proxy_on_http_call_response", root, root.id, token, 0, 0, 0);
      return;
    }
    root.callResponse = outcome;
    try {
      this.call("proxy_on_http_call_response", root, root.id, token, outcome.headers.length, outcome.body.length, outcome.trailers.length);
    } finally {
      root.callResponse = null;
    }
  }

  cancelCalls() {
    for (const c of this.calls.values()) c.cancel();
    this.calls.clear();
  }

  /**
   * Shuts one root context down as cpp-host's WasmBase::startShutdown(plugin_key) does: proxy_on_done; when
   * it returns true, proxy_on_delete at once; when false, the root stays (its timers and callouts keep
   * running) until the plugin calls proxy_done. Returns whether the root is gone.
   */
  shutdownRoot(rootId: number): boolean {
    const root = this.contexts.get(rootId);
    if (!root) return true;
    if (this.failed) {
      this.dropRoot(root);
      return true;
    }
    const done = this.call("proxy_on_done", root, root.id);
    if (done === 0 && !this.failed) {
      root.pendingDone = true;
      return false;
    }
    this.deleteRoot(root);
    return true;
  }

  /** startShutdown() for every root context of the VM (Envoy's WasmHandle going away: drain, shutdown). */
  shutdown(): void {
    for (const ctx of [...this.contexts.values()]) if (ctx.rootId === 0 && !ctx.pendingDone) this.shutdownRoot(ctx.id);
  }

  /** Root contexts waiting for proxy_done. */
  get pendingShutdown(): boolean {
    for (const ctx of this.contexts.values()) if (ctx.pendingDone) return true;
    return false;
  }

  /** onDelete, then the root context's destructor: its callouts are cancelled (Envoy ~Context). */
  private deleteRoot(root: Ctx) {
    if (!this.failed) this.call("proxy_on_delete", root, root.id);
    this.dropRoot(root);
  }

  private dropRoot(root: Ctx) {
    root.pendingDone = false;
    for (const [token, c] of this.calls) {
      if (c.rootId !== root.id) continue;
      c.cancel();
      this.calls.delete(token);
    }
    this.contexts.delete(root.id);
    this.host.rootGone(this, root.id);
  }

  // ---------------------------------------------------------------- memory helpers

  private view() {
    // memory.grow detaches the old ArrayBuffer (its length drops to 0); reading memory.buffer on every
    // access would cost more than the rest of a host call.
    if (this.u8.byteLength === 0) {
      this.buf = this.memory.buffer;
      this.u8 = new Uint8Array(this.buf);
      this.dv = new DataView(this.buf);
    }
  }

  private inBounds(ptr: number, size: number): boolean {
    this.view();
    return ptr + size <= this.u8.length;
  }

  /** The module's memory at [ptr, ptr+size), or null when out of bounds (InvalidMemoryAccess). */
  private bytesAt(ptr: number, size: number): Uint8Array | null {
    ptr >>>= 0;
    size >>>= 0;
    if (!this.inBounds(ptr, size)) return null;
    return this.u8.subarray(ptr, ptr + size);
  }

  /**
   * Property paths repeat on every stream: they are recognised by their bytes and reuse one parsed path,
   * so a read builds no string. A module keeps its paths at fixed addresses, so the address finds the
   * candidate and a word-wise compare confirms it; paths built anew per call are found by a hash of
   * their bytes instead.
   */
  private pathAt(ptr: number, size: number): ParsedPath | null {
    ptr >>>= 0;
    size >>>= 0;
    if (!this.inBounds(ptr, size)) return null;
    const atPtr = this.pathsByPtr.get(ptr);
    if (atPtr !== undefined && this.holds(atPtr, ptr, size)) return atPtr.parsed;
    const u8 = this.u8;
    let h = 0x811c9dc5;
    for (let i = ptr; i < ptr + size; i++) h = Math.imul(h ^ u8[i], 0x01000193);
    let entry = this.paths.get(h);
    if (entry === undefined || !this.holds(entry, ptr, size)) {
      const bytes = u8.slice(ptr, ptr + size);
      const words = new Int32Array(size >>> 2);
      new Uint8Array(words.buffer).set(bytes.subarray(0, words.length * 4));
      entry = { bytes, words, parsed: parsePath(this.stringAt(ptr, size)!) };
      if (this.paths.size < 4096) this.paths.set(h, entry);
    }
    if (this.pathsByPtr.size >= 4096) this.pathsByPtr.clear();
    this.pathsByPtr.set(ptr, entry);
    return entry.parsed;
  }

  /** Whether memory at [ptr, ptr+size) (in bounds) holds exactly the path's bytes. */
  private holds(entry: PathEntry, ptr: number, size: number): boolean {
    if (entry.bytes.length !== size) return false;
    const { words, bytes } = entry;
    const dv = this.dv;
    for (let i = 0; i < words.length; i++) if (dv.getInt32(ptr + 4 * i, true) !== words[i]) return false;
    const u8 = this.u8;
    for (let i = words.length * 4; i < size; i++) if (u8[ptr + i] !== bytes[i]) return false;
    return true;
  }

  /** Short ASCII strings (header names, property paths) are built directly; TextDecoder costs more per call. */
  private stringAt(ptr: number, size: number): string | null {
    ptr >>>= 0;
    size >>>= 0;
    if (!this.inBounds(ptr, size)) return null;
    const u8 = this.u8;
    if (size <= 64) {
      let s = "";
      for (let i = ptr; i < ptr + size; i++) {
        const c = u8[i];
        if (c >= 0x80) return dec.decode(u8.subarray(ptr, ptr + size));
        s += String.fromCharCode(c);
      }
      return s;
    }
    return dec.decode(u8.subarray(ptr, ptr + size));
  }

  private setU32(ptr: number, v: number): boolean {
    ptr >>>= 0;
    if (!this.inBounds(ptr, 4)) return false;
    this.dv.setUint32(ptr, v >>> 0, true);
    return true;
  }

  private setU64(ptr: number, v: bigint): boolean {
    ptr >>>= 0;
    if (!this.inBounds(ptr, 8)) return false;
    this.dv.setBigUint64(ptr, BigInt.asUintN(64, v), true);
    return true;
  }

  /**
   * allocMemory: calls the module's allocator with the restricted callback set and no current context;
   * a trap fails the VM (as call() does) and gives 0.
   */
  private alloc(size: number): number {
    const saved = this.restricted;
    this.restricted = MALLOC_ALLOWED;
    let ptr = 0;
    try {
      ptr = this.invoke(this.checked.malloc, this.malloc, null, size) >>> 0;
    } finally {
      this.restricted = saved;
    }
    if (!ptr || !this.inBounds(ptr, size)) return 0;
    return ptr;
  }

  /**
   * copyToPointerSize: allocate in the VM, copy, and write the pointer and size. Short ASCII strings
   * (most property and header values) are written byte by byte: measuring and encoding them with
   * Buffer.byteLength and TextEncoder cost more than the rest of a read.
   */
  private copyOut(data: Encoded, ptrPtr: number, sizePtr: number): R {
    let size: number;
    let ptr = 0;
    if (typeof data === "string") {
      const ascii = isShortAscii(data);
      size = ascii ? data.length : Buffer.byteLength(data);
      if (size > 0) {
        ptr = this.alloc(size);
        if (!ptr) return R.InvalidMemoryAccess;
        const u8 = this.u8;
        if (ascii) for (let i = 0; i < size; i++) u8[ptr + i] = data.charCodeAt(i);
        else te.encodeInto(data, u8.subarray(ptr, ptr + size));
      }
    } else {
      size = data.length;
      if (size > 0) {
        ptr = this.alloc(size);
        if (!ptr) return R.InvalidMemoryAccess;
        this.u8.set(data, ptr);
      }
    }
    if (!this.setU32(ptrPtr, ptr) || !this.setU32(sizePtr, size)) return R.InvalidMemoryAccess;
    return R.Ok;
  }

  // ---------------------------------------------------------------- context helpers

  /** contextOrEffectiveContext(). */
  private ctx(): Ctx | null {
    if (this.effective !== 0) {
      const e = this.contexts.get(this.effective);
      if (e) return e;
    }
    return this.current;
  }

  private rootOf(c: Ctx | null): Ctx | null {
    if (!c) return this.contexts.get(this.rootContextId) ?? null;
    return c.rootId === 0 ? c : (this.contexts.get(c.rootId) ?? null);
  }

  /** Envoy's getConstMap: header maps readable by the current context. */
  private constMap(type: number): HeaderMap | null {
    const c = this.ctx();
    const s = c?.stream;
    switch (type) {
      case 0:
        return s ? s.requestHeaders : null;
      case 1:
        return s?.requestTrailers ?? null;
      case 2:
        return s && s.phase >= Phase.ResponseHeaders ? s.responseHeaders : null;
      case 3:
        return s && s.phase >= Phase.ResponseHeaders ? s.responseTrailers : null;
      case 6: {
        const resp = this.rootOf(c)?.callResponse;
        return resp ? new HeaderMap(resp.headers) : null;
      }
      case 7: {
        const resp = this.rootOf(c)?.callResponse;
        return resp && resp.trailers.length > 0 ? new HeaderMap(resp.trailers) : null;
      }
    }
    return null;
  }

  /** Envoy's getMap: only the stream's own maps are mutable. */
  private mutableMap(type: number): HeaderMap | null {
    return type <= 3 ? this.constMap(type) : null;
  }

  private bodyOf(s: StreamState, type: number): Uint8Array {
    if (type === Buf.HttpRequestBody) return s.phase >= Phase.RequestBody ? s.requestBody : EMPTY;
    return s.phase >= Phase.ResponseBody ? s.responseBody : EMPTY;
  }

  /** Envoy's getBuffer; null is NotFound. */
  private buffer(type: number): Uint8Array | null {
    const c = this.ctx();
    switch (type) {
      case Buf.VmConfiguration:
        return this.host.vmConfig;
      case Buf.PluginConfiguration:
        return this.configuring;
      case Buf.HttpCallResponseBody: {
        const resp = this.rootOf(c)?.callResponse;
        return resp ? resp.body : null;
      }
      case Buf.HttpRequestBody:
      case Buf.HttpResponseBody:
        return c?.stream ? this.bodyOf(c.stream, type) : EMPTY;
      default:
        return EMPTY;
    }
  }

  private metricName(id: number): string | undefined {
    return this.metricNames.get(id);
  }

  // ---------------------------------------------------------------- host functions

  private hostImpls(): Record<string, (...a: any[]) => any> {
    const host = this.host;
    const plugin = host.plugin;
    const vmId = plugin.vmId;
    const fdWrite = (fd: number, iovs: number, iovsLen: number, nwrittenPtr: number): number => {
      if (fd !== 1 && fd !== 2) return WASI_EBADF;
      let s = "";
      for (let i = 0; i < iovsLen >>> 0; i++) {
        const iov = this.bytesAt(iovs + i * 8, 8);
        if (!iov) return WASI_EFAULT;
        const dv = new DataView(iov.buffer, iov.byteOffset, 8);
        const len = dv.getUint32(4, true);
        if (len) {
          const part = this.stringAt(dv.getUint32(0, true), len);
          if (part === null) return WASI_EFAULT;
          s += part;
        }
      }
      const written = Buffer.byteLength(s);
      if (written) {
        host.log(this.worker, fd === 1 ? "info" : "error", s.endsWith("\n") ? s.slice(0, -1) : s, fd === 1 ? "stdout" : "stderr");
      }
      return this.setU32(nwrittenPtr, written) ? 0 : WASI_EFAULT;
    };
    const stdFdOnly = (fd: number) => (fd === 1 || fd === 2 ? 0 : WASI_EBADF);
    const traceError = (msg: string) => host.log(this.worker, "trace", msg, "stdout");

    return {
      // ---- logging, status, time
      proxy_log: (level: number, ptr: number, size: number) => {
        if (level >>> 0 > 5) return R.BadArgument;
        if (!this.inBounds(ptr >>> 0, size >>> 0)) return R.InvalidMemoryAccess;
        if (level >= host.logLevel) host.log(this.worker, LOG_LEVELS[level], this.stringAt(ptr, size)!, "proxy_log");
        return R.Ok;
      },
      proxy_get_log_level: (ptr: number) => (this.setU32(ptr, host.logLevel) ? R.Ok : R.InvalidMemoryAccess),
      proxy_get_status: (codePtr: number, msgPtrPtr: number, msgSizePtr: number) => {
        const st = this.ctx()?.status ?? { code: 0, message: "" };
        if (!this.setU32(codePtr, st.code)) return R.InvalidMemoryAccess;
        return this.copyOut(st.message, msgPtrPtr, msgSizePtr);
      },
      proxy_get_current_time_nanoseconds: (ptr: number) => (this.setU64(ptr, host.nowNs()) ? R.Ok : R.InvalidMemoryAccess),
      proxy_set_tick_period_milliseconds: (period: number) => {
        const root = this.rootOf(this.ctx());
        if (root) host.setTickPeriod(this, root.id, period >>> 0);
        return R.Ok;
      },

      // ---- properties
      proxy_get_property: (pathPtr: number, pathSize: number, valuePtrPtr: number, valueSizePtr: number) => {
        this.propertyReads++;
        const path = this.pathAt(pathPtr, pathSize);
        if (path === null) return R.InvalidMemoryAccess;
        const c = this.ctx();
        const res = getProperty(path, plugin, c?.stream ?? null);
        if (typeof res === "number") return res;
        return this.copyOut(res, valuePtrPtr, valueSizePtr);
      },
      proxy_set_property: (pathPtr: number, pathSize: number, valuePtr: number, valueSize: number) => {
        const path = this.stringAt(pathPtr, pathSize);
        const value = this.bytesAt(valuePtr, valueSize);
        if (path === null || value === null) return R.InvalidMemoryAccess;
        const s = this.ctx()?.stream;
        if (!s) return R.NotFound;
        s.wasmState.set(`wasm.${path}`, value.slice());
        return R.Ok;
      },

      // ---- stream control (Envoy Context::continueStream: Request/Response resume a held stream after the
      // call returns; Downstream is for network filters; Upstream is Unimplemented)
      proxy_continue_stream: (type: number) => {
        type >>>= 0;
        if (type > 3) return R.BadArgument;
        if (type === 3) return R.Unimplemented;
        const c = this.ctx();
        if (type <= 1 && c?.stream) host.streamAction(this, c, type === 0 ? "request" : "response");
        return R.Ok;
      },
      proxy_continue_request: () => {
        const c = this.ctx();
        if (c?.stream) host.streamAction(this, c, "request");
        return R.Ok;
      },
      proxy_continue_response: () => {
        const c = this.ctx();
        if (c?.stream) host.streamAction(this, c, "response");
        return R.Ok;
      },
      proxy_clear_route_cache: () => R.Ok,
      // Envoy Context::getConfiguration: the plugin configuration while one is applied, else the VM's.
      proxy_get_configuration: (ptrPtr: number, sizePtr: number) => this.copyOut(this.configuring ?? host.vmConfig, ptrPtr, sizePtr),
      proxy_close_stream: (type: number) => (type >>> 0 > 3 ? R.BadArgument : R.Ok),
      proxy_send_local_response: (
        code: number,
        detailsPtr: number,
        detailsSize: number,
        bodyPtr: number,
        bodySize: number,
        headersPtr: number,
        headersSize: number,
        grpcStatus: number,
      ) => {
        const details = this.stringAt(detailsPtr, detailsSize);
        const body = this.bytesAt(bodyPtr, bodySize);
        const pairs = this.bytesAt(headersPtr, headersSize);
        if (details === null || body === null || pairs === null) return R.InvalidMemoryAccess;
        const c = this.ctx();
        const s = c?.stream;
        if (s) {
          s.localReply = { code: code >>> 0, details, body: body.slice(), headers: decodePairs(pairs), grpcStatus };
          host.streamAction(this, c!, "local-reply");
        }
        this.stopIteration = true;
        return R.Ok;
      },
      proxy_set_effective_context: (id: number) => {
        if (!this.contexts.has(id >>> 0)) return R.BadArgument;
        this.effective = id >>> 0;
        return R.Ok;
      },
      // WasmBase::done: only a root waiting in pending_done_ completes; its onDelete runs after the
      // current call returns, "so that onDelete is not called from within the done() handler".
      proxy_done: () => {
        const root = this.rootOf(this.ctx());
        if (!root?.pendingDone) return R.NotFound;
        root.pendingDone = false;
        this.defer(() => this.deleteRoot(root));
        return R.Ok;
      },
      proxy_call_foreign_function: (namePtr: number, nameSize: number, argsPtr: number, argsSize: number) => {
        if (this.bytesAt(namePtr, nameSize) === null || this.bytesAt(argsPtr, argsSize) === null) return R.InvalidMemoryAccess;
        return R.NotFound;
      },

      // ---- header maps
      proxy_get_header_map_value: (type: number, keyPtr: number, keySize: number, valuePtrPtr: number, valueSizePtr: number) => {
        if (type >>> 0 > 7) return R.BadArgument;
        const key = this.stringAt(keyPtr, keySize);
        if (key === null) return R.InvalidMemoryAccess;
        const map = this.constMap(type);
        if (!map) return this.ctx()?.stream?.phase === Phase.Log ? R.NotFound : R.BadArgument;
        const v = map.get(key);
        if (v === undefined) return R.NotFound;
        return this.copyOut(v, valuePtrPtr, valueSizePtr);
      },
      proxy_add_header_map_value: (type: number, keyPtr: number, keySize: number, valuePtr: number, valueSize: number) => {
        if (type >>> 0 > 7) return R.BadArgument;
        const key = this.stringAt(keyPtr, keySize);
        const value = this.stringAt(valuePtr, valueSize);
        if (key === null || value === null) return R.InvalidMemoryAccess;
        const map = this.mutableMap(type);
        if (!map) return R.BadArgument;
        map.add(key, value);
        return R.Ok;
      },
      proxy_replace_header_map_value: (type: number, keyPtr: number, keySize: number, valuePtr: number, valueSize: number) => {
        if (type >>> 0 > 7) return R.BadArgument;
        const key = this.stringAt(keyPtr, keySize);
        const value = this.stringAt(valuePtr, valueSize);
        if (key === null || value === null) return R.InvalidMemoryAccess;
        const map = this.mutableMap(type);
        if (!map) return R.BadArgument;
        map.replace(key, value);
        return R.Ok;
      },
      proxy_remove_header_map_value: (type: number, keyPtr: number, keySize: number) => {
        if (type >>> 0 > 7) return R.BadArgument;
        const key = this.stringAt(keyPtr, keySize);
        if (key === null) return R.InvalidMemoryAccess;
        const map = this.mutableMap(type);
        if (!map) return R.BadArgument;
        map.remove(key);
        return R.Ok;
      },
      proxy_get_header_map_pairs: (type: number, ptrPtr: number, sizePtr: number) => {
        if (type >>> 0 > 7) return R.BadArgument;
        const map = this.constMap(type);
        if (!map || map.size === 0) return this.copyOut(EMPTY, ptrPtr, sizePtr);
        return this.copyOut(map.pairs(), ptrPtr, sizePtr);
      },
      proxy_set_header_map_pairs: (type: number, ptr: number, size: number) => {
        if (type >>> 0 > 7) return R.BadArgument;
        const data = this.bytesAt(ptr, size);
        if (data === null) return R.InvalidMemoryAccess;
        const map = this.mutableMap(type);
        if (!map) return R.BadArgument;
        map.setAll(decodePairs(data));
        return R.Ok;
      },
      proxy_get_header_map_size: (type: number, resultPtr: number) => {
        if (type >>> 0 > 7) return R.BadArgument;
        const map = this.mutableMap(type);
        if (!map) return R.BadArgument;
        return this.setU32(resultPtr, map.byteSize()) ? R.Ok : R.InvalidMemoryAccess;
      },

      // ---- buffers
      proxy_get_buffer_status: (type: number, lengthPtr: number, flagsPtr: number) => {
        if (type >>> 0 > 8) return R.BadArgument;
        const b = this.buffer(type);
        if (!b) return R.NotFound;
        if (!this.setU32(lengthPtr, b.length) || !this.setU32(flagsPtr, 0)) return R.InvalidMemoryAccess;
        return R.Ok;
      },
      proxy_get_buffer_bytes: (type: number, start: number, length: number, ptrPtr: number, sizePtr: number) => {
        if (type >>> 0 > 8) return R.BadArgument;
        const b = this.buffer(type);
        if (!b) return R.NotFound;
        start >>>= 0;
        length >>>= 0;
        if (start + length > 0xffffffff) return R.BadArgument;
        if (start > b.length) length = 0;
        else if (start + length > b.length) length = b.length - start;
        if (length === 0) {
          return this.setU32(ptrPtr, 0) && this.setU32(sizePtr, 0) ? R.Ok : R.InvalidMemoryAccess;
        }
        return this.copyOut(b.subarray(start, start + length), ptrPtr, sizePtr);
      },
      proxy_set_buffer_bytes: (type: number, start: number, length: number, dataPtr: number, dataSize: number) => {
        if (type >>> 0 > 8) return R.BadArgument;
        const b = this.buffer(type);
        if (!b) return R.NotFound;
        const data = this.bytesAt(dataPtr, dataSize);
        if (data === null) return R.InvalidMemoryAccess;
        const s = this.ctx()?.stream;
        const isBody = (type === Buf.HttpRequestBody || type === Buf.HttpResponseBody) && s && b !== EMPTY;
        if (!isBody) return R.BadArgument;
        start >>>= 0;
        length >>>= 0;
        let next: Uint8Array;
        if (start === 0 && length === 0) next = concat(data, b);
        else if (start === 0 && length >= b.length) next = data.slice();
        else if (start >= b.length) next = concat(b, data);
        else return R.BadArgument;
        if (type === Buf.HttpRequestBody) s.requestBody = next;
        else s.responseBody = next;
        return R.Ok;
      },

      // ---- HTTP and gRPC callouts
      proxy_http_call: (
        uriPtr: number,
        uriSize: number,
        headersPtr: number,
        headersSize: number,
        bodyPtr: number,
        bodySize: number,
        trailersPtr: number,
        trailersSize: number,
        timeoutMs: number,
        tokenPtr: number,
      ) => {
        const root = this.rootOf(this.ctx());
        const cluster = this.stringAt(uriPtr, uriSize);
        const body = this.bytesAt(bodyPtr, bodySize);
        const headerPairs = this.bytesAt(headersPtr, headersSize);
        const trailerPairs = this.bytesAt(trailersPtr, trailersSize);
        if (cluster === null || body === null || headerPairs === null || trailerPairs === null) return R.InvalidMemoryAccess;
        if (!this.setU32(tokenPtr, 0)) return R.InvalidMemoryAccess;
        if (!root) return R.BadArgument;
        if ((timeoutMs | 0) < 0) return R.BadArgument;
        const headers = decodePairs(headerPairs).map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
        // The body is copied before the call returns, as Envoy does (Context::httpCall,
        // `message->body().add(...)`: Buffer::OwnedImpl copies into its own slices; cpp-host's
        // exports.cc http_call passes only a view of the VM's memory), so the module may reuse those bytes
        // at once while the request is still queued on the socket.
        const started = host.httpCall(this, cluster, headers, body.slice(), timeoutMs >>> 0);
        if (typeof started === "number") return started;
        this.nextCallId += 4;
        const token = this.nextCallId;
        const rootId = root.id;
        this.calls.set(token, { cancel: started.cancel, rootId });
        host.track(started.done.then((outcome) => this.deliverCall(rootId, token, outcome)));
        this.setU32(tokenPtr, token);
        return R.Ok;
      },
      proxy_grpc_call: () => R.ParseFailure,
      proxy_grpc_stream: () => R.ParseFailure,
      proxy_grpc_cancel: () => R.NotFound,
      proxy_grpc_close: () => R.NotFound,
      proxy_grpc_send: () => R.NotFound,

      // ---- metrics
      proxy_define_metric: (type: number, namePtr: number, nameSize: number, idPtr: number) => {
        const name = this.stringAt(namePtr, nameSize);
        if (name === null) return R.InvalidMemoryAccess;
        const t = METRIC_TYPES[type >>> 0];
        if (!t) return R.BadArgument;
        this.metricIds[t] += 4;
        const id = this.metricIds[t];
        this.metricNames.set(id, name);
        host.metrics.define(t, name);
        return this.setU32(idPtr, id) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_increment_metric: (id: number, offset: bigint) => {
        const type = METRIC_TYPES[(id >>> 0) & 3];
        const name = this.metricName(id >>> 0);
        if (type === "counter") {
          if (!name) return R.NotFound;
          if (offset <= 0n) return R.BadArgument;
          host.metrics.add(name, offset);
          return R.Ok;
        }
        if (type === "gauge") {
          if (!name) return R.NotFound;
          host.metrics.add(name, offset);
          return R.Ok;
        }
        return R.BadArgument;
      },
      proxy_record_metric: (id: number, value: bigint) => {
        const type = METRIC_TYPES[(id >>> 0) & 3];
        const name = this.metricName(id >>> 0);
        if (!type) return R.BadArgument;
        if (!name) return R.NotFound;
        const v = BigInt.asUintN(64, value);
        if (type === "counter") host.metrics.add(name, v);
        else if (type === "gauge") host.metrics.set(name, v);
        else host.metrics.record(name, v);
        return R.Ok;
      },
      proxy_get_metric: (id: number, resultPtr: number) => {
        const type = METRIC_TYPES[(id >>> 0) & 3];
        const name = this.metricName(id >>> 0);
        if (type !== "counter" && type !== "gauge") return R.BadArgument;
        if (!name) return R.NotFound;
        return this.setU64(resultPtr, host.metrics.get(name)) ? R.Ok : R.InvalidMemoryAccess;
      },

      // ---- shared data and queues
      proxy_get_shared_data: (keyPtr: number, keySize: number, valuePtrPtr: number, valueSizePtr: number, casPtr: number) => {
        const key = this.stringAt(keyPtr, keySize);
        if (key === null) return R.InvalidMemoryAccess;
        const entry = host.sharedData.get(vmId, key);
        if (!entry) return R.NotFound;
        const r = this.copyOut(entry.value, valuePtrPtr, valueSizePtr);
        if (r !== R.Ok) return r;
        return this.setU32(casPtr, entry.cas) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_set_shared_data: (keyPtr: number, keySize: number, valuePtr: number, valueSize: number, cas: number) => {
        const key = this.stringAt(keyPtr, keySize);
        const value = this.bytesAt(valuePtr, valueSize);
        if (key === null || value === null) return R.InvalidMemoryAccess;
        return host.sharedData.set(vmId, key, value.slice(), cas >>> 0);
      },
      proxy_register_shared_queue: (namePtr: number, nameSize: number, tokenPtr: number) => {
        const name = this.stringAt(namePtr, nameSize);
        if (name === null) return R.InvalidMemoryAccess;
        const token = host.queues.register(vmId, name, this);
        return this.setU32(tokenPtr, token) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_resolve_shared_queue: (vmPtr: number, vmSize: number, namePtr: number, nameSize: number, tokenPtr: number) => {
        const vm = this.stringAt(vmPtr, vmSize);
        const name = this.stringAt(namePtr, nameSize);
        if (vm === null || name === null) return R.InvalidMemoryAccess;
        const token = host.queues.resolve(vm === "" ? vmId : vm, name);
        if (token === undefined || this.failed) return R.NotFound;
        return this.setU32(tokenPtr, token) ? R.Ok : R.InvalidMemoryAccess;
      },
      proxy_dequeue_shared_queue: (token: number, dataPtrPtr: number, dataSizePtr: number) => {
        const r = host.queues.dequeue(token >>> 0);
        if (typeof r === "number") return r;
        return this.copyOut(r, dataPtrPtr, dataSizePtr);
      },
      proxy_enqueue_shared_queue: (token: number, dataPtr: number, dataSize: number) => {
        const data = this.bytesAt(dataPtr, dataSize);
        if (data === null) return R.InvalidMemoryAccess;
        return host.queues.enqueue(token >>> 0, data.slice());
      },

      // ---- emscripten leftovers Envoy links
      pthread_equal: (a: number, b: number) => (a === b ? 1 : 0),
      emscripten_notify_memory_growth: () => {},

      // ---- WASI, as proxy-wasm-cpp-host implements it
      "wasi.fd_write": fdWrite,
      "wasi.fd_pwrite": (fd: number, iovs: number, iovsLen: number, _offset: bigint, nwrittenPtr: number) =>
        fd === 1 || fd === 2 ? fdWrite(fd, iovs, iovsLen, nwrittenPtr) : WASI_EBADF,
      "wasi.fd_read": () => WASI_ENOSYS,
      "wasi.fd_pread": () => WASI_ENOSYS,
      "wasi.fd_seek": () => (traceError("wasi_unstable fd_seek"), 0),
      "wasi.fd_close": () => (traceError("wasi_unstable fd_close"), 0),
      "wasi.fd_fdstat_get": (fd: number, statPtr: number) => {
        if (fd !== 1 && fd !== 2) return WASI_EBADF;
        const b = this.bytesAt(statPtr, 24);
        if (b) {
          b.fill(0);
          new DataView(b.buffer, b.byteOffset, 24).setBigUint64(8, 64n, true);
        }
        return 0;
      },
      "wasi.fd_fdstat_set_flags": () => WASI_ENOSYS,
      "wasi.fd_fdstat_set_rights": stdFdOnly,
      "wasi.fd_advise": () => 0,
      "wasi.fd_allocate": stdFdOnly,
      "wasi.fd_datasync": stdFdOnly,
      "wasi.fd_filestat_set_size": stdFdOnly,
      "wasi.fd_filestat_set_times": stdFdOnly,
      "wasi.fd_sync": stdFdOnly,
      "wasi.fd_filestat_get": () => WASI_EBADF,
      "wasi.fd_prestat_get": () => WASI_EBADF,
      "wasi.fd_prestat_dir_name": () => WASI_ENOSYS,
      "wasi.fd_readdir": (_fd: number, _buf: number, _len: number, _cookie: bigint, nreadPtr: number) => (this.setU32(nreadPtr, 0) ? WASI_ENOTDIR : WASI_EFAULT),
      "wasi.fd_renumber": (fd: number, to: number) => (stdFdOnly(fd) || stdFdOnly(to) ? WASI_EBADF : WASI_ENOTSUP),
      "wasi.fd_tell": (fd: number, retPtr: number) => {
        if (fd !== 1 && fd !== 2) return WASI_EBADF;
        return this.setU64(retPtr, 0n) ? 0 : WASI_EFAULT;
      },
      "wasi.path_open": () => WASI_NOENT,
      "wasi.path_filestat_get": () => WASI_ENOTSUP,
      "wasi.path_create_directory": () => WASI_ENOTSUP,
      "wasi.path_filestat_set_times": () => WASI_ENOTSUP,
      "wasi.path_link": () => WASI_ENOTSUP,
      "wasi.path_readlink": (_fd: number, _p: number, _l: number, _b: number, _bl: number, retPtr: number) => (this.setU32(retPtr, 0) ? WASI_ENOTSUP : WASI_EFAULT),
      "wasi.path_remove_directory": () => WASI_ENOTSUP,
      "wasi.path_rename": () => WASI_ENOTSUP,
      "wasi.path_symlink": () => WASI_ENOTSUP,
      "wasi.path_unlink_file": () => WASI_ENOTSUP,
      "wasi.sock_accept": (_fd: number, _flags: number, retPtr: number) => (this.setU32(retPtr, 0) ? WASI_ENOTSUP : WASI_EFAULT),
      "wasi.sock_recv": (_fd: number, _p: number, _l: number, _f: number, ret0: number, ret1: number) => {
        if (!this.setU32(ret0, 0)) return WASI_EFAULT;
        const b = this.bytesAt(ret1, 2);
        if (!b) return WASI_EFAULT;
        b.fill(0);
        return WASI_ENOTSUP;
      },
      "wasi.sock_send": (_fd: number, _p: number, _l: number, _f: number, ret0: number) => (this.setU32(ret0, 0) ? WASI_ENOTSUP : WASI_EFAULT),
      "wasi.sock_shutdown": () => WASI_ENOTSUP,
      "wasi.environ_get": (arrayPtr: number, bufPtr: number) => {
        for (const [k, v] of host.env) {
          if (!this.setU32(arrayPtr, bufPtr)) return WASI_EFAULT;
          const data = te.encode(`${k}=${v}\0`);
          const dst = this.bytesAt(bufPtr, data.length);
          if (!dst) return WASI_EFAULT;
          dst.set(data);
          bufPtr += data.length;
          arrayPtr += 4;
        }
        return 0;
      },
      "wasi.environ_sizes_get": (countPtr: number, sizePtr: number) => {
        if (!this.setU32(countPtr, host.env.length)) return WASI_EFAULT;
        let size = 0;
        for (const [k, v] of host.env) size += Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
        return this.setU32(sizePtr, size) ? 0 : WASI_EFAULT;
      },
      "wasi.args_get": () => 0,
      "wasi.args_sizes_get": (argcPtr: number, sizePtr: number) => (this.setU32(argcPtr, 0) && this.setU32(sizePtr, 0) ? 0 : WASI_EFAULT),
      "wasi.clock_time_get": (id: number, _precision: bigint, resultPtr: number) => {
        let t: bigint;
        if (id === 0) t = host.nowNs();
        else if (id === 1) t = host.monotonicNs();
        else return WASI_ENOTSUP;
        return this.setU64(resultPtr, t) ? 0 : WASI_EFAULT;
      },
      "wasi.clock_res_get": (id: number, resultPtr: number) => {
        if (id !== 0 && id !== 1) return WASI_ENOTSUP;
        return this.setU64(resultPtr, 1n) ? 0 : WASI_EFAULT;
      },
      "wasi.random_get": (ptr: number, len: number) => {
        len >>>= 0;
        if (len > 64 * 1024) return WASI_EINVAL;
        if (len === 0) return 0;
        const b = this.bytesAt(ptr, len);
        if (!b) return WASI_EFAULT;
        crypto.getRandomValues(b);
        return 0;
      },
      "wasi.sched_yield": () => 0,
      "wasi.poll_oneoff": (_in: number, _out: number, _n: number, neventsPtr: number) => (this.setU32(neventsPtr, 0) ? 0 : WASI_EFAULT),
      "wasi.proc_exit": () => traceError("wasi_unstable proc_exit"),
    };
  }
}

/** At most 64 UTF-16 units, all ASCII: its UTF-8 bytes are its char codes. */
function isShortAscii(s: string): boolean {
  if (s.length > 64) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
