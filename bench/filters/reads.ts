// Probe for the filter benchmark: meshlook's own SDK seam (filter/sdk) with an on_log that either does
// nothing (plugin configuration "none") or only performs the property reads meshlook makes per inbound
// request once its per-connection facts are cached (configuration "reads"), releasing each value.
// meshlook minus "reads" is the filter's own wasm work; "reads" minus "none" is what the host calls cost
// (an Envoy pays them too: its own lookup, plus the call into the module's malloc for every value).
export * from "../../filter/sdk/entry";
import { Root, setRootFactory } from "../../filter/sdk/exports";
import { HostBytes, constantPath } from "../../filter/sdk/host";

const PATHS: Array<usize> = [
  constantPath(["connection", "id"]),
  // The destination service: Istio's service metadata, else the cluster name, else the Host header
  // (the bench's inbound cluster has neither metadata nor a host part, as Istio's inbound clusters).
  constantPath(["xds", "cluster_metadata", "filter_metadata", "istio", "services", "0", "host"]),
  constantPath(["xds", "cluster_name"]),
  constantPath(["request", "host"]),
  constantPath(["request", "headers", "content-type"]),
  constantPath(["response", "code"]),
  constantPath(["response", "flags"]),
  constantPath(["request", "duration"]),
  constantPath(["request", "total_size"]),
  constantPath(["response", "total_size"]),
];
const hb = new HostBytes();

class ProbeRoot extends Root {
  private reads: bool = false;
  onConfigure(config: HostBytes | null): bool {
    this.reads = config !== null && String.UTF8.decodeUnsafe(config.ptr, config.len) == "reads";
    if (config !== null) config.release();
    return true;
  }
  onTick(): void {}
  onHttpCallResponse(_token: u32, _headers: u32, _bodySize: u32, _trailers: u32): void {}
  onStreamLog(): void {
    if (!this.reads) return;
    for (let i = 0; i < PATHS.length; i++) {
      if (hb.readAt(unchecked(PATHS[i]))) hb.release();
    }
  }
}

setRootFactory((id: u32): Root => new ProbeRoot(id));
