// The series dimensions, in the order of docs/schema.md (the fact key minus `minute`). Indices are
// positions in a series key; `response_code` is the only integer dimension.

export const DIMENSION_NAMES: Array<string> = [
  "reporter",
  "source_principal",
  "source_workload",
  "source_namespace",
  "source_canonical_service",
  "source_canonical_revision",
  "source_cluster",
  "destination_principal",
  "destination_service",
  "destination_workload",
  "destination_namespace",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_cluster",
  "request_protocol",
  "response_code",
  "grpc_status",
  "response_flags",
  "connection_security_policy",
  "end_user_principal",
];

export const enum Dim {
  Reporter = 0,
  SourcePrincipal = 1,
  SourceWorkload = 2,
  SourceNamespace = 3,
  SourceCanonicalService = 4,
  SourceCanonicalRevision = 5,
  SourceCluster = 6,
  DestinationPrincipal = 7,
  DestinationService = 8,
  DestinationWorkload = 9,
  DestinationNamespace = 10,
  DestinationCanonicalService = 11,
  DestinationCanonicalRevision = 12,
  DestinationCluster = 13,
  RequestProtocol = 14,
  ResponseCode = 15,
  GrpcStatus = 16,
  ResponseFlags = 17,
  ConnectionSecurityPolicy = 18,
  EndUserPrincipal = 19,
}

export const DIM_COUNT = 20;

/** Sentinels of docs/schema.md. */
export const UNKNOWN = "unknown";
export const NONE = "-";
export const OVERFLOW = "__overflow__";
