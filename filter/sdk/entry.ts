// The callbacks Envoy looks up in a module (ABI 0.2.0), in one list: every module built on this seam —
// the filter and the benchmark baselines — re-exports it with `export * from ".../sdk/entry"`, so a
// change of ABI version or callback set is made here once.
export {
  proxy_abi_version_0_2_0,
  proxy_on_context_create,
  proxy_on_vm_start,
  proxy_validate_configuration,
  proxy_on_configure,
  proxy_on_tick,
  proxy_on_http_call_response,
  proxy_on_log,
  proxy_on_done,
  proxy_on_delete,
  malloc,
} from "./exports";
