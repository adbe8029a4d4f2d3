// Probe for the filter benchmark: meshlook's own SDK seam (filter/sdk) with an on_log that either does
// nothing (plugin configuration "none") or only performs the property reads meshlook makes per inbound
// request once its per-connection facts are cached (configuration "reads"), releasing each value.
// meshlook minus "reads" is the filter's own wasm work; "reads" minus "none" is what the host calls cost
// (an Envoy pays them too: its own lookup, plus the call into the module's malloc for every value).
export * from "../../filter/sdk/entry";
import { Root, setRootFactory } from "../../filter/sdk/exports";
import { HostBytes, propertyPath } from "../../filter/sdk/host";

const PATHS: Array<ArrayBuffer> = [
  propertyPath(["connection", "id"]),
  // The destination service: Istio's service metadata, else the cluster name, else the Host header
  // (the bench's inbound cluster has neither metadata nor a host part, as Istio's inbound clusters).
  propertyPath(["xds", "cluster_metadata", "filter_metadata", "istio", "services", "0", "host"]),
  propertyPath(["xds", "cluster_name"]),
  propertyPath(["request", "host"]),
  propertyPath(["request", "headers", "content-type"]),
  propertyPath(["response", "code"]),
  propertyPath(["response", "flags"]),
  propertyPath(["request", "duration"]),
  propertyPath(["request", "total_size"]),
  propertyPath(["response", "total_size"]),
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
      if (hb.read(unchecked(PATHS[i]))) hb.release();
    }
  }
}

setRootFactory((id: u32): Root => new ProbeRoot(id));
