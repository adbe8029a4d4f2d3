/**
 * Reads the series key out of Envoy attributes the way Istio's stats filter does (istio/proxy
 * `istio_stats.cc`), written independently of the generator's `expectedSeries`. The glue tests use it to
 * show that the attributes a sidecar serves carry exactly the facts the ground truth assumes.
 */
import { flagsToString } from "../../sim/traffic/index.ts";
import type { SeriesDims } from "../../sim/traffic/index.ts";

/** Looks up an attribute by path segments; undefined when Envoy would answer NotFound. */
export type Lookup = (...path: string[]) => string | number | bigint | boolean | undefined;

const unknown = (v: unknown) => (v === undefined || v === "" ? "unknown" : String(v));

export function readSeries(get: Lookup, headers: (name: string) => string | undefined, endUser: boolean): SeriesDims {
  const inbound = Number(get("xds", "listener_direction")) === 1;
  const node = (key: string) => get("xds", "node", "metadata", key);
  const label = (key: string) => get("xds", "node", "metadata", "LABELS", key);
  const peer = (key: string) => get("filter_state", inbound ? "downstream_peer" : "upstream_peer", key);
  const peerSan = inbound ? get("connection", "uri_san_peer_certificate") : get("upstream", "uri_san_peer_certificate");
  const localSan = inbound ? get("connection", "uri_san_local_certificate") : get("upstream", "uri_san_local_certificate");
  const self = {
    workload: node("WORKLOAD_NAME"),
    namespace: node("NAMESPACE"),
    service: label("service.istio.io/canonical-name"),
    revision: label("service.istio.io/canonical-revision"),
    cluster: node("CLUSTER_ID"),
  };
  const other = {
    workload: peer("workload"),
    namespace: peer("namespace"),
    service: peer("service"),
    revision: peer("revision"),
    cluster: peer("cluster"),
  };
  const src = inbound ? other : self;
  const dst = inbound ? self : other;
  const grpc = (headers("content-type") ?? "").startsWith("application/grpc");
  const code = get("response", "code");
  const grpcStatus = grpc ? get("response", "grpc_status") : undefined;
  return {
    reporter: inbound ? "destination" : "source",
    source_principal: unknown(inbound ? peerSan : localSan),
    source_workload: unknown(src.workload),
    source_namespace: unknown(src.namespace),
    source_canonical_service: unknown(src.service),
    source_canonical_revision: unknown(src.revision),
    source_cluster: unknown(src.cluster),
    destination_principal: unknown(inbound ? localSan : peerSan),
    destination_service: unknown(get("xds", "cluster_metadata", "filter_metadata", "istio", "services", "0", "host")),
    destination_workload: unknown(dst.workload),
    destination_namespace: unknown(dst.namespace),
    destination_canonical_service: unknown(dst.service),
    destination_canonical_revision: unknown(dst.revision),
    destination_cluster: unknown(dst.cluster),
    request_protocol: grpc ? "grpc" : "http",
    response_code: code === undefined ? 0 : Number(code),
    grpc_status: grpcStatus === undefined ? "-" : String(grpcStatus),
    response_flags: flagsToString(Number(get("response", "flags") ?? 0)),
    connection_security_policy: inbound ? (get("connection", "mtls") ? "mutual_tls" : "none") : "unknown",
    end_user_principal: endUser && inbound ? endUserPrincipal(get) : "unknown",
  };
}

/** Istio's request.auth.principal: `iss/sub` of jwt_authn's payload (Istio >= 1.21), else istio_authn's. */
function endUserPrincipal(get: Lookup): string {
  const claim = (name: string) => get("metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "payload", name);
  const iss = claim("iss");
  const sub = claim("sub");
  if (iss !== undefined && sub !== undefined) return `${iss}/${sub}`;
  return unknown(get("metadata", "filter_metadata", "istio_authn", "request.auth.principal"));
}
