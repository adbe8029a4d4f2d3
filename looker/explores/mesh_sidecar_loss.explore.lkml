include: "/views/mesh_sidecar_loss.view.lkml"

explore: mesh_sidecar_loss {
  label: "Sidecar loss"
  description: "What the sidecars report they could not deliver or key: requests and windows dropped while the collector was unreachable, series keys folded into __overflow__; per minute, namespace, workload and pod."

  conditionally_filter: {
    filters: [mesh_sidecar_loss.reported_date: "7 days"]
    unless: [mesh_sidecar_loss.reported_raw, mesh_sidecar_loss.reported_minute, mesh_sidecar_loss.reported_hour,
      mesh_sidecar_loss.reported_week, mesh_sidecar_loss.reported_month]
  }

  # The sidecar's namespace: a team sees the loss of its own workloads, the traffic of which it sees too.
  access_filter: {
    field: mesh_sidecar_loss.namespace
    user_attribute: meshlook_allowed_namespaces
  }
}
