include: "/views/mesh_traffic.view.lkml"

explore: mesh_traffic {
  label: "Mesh traffic"
  description: "Requests, errors, bytes and latency percentiles per minute, by reporter, caller identity, workload, service and response. Percentiles merge the latency sketches of whatever you group by."

  # Sidecar-to-sidecar requests are counted by both proxies; defaulting to one reporter keeps totals
  # right unless the analyst deliberately asks for the other side.
  always_filter: {
    filters: [mesh_traffic.reporter: "destination"]
  }

  # A default time bound so a first query does not scan all history; any time filter replaces it.
  conditionally_filter: {
    filters: [mesh_traffic.traffic_date: "7 days"]
    unless: [mesh_traffic.traffic_raw, mesh_traffic.traffic_minute, mesh_traffic.traffic_hour,
      mesh_traffic.traffic_week, mesh_traffic.traffic_month]
  }

  access_filter: {
    field: mesh_traffic.destination_namespace
    user_attribute: meshlook_allowed_namespaces
  }
}
