import { DIMENSIONS, type Dimension } from "../../shared/schema.ts";
import { flagsToString } from "./flags.ts";
import type { SimRequest } from "./generator.ts";

export type Reporter = "source" | "destination";

export { DIMENSIONS, type Dimension };

export type SeriesDims = { [K in Dimension]: K extends "response_code" ? number : string } & { reporter: Reporter };

export const UNKNOWN = "unknown";

export interface SeriesOptions {
  /** Mirrors the filter's `end_user_principal` setting; when false the dimension is always `unknown`. */
  endUserPrincipal?: boolean;
  /**
   * Mirrors the filter's `dimensions` setting: a dimension left out reads `unknown` (`response_code` 0).
   * `reporter` is always kept and `end_user_principal` follows `endUserPrincipal`. Default: all.
   */
  dimensions?: readonly Dimension[];
}

/**
 * What a correct filter reports for `request` as seen by `reporter`, following Istio's standard-metrics
 * semantics (istio/proxy `istio_stats`):
 *
 * - destination (inbound): the peer principal when the hop is mTLS, else `unknown`; source workload labels
 *   from the downstream peer metadata, which only Envoy peers (sidecar, gateway) exchange; its own labels;
 *   its own principal when mTLS; `connection_security_policy` `mutual_tls` or `none`; the end-user
 *   principal (JWTs are validated on the inbound side).
 * - source (outbound): its own labels; principals from the upstream TLS session, so `unknown` when no
 *   upstream connection was made (UH, UF) or the hop is plaintext; destination labels from the upstream peer
 *   metadata, `unknown` without a connection; `connection_security_policy` `unknown` (a client does not
 *   learn the server's policy); end user `unknown`.
 * - both: `destination_service` is the service host; `request_protocol` `grpc` for gRPC else `http`;
 *   `grpc_status` decimal or `-`; `response_flags` Envoy's short form or `-`.
 */
export function expectedSeries(request: SimRequest, reporter: Reporter, options: SeriesOptions = {}): SeriesDims {
  const dims = allDimensions(request, reporter, options);
  if (options.dimensions) {
    const kept = new Set<Dimension>(options.dimensions);
    for (const d of DIMENSIONS) {
      if (d === "reporter" || d === "end_user_principal" || kept.has(d)) continue;
      if (d === "response_code") dims.response_code = 0;
      else dims[d] = UNKNOWN;
    }
  }
  return dims;
}

function allDimensions(request: SimRequest, reporter: Reporter, options: SeriesOptions): SeriesDims {
  const src = request.source;
  const dst = request.destination;
  const inbound = reporter === "destination";
  const knowsSource = inbound ? src.proxy === "sidecar" || src.proxy === "gateway" : true;
  // The upstream's certificate comes with the connection; its workload labels only with its response
  // headers (Istio's peer_metadata filter records upstream_peer in encodeHeaders): a timeout (UT) or a
  // reset before the response (DC) leaves them unknown at the source.
  const connected = inbound || request.upstreamConnected;
  const knowsDestination = inbound || (request.responseCodeDetails === "via_upstream" && request.responseCode !== 0);
  const tls = request.mtls && connected;
  return {
    reporter,
    source_principal: tls && src.principal ? src.principal : UNKNOWN,
    source_workload: knowsSource ? src.name : UNKNOWN,
    source_namespace: knowsSource ? src.namespace : UNKNOWN,
    source_canonical_service: knowsSource ? src.canonicalService : UNKNOWN,
    source_canonical_revision: knowsSource ? src.canonicalRevision : UNKNOWN,
    source_cluster: knowsSource ? src.cluster : UNKNOWN,
    destination_principal: tls && dst.principal ? dst.principal : UNKNOWN,
    destination_service: request.service.host,
    destination_workload: knowsDestination ? dst.name : UNKNOWN,
    destination_namespace: knowsDestination ? dst.namespace : UNKNOWN,
    destination_canonical_service: knowsDestination ? dst.canonicalService : UNKNOWN,
    destination_canonical_revision: knowsDestination ? dst.canonicalRevision : UNKNOWN,
    destination_cluster: knowsDestination ? dst.cluster : UNKNOWN,
    request_protocol: request.protocol,
    response_code: request.responseCode,
    grpc_status: request.grpcStatus < 0 ? "-" : String(request.grpcStatus),
    response_flags: flagsToString(request.responseFlags),
    connection_security_policy: inbound ? (request.mtls ? "mutual_tls" : "none") : UNKNOWN,
    end_user_principal: inbound && options.endUserPrincipal && request.endUser ? request.endUser : UNKNOWN,
  };
}

/** A stable string for a series, usable as a map key and comparable with warehouse rows. */
export function seriesKey(dims: SeriesDims): string {
  let key = "";
  for (const d of DIMENSIONS) key += (key ? "\u0001" : "") + String(dims[d]);
  return key;
}
