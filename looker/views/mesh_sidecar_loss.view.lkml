# mesh_sidecar_loss (docs/schema.md): one row per loaded summary whose sidecar reported a loss — requests
# in windows it dropped because the collector stayed unreachable beyond its max_pending_bytes budget, and
# series keys its cardinality guard folded into the __overflow__ series. Explains gaps in Mesh traffic.
view: mesh_sidecar_loss {
  sql_table_name: @{DATABASE}.@{SCHEMA}.mesh_sidecar_loss ;;
  label: "Sidecar loss"

  dimension: summary_id {
    type: string
    primary_key: yes
    hidden: yes
    description: "Sender, producer and sequence number of the reporting summary: identifies a row."
    # It spells out the producer id, like producer_id below: operators only, even though hidden.
    required_access_grants: [can_see_collector_loads]
    sql: ${TABLE}.caller || '#' || ${TABLE}.producer_id || '#' || CAST(${TABLE}.seq AS VARCHAR) ;;
  }

  dimension: caller {
    type: string
    label: "Sender"
    description: "Who sent the reporting summary, as in Collector loads (mTLS SPIFFE ID, token scope ns:..., empty, or * before senders were recorded)."
    # Names service accounts of every namespace: operators only, like the sidecar instance.
    required_access_grants: [can_see_collector_loads]
    sql: ${TABLE}.caller ;;
  }

  dimension_group: reported {
    type: time
    label: "Reported (UTC)"
    description: "Minute of the summary that reported the loss (the minute its fact rows are in). The dropped windows lie before it: look for the gap in Mesh traffic just ahead of this minute."
    timeframes: [raw, minute, hour, date, week, month]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.minute ;;
  }

  dimension: producer_id {
    type: string
    label: "Sidecar Instance"
    description: "The sidecar instance (proxy-wasm VM) that reported the loss: its node id, start time and a nonce."
    # The node id names pod and IP, and the start time makes the next sequence numbers guessable:
    # operators only (docs/security.md).
    required_access_grants: [can_see_collector_loads]
    sql: ${TABLE}.producer_id ;;
  }

  dimension: seq {
    type: number
    label: "Sequence Number"
    description: "Sequence number of the reporting summary; the dropped windows are the producer's numbers before it that never reached the load ledger."
    sql: ${TABLE}.seq ;;
    value_format_name: id
  }

  dimension: pod {
    type: string
    description: "Pod of the sidecar, from its Istio node id; 'unknown' when the node id is not in Istio's form."
    sql: ${TABLE}.pod ;;
  }

  dimension: namespace {
    type: string
    description: "Namespace of the sidecar's workload. Access to rows follows it, as access to traffic follows the destination namespace."
    sql: ${TABLE}.namespace ;;
  }

  dimension: workload {
    type: string
    description: "The sidecar's workload as its own series name it; 'unknown' when the reporting summary had no such series (e.g. no traffic since the drop)."
    sql: ${TABLE}.workload ;;
  }

  dimension_group: loaded {
    type: time
    label: "Loaded (UTC)"
    description: "When the collector wrote the reporting summary to the warehouse."
    timeframes: [raw, time, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.loaded_at ;;
  }

  measure: dropped_requests {
    type: sum
    label: "Requests Lost in Sidecars"
    description: "Requests in summary windows the sidecars dropped (collector unreachable beyond max_pending_bytes). Exact: these requests are in no Mesh traffic row."
    sql: ${TABLE}.dropped_requests ;;
    value_format_name: decimal_0
  }

  measure: dropped_windows {
    type: sum
    label: "Windows Dropped"
    description: "Summary windows (flush intervals) the sidecars dropped for want of memory while the collector was unreachable."
    sql: ${TABLE}.dropped_windows ;;
    value_format_name: decimal_0
  }

  measure: overflow_keys {
    type: sum
    label: "Overflowed Series Keys (approx.)"
    description: "Series keys the sidecars' cardinality guard (max_series) folded into the __overflow__ series, summed over windows. Approximate (HyperLogLog per window); their requests are counted in Mesh traffic under __overflow__, not lost."
    sql: ${TABLE}.overflow_keys ;;
    value_format_name: decimal_0
  }

  measure: reporting_summaries {
    type: count
    description: "Summaries that reported a loss or overflow."
  }

  measure: reporting_sidecars {
    type: count_distinct
    description: "Distinct sidecar instances that reported a loss or overflow."
    # The column, not the restricted dimension: a count reveals no producer id.
    sql: ${TABLE}.producer_id ;;
  }
}
