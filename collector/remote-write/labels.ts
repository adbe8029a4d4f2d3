// The labels of the exported series (docs/prometheus.md).
import type { Dimension } from "../../shared/schema.ts";

/**
 * Label name of each dimension: Istio's standard metrics name (istio.io "Istio Standard Metrics", labels
 * of istio_requests_total) where it has one; end_user_principal has none and keeps its own name.
 */
export const LABEL_OF: Record<Dimension, string> = {
  reporter: "reporter",
  source_principal: "source_principal",
  source_workload: "source_workload",
  source_namespace: "source_workload_namespace",
  source_canonical_service: "source_canonical_service",
  source_canonical_revision: "source_canonical_revision",
  source_cluster: "source_cluster",
  destination_principal: "destination_principal",
  destination_service: "destination_service",
  destination_workload: "destination_workload",
  destination_namespace: "destination_workload_namespace",
  destination_canonical_service: "destination_canonical_service",
  destination_canonical_revision: "destination_canonical_revision",
  destination_cluster: "destination_cluster",
  request_protocol: "request_protocol",
  response_code: "response_code",
  grpc_status: "grpc_response_status",
  response_flags: "response_flags",
  connection_security_policy: "connection_security_policy",
  end_user_principal: "end_user_principal",
};

/** The label naming the writer, so replicas (and their restarts) never write into each other's series. */
export const INSTANCE_LABEL = "meshlook_collector";

/** Every label name the exporter sets itself, besides `__name__`. */
export const OWN_LABELS: readonly string[] = [...Object.values(LABEL_OF), INSTANCE_LABEL];
