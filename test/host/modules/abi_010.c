/* A module of the first proxy-wasm ABI, 0.1.0: it reads its configuration with proxy_get_configuration,
 * has two-argument header callbacks, and calls proxy_clear_route_cache and proxy_continue_request —
 * imports Envoy links only for this version. */
#include "freestanding.h"
#include "proxy_wasm.h"

IMPORT(proxy_get_configuration) int32_t proxy_get_configuration(char **ptr, size_t *size);
IMPORT(proxy_clear_route_cache) int32_t proxy_clear_route_cache(void);
IMPORT(proxy_continue_request) int32_t proxy_continue_request(void);

EXPORT(proxy_abi_version_0_1_0) void abi_version(void) {}

static char *config;
static size_t config_size;

EXPORT(proxy_on_configure) int32_t on_configure(int32_t root, int32_t size) {
  proxy_get_configuration(&config, &config_size);
  line_t l = {0};
  puts_(&l, "configured: ");
  put(&l, config, config_size);
  emit(&l);
  return 1;
}

EXPORT(proxy_on_request_headers) int32_t on_request_headers(int32_t id, int32_t headers) {
  proxy_add_header_map_value(MAP_REQUEST_HEADERS, "x-abi", 5, config, config_size);
  line_t l = {0};
  puts_(&l, "clear_route_cache=");
  putu(&l, (uint32_t)proxy_clear_route_cache());
  puts_(&l, " continue_request=");
  putu(&l, (uint32_t)proxy_continue_request());
  emit(&l);
  return CONTINUE;
}

EXPORT(proxy_on_response_headers) int32_t on_response_headers(int32_t id, int32_t headers) {
  proxy_add_header_map_value(MAP_RESPONSE_HEADERS, "x-abi", 5, "0.1.0", 5);
  return CONTINUE;
}
