/**
 * Glue between the traffic generator and the proxy-wasm host: what an Envoy sidecar (Istio ≥ 1.22) knows
 * about a generated request, expressed with Envoy's attribute names and types, its header maps, and the
 * bootstrap node of the sidecar's own workload.
 *
 * Attribute sources: Envoy `source/extensions/filters/common/expr/context.cc` (request.*, response.*,
 * connection.*, upstream.*, source.*, destination.*, xds.*), istio/proxy `extensions/common/metadata_object.h`
 * (peer metadata fields in filter state `downstream_peer` / `upstream_peer`: workload, name, namespace,
 * cluster, service, revision, app, version, type), Istio's bootstrap node metadata (NAME, NAMESPACE,
 * WORKLOAD_NAME, CLUSTER_ID, MESH_ID, SERVICE_ACCOUNT, OWNER, LABELS), Istio's `istio_authn` dynamic
 * metadata (`request.auth.principal`) and the cluster metadata Istio's stats read the service host from
 * (`filter_metadata.istio.services[0].host`).
 */
import { jwtAuthnMetadata, metadataMessage, peerInfo } from "./host/istio.ts";
import type { StreamInput } from "./host/sidecar.ts";
import { duration, timestamp, uint, type Attr, type NodeInfo } from "./host/values.ts";
import type { SimRequest } from "./traffic/generator.ts";
import { hashString } from "./traffic/prng.ts";
import type { MeshModel, Service, Workload } from "./traffic/model.ts";
import type { Reporter } from "./traffic/series.ts";

/** Envoy's `xds.listener_direction` values (envoy.config.core.v3.TrafficDirection). */
export const TRAFFIC_DIRECTION = { UNSPECIFIED: 0, INBOUND: 1, OUTBOUND: 2 } as const;

type Pairs = [string, string][];

/** Istio proxy version announced in node metadata. */
const ISTIO_VERSION = "1.24.2";

/** Pod name of the (single) pod of a workload: the Deployment name plus stable ReplicaSet/pod suffixes. */
export function podName(w: Workload): string {
  const h = hashString(w.namespace + "/" + w.name);
  return `${w.name}-${h.toString(36).padStart(7, "0").slice(0, 7)}-${(h >>> 11).toString(36).slice(0, 5)}`;
}

/** The bootstrap node Istio's injector gives the sidecar (or gateway) of a workload. */
export function workloadNode(w: Workload, model: MeshModel): NodeInfo {
  const pod = podName(w);
  const labels: Record<string, string> = {
    app: w.app,
    "service.istio.io/canonical-name": w.canonicalService,
    "service.istio.io/canonical-revision": w.canonicalRevision,
    "security.istio.io/tlsMode": "istio",
  };
  if (w.version) labels.version = w.version;
  return {
    id: `${w.proxy === "gateway" ? "router" : "sidecar"}~${w.ip}~${pod}.${w.namespace}~${w.namespace}.svc.cluster.local`,
    cluster: `${w.canonicalService}.${w.namespace}`,
    metadata: {
      NAME: pod,
      NAMESPACE: w.namespace,
      WORKLOAD_NAME: w.name,
      CLUSTER_ID: w.cluster,
      MESH_ID: model.meshId,
      SERVICE_ACCOUNT: w.serviceAccount,
      OWNER: `kubernetes://apis/apps/v1/namespaces/${w.namespace}/deployments/${w.name}`,
      LABELS: labels,
      INSTANCE_IPS: w.ip,
      ISTIO_VERSION,
      INTERCEPTION_MODE: "REDIRECT",
      PLATFORM_METADATA: {},
    },
  };
}

const peerObjects = new WeakMap<Workload, Attr>();

/**
 * Istio's peer metadata filter-state object for a workload (host `peerInfo`). Never mutated, so one value
 * per workload is shared by all its streams.
 */
export function peerObject(w: Workload): Attr {
  let peer = peerObjects.get(w);
  if (!peer) {
    peer = makePeerObject(w);
    peerObjects.set(w, peer);
  }
  return peer;
}

