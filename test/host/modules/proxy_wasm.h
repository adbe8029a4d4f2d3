/* The raw proxy-wasm ABI (spec v0.2.1) for the host conformance modules, plus string helpers and
 * logging. No SDK: each module calls the ABI as any toolchain's output would. Freestanding modules also
 * include freestanding.h (malloc, memcpy, memset); wasi-libc ones take those from libc. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

IMPORT(proxy_log) int32_t proxy_log(int32_t level, const char *msg, size_t size);
IMPORT(proxy_get_buffer_bytes) int32_t proxy_get_buffer_bytes(int32_t type, int32_t start, int32_t length, char **ptr, size_t *size);
IMPORT(proxy_set_tick_period_milliseconds) int32_t proxy_set_tick_period_milliseconds(int32_t period);
IMPORT(proxy_done) int32_t proxy_done(void);
IMPORT(proxy_http_call) int32_t proxy_http_call(const char *cluster, size_t cluster_size, const char *headers, size_t headers_size,
                                                const char *body, size_t body_size, const char *trailers, size_t trailers_size,
                                                int32_t timeout_ms, int32_t *token);
IMPORT(proxy_get_header_map_value) int32_t proxy_get_header_map_value(int32_t type, const char *key, size_t key_size, char **value, size_t *value_size);
IMPORT(proxy_add_header_map_value) int32_t proxy_add_header_map_value(int32_t type, const char *key, size_t key_size, const char *value, size_t value_size);
IMPORT(proxy_set_effective_context) int32_t proxy_set_effective_context(int32_t context_id);
IMPORT(proxy_send_local_response) int32_t proxy_send_local_response(int32_t code, const char *details, size_t details_size, const char *body, size_t body_size,
                                                                    const char *headers, size_t headers_size, int32_t grpc_status);

enum { LOG_INFO = 2 };
enum { BUFFER_VM_CONFIGURATION = 6, BUFFER_PLUGIN_CONFIGURATION = 7 };
enum { MAP_REQUEST_HEADERS = 0, MAP_RESPONSE_HEADERS = 2, MAP_HTTP_CALL_RESPONSE_HEADERS = 6 };
enum { CONTINUE = 0, STOP_ITERATION = 1 };

static size_t str_len(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}
static int has(const char *s, size_t n, const char *word) {
  size_t w = str_len(word);
  for (size_t i = 0; i + w <= n; i++) {
    size_t j = 0;
    while (j < w && s[i + j] == word[j]) j++;
    if (j == w) return 1;
  }
  return 0;
}

/* A line being built: text and decimal numbers appended, then logged at info. */
typedef struct { char buf[256]; size_t n; } line_t;
static void put(line_t *l, const char *s, size_t n) {
  while (n-- && l->n < sizeof l->buf) l->buf[l->n++] = *s++;
}
static void puts_(line_t *l, const char *s) { put(l, s, str_len(s)); }
static void putu(line_t *l, uint64_t v) {
  char d[20];
  int i = 0;
  do d[i++] = (char)('0' + v % 10); while ((v /= 10) && i < 20);
  while (i--) put(l, &d[i], 1);
}
static void emit(line_t *l) {
  proxy_log(LOG_INFO, l->buf, l->n);
  l->n = 0;
}
static void say(const char *s) { proxy_log(LOG_INFO, s, str_len(s)); }
