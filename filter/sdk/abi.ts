// The proxy-wasm host functions the filter uses, taken from @solo-io/proxy-runtime 0.1.8's declarations.
// Only what is re-exported here can end up in the module's import section (AssemblyScript emits an
// import only when it is called), so this list is the filter's whole dependency on Envoy's host table.
// Deliberately absent: proxy_clear_route_cache (the SDK declares it, but under ABI 0.2.x Envoy does not
// provide it and refuses the module), and the SDK's proxy_set_buffer_status (declared under the name of
// proxy_get_buffer_status with the wrong signature).
export {
  proxy_log,
  proxy_get_property,
  proxy_get_buffer_bytes,
  proxy_get_header_map_value,
  proxy_get_current_time_nanoseconds,
  proxy_set_tick_period_milliseconds,
  proxy_http_call,
  proxy_define_metric,
  proxy_increment_metric,
  proxy_done,
} from "@solo-io/proxy-runtime/imports";

export {
  LogLevelValues,
  WasmResultValues,
  BufferTypeValues,
  HeaderMapTypeValues,
  MetricTypeValues,
} from "@solo-io/proxy-runtime/runtime";