function makePeerObject(w: Workload): Attr {
  return peerInfo({
    type: "deployment",
    workload: w.name,
    name: podName(w),
    namespace: w.namespace,
    cluster: w.cluster,
    service: w.canonicalService,
    revision: w.canonicalRevision,
    app: w.app,
    version: w.version,
  });
}

/** The ClusterIP of a service. */
export function serviceIp(s: Service): string {
  return `10.96.${(s.id >> 8) & 255}.${(s.id & 255) + 10}`;
}

const clusterMetadataCache = new WeakMap<Service, Attr>();

/** Cluster metadata as Istio writes it for a service's clusters (shared, never mutated). */
function clusterMetadata(s: Service): Attr {
  let m = clusterMetadataCache.get(s);
  if (!m) {
    m = metadataMessage({ istio: { services: [{ host: s.host, name: s.name, namespace: s.namespace }] } });
    clusterMetadataCache.set(s, m);
  }
  return m;
}

/** The sidecar that logs a request for a reporter: the source's outbound side or the destination's inbound side. */
export function reportingWorkload(request: SimRequest, reporter: Reporter): Workload {
  return reporter === "source" ? request.source : request.destination;
}

/**
 * Maps a generated request to the host's stream input for the reporter's sidecar. Only call it for a
 * reporter that observes the request (`sourceReports` / `destinationReports`). Bodies are not included:
 * `request.size`/`total_size` and `response.size`/`total_size` are given as attributes, so a filter sees the
 * generator's sizes without the host copying filler bytes; pass `withBodies` to send filler bodies too
 * (for filters that inspect body callbacks).
 */
