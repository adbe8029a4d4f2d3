# The fields mesh_traffic (minute grain) and mesh_traffic_hourly (hour grain) share: every dimension
# and measure except the time dimension group and the window span, which depend on the grain. Both
# tables have the same dimension and measure columns (docs/schema.md), so one definition serves both.
view: mesh_traffic_fields {
  extension: required

  # ---------------------------------------------------------------- reporter

  dimension: reporter {
    type: string
    description: "Which proxy counted the request: 'destination' (the server's inbound sidecar) or 'source' (the client's outbound sidecar or gateway). A request between two sidecars is counted once by each, so keep one reporter per question."
    sql: ${TABLE}.reporter ;;
  }

  # ---------------------------------------------------------------- source

  dimension: source_principal {
    type: string
    group_label: "Source"
    label: "Source Identity"
    description: "SPIFFE ID of the calling workload, learned from its mTLS certificate (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>). 'unknown' when the connection was plaintext."
    sql: ${TABLE}.source_principal ;;
  }

  dimension: source_service_account {
    type: string
    group_label: "Source"
    description: "Kubernetes service account part of the source identity; 'unknown' when the caller presented no SPIFFE identity."
    sql: CASE WHEN ${source_principal} LIKE 'spiffe://%/sa/%' THEN SPLIT_PART(${source_principal}, '/sa/', 2) ELSE 'unknown' END ;;
  }

  dimension: source_workload {
    type: string
    group_label: "Source"
    description: "Name of the calling workload (Deployment, StatefulSet, …) from Istio peer metadata."
    sql: ${TABLE}.source_workload ;;
  }

  dimension: source_namespace {
    type: string
    group_label: "Source"
    description: "Kubernetes namespace of the calling workload."
    sql: ${TABLE}.source_namespace ;;
  }

  dimension: source_canonical_service {
    type: string
    group_label: "Source"
    description: "Canonical service of the caller (label service.istio.io/canonical-name, else app)."
    sql: ${TABLE}.source_canonical_service ;;
  }

  dimension: source_canonical_revision {
    type: string
    group_label: "Source"
    description: "Canonical revision of the caller (label service.istio.io/canonical-revision, else version)."
    sql: ${TABLE}.source_canonical_revision ;;
  }

  dimension: source_cluster {
    type: string
    group_label: "Source"
    description: "Cluster id of the caller (Istio CLUSTER_ID)."
    sql: ${TABLE}.source_cluster ;;
  }

  # ---------------------------------------------------------------- destination

  dimension: destination_principal {
    type: string
    group_label: "Destination"
    label: "Destination Identity"
    description: "SPIFFE ID of the serving workload; 'unknown' when the server presented no mesh certificate."
    sql: ${TABLE}.destination_principal ;;
  }

  dimension: destination_service {
    type: string
    group_label: "Destination"
    description: "Host of the called service, e.g. reviews.shop.svc.cluster.local."
    sql: ${TABLE}.destination_service ;;
  }

  dimension: destination_workload {
    type: string
    group_label: "Destination"
    description: "Name of the serving workload."
    sql: ${TABLE}.destination_workload ;;
  }

  dimension: destination_namespace {
    type: string
    group_label: "Destination"
    description: "Kubernetes namespace of the serving workload. Access to rows is restricted by this namespace (user attribute meshlook_allowed_namespaces)."
    sql: ${TABLE}.destination_namespace ;;
  }

  dimension: destination_canonical_service {
    type: string
    group_label: "Destination"
    description: "Canonical service of the server (label service.istio.io/canonical-name, else app)."
    sql: ${TABLE}.destination_canonical_service ;;
  }

  dimension: destination_canonical_revision {
    type: string
    group_label: "Destination"
    description: "Canonical revision of the server (label service.istio.io/canonical-revision, else version)."
    sql: ${TABLE}.destination_canonical_revision ;;
  }

  dimension: destination_cluster {
    type: string
    group_label: "Destination"
    description: "Cluster id of the server (Istio CLUSTER_ID)."
    sql: ${TABLE}.destination_cluster ;;
  }

  # ---------------------------------------------------------------- request and response

  dimension: request_protocol {
    type: string
    group_label: "Request"
    description: "'http' or 'grpc'."
    sql: ${TABLE}.request_protocol ;;
  }

  dimension: response_code {
    type: number
    group_label: "Response"
    description: "HTTP status code; 0 when no response was sent (the caller went away or the upstream failed before answering)."
    sql: ${TABLE}.response_code ;;
    value_format_name: id
  }

  dimension: response_class {
    type: string
    group_label: "Response"
    description: "HTTP status class: 1xx, 2xx, 3xx, 4xx, 5xx, or 'no response' for code 0."
    sql: CASE
           WHEN ${response_code} = 0 THEN 'no response'
           WHEN ${response_code} BETWEEN 100 AND 199 THEN '1xx'
           WHEN ${response_code} BETWEEN 200 AND 299 THEN '2xx'
           WHEN ${response_code} BETWEEN 300 AND 399 THEN '3xx'
           WHEN ${response_code} BETWEEN 400 AND 499 THEN '4xx'
           WHEN ${response_code} BETWEEN 500 AND 599 THEN '5xx'
           ELSE 'other'
         END ;;
  }

  dimension: grpc_status {
    type: string
    group_label: "Response"
    label: "gRPC Status"
    description: "gRPC status code as a decimal string ('0' OK … '16' UNAUTHENTICATED); '-' for HTTP requests or when the server sent none."
    sql: ${TABLE}.grpc_status ;;
  }

  dimension: response_flags {
    type: string
    group_label: "Response"
    description: "Envoy response flags, short form, comma separated (e.g. UH, UF, URX, DC); '-' when Envoy set none."
    sql: ${TABLE}.response_flags ;;
  }

  # ---------------------------------------------------------------- security

  dimension: connection_security_policy {
    type: string
    group_label: "Security"
    description: "'mutual_tls' when the connection was mTLS, 'none' for plaintext, 'unknown' when the reporter could not tell."
    sql: ${TABLE}.connection_security_policy ;;
  }

  dimension: is_mtls {
    type: yesno
    group_label: "Security"
    label: "Is mTLS"
    description: "Yes when the connection was mutual TLS."
    sql: ${connection_security_policy} = 'mutual_tls' ;;
  }

  dimension: end_user_principal {
    type: string
    group_label: "Security"
    description: "End-user principal from the request's validated JWT (issuer/subject), when the filter records it; else 'unknown'. Identifies people, so it needs the meshlook_can_see_end_users attribute."
    required_access_grants: [can_see_end_users]
    sql: ${TABLE}.end_user_principal ;;
  }

  # ---------------------------------------------------------------- measures: traffic

  measure: requests {
    type: sum
    description: "Requests that ended in the selected time range."
    sql: ${TABLE}.requests ;;
    value_format_name: decimal_0
  }

  measure: requests_per_second {
    type: number
    label: "Requests per Second"
    description: "Requests divided by the seconds of the window they fall in: from the start of the group's first minute with traffic to the end of its last. Group by a time frame for a rate per minute, hour or day."
    sql: 1.0 * ${requests} / NULLIF(${window_seconds}, 0) ;;
    value_format_name: decimal_2
  }

  measure: errors {
    type: sum
    description: "Requests the sidecar filter counted as errors (definition in docs/filter-config.md)."
    sql: ${TABLE}.errors ;;
    value_format_name: decimal_0
  }

  measure: error_rate {
    type: number
    description: "Errors divided by requests."
    sql: 1.0 * ${errors} / NULLIF(${requests}, 0) ;;
    value_format_name: percent_2
  }

  # Istio's own dashboards and Kiali count only these (istio_requests_total by response_code and
  # grpc_response_status); analysts comparing the two need both. docs/filter-config.md, "What is counted".
  measure: server_errors {
    type: sum
    label: "Server Errors (Istio definition)"
    description: "Requests answered with an HTTP 5xx, or gRPC requests with a status other than OK: what Istio's Grafana dashboards and Kiali count. Unlike Errors it ignores Envoy's response flags (a downstream reset or disconnect without a 5xx is not one). gRPC-Web responses whose status travelled in the body have gRPC status '-' and count only when their HTTP code is 5xx. Overflow series (code 0) never count."
    sql: CASE WHEN ${TABLE}.response_code BETWEEN 500 AND 599 OR ${TABLE}.grpc_status NOT IN ('-', '0', 'unknown', '__overflow__') THEN ${TABLE}.requests ELSE 0 END ;;
    value_format_name: decimal_0
  }

  measure: server_error_rate {
    type: number
    label: "Server Error Rate (Istio definition)"
    description: "Server errors divided by requests: comparable with Istio's and Kiali's error rate."
    sql: 1.0 * ${server_errors} / NULLIF(${requests}, 0) ;;
    value_format_name: percent_2
  }

  measure: success_rate {
    type: number
    description: "Requests that were not errors, divided by requests."
    sql: 1.0 * (${requests} - ${errors}) / NULLIF(${requests}, 0) ;;
    value_format_name: percent_2
  }

  measure: request_bytes {
    type: sum
    label: "Bytes In"
    description: "Sum of request sizes, headers and body, in bytes: what callers sent."
    sql: ${TABLE}.request_bytes ;;
    value_format_name: decimal_0
  }

  measure: response_bytes {
    type: sum
    label: "Bytes Out"
    description: "Sum of response sizes, headers and body, in bytes: what servers answered."
    sql: ${TABLE}.response_bytes ;;
    value_format_name: decimal_0
  }

  measure: mtls_requests {
    type: sum
    group_label: "Security"
    label: "mTLS Requests"
    description: "Requests made over mutual TLS."
    sql: CASE WHEN ${connection_security_policy} = 'mutual_tls' THEN ${TABLE}.requests ELSE 0 END ;;
    value_format_name: decimal_0
  }

  measure: mtls_share {
    type: number
    group_label: "Security"
    label: "mTLS Share"
    description: "Share of requests made over mutual TLS."
    sql: 1.0 * ${mtls_requests} / NULLIF(${requests}, 0) ;;
    value_format_name: percent_1
  }

  measure: plaintext_requests {
    type: sum
    group_label: "Security"
    description: "Requests whose connection was not mutual TLS ('none' or 'unknown')."
    sql: CASE WHEN ${connection_security_policy} = 'mutual_tls' THEN 0 ELSE ${TABLE}.requests END ;;
    value_format_name: decimal_0
  }

  measure: source_principals {
    type: count_distinct
    group_label: "Security"
    label: "Distinct Source Identities"
    description: "Number of distinct caller identities (SPIFFE IDs, counting 'unknown' once)."
    sql: ${source_principal} ;;
  }

  # ---------------------------------------------------------------- measures: latency

  measure: latency_sum_us {
    type: sum
    hidden: yes
    description: "Sum of request durations in microseconds (input of the mean)."
    sql: ${TABLE}.latency_sum_us ;;
  }

  measure: latency_mean_ms {
    type: number
    group_label: "Latency"
    label: "Mean Latency (ms)"
    description: "Mean request duration in milliseconds: summed durations over requests."
    sql: ${latency_sum_us} / NULLIF(${requests}, 0) / 1000.0 ;;
    value_format_name: decimal_2
  }

  measure: latency_min_ms {
    type: min
    group_label: "Latency"
    label: "Min Latency (ms)"
    description: "Shortest request duration in milliseconds."
    sql: ${TABLE}.latency_min_us / 1000.0 ;;
    value_format_name: decimal_3
  }

  measure: latency_max_ms {
    type: max
    group_label: "Latency"
    label: "Max Latency (ms)"
    description: "Longest request duration in milliseconds."
    sql: ${TABLE}.latency_max_us / 1000.0 ;;
    value_format_name: decimal_3
  }

  # Percentiles: MESH_QUANTILE merges every sketch in the group exactly, then ranks; the result is
  # within 0.5415 % of the true duration at the default sketch scale, whatever the grouping.
  measure: latency_p50_ms {
    type: number
    group_label: "Latency"
    label: "p50 Latency (ms)"
    description: "Median request duration in milliseconds, from the merged latency sketches (relative error at most 0.5415 %)."
    sql: @{DATABASE}.@{SCHEMA}.MESH_QUANTILE(ARRAY_AGG(${TABLE}.latency_sketch), 0.5) / 1000.0 ;;
    value_format_name: decimal_2
  }

  measure: latency_p90_ms {
    type: number
    group_label: "Latency"
    label: "p90 Latency (ms)"
    description: "90th percentile request duration in milliseconds, from the merged latency sketches."
    sql: @{DATABASE}.@{SCHEMA}.MESH_QUANTILE(ARRAY_AGG(${TABLE}.latency_sketch), 0.9) / 1000.0 ;;
    value_format_name: decimal_2
  }

  measure: latency_p95_ms {
    type: number
    group_label: "Latency"
    label: "p95 Latency (ms)"
    description: "95th percentile request duration in milliseconds, from the merged latency sketches."
    sql: @{DATABASE}.@{SCHEMA}.MESH_QUANTILE(ARRAY_AGG(${TABLE}.latency_sketch), 0.95) / 1000.0 ;;
    value_format_name: decimal_2
  }

  measure: latency_p99_ms {
    type: number
    group_label: "Latency"
    label: "p99 Latency (ms)"
    description: "99th percentile request duration in milliseconds, from the merged latency sketches."
    sql: @{DATABASE}.@{SCHEMA}.MESH_QUANTILE(ARRAY_AGG(${TABLE}.latency_sketch), 0.99) / 1000.0 ;;
    value_format_name: decimal_2
  }

  measure: latency_p999_ms {
    type: number
    group_label: "Latency"
    label: "p99.9 Latency (ms)"
    description: "99.9th percentile request duration in milliseconds, from the merged latency sketches."
    sql: @{DATABASE}.@{SCHEMA}.MESH_QUANTILE(ARRAY_AGG(${TABLE}.latency_sketch), 0.999) / 1000.0 ;;
    value_format_name: decimal_2
  }

  # ---------------------------------------------------------------- freshness

  measure: latest_load {
    type: string
    label: "Latest Load (UTC)"
    description: "When the newest of the selected rows was written by the collector."
    sql: TO_CHAR(MAX(${TABLE}.loaded_at), 'YYYY-MM-DD HH24:MI:SS') ;;
  }
}
