/* Logs every lifecycle callback it receives, with the plugin configuration of the root context a stream
 * runs under. Its plugin configuration steers it: "refuse" makes proxy_on_configure answer false;
 * "defer" makes a root context's proxy_on_done answer false and finish two ticks later with proxy_done. */
#include "freestanding.h"
#include "proxy_wasm.h"

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}

#define MAX_CONTEXTS 64
static struct { int32_t root; char *config; size_t config_size; int closing; int ticks; } ctx[MAX_CONTEXTS];

static void log_event(const char *what, int32_t id) {
  line_t l = {0};
  puts_(&l, what);
  puts_(&l, " ");
  putu(&l, (uint32_t)id);
  int32_t root = ctx[id % MAX_CONTEXTS].root;
  int32_t r = root ? root : id;
  puts_(&l, " config=");
  put(&l, ctx[r % MAX_CONTEXTS].config, ctx[r % MAX_CONTEXTS].config_size);
  emit(&l);
}

EXPORT(proxy_on_context_create) void on_context_create(int32_t id, int32_t root) {
  ctx[id % MAX_CONTEXTS].root = root;
  log_event("create", id);
}

EXPORT(proxy_on_configure) int32_t on_configure(int32_t root, int32_t size) {
  char *config = 0;
  size_t config_size = 0;
  proxy_get_buffer_bytes(BUFFER_PLUGIN_CONFIGURATION, 0, size, &config, &config_size);
  ctx[root % MAX_CONTEXTS].config = config;
  ctx[root % MAX_CONTEXTS].config_size = config_size;
  log_event("configure", root);
  return !has(config, config_size, "refuse");
}

EXPORT(proxy_on_request_headers) int32_t on_request_headers(int32_t id, int32_t headers, int32_t end_of_stream) {
  log_event("request_headers", id);
  return CONTINUE;
}

EXPORT(proxy_on_response_headers) int32_t on_response_headers(int32_t id, int32_t headers, int32_t end_of_stream) {
  log_event("response_headers", id);
  return CONTINUE;
}

EXPORT(proxy_on_log) void on_log(int32_t id) { log_event("log", id); }

EXPORT(proxy_on_done) int32_t on_done(int32_t id) {
  log_event("done", id);
  int32_t r = id % MAX_CONTEXTS;
  if (ctx[r].root != 0 || !has(ctx[r].config, ctx[r].config_size, "defer")) return 1;
  ctx[r].closing = 1;
  proxy_set_tick_period_milliseconds(10);
  return 0;
}

EXPORT(proxy_on_tick) void on_tick(int32_t root) {
  int32_t r = root % MAX_CONTEXTS;
  if (!ctx[r].closing || ++ctx[r].ticks < 2) return;
  log_event("finishing", root);
  line_t l = {0};
  puts_(&l, "proxy_done=");
  putu(&l, (uint32_t)proxy_done());
  emit(&l);
}

EXPORT(proxy_on_delete) void on_delete(int32_t id) { log_event("delete", id); }
