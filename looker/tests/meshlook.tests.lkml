# LookML data tests: Looker's validator (or Spectacles in CI) runs them against the real warehouse.
# Each asserts an invariant of the measures that holds for any traffic, so a broken measure, a schema
# change or a bad load fails them, whatever the mesh looks like.
include: "/explores/*.explore.lkml"

test: error_and_success_rates_are_complementary {
  explore_source: mesh_traffic {
    column: destination_service { field: mesh_traffic.destination_service }
    column: error_rate { field: mesh_traffic.error_rate }
    column: success_rate { field: mesh_traffic.success_rate }
    filters: [mesh_traffic.reporter: "destination", mesh_traffic.traffic_date: "1 days"]
  }
  assert: rates_within_bounds {
    expression: ${mesh_traffic.error_rate} >= 0 AND ${mesh_traffic.error_rate} <= 1 ;;
  }
  assert: rates_add_up {
    expression: abs(${mesh_traffic.error_rate} + ${mesh_traffic.success_rate} - 1) < 0.000001 ;;
  }
}

test: latency_percentiles_are_ordered {
  explore_source: mesh_traffic {
    column: destination_service { field: mesh_traffic.destination_service }
    column: p50 { field: mesh_traffic.latency_p50_ms }
    column: p90 { field: mesh_traffic.latency_p90_ms }
    column: p95 { field: mesh_traffic.latency_p95_ms }
    column: p99 { field: mesh_traffic.latency_p99_ms }
    column: p999 { field: mesh_traffic.latency_p999_ms }
    filters: [mesh_traffic.reporter: "destination", mesh_traffic.traffic_date: "1 days"]
  }
  assert: percentiles_non_decreasing {
    expression: ${mesh_traffic.latency_p50_ms} <= ${mesh_traffic.latency_p90_ms} AND ${mesh_traffic.latency_p90_ms} <= ${mesh_traffic.latency_p95_ms} AND ${mesh_traffic.latency_p95_ms} <= ${mesh_traffic.latency_p99_ms} AND ${mesh_traffic.latency_p99_ms} <= ${mesh_traffic.latency_p999_ms} ;;
  }
}

# A sketch bucket's reported value is within (b−1)/(b+1) ≈ 0.5415 % of any value in it, so p0-ish and p100-ish answers stay
# within that margin of the exact min and max; 1 % leaves room for rounding of the stored microseconds.
test: latency_percentiles_within_min_and_max {
  explore_source: mesh_traffic {
    column: destination_service { field: mesh_traffic.destination_service }
    column: min { field: mesh_traffic.latency_min_ms }
    column: p50 { field: mesh_traffic.latency_p50_ms }
    column: p999 { field: mesh_traffic.latency_p999_ms }
    column: max { field: mesh_traffic.latency_max_ms }
    column: mean { field: mesh_traffic.latency_mean_ms }
    filters: [mesh_traffic.reporter: "destination", mesh_traffic.traffic_date: "1 days"]
  }
  assert: median_not_below_min {
    expression: ${mesh_traffic.latency_p50_ms} >= ${mesh_traffic.latency_min_ms} * 0.99 ;;
  }
  assert: p999_not_above_max {
    expression: ${mesh_traffic.latency_p999_ms} <= ${mesh_traffic.latency_max_ms} * 1.01 ;;
  }
  assert: mean_between_min_and_max {
    expression: ${mesh_traffic.latency_mean_ms} >= ${mesh_traffic.latency_min_ms} AND ${mesh_traffic.latency_mean_ms} <= ${mesh_traffic.latency_max_ms} ;;
  }
}

test: errors_never_exceed_requests {
  explore_source: mesh_traffic {
    column: destination_service { field: mesh_traffic.destination_service }
    column: requests { field: mesh_traffic.requests }
    column: errors { field: mesh_traffic.errors }
    column: mtls_requests { field: mesh_traffic.mtls_requests }
    filters: [mesh_traffic.reporter: "destination", mesh_traffic.traffic_date: "1 days"]
  }
  assert: errors_within_requests {
    expression: ${mesh_traffic.errors} >= 0 AND ${mesh_traffic.errors} <= ${mesh_traffic.requests} ;;
  }
  assert: mtls_within_requests {
    expression: ${mesh_traffic.mtls_requests} <= ${mesh_traffic.requests} ;;
  }
}

test: edges_carry_all_traffic {
  explore_source: service_edges {
    column: requests { field: service_edges.requests }
    column: edges { field: service_edges.edges }
    filters: [service_edges.reporter: "destination", service_edges.traffic_date: "1 days"]
  }
  assert: traffic_means_edges {
    expression: ${service_edges.requests} = 0 OR ${service_edges.edges} > 0 ;;
  }
}

test: identities_first_seen_before_last_seen {
  explore_source: identity_access {
    column: source_principal { field: identity_access.source_principal }
    column: destination_service { field: identity_access.destination_service }
    column: first_seen { field: identity_access.first_seen_minute }
    column: last_seen { field: identity_access.last_seen_minute }
    column: calls { field: identity_access.calls }
    filters: [identity_access.reporter: "destination", identity_access.observed: "7 days"]
  }
  assert: first_not_after_last {
    expression: ${identity_access.first_seen_minute} <= ${identity_access.last_seen_minute} ;;
  }
  assert: seen_means_called {
    expression: ${identity_access.calls} > 0 ;;
  }
}

# A sidecar reports requests lost only together with the windows that held them, and a loss row exists
# only for a summary that dropped or overflowed something.
test: sidecar_loss_is_consistent {
  explore_source: mesh_sidecar_loss {
    column: producer_id { field: mesh_sidecar_loss.producer_id }
    column: dropped_requests { field: mesh_sidecar_loss.dropped_requests }
    column: dropped_windows { field: mesh_sidecar_loss.dropped_windows }
    column: overflow_keys { field: mesh_sidecar_loss.overflow_keys }
    filters: [mesh_sidecar_loss.reported_date: "1 days"]
  }
  assert: requests_lost_only_with_windows {
    expression: ${mesh_sidecar_loss.dropped_requests} = 0 OR ${mesh_sidecar_loss.dropped_windows} > 0 ;;
  }
  assert: rows_report_a_loss {
    expression: ${mesh_sidecar_loss.dropped_windows} > 0 OR ${mesh_sidecar_loss.overflow_keys} > 0 ;;
  }
}
