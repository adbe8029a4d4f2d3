// Baseline for the benchmarks: what access-log shipping costs in the sidecar. At the end of every stream it
// reads the same facts meshlook reads (identities, peer labels, service, protocol, code, gRPC status, flags,
// TLS, latency, sizes, plus the request time a log line needs), serializes them as one JSON line and hands
// it to the host (proxy_log, i.e. Envoy's logger) — per request, where meshlook adds to an in-place aggregate.
// Built on the same entry points as the filter (filter/sdk over the pinned proxy-runtime), so the
// difference measured is the work per request, not SDK overhead.
export * from "../../filter/sdk/entry";
import { Root, setRootFactory } from "../../filter/sdk/exports";
import { HostBytes, LogLevel, log, propertyPath } from "../../filter/sdk/host";

const P_DIRECTION = propertyPath(["xds", "listener_direction"]);
const P_SERVICE_HOST = propertyPath(["xds", "cluster_metadata", "filter_metadata", "istio", "services", "0", "host"]);
const P_TIME = propertyPath(["request", "time"]);
const P_DURATION = propertyPath(["request", "duration"]);
const P_REQUEST_SIZE = propertyPath(["request", "total_size"]);
const P_RESPONSE_SIZE = propertyPath(["response", "total_size"]);
const P_CODE = propertyPath(["response", "code"]);
const P_GRPC_STATUS = propertyPath(["response", "grpc_status"]);
const P_FLAGS = propertyPath(["response", "flags"]);
const P_CONTENT_TYPE = propertyPath(["request", "headers", "content-type"]);
const P_MTLS = propertyPath(["connection", "mtls"]);
const P_DOWN_PEER_SAN = propertyPath(["connection", "uri_san_peer_certificate"]);
const P_DOWN_LOCAL_SAN = propertyPath(["connection", "uri_san_local_certificate"]);
const P_UP_PEER_SAN = propertyPath(["upstream", "uri_san_peer_certificate"]);
const P_UP_LOCAL_SAN = propertyPath(["upstream", "uri_san_local_certificate"]);
const PEER_FIELDS = ["workload", "namespace", "service", "revision", "cluster"];
const DOWN_PEER = PEER_FIELDS.map<ArrayBuffer>((f) => propertyPath(["filter_state", "downstream_peer", f]));
const UP_PEER = PEER_FIELDS.map<ArrayBuffer>((f) => propertyPath(["filter_state", "upstream_peer", f]));
const NODE = [
  propertyPath(["xds", "node", "metadata", "WORKLOAD_NAME"]),
  propertyPath(["xds", "node", "metadata", "NAMESPACE"]),
  propertyPath(["xds", "node", "metadata", "LABELS", "service.istio.io/canonical-name"]),
  propertyPath(["xds", "node", "metadata", "LABELS", "service.istio.io/canonical-revision"]),
  propertyPath(["xds", "node", "metadata", "CLUSTER_ID"]),
];

const hb = new HostBytes();

function readString(path: ArrayBuffer): string {
  if (!hb.read(path)) return "unknown";
  let s = hb.asString("unknown");
  hb.release();
  return s;
}

function readInt(path: ArrayBuffer): i64 {
  if (!hb.read(path)) return -1;
  let v = hb.asI64(-1);
  hb.release();
  return v;
}

function readBool(path: ArrayBuffer): bool {
  if (!hb.read(path)) return false;
  let v = hb.len == 1 && load<u8>(hb.ptr) == 1;
  hb.release();
  return v;
}

/** A JSON string literal. */
function quote(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out += s.substring(start, i);
    out += c == 0x22 ? '\\"' : c == 0x5c ? "\\\\" : "\\u" + c.toString(16).padStart(4, "0");
    start = i + 1;
  }
  return out + s.substring(start) + '"';
}

class AccessLogRoot extends Root {
  /** This node's workload, namespace, canonical service, revision and cluster as JSON values, read once like the filter does. */
  local: string = "";

  onConfigure(_config: HostBytes | null): bool {
    let local = "";
    for (let i = 0; i < NODE.length; i++) local += "," + quote(readString(NODE[i]));
    this.local = local;
    return true;
  }
  onTick(): void {}
  onHttpCallResponse(_token: u32, _headers: u32, _bodySize: u32, _trailers: u32): void {}

  onStreamLog(): void {
    let inbound = readInt(P_DIRECTION) == 1;
    let peer = inbound ? DOWN_PEER : UP_PEER;
    let peerJson = "";
    for (let i = 0; i < 5; i++) peerJson += "," + quote(readString(peer[i]));
    let src = peerJson;
    let dst = this.local;
    if (!inbound) {
      src = this.local;
      dst = peerJson;
    }
    let contentType = readString(P_CONTENT_TYPE);
    let line =
      '{"time":' +
      readInt(P_TIME).toString() +
      ',"reporter":' +
      (inbound ? '"destination"' : '"source"') +
      ',"source_principal":' +
      quote(readString(inbound ? P_DOWN_PEER_SAN : P_UP_LOCAL_SAN)) +
      ',"source_labels":[' +
      src.substring(1) +
      "]" +
      ',"destination_principal":' +
      quote(readString(inbound ? P_DOWN_LOCAL_SAN : P_UP_PEER_SAN)) +
      ',"destination_service":' +
      quote(readString(P_SERVICE_HOST)) +
      ',"destination_labels":[' +
      dst.substring(1) +
      "]" +
      ',"request_protocol":' +
      (contentType.startsWith("application/grpc") ? '"grpc"' : '"http"') +
      ',"response_code":' +
      readInt(P_CODE).toString() +
      ',"grpc_status":' +
      readInt(P_GRPC_STATUS).toString() +
      ',"response_flags":' +
      readInt(P_FLAGS).toString() +
      ',"connection_security_policy":' +
      (inbound ? (readBool(P_MTLS) ? '"mutual_tls"' : '"none"') : '"unknown"') +
      ',"duration_us":' +
      (readInt(P_DURATION) / 1000).toString() +
      ',"request_bytes":' +
      readInt(P_REQUEST_SIZE).toString() +
      ',"response_bytes":' +
      readInt(P_RESPONSE_SIZE).toString() +
      "}";
    log(LogLevel.info, line);
  }
}

setRootFactory((id: u32): Root => new AccessLogRoot(id));
