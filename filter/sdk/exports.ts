// The proxy-wasm ABI 0.2.0 entry points, replacing @solo-io/proxy-runtime's exports.ts. Why not the
// SDK's: its stream path logs several debug lines per request (including a join of every live context
// id), its onConfigure hands Envoy the configuration size as the size pointer, its exported
// proxy_on_grpc_trailing_metadata is a name Envoy never calls, and a missing context makes it abort
// (Map.get throws), which kills the VM. Here an unknown context id is ignored and nothing throws.
// Callbacks the filter does not need (headers, bodies, connections) are not exported at all: Envoy
// then treats them as Continue without calling into the VM.
import { HostBytes, readPluginConfiguration } from "./host";
export { malloc } from "./memory";

/** A root context: owns the configuration and all state; stream contexts only report to it. */
export abstract class Root {
  constructor(public readonly id: u32) {}
  /** The VM started (once per VM, on the first root context). */
  onVmStart(): bool {
    return true;
  }
  /** New plugin configuration (null when empty). Returning false makes Envoy refuse the plugin. */
  abstract onConfigure(config: HostBytes | null): bool;
  abstract onTick(): void;
  /** Response to an HTTP call this root started; `headers == 0` means the call failed or timed out. */
  abstract onHttpCallResponse(token: u32, headers: u32, bodySize: u32, trailers: u32): void;
  /** A stream under this root ended (access-log time: the response is complete). */
  abstract onStreamLog(): void;
  /**
   * The VM is shutting down. Answer false to finish later with finishShutdown() (proxy_done): Envoy
   * keeps the VM until then.
   */
  onDone(): bool {
    return true;
  }
}

type RootFactory = (id: u32) => Root;

let factory: RootFactory | null = null;
const roots = new Map<u32, Root>();
// Which root each live stream belongs to. Looked up once per request, at on_log.
const streamRoot = new Map<u32, u32>();

/** Installs the constructor of root contexts; call once from the module's top level. */
export function setRootFactory(f: RootFactory): void {
  factory = f;
}

function rootOf(id: u32): Root | null {
  // No ternary over references: AssemblyScript 0.17 miscounts their references (see root.ts).
  if (!roots.has(id)) return null;
  return roots.get(id);
}

export function proxy_abi_version_0_2_0(): void {}

export function proxy_on_context_create(context_id: u32, root_context_id: u32): void {
  if (root_context_id != 0) {
    if (roots.has(root_context_id)) streamRoot.set(context_id, root_context_id);
    return;
  }
  let f = factory;
  if (f !== null && !roots.has(context_id)) roots.set(context_id, f(context_id));
}

export function proxy_on_vm_start(root_context_id: u32, _vm_configuration_size: u32): u32 {
  let root = rootOf(root_context_id);
  return root !== null && root.onVmStart() ? 1 : 0;
}

export function proxy_validate_configuration(_root_context_id: u32, _configuration_size: u32): u32 {
  return 1;
}

export function proxy_on_configure(root_context_id: u32, configuration_size: u32): u32 {
  let root = rootOf(root_context_id);
  if (root === null) return 0;
  let config = readPluginConfiguration(configuration_size);
  let ok = root.onConfigure(config);
  if (config !== null) config.release();
  return ok ? 1 : 0;
}

export function proxy_on_tick(root_context_id: u32): void {
  let root = rootOf(root_context_id);
  if (root !== null) root.onTick();
}

export function proxy_on_http_call_response(context_id: u32, token: u32, headers: u32, body_size: u32, trailers: u32): void {
  let root = rootOf(context_id);
  if (root !== null) root.onHttpCallResponse(token, headers, body_size, trailers);
}

export function proxy_on_log(context_id: u32): void {
  if (!streamRoot.has(context_id)) return;
  let root = rootOf(streamRoot.get(context_id));
  if (root !== null) root.onStreamLog();
}

export function proxy_on_done(context_id: u32): u32 {
  let root = rootOf(context_id);
  if (root === null) return 1;
  return root.onDone() ? 1 : 0;
}

export function proxy_on_delete(context_id: u32): void {
  if (streamRoot.has(context_id)) streamRoot.delete(context_id);
  else if (roots.has(context_id)) roots.delete(context_id);
}
