# Mesh golden signals: traffic, errors and latency, overall and by service and caller identity.
# Every traffic tile listens to the same filters; Reporter defaults to the server side so requests between
# two sidecars are counted once. The sidecar-loss tile listens to Time and Destination namespace only:
# a dropped window is not split by reporter or service.
- dashboard: mesh_golden_signals
  title: Mesh golden signals
  description: Traffic, errors and latency percentiles of the service mesh, by service and caller identity.
  layout: newspaper
  preferred_viewer: dashboards-next
  crossfilter_enabled: true
  refresh: 5 minutes

  filters:
  - name: Time
    title: Time (UTC)
    type: field_filter
    default_value: 24 hours
    allow_multiple_values: true
    required: false
    ui_config:
      type: relative_timeframes
      display: inline
    model: meshlook
    explore: mesh_traffic
    listens_to_filters: []
    field: mesh_traffic.traffic_minute
  - name: Reporter
    title: Reporter
    type: field_filter
    default_value: destination
    allow_multiple_values: false
    required: true
    ui_config:
      type: button_toggles
      display: inline
    model: meshlook
    explore: mesh_traffic
    listens_to_filters: []
    field: mesh_traffic.reporter
  - name: Destination namespace
    title: Destination namespace
    type: field_filter
    default_value: ''
    allow_multiple_values: true
    required: false
    ui_config:
      type: tag_list
      display: popover
    model: meshlook
    explore: mesh_traffic
    listens_to_filters: []
    field: mesh_traffic.destination_namespace
  - name: Destination service
    title: Destination service
    type: field_filter
    default_value: ''
    allow_multiple_values: true
    required: false
    ui_config:
      type: tag_list
      display: popover
    model: meshlook
    explore: mesh_traffic
    listens_to_filters: [Destination namespace]
    field: mesh_traffic.destination_service

  elements:
  - title: Requests
    name: requests
    model: meshlook
    explore: mesh_traffic
    type: single_value
    fields: [mesh_traffic.requests]
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 0
    col: 0
    width: 6
    height: 3
  - title: Requests per second
    name: requests_per_second
    model: meshlook
    explore: mesh_traffic
    type: single_value
    fields: [mesh_traffic.requests_per_second]
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 0
    col: 6
    width: 6
    height: 3
  - title: Error rate
    name: error_rate
    model: meshlook
    explore: mesh_traffic
    type: single_value
    fields: [mesh_traffic.error_rate]
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 0
    col: 12
    width: 6
    height: 3
  - title: p99 latency (ms)
    name: p99_latency
    model: meshlook
    explore: mesh_traffic
    type: single_value
    fields: [mesh_traffic.latency_p99_ms]
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 0
    col: 18
    width: 6
    height: 3
  - title: Traffic and errors per minute
    name: traffic_over_time
    model: meshlook
    explore: mesh_traffic
    type: looker_area
    fields: [mesh_traffic.traffic_minute, mesh_traffic.requests, mesh_traffic.errors]
    sorts: [mesh_traffic.traffic_minute]
    limit: 1440
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 3
    col: 0
    width: 12
    height: 7
  - title: Latency percentiles per minute (ms)
    name: latency_over_time
    model: meshlook
    explore: mesh_traffic
    type: looker_line
    fields: [mesh_traffic.traffic_minute, mesh_traffic.latency_p50_ms, mesh_traffic.latency_p90_ms,
      mesh_traffic.latency_p99_ms, mesh_traffic.latency_p999_ms]
    sorts: [mesh_traffic.traffic_minute]
    limit: 1440
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 3
    col: 12
    width: 12
    height: 7
  - title: Requests lost in sidecars
    name: requests_lost_in_sidecars
    note_text: Requests in windows the sidecars dropped while the collector was unreachable beyond their memory budget, at the minute of the summary that reported them (the gap in traffic ends there). Not split by reporter or service.
    model: meshlook
    explore: mesh_sidecar_loss
    type: looker_column
    fields: [mesh_sidecar_loss.reported_minute, mesh_sidecar_loss.dropped_requests, mesh_sidecar_loss.dropped_windows]
    sorts: [mesh_sidecar_loss.reported_minute]
    limit: 1440
    listen:
      Time: mesh_sidecar_loss.reported_minute
      Destination namespace: mesh_sidecar_loss.namespace
    row: 10
    col: 0
    width: 24
    height: 6
  - title: Responses by class per minute
    name: responses_by_class
    model: meshlook
    explore: mesh_traffic
    type: looker_column
    fields: [mesh_traffic.traffic_minute, mesh_traffic.response_class, mesh_traffic.requests]
    pivots: [mesh_traffic.response_class]
    sorts: [mesh_traffic.traffic_minute, mesh_traffic.response_class]
    limit: 5000
    stacking: normal
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 16
    col: 0
    width: 24
    height: 6
  - title: Services
    name: services
    model: meshlook
    explore: mesh_traffic
    type: looker_grid
    fields: [mesh_traffic.destination_service, mesh_traffic.requests, mesh_traffic.requests_per_second,
      mesh_traffic.error_rate, mesh_traffic.latency_p50_ms, mesh_traffic.latency_p95_ms, mesh_traffic.latency_p99_ms,
      mesh_traffic.latency_p999_ms, mesh_traffic.response_bytes]
    sorts: [mesh_traffic.requests desc]
    limit: 500
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 22
    col: 0
    width: 24
    height: 8
  - title: Callers by identity
    name: callers_by_identity
    model: meshlook
    explore: mesh_traffic
    type: looker_grid
    fields: [mesh_traffic.source_principal, mesh_traffic.source_namespace, mesh_traffic.source_workload,
      mesh_traffic.requests, mesh_traffic.error_rate, mesh_traffic.latency_p50_ms, mesh_traffic.latency_p99_ms]
    sorts: [mesh_traffic.requests desc]
    limit: 500
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 30
    col: 0
    width: 24
    height: 8
  - title: Failures by response flags
    name: failures_by_flags
    model: meshlook
    explore: mesh_traffic
    type: looker_grid
    fields: [mesh_traffic.response_flags, mesh_traffic.response_code, mesh_traffic.grpc_status,
      mesh_traffic.destination_service, mesh_traffic.requests, mesh_traffic.errors]
    filters:
      mesh_traffic.errors: '>0'
    sorts: [mesh_traffic.errors desc]
    limit: 500
    listen:
      Time: mesh_traffic.traffic_minute
      Reporter: mesh_traffic.reporter
      Destination namespace: mesh_traffic.destination_namespace
      Destination service: mesh_traffic.destination_service
    row: 38
    col: 0
    width: 24
    height: 7
  - title: What changed
    name: what_changed
    model: meshlook
    explore: mesh_outlier
    type: looker_grid
    note_text: Open outlier findings from the collector's last detection run (docs/outliers.md); the Explore link opens the traffic behind each.
    fields: [mesh_outlier.kind, mesh_outlier.grain, mesh_outlier.source_principal, mesh_outlier.destination_service,
      mesh_outlier.score, mesh_outlier.summary, mesh_outlier.explore_url, mesh_outlier.first_detected_time]
    filters:
      mesh_outlier.status: open
    sorts: [mesh_outlier.score desc]
    limit: 200
    listen:
      Destination namespace: mesh_outlier.destination_namespace
      Destination service: mesh_outlier.destination_service
    row: 45
    col: 0
    width: 24
    height: 8
