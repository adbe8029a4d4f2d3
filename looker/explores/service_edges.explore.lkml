include: "/views/service_edges.view.lkml"

explore: service_edges {
  label: "Service edges"
  description: "The call graph: one row per caller -> callee edge at canonical-service grain, with traffic, error and latency measures per edge."
  fields: [service_edges.edge_fields*]

  always_filter: {
    filters: [service_edges.reporter: "destination"]
  }

  conditionally_filter: {
    filters: [service_edges.traffic_date: "7 days"]
    unless: [service_edges.traffic_raw, service_edges.traffic_minute, service_edges.traffic_hour,
      service_edges.traffic_week, service_edges.traffic_month]
  }

  access_filter: {
    field: service_edges.destination_namespace
    user_attribute: meshlook_allowed_namespaces
  }
}