export function streamInput(request: SimRequest, reporter: Reporter, withBodies = false): StreamInput {
  const inbound = reporter === "destination";
  if (inbound ? !request.destinationReports : !request.sourceReports) {
    throw new Error(`request ${request.seq} is not observed by its ${reporter} sidecar`);
  }
  const { source: src, destination: dst, service: svc } = request;
  const grpc = request.protocol === "grpc";
  const durationNs = inbound ? request.destinationDurationNs : request.sourceDurationNs;
  // The client's port is the connection's, like its id.
  const clientPort = 32768 + ((request.connection * 7919) % 28000);
  const requestId = requestUuid(request.seq);

  const requestHeaders: Pairs = [
    [":method", request.method],
    [":path", request.path],
    [":authority", request.authority],
    [":scheme", "http"],
    ["user-agent", grpc ? "grpc-go/1.64.0" : src.proxy === "none" ? "curl/8.5.0" : "python-requests/2.32.3"],
    ["x-request-id", requestId],
  ];
  if (grpc) requestHeaders.push(["content-type", "application/grpc"], ["te", "trailers"]);
  else if (request.requestBodyBytes > 0) requestHeaders.push(["content-type", "application/json"]);
  if (request.requestBodyBytes > 0) requestHeaders.push(["content-length", String(request.requestBodyBytes)]);
  if (inbound) requestHeaders.push(["x-forwarded-proto", "http"]);

  let responseHeaders: Pairs | null = null;
  let responseTrailers: Pairs | null = null;
  if (request.responseCode !== 0) {
    responseHeaders = [[":status", String(request.responseCode)]];
    if (grpc) {
      responseHeaders.push(["content-type", "application/grpc"]);
      // A body-less gRPC answer (Envoy's local reply, or an error) is trailers-only: status in the headers.
      if (request.responseBodyBytes === 0) responseHeaders.push(["grpc-status", String(request.grpcStatus)]);
      else responseTrailers = [["grpc-status", String(request.grpcStatus)]];
    } else {
      responseHeaders.push(["content-type", request.responseCodeDetails === "via_upstream" ? "application/json" : "text/plain"]);
      responseHeaders.push(["content-length", String(request.responseBodyBytes)]);
    }
  }

  const mtls = request.mtls;
  const upstreamTls = mtls && request.upstreamConnected;
  const attributes: NonNullable<StreamInput["attributes"]> = {
    request: {
      time: timestamp(request.endNs - BigInt(durationNs)),
      duration: duration(durationNs),
      protocol: grpc || mtls ? "HTTP/2" : "HTTP/1.1",
      size: request.requestBodyBytes,
      total_size: request.requestHeaderBytes + request.requestBodyBytes,
    },
    response: {
      code_details: request.responseCodeDetails,
      flags: request.responseFlags,
      size: request.responseBodyBytes,
      total_size: request.responseHeaderBytes + request.responseBodyBytes,
    },
    xds: {
      cluster_name: inbound ? `inbound|${svc.port}||` : `outbound|${svc.port}||${svc.host}`,
      cluster_metadata: clusterMetadata(svc),
      route_name: inbound ? "default" : `${svc.host}:${svc.port}`,
      listener_direction: inbound ? TRAFFIC_DIRECTION.INBOUND : TRAFFIC_DIRECTION.OUTBOUND,
    },
  };
  if (request.responseCode !== 0) attributes.response!.code = request.responseCode;

  if (inbound) {
    attributes.source = { address: `${src.ip}:${clientPort}`, port: clientPort };
    attributes.destination = { address: `${dst.ip}:${svc.port}`, port: svc.port };
    attributes.connection = { id: uint(request.connection * 2 + 1), mtls };
    if (mtls) {
      Object.assign(attributes.connection, {
        requested_server_name: `outbound_.${svc.port}_._.${svc.host}`,
        tls_version: "TLSv1.3",
        uri_san_peer_certificate: src.principal!,
        uri_san_local_certificate: dst.principal!,
      });
    }
    attributes.upstream = { address: `${dst.ip}:${svc.port}`, port: svc.port };
    if (src.proxy === "sidecar" || src.proxy === "gateway") attributes.filter_state = { downstream_peer: peerObject(src) };
    if (request.endUser) {
      // Istio >= 1.21: the JWT payload as Envoy's jwt_authn filter stores it; the principal is `iss/sub`.
      const cut = request.endUser.lastIndexOf("/");
      attributes.metadata = jwtAuthnMetadata({ iss: request.endUser.slice(0, cut), sub: request.endUser.slice(cut + 1), aud: ["bookinfo"] });
    }
  } else {
    attributes.source = { address: `${src.ip}:${clientPort}`, port: clientPort };
    attributes.destination = { address: `${serviceIp(svc)}:${svc.port}`, port: svc.port };
    attributes.connection = { id: uint(request.connection * 2), mtls: false };
    if (request.upstreamConnected) {
      attributes.upstream = { address: `${dst.ip}:${svc.port}`, port: svc.port };
      if (upstreamTls) {
        Object.assign(attributes.upstream, {
          tls_version: "TLSv1.3",
          uri_san_peer_certificate: dst.principal!,
          uri_san_local_certificate: src.principal!,
        });
      }
      // Istio records the upstream peer from the upstream's response headers (peer_metadata encodeHeaders):
      // a timeout or a reset before the response leaves it unset.
      if (request.responseCodeDetails === "via_upstream" && request.responseCode !== 0) {
        attributes.filter_state = { upstream_peer: peerObject(dst) };
      }
    } else {
      attributes.upstream = {
        transport_failure_reason: request.responseFlags & 0x20 ? "delayed connect error: 111" : "",
      };
    }
  }

  const input: StreamInput = { requestHeaders, attributes };
  if (responseHeaders) input.responseHeaders = responseHeaders;
  if (responseTrailers) input.responseTrailers = responseTrailers;
  if (withBodies) {
    input.requestBody = filler(request.requestBodyBytes);
    input.responseBody = filler(request.responseBodyBytes);
  }
  return input;
}

const FILLER = new Uint8Array(1 << 16).fill(0x78);

/** `n` filler bytes (a view into one shared buffer when small enough). */
function filler(n: number): Uint8Array {
  return n <= FILLER.length ? FILLER.subarray(0, n) : new Uint8Array(n).fill(0x78);
}

/** A UUID-shaped x-request-id derived from the sequence number, so replays are byte-identical. */
function requestUuid(seq: number): string {
  const hex = seq.toString(16).padStart(12, "0");
  return `6d657368-6c6f-4f6b-8000-${hex.length > 12 ? hex.slice(-12) : hex}`;
}
