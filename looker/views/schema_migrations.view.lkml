# The collector's migration record meshlook_schema_version: which numbered schema changes the warehouse
# has. Lets an operator confirm the warehouse is at the schema this LookML was checked against.
view: schema_migrations {
  sql_table_name: @{DATABASE}.@{SCHEMA}.meshlook_schema_version ;;
  label: "Schema migrations"

  dimension: version {
    type: number
    primary_key: yes
    description: "Number of the migration (shared/schema.ts MIGRATIONS)."
    sql: ${TABLE}.version ;;
    value_format_name: id
  }

  dimension: name {
    type: string
    description: "What the migration changed."
    sql: ${TABLE}.name ;;
  }

  dimension_group: applied {
    type: time
    label: "Applied (UTC)"
    description: "When the collector applied the migration to this warehouse."
    timeframes: [raw, time, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.applied_at ;;
  }

  measure: latest_version {
    type: max
    description: "Highest migration applied: the warehouse's schema version."
    sql: ${TABLE}.version ;;
    value_format_name: id
  }
}
