include: "/views/mesh_loads.view.lkml"

explore: mesh_loads {
  label: "Collector loads"
  description: "Operator view of the collector's load ledger: freshness, lag, reporting sidecars."
  # Producer ids name pods across every namespace, so this stays with the mesh operators.
  required_access_grants: [can_see_collector_loads]
}
