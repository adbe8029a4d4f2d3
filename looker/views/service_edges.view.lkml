# Service-to-service edges: the mesh traffic fact table seen as a call graph. It extends mesh_traffic
# so an edge's measures are exactly the traffic measures, restricted to the fields that describe who
# calls whom (set edge_fields).
include: "/views/mesh_traffic.view.lkml"

view: service_edges {
  extends: [mesh_traffic]
  label: "Service edges"

  dimension: source_node {
    type: string
    group_label: "Edge"
    label: "Caller"
    description: "Calling canonical service, qualified by namespace: '<namespace>/<canonical service>'."
    sql: ${source_namespace} || '/' || ${source_canonical_service} ;;
  }

  dimension: destination_node {
    type: string
    group_label: "Edge"
    label: "Callee"
    description: "Called canonical service, qualified by namespace: '<namespace>/<canonical service>'."
    sql: ${destination_namespace} || '/' || ${destination_canonical_service} ;;
  }

  dimension: edge {
    type: string
    group_label: "Edge"
    description: "One directed edge of the call graph: '<caller> -> <callee>' at canonical-service grain."
    sql: ${source_node} || ' -> ' || ${destination_node} ;;
  }

  measure: edges {
    type: count_distinct
    group_label: "Edge"
    description: "Number of distinct caller -> callee edges with traffic."
    sql: ${edge} ;;
  }

  set: edge_fields {
    fields: [
      traffic_raw, traffic_minute, traffic_hour, traffic_date, traffic_week, traffic_month, traffic_hour_of_day,
      reporter, source_node, destination_node, edge,
      source_namespace, source_canonical_service, source_workload,
      destination_namespace, destination_canonical_service, destination_service, destination_workload,
      request_protocol, connection_security_policy, is_mtls,
      requests, requests_per_second, errors, error_rate, success_rate, request_bytes, response_bytes,
      mtls_requests, mtls_share, latency_mean_ms, latency_p50_ms, latency_p90_ms, latency_p95_ms,
      latency_p99_ms, latency_p999_ms, edges,
      # hidden, but referenced by requests_per_second and latency_mean_ms: an explore's fields: set must
      # include every field its measures reference, or Looker refuses the query
      window_seconds, latency_sum_us
    ]
  }
}
