include: "/views/schema_migrations.view.lkml"

explore: schema_migrations {
  label: "Schema migrations"
  description: "Operator view of the numbered schema migrations applied to the warehouse."
  required_access_grants: [can_see_collector_loads]
}
