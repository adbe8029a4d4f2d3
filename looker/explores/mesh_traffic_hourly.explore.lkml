include: "/views/mesh_traffic_hourly.view.lkml"

explore: mesh_traffic_hourly {
  label: "Mesh traffic (hourly)"
  description: "The Mesh traffic explore at hour grain, for ranges of days to months: the same dimensions and measures, read from the hourly rollup (plus the minutes of hours not rolled up yet), so long ranges stay fast and percentiles stay exactly those of the minute explore."

  always_filter: {
    filters: [mesh_traffic_hourly.reporter: "destination"]
  }

  # A longer default than the minute explore: long ranges are what this explore is for.
  conditionally_filter: {
    filters: [mesh_traffic_hourly.traffic_date: "30 days"]
    unless: [mesh_traffic_hourly.traffic_raw, mesh_traffic_hourly.traffic_hour,
      mesh_traffic_hourly.traffic_week, mesh_traffic_hourly.traffic_month]
  }

  access_filter: {
    field: mesh_traffic_hourly.destination_namespace
    user_attribute: meshlook_allowed_namespaces
  }
}
