include: "/views/identity_access.view.lkml"

explore: identity_access {
  label: "Identity access"
  description: "Which caller identities (SPIFFE principals) call which services, over mTLS or plaintext, with first and last seen."

  always_filter: {
    filters: [identity_access.reporter: "destination", identity_access.observed: "30 days"]
  }

  access_filter: {
    field: identity_access.destination_namespace
    user_attribute: meshlook_allowed_namespaces
  }
}
