# Outlier findings (mesh_outlier, written by the collector after its loads; docs/outliers.md): one row
# per finding — a caller identity → service edge or a whole service whose error rate, latency or traffic
# departs from its own baseline, a caller never seen before, or plaintext where mTLS was the rule.
view: mesh_outlier {
  sql_table_name: @{DATABASE}.@{SCHEMA}.mesh_outlier ;;
  label: "Outliers"

  dimension: finding_id {
    type: string
    primary_key: yes
    label: "Finding ID"
    description: "Stable identity of the finding: grain, kind, caller identity and service. Repeated detections update the same finding."
    sql: ${TABLE}.finding_id ;;
  }

  dimension: kind {
    type: string
    description: "error_rate, latency, traffic_drop, traffic_surge, new_edge (a caller identity never seen calling the service) or plaintext (plaintext calls to a service reached only over mTLS before)."
    sql: ${TABLE}.kind ;;
  }

  dimension: grain {
    type: string
    description: "edge: one caller identity calling one service; service: all callers of the service together."
    sql: ${TABLE}.grain ;;
  }

  dimension: source_principal {
    type: string
    label: "Caller Identity"
    description: "SPIFFE ID of the caller at the edge grain; empty for service-wide findings."
    sql: ${TABLE}.source_principal ;;
  }

  dimension: destination_service {
    type: string
    description: "Host of the called service."
    sql: ${TABLE}.destination_service ;;
  }

  dimension: destination_namespace {
    type: string
    description: "Namespace of the called service, read from its host (name.namespace.svc…); what namespace access rules match."
    sql: SPLIT_PART(${TABLE}.destination_service, '.', 2) ;;
  }

  dimension: status {
    type: string
    description: "open: found by the collector's last detection run; resolved: no longer found."
    sql: ${TABLE}.status ;;
  }

  dimension: is_open {
    type: yesno
    description: "The last detection run found this finding."
    sql: ${TABLE}.status = 'open' ;;
  }

  dimension: score {
    type: number
    description: "How far past its threshold the series is: log2 of a conservative ratio (recent vs baseline). Higher ranks first; comparable across kinds only roughly."
    sql: ${TABLE}.score ;;
    value_format_name: decimal_2
  }

  dimension: summary {
    type: string
    description: "One-line evidence: recent value and volume against the baseline's."
    sql: ${TABLE}.summary ;;
  }

  dimension_group: recent_start {
    type: time
    label: "Recent Window Start (UTC)"
    description: "Start of the recent window the finding was measured on."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.recent_start ;;
  }

  dimension_group: recent_end {
    type: time
    label: "Recent Window End (UTC)"
    description: "End (exclusive) of the recent window."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.recent_end ;;
  }

  dimension_group: baseline_start {
    type: time
    label: "Baseline Start (UTC)"
    description: "Start of the trailing baseline, which ends where the recent window starts."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.baseline_start ;;
  }

  dimension: recent_requests {
    type: number
    group_label: "Evidence"
    description: "Requests of the series in the recent window."
    sql: ${TABLE}.recent_requests ;;
  }

  dimension: baseline_requests {
    type: number
    group_label: "Evidence"
    description: "Requests of the series in the baseline."
    sql: ${TABLE}.baseline_requests ;;
  }

  dimension: recent_errors {
    type: number
    group_label: "Evidence"
    description: "Errors of the series in the recent window."
    sql: ${TABLE}.recent_errors ;;
  }

  dimension: baseline_errors {
    type: number
    group_label: "Evidence"
    description: "Errors of the series in the baseline."
    sql: ${TABLE}.baseline_errors ;;
  }

  dimension: recent_value {
    type: number
    group_label: "Evidence"
    description: "The compared measure in the recent window: error rate (error_rate), p99 µs (latency), requests (traffic, new_edge), plaintext requests (plaintext)."
    sql: ${TABLE}.recent_value ;;
  }

  dimension: baseline_value {
    type: number
    group_label: "Evidence"
    description: "The same measure in the baseline; for traffic kinds, the requests expected in a window as long as the recent one."
    sql: ${TABLE}.baseline_value ;;
  }

  dimension: recent_p50_ms {
    type: number
    group_label: "Evidence"
    description: "Median latency in the recent window, ms (merged sketches)."
    sql: ${TABLE}.recent_p50_us / 1000.0 ;;
    value_format_name: decimal_2
  }

  dimension: baseline_p50_ms {
    type: number
    group_label: "Evidence"
    description: "Median latency in the baseline, ms."
    sql: ${TABLE}.baseline_p50_us / 1000.0 ;;
    value_format_name: decimal_2
  }

  dimension: recent_p99_ms {
    type: number
    group_label: "Evidence"
    description: "p99 latency in the recent window, ms."
    sql: ${TABLE}.recent_p99_us / 1000.0 ;;
    value_format_name: decimal_2
  }

  dimension: baseline_p99_ms {
    type: number
    group_label: "Evidence"
    description: "p99 latency in the baseline, ms."
    sql: ${TABLE}.baseline_p99_us / 1000.0 ;;
    value_format_name: decimal_2
  }

  dimension: explore_url {
    type: string
    label: "Explore"
    description: "The mesh traffic explore, filtered to this series and time range: the query that shows the finding."
    sql: ${TABLE}.explore_url ;;
    link: {
      label: "Show the traffic behind this finding"
      url: "{{ value }}"
    }
  }

  dimension_group: first_detected {
    type: time
    label: "First Detected (UTC)"
    description: "When this episode of the finding was first detected."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.first_detected_at ;;
  }

  dimension_group: last_detected {
    type: time
    label: "Last Detected (UTC)"
    description: "The last detection run that found it."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.last_detected_at ;;
  }

  dimension_group: resolved {
    type: time
    label: "Resolved (UTC)"
    description: "The first detection run that no longer found it; empty while open."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.resolved_at ;;
  }

  dimension_group: notified {
    type: time
    label: "Notified (UTC)"
    description: "Last webhook delivery of the finding; empty if never sent."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.notified_at ;;
  }

  measure: findings {
    type: count
    description: "Number of findings."
  }

  measure: max_score {
    type: max
    description: "Highest score among the findings."
    sql: ${score} ;;
    value_format_name: decimal_2
  }
}
