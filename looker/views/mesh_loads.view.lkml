# The load ledger mesh_load_ledger: one row per summary the collector loaded. For operators: load
# freshness, lag and which sidecars report; its requests total audits the fact table.
view: mesh_loads {
  sql_table_name: @{DATABASE}.@{SCHEMA}.mesh_load_ledger ;;
  label: "Collector loads"

  dimension: summary_id {
    type: string
    primary_key: yes
    hidden: yes
    description: "Caller, producer and sequence number: identifies a summary (two callers may send the same producer and sequence number)."
    sql: ${caller} || '#' || ${producer_id} || '#' || CAST(${seq} AS VARCHAR) ;;
  }

  dimension: caller {
    type: string
    label: "Sender"
    description: "Who sent the summary: its mTLS SPIFFE ID, else its ingest token's namespace scope (ns:...), else empty; * for summaries loaded before senders were recorded. Part of the ledger key (docs/schema.md)."
    sql: ${TABLE}.caller ;;
  }

  dimension: producer_id {
    type: string
    description: "The sidecar instance that produced the summary."
    sql: ${TABLE}.producer_id ;;
  }

  dimension: seq {
    type: number
    label: "Sequence Number"
    description: "The producer's summary sequence number; gaps mean summaries the producer dropped or has not delivered yet."
    sql: ${TABLE}.seq ;;
    value_format_name: id
  }

  dimension_group: window_start {
    type: time
    label: "Window Start (UTC)"
    description: "Start of the summary's aggregation window in the sidecar."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.window_start ;;
  }

  dimension_group: window_end {
    type: time
    label: "Window End (UTC)"
    description: "End of the summary's aggregation window in the sidecar."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.window_end ;;
  }

  dimension_group: loaded {
    type: time
    label: "Loaded (UTC)"
    description: "When the collector wrote the summary to the warehouse."
    timeframes: [raw, time, minute, hour, date]
    convert_tz: no
    datatype: timestamp
    sql: ${TABLE}.loaded_at ;;
  }

  dimension: series_count {
    type: number
    label: "Series"
    description: "Number of series (distinct dimension combinations) in the summary."
    sql: ${TABLE}.series ;;
  }

  measure: summaries {
    type: count
    description: "Summaries loaded."
  }

  measure: producers {
    type: count_distinct
    description: "Distinct sidecar instances that delivered summaries."
    sql: ${producer_id} ;;
  }

  measure: requests {
    type: sum
    description: "Requests carried by the loaded summaries; equals Mesh traffic Requests over the same summaries."
    sql: ${TABLE}.requests ;;
    value_format_name: decimal_0
  }

  measure: series {
    type: sum
    description: "Series carried by the loaded summaries."
    sql: ${TABLE}.series ;;
    value_format_name: decimal_0
  }

  measure: load_lag_seconds_max {
    type: max
    label: "Max Load Lag (s)"
    description: "Longest time from the end of a summary's window to its load, in seconds."
    sql: DATE_PART(epoch_second, ${TABLE}.loaded_at) - DATE_PART(epoch_second, ${TABLE}.window_end) ;;
    value_format_name: decimal_0
  }

  measure: latest_load {
    type: string
    label: "Latest Load (UTC)"
    description: "When the newest selected summary was loaded."
    sql: TO_CHAR(MAX(${TABLE}.loaded_at), 'YYYY-MM-DD HH24:MI:SS') ;;
  }
}
