# Mesh traffic at hour grain, for long ranges: the hourly rollup mesh_traffic_hour (docs/schema.md),
# completed with the minute rows of every hour the rollup does not cover exactly yet. An hour is read
# from the rollup when its hourly rows were built from at least as many minute rows as the minute table
# holds for it now (minute_rows); otherwise — still open, not compacted yet, or reached by a late summary
# since — its minute rows are read instead. Either way every request is counted once and the sketches
# merge exactly, so totals and percentiles equal the minute explore's for the same hours.
include: "/views/mesh_traffic_fields.view.lkml"

view: mesh_traffic_hourly {
  extends: [mesh_traffic_fields]
  label: "Mesh traffic (hourly)"

  derived_table: {
    sql:
      WITH current_hours AS (
        SELECT h.hour
        FROM (SELECT hour, SUM(minute_rows) AS minute_rows FROM @{DATABASE}.@{SCHEMA}.mesh_traffic_hour GROUP BY hour) AS h
        LEFT JOIN (
          SELECT DATE_TRUNC('hour', minute) AS hour, COUNT(*) AS minute_rows
          FROM @{DATABASE}.@{SCHEMA}.mesh_traffic_minute GROUP BY DATE_TRUNC('hour', minute)
        ) AS m ON m.hour = h.hour
        WHERE m.minute_rows IS NULL OR m.minute_rows <= h.minute_rows
      )
      SELECT hour,
        reporter, source_principal, source_workload, source_namespace, source_canonical_service,
        source_canonical_revision, source_cluster, destination_principal, destination_service,
        destination_workload, destination_namespace, destination_canonical_service,
        destination_canonical_revision, destination_cluster, request_protocol, response_code, grpc_status,
        response_flags, connection_security_policy, end_user_principal,
        requests, errors, request_bytes, response_bytes, latency_sum_us, latency_min_us, latency_max_us, latency_sketch, compacted_at AS loaded_at
      FROM @{DATABASE}.@{SCHEMA}.mesh_traffic_hour
      WHERE hour IN (SELECT hour FROM current_hours)
      UNION ALL
      SELECT DATE_TRUNC('hour', minute) AS hour,
        reporter, source_principal, source_workload, source_namespace, source_canonical_service,
        source_canonical_revision, source_cluster, destination_principal, destination_service,
        destination_workload, destination_namespace, destination_canonical_service,
        destination_canonical_revision, destination_cluster, request_protocol, response_code, grpc_status,
        response_flags, connection_security_policy, end_user_principal,
        requests, errors, request_bytes, response_bytes, latency_sum_us, latency_min_us, latency_max_us, latency_sketch, loaded_at
      FROM @{DATABASE}.@{SCHEMA}.mesh_traffic_minute
      WHERE DATE_TRUNC('hour', minute) NOT IN (SELECT hour FROM current_hours)
      ;;
  }

  # ---------------------------------------------------------------- time

  dimension_group: traffic {
    type: time
    label: "Traffic (UTC)"
    description: "Start of the UTC hour the requests ended in. The finest grain is one hour; use the Mesh traffic explore for minutes."
    timeframes: [raw, hour, date, week, month]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.hour ;;
  }

  # Hidden: as in mesh_traffic, at hour grain.
  measure: window_seconds {
    type: number
    hidden: yes
    description: "Seconds from the start of the first to the end of the last hour with traffic in the group."
    sql: (DATE_PART(epoch_second, MAX(${TABLE}.hour)) - DATE_PART(epoch_second, MIN(${TABLE}.hour)) + 3600) ;;
  }
}
