/* An auth check: proxy_on_request_headers sends a callout to the cluster named by the plugin
 * configuration and holds the request (StopIteration); when the answer comes, it continues the request
 * (proxy_continue_stream) if the check answered 200, else replies 403 locally. */
#include "freestanding.h"
#include "proxy_wasm.h"

IMPORT(proxy_continue_stream) int32_t proxy_continue_stream(int32_t stream_type);

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}

static char *cluster;
static size_t cluster_size;
#define MAX_CALLS 64
static struct { int32_t token, stream; } calls[MAX_CALLS];

EXPORT(proxy_on_configure) int32_t on_configure(int32_t root, int32_t size) {
  proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size, &cluster, &cluster_size);
  return 1;
}

/* The pairs encoding of the callout's headers: count, then sizes, then NUL-terminated keys and values. */
static const char check_headers[] =
    "\x03\x00\x00\x00"
    "\x07\x00\x00\x00\x03\x00\x00\x00"
    "\x05\x00\x00\x00\x06\x00\x00\x00"
    "\x0a\x00\x00\x00\x04\x00\x00\x00"
    ":method\0GET\0"
    ":path\0/check\0"
    ":authority\0auth\0";

EXPORT(proxy_on_request_headers) int32_t on_request_headers(int32_t id, int32_t headers, int32_t end_of_stream) {
  int32_t token = 0;
  int32_t r = proxy_http_call(cluster, cluster_size, check_headers, sizeof check_headers - 1, 0, 0, 0, 0, 5000, &token);
  if (r != 0) {
    say("callout refused");
    return CONTINUE;
  }
  for (int i = 0; i < MAX_CALLS; i++) {
    if (calls[i].token == 0) {
      calls[i].token = token;
      calls[i].stream = id;
      break;
    }
  }
  return STOP_ITERATION;
}

EXPORT(proxy_on_http_call_response) void on_http_call_response(int32_t root, int32_t token, int32_t headers, int32_t body_size, int32_t trailers) {
  int32_t stream = 0;
  for (int i = 0; i < MAX_CALLS; i++) {
    if (calls[i].token == token) {
      stream = calls[i].stream;
      calls[i].token = 0;
    }
  }
  char *status = 0;
  size_t status_size = 0;
  proxy_get_header_map_value(MAP_HTTP_CALL_RESPONSE_HEADERS, ":status", 7, &status, &status_size);
  line_t l = {0};
  puts_(&l, "set_effective_context=");
  putu(&l, (uint32_t)proxy_set_effective_context(stream));
  if (status_size == 3 && status[0] == '2' && status[1] == '0' && status[2] == '0') {
    proxy_add_header_map_value(MAP_REQUEST_HEADERS, "x-auth", 6, "ok", 2);
    puts_(&l, " continue_stream=");
    putu(&l, (uint32_t)proxy_continue_stream(0));
  } else {
    puts_(&l, " send_local_response=");
    putu(&l, (uint32_t)proxy_send_local_response(403, "auth_denied", 11, "denied\n", 7, 0, 0, -1));
  }
  emit(&l);
}

EXPORT(proxy_on_response_headers) int32_t on_response_headers(int32_t id, int32_t headers, int32_t end_of_stream) {
  line_t l = {0};
  puts_(&l, "response_headers ");
  putu(&l, (uint32_t)id);
  emit(&l);
  return CONTINUE;
}

EXPORT(proxy_on_log) void on_log(int32_t id) { say("log"); }
EXPORT(proxy_on_delete) void on_delete(int32_t id) { say("delete"); }
