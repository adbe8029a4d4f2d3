include: "/views/mesh_outlier.view.lkml"

explore: mesh_outlier {
  label: "Outliers"
  description: "What changed: identities and services whose error rate, latency or traffic departs from their own baseline, new callers and plaintext where mTLS was the rule. Each finding links to the mesh traffic explore, filtered to it."

  access_filter: {
    field: mesh_outlier.destination_namespace
    user_attribute: meshlook_allowed_namespaces
  }
}
