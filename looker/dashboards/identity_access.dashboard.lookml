# Identity access: which workload identities call which services, and how much of it is mTLS.
- dashboard: identity_access
  title: Identity access
  description: Who calls whom by SPIFFE identity, the share of traffic over mutual TLS, and the callers that still use plaintext.
  layout: newspaper
  preferred_viewer: dashboards-next
  crossfilter_enabled: true

  filters:
  - name: Observed
    title: Observed (UTC)
    type: field_filter
    default_value: 7 days
    allow_multiple_values: true
    required: false
    ui_config:
      type: relative_timeframes
      display: inline
    model: meshlook
    explore: identity_access
    listens_to_filters: []
    field: identity_access.observed
  - name: Callee namespace
    title: Callee namespace
    type: field_filter
    default_value: ''
    allow_multiple_values: true
    required: false
    ui_config:
      type: tag_list
      display: popover
    model: meshlook
    explore: identity_access
    listens_to_filters: []
    field: identity_access.destination_namespace
  - name: Caller namespace
    title: Caller namespace
    type: field_filter
    default_value: ''
    allow_multiple_values: true
    required: false
    ui_config:
      type: tag_list
      display: popover
    model: meshlook
    explore: identity_access
    listens_to_filters: []
    field: identity_access.source_namespace

  elements:
  - title: Caller identities
    name: caller_identities
    model: meshlook
    explore: identity_access
    type: single_value
    fields: [identity_access.callers]
    listen:
      Observed: identity_access.observed
      Callee namespace: identity_access.destination_namespace
      Caller namespace: identity_access.source_namespace
    row: 0
    col: 0
    width: 8
    height: 3
  - title: mTLS share
    name: mtls_share
    model: meshlook
    explore: identity_access
    type: single_value
    fields: [identity_access.mtls_share]
    listen:
      Observed: identity_access.observed
      Callee namespace: identity_access.destination_namespace
      Caller namespace: identity_access.source_namespace
    row: 0
    col: 8
    width: 8
    height: 3
  - title: Plaintext callers
    name: plaintext_caller_count
    model: meshlook
    explore: identity_access
    type: single_value
    fields: [identity_access.plaintext_callers]
    listen:
      Observed: identity_access.observed
      Callee namespace: identity_access.destination_namespace
      Caller namespace: identity_access.source_namespace
    row: 0
    col: 16
    width: 8
    height: 3
  - title: Who calls whom
    name: who_calls_whom
    model: meshlook
    explore: identity_access
    type: looker_grid
    fields: [identity_access.source_principal, identity_access.source_namespace, identity_access.source_workload,
      identity_access.destination_service, identity_access.connection_security_policy, identity_access.calls,
      identity_access.errors, identity_access.first_seen_at, identity_access.last_seen_at]
    sorts: [identity_access.calls desc]
    limit: 500
    listen:
      Observed: identity_access.observed
      Callee namespace: identity_access.destination_namespace
      Caller namespace: identity_access.source_namespace
    row: 3
    col: 0
    width: 24
    height: 9
  - title: Plaintext callers by service
    name: plaintext_callers
    model: meshlook
    explore: identity_access
    type: looker_grid
    fields: [identity_access.source_namespace, identity_access.source_workload, identity_access.destination_service,
      identity_access.calls, identity_access.first_seen_at, identity_access.last_seen_at]
    filters:
      identity_access.is_plaintext: 'Yes'
    sorts: [identity_access.calls desc]
    limit: 500
    listen:
      Observed: identity_access.observed
      Callee namespace: identity_access.destination_namespace
      Caller namespace: identity_access.source_namespace
    row: 12
    col: 0
    width: 12
    height: 7
  - title: mTLS share by callee
    name: mtls_share_by_callee
    model: meshlook
    explore: identity_access
    type: looker_bar
    fields: [identity_access.destination_service, identity_access.mtls_share, identity_access.calls]
    sorts: [identity_access.mtls_share]
    limit: 50
    listen:
      Observed: identity_access.observed
      Callee namespace: identity_access.destination_namespace
      Caller namespace: identity_access.source_namespace
    row: 12
    col: 12
    width: 12
    height: 7
  - title: Newest caller identities
    name: newest_callers
    model: meshlook
    explore: identity_access
    type: looker_grid
    fields: [identity_access.first_seen_minute, identity_access.source_principal, identity_access.destination_service,
      identity_access.calls]
    sorts: [identity_access.first_seen_minute desc]
    limit: 100
    listen:
      Observed: identity_access.observed
      Callee namespace: identity_access.destination_namespace
      Caller namespace: identity_access.source_namespace
    row: 19
    col: 0
    width: 12
    height: 7
  - title: mTLS share per hour
    name: mtls_share_over_time
    model: meshlook
    explore: mesh_traffic_hourly
    type: looker_line
    fields: [mesh_traffic_hourly.traffic_hour, mesh_traffic_hourly.mtls_share, mesh_traffic_hourly.plaintext_requests]
    filters:
      mesh_traffic_hourly.reporter: destination
    sorts: [mesh_traffic_hourly.traffic_hour]
    limit: 500
    listen:
      Observed: mesh_traffic_hourly.traffic_hour
      Callee namespace: mesh_traffic_hourly.destination_namespace
      Caller namespace: mesh_traffic_hourly.source_namespace
    row: 19
    col: 12
    width: 12
    height: 7
