# Service-mesh traffic as reported by the meshlook sidecar filter, one row per (minute, series).
connection: "@{CONNECTION_NAME}"
label: "Meshlook"

include: "/views/*.view.lkml"
include: "/explores/*.explore.lkml"
include: "/dashboards/*.dashboard"
include: "/tests/*.lkml"

# The collector appends to the ledger on every load, so a new MAX(loaded_at) is the exact moment
# cached results go stale. The ledger is far smaller than the fact table, which keeps the trigger
# query cheap when Looker polls it.
datagroup: meshlook_load {
  label: "meshlook load"
  description: "Invalidates cached query results whenever the collector loads new summaries."
  sql_trigger: SELECT MAX(loaded_at) FROM @{DATABASE}.@{SCHEMA}.mesh_load_ledger ;;
  max_cache_age: "@{MAX_CACHE_AGE}"
}

persist_with: meshlook_load

# Governed access (see README.md, "Access"). Principals of end users come from JWTs and identify
# people, so they stay hidden unless an administrator grants this attribute.
access_grant: can_see_end_users {
  user_attribute: meshlook_can_see_end_users
  allowed_values: ["yes"]
}

# The load ledger names every reporting pod in the mesh: operators only.
access_grant: can_see_collector_loads {
  user_attribute: meshlook_operator
  allowed_values: ["yes"]
}
