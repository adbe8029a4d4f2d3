/* What an Emscripten or early-WASI build imports: env.emscripten_notify_memory_growth (Emscripten calls
 * it after growing memory) and the wasi_unstable module (WASI before snapshot 1) for stdout and the
 * clock. Envoy registers every WASI function under both module names. */
#include "freestanding.h"
#include "proxy_wasm.h"

__attribute__((import_module("env"), import_name("emscripten_notify_memory_growth"))) void emscripten_notify_memory_growth(int32_t memory_index);
__attribute__((import_module("wasi_unstable"), import_name("fd_write"))) int32_t wasi_fd_write(int32_t fd, const void *iovs, int32_t iovs_len, int32_t *nwritten);
__attribute__((import_module("wasi_unstable"), import_name("clock_time_get"))) int32_t wasi_clock_time_get(int32_t id, uint64_t precision, uint64_t *time);

EXPORT(proxy_abi_version_0_2_0) void abi_version(void) {}

EXPORT(proxy_on_vm_start) int32_t on_vm_start(int32_t root, int32_t size) {
  if (__builtin_wasm_memory_grow(0, 1) < 0) return 0;
  emscripten_notify_memory_growth(0);
  static const char hello[] = "hello from wasi_unstable\n";
  struct { const char *base; size_t len; } iov = {hello, sizeof hello - 1};
  int32_t written = 0;
  int32_t err = wasi_fd_write(1, &iov, 1, &written);
  uint64_t now = 0;
  int32_t clock_err = wasi_clock_time_get(1, 1, &now);
  line_t l = {0};
  puts_(&l, "fd_write=");
  putu(&l, (uint32_t)err);
  puts_(&l, " written=");
  putu(&l, (uint32_t)written);
  puts_(&l, " clock_time_get=");
  putu(&l, (uint32_t)clock_err);
  puts_(&l, now > 0 ? " monotonic>0" : " monotonic=0");
  emit(&l);
  return 1;
}
