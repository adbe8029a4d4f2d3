// The series dimensions, in the order of docs/schema.md (the fact key minus `minute`), as portable
// AssemblyScript: the filter compiles this list in and Node code imports it as TypeScript.
// test/filter/dimensions.test.ts pins it to the warehouse columns of shared/schema.ts.

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
