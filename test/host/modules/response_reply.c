/* Replies locally from proxy_on_response_headers (a filter that rejects what the upstream answered),
 * and logs every later callback, so a test sees which of them Envoy still delivers. */
#include "freestanding.h"
#include "proxy_wasm.h"

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}

static void say_event(const char *what) {
  line_t l = {0};
  puts_(&l, what);
  emit(&l);
}

EXPORT(proxy_on_response_headers) int32_t on_response_headers(int32_t id, int32_t headers, int32_t end_of_stream) {
  line_t l = {0};
  puts_(&l, "response_headers send_local_response=");
  putu(&l, (uint32_t)proxy_send_local_response(502, "upstream_rejected", 17, "rejected\n", 9, 0, 0, -1));
  emit(&l);
  return CONTINUE;
}

EXPORT(proxy_on_response_body) int32_t on_response_body(int32_t id, int32_t size, int32_t end_of_stream) {
  say_event("response_body");
  return CONTINUE;
}

EXPORT(proxy_on_response_trailers) int32_t on_response_trailers(int32_t id, int32_t trailers) {
  say_event("response_trailers");
  return CONTINUE;
}

EXPORT(proxy_on_log) void on_log(int32_t id) { say_event("log"); }
