// What Istio's standard metrics would cost on the wire for the same traffic: each sidecar's Envoy exposes
// istio_requests_total and three histograms (duration, request and response size) with Istio's labels,
// bucketed with Envoy's default buckets, scraped as Prometheus text every interval. Rendered with
// prom-client, so the text is the exposition format byte for byte; and Prometheus' histogram_quantile
// interpolation over those buckets, for the quantile-error comparison.
import { gzipSync } from "node:zlib";
import { Counter, Histogram, Registry } from "prom-client";
import type { SeriesDims } from "../../sim/traffic/index.ts";

/** Envoy's default histogram bucket bounds (ms for durations), `envoy.config.metrics.v3.HistogramBucketSettings` defaults. */
export const ENVOY_DEFAULT_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

const LABELS = [
  "reporter",
  "source_workload",
  "source_workload_namespace",
  "source_principal",
  "source_app",
  "source_version",
  "source_canonical_service",
  "source_canonical_revision",
  "source_cluster",
  "destination_workload",
  "destination_workload_namespace",
  "destination_principal",
  "destination_app",
  "destination_version",
  "destination_service",
  "destination_service_name",
  "destination_service_namespace",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_cluster",
  "request_protocol",
  "response_code",
  "grpc_response_status",
  "response_flags",
  "connection_security_policy",
] as const;

/** Istio's label values for a series (app/version follow the canonical service/revision labels). */
export function istioLabels(d: SeriesDims): Record<(typeof LABELS)[number], string> {
  const [serviceName, serviceNamespace] = d.destination_service.split(".");
  return {
    reporter: d.reporter,
    source_workload: d.source_workload,
    source_workload_namespace: d.source_namespace,
    source_principal: d.source_principal,
    source_app: d.source_canonical_service,
    source_version: d.source_canonical_revision,
    source_canonical_service: d.source_canonical_service,
    source_canonical_revision: d.source_canonical_revision,
    source_cluster: d.source_cluster,
    destination_workload: d.destination_workload,
    destination_workload_namespace: d.destination_namespace,
    destination_principal: d.destination_principal,
    destination_app: d.destination_canonical_service,
    destination_version: d.destination_canonical_revision,
    destination_service: d.destination_service,
    destination_service_name: serviceName ?? "unknown",
    destination_service_namespace: serviceNamespace ?? "unknown",
    destination_canonical_service: d.destination_canonical_service,
    destination_canonical_revision: d.destination_canonical_revision,
    destination_cluster: d.destination_cluster,
    request_protocol: d.request_protocol,
    response_code: String(d.response_code),
    grpc_response_status: d.grpc_status === "-" ? "" : d.grpc_status,
    response_flags: d.response_flags,
    connection_security_policy: d.connection_security_policy,
  };
}

/** One sidecar's Istio stats. */
export class IstioStats {
  private readonly registry = new Registry();
  private readonly requests = new Counter({ name: "istio_requests_total", help: "requests", labelNames: LABELS, registers: [this.registry] });
  private readonly duration = this.histogram("istio_request_duration_milliseconds");
  private readonly requestBytes = this.histogram("istio_request_bytes");
  private readonly responseBytes = this.histogram("istio_response_bytes");

  private histogram(name: string) {
    return new Histogram({ name, help: name, labelNames: LABELS, buckets: ENVOY_DEFAULT_BUCKETS, registers: [this.registry] });
  }

  record(dims: SeriesDims, latencyUs: number, requestBytes: number, responseBytes: number): void {
    const labels = istioLabels(dims);
    this.requests.inc(labels);
    this.duration.observe(labels, latencyUs / 1000);
    this.requestBytes.observe(labels, requestBytes);
    this.responseBytes.observe(labels, responseBytes);
  }

  /** The exposition a scrape would read now. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** One scrape: the exposition text's size, plain and gzip-compressed. */
  async scrape(): Promise<{ bytes: number; gzipBytes: number }> {
    const text = await this.text();
    return { bytes: Buffer.byteLength(text), gzipBytes: gzipSync(text).length };
  }
}

/**
 * Prometheus `histogram_quantile` over cumulative buckets built from raw values: linear interpolation
 * inside the bucket holding rank q·n (lower bound 0 for the first bucket); in the +Inf bucket, the
 * highest finite bound.
 */
export function histogramQuantile(valuesMs: ArrayLike<number>, q: number, bounds: readonly number[] = ENVOY_DEFAULT_BUCKETS): number {
  const counts = new Array<number>(bounds.length + 1).fill(0);
  for (let i = 0; i < valuesMs.length; i++) {
    const v = valuesMs[i];
    let b = 0;
    while (b < bounds.length && v > bounds[b]) b++;
    counts[b]++;
  }
  const rank = q * valuesMs.length;
  let cumulative = 0;
  for (let b = 0; b < bounds.length; b++) {
    if (cumulative + counts[b] >= rank) {
      const lower = b === 0 ? 0 : bounds[b - 1];
      return lower + ((bounds[b] - lower) * (rank - cumulative)) / counts[b];
    }
    cumulative += counts[b];
  }
  return bounds[bounds.length - 1];
}
