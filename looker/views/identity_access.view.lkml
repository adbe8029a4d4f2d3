# Who calls what: one row per (reporter, caller identity, callee, security policy) with the first and
# last minute that pair was seen. Derived from the fact table so it can never disagree with it; the
# "Observed" filter limits the minutes scanned (and so the meaning of first/last seen).
view: identity_access {
  label: "Identity access"

  derived_table: {
    sql:
      SELECT
        reporter,
        source_principal,
        source_workload,
        source_namespace,
        destination_principal,
        destination_service,
        destination_workload,
        destination_namespace,
        connection_security_policy,
        MIN(minute) AS first_seen,
        MAX(minute) AS last_seen,
        SUM(requests) AS requests,
        SUM(errors) AS errors
      FROM @{DATABASE}.@{SCHEMA}.mesh_traffic_minute
      WHERE {% condition observed %} minute {% endcondition %}
      GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
      ;;
  }

  filter: observed {
    type: date_time
    description: "Only minutes in this window are considered; first and last seen are within it. Leave empty to consider every loaded minute."
  }

  dimension: reporter {
    type: string
    description: "Which proxy counted the calls: 'destination' (server side) or 'source' (client side)."
    sql: ${TABLE}.reporter ;;
  }

  dimension: source_principal {
    type: string
    group_label: "Caller"
    label: "Caller Identity"
    description: "SPIFFE ID the caller presented over mTLS; 'unknown' for plaintext callers."
    sql: ${TABLE}.source_principal ;;
  }

  dimension: source_workload {
    type: string
    group_label: "Caller"
    label: "Caller Workload"
    description: "Calling workload name."
    sql: ${TABLE}.source_workload ;;
  }

  dimension: source_namespace {
    type: string
    group_label: "Caller"
    label: "Caller Namespace"
    description: "Calling workload namespace."
    sql: ${TABLE}.source_namespace ;;
  }

  dimension: destination_principal {
    type: string
    group_label: "Callee"
    label: "Callee Identity"
    description: "SPIFFE ID of the serving workload."
    sql: ${TABLE}.destination_principal ;;
  }

  dimension: destination_service {
    type: string
    group_label: "Callee"
    label: "Callee Service"
    description: "Host of the called service."
    sql: ${TABLE}.destination_service ;;
  }

  dimension: destination_workload {
    type: string
    group_label: "Callee"
    label: "Callee Workload"
    description: "Serving workload name."
    sql: ${TABLE}.destination_workload ;;
  }

  dimension: destination_namespace {
    type: string
    group_label: "Callee"
    label: "Callee Namespace"
    description: "Serving workload namespace; rows are restricted to the namespaces in meshlook_allowed_namespaces."
    sql: ${TABLE}.destination_namespace ;;
  }

  dimension: connection_security_policy {
    type: string
    description: "'mutual_tls', 'none' (plaintext) or 'unknown'."
    sql: ${TABLE}.connection_security_policy ;;
  }

  dimension: is_plaintext {
    type: yesno
    description: "Yes when these calls were not made over mutual TLS."
    sql: ${connection_security_policy} <> 'mutual_tls' ;;
  }

  dimension_group: first_seen {
    type: time
    label: "First Seen (UTC)"
    description: "First minute in the observed window in which this caller called this callee with this security policy."
    timeframes: [raw, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.first_seen ;;
  }

  dimension_group: last_seen {
    type: time
    label: "Last Seen (UTC)"
    description: "Last minute in the observed window in which this caller called this callee with this security policy."
    timeframes: [raw, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.last_seen ;;
  }

  measure: calls {
    type: sum
    description: "Requests from the caller to the callee in the observed window."
    sql: ${TABLE}.requests ;;
    value_format_name: decimal_0
  }

  measure: errors {
    type: sum
    description: "Of those requests, the ones counted as errors."
    sql: ${TABLE}.errors ;;
    value_format_name: decimal_0
  }

  measure: mtls_share {
    type: number
    label: "mTLS Share"
    description: "Share of calls made over mutual TLS."
    sql: 1.0 * SUM(CASE WHEN ${connection_security_policy} = 'mutual_tls' THEN ${TABLE}.requests ELSE 0 END) / NULLIF(${calls}, 0) ;;
    value_format_name: percent_1
  }

  measure: callers {
    type: count_distinct
    label: "Caller Identities"
    description: "Distinct caller SPIFFE IDs ('unknown' counts once)."
    sql: ${source_principal} ;;
  }

  measure: plaintext_callers {
    type: count_distinct
    description: "Distinct calling workloads (namespace/workload) that made plaintext calls."
    sql: CASE WHEN ${connection_security_policy} <> 'mutual_tls' THEN ${source_namespace} || '/' || ${source_workload} END ;;
  }

  measure: first_seen_at {
    type: string
    label: "First Seen At (UTC)"
    description: "Earliest first-seen minute across the grouped rows."
    sql: TO_CHAR(MIN(${TABLE}.first_seen), 'YYYY-MM-DD HH24:MI') ;;
  }

  measure: last_seen_at {
    type: string
    label: "Last Seen At (UTC)"
    description: "Latest last-seen minute across the grouped rows."
    sql: TO_CHAR(MAX(${TABLE}.last_seen), 'YYYY-MM-DD HH24:MI') ;;
  }
}
