# The fact table mesh_traffic_minute (docs/schema.md): one row per (minute, series) per load.
# A series can have several rows for the same minute (late summaries add rows), so every measure
# aggregates, and latency percentiles merge the stored sketches instead of combining per-row numbers.
include: "/views/mesh_traffic_fields.view.lkml"

view: mesh_traffic {
  extends: [mesh_traffic_fields]
  sql_table_name: @{DATABASE}.@{SCHEMA}.mesh_traffic_minute ;;
  label: "Mesh traffic"

  # ---------------------------------------------------------------- time

  dimension_group: traffic {
    type: time
    label: "Traffic (UTC)"
    description: "Start of the UTC minute the requests ended in. The finest grain is one minute."
    timeframes: [raw, minute, hour, date, week, month, hour_of_day]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.minute ;;
  }

  # Hidden: the span, in seconds, from the first to the end of the last minute with traffic in the
  # row's group. Epoch-second arithmetic reads the same on Snowflake and elsewhere (DATEDIFF does not).
  measure: window_seconds {
    type: number
    hidden: yes
    description: "Seconds from the start of the first to the end of the last minute with traffic in the group."
    sql: (DATE_PART(epoch_second, MAX(${TABLE}.minute)) - DATE_PART(epoch_second, MIN(${TABLE}.minute)) + 60) ;;
  }
}
