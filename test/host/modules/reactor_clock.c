/* A WASI reactor built with wasi-libc (crt1-reactor.o): its _initialize runs the C constructors, and
 * this one reads the monotonic clock there, as Go's wasip1 runtime does in schedinit — and refuses to
 * start, like Go ("nanotime returning zero"), when it reads 0. malloc is wasi-libc's. */
#include <stdio.h>
#include <time.h>
#include "proxy_wasm.h"

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}

static uint64_t monotonic_at_start, realtime_at_start;

__attribute__((constructor)) static void runtime_init(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  monotonic_at_start = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  if (monotonic_at_start == 0) __builtin_trap();
  clock_gettime(CLOCK_REALTIME, &ts);
  realtime_at_start = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  printf("runtime started\n");
  fflush(stdout);
}

EXPORT(proxy_on_configure) int32_t on_configure(int32_t root, int32_t size) {
  line_t l = {0};
  puts_(&l, "monotonic_at_start=");
  putu(&l, monotonic_at_start);
  puts_(&l, " realtime_at_start=");
  putu(&l, realtime_at_start);
  emit(&l);
  return 1;
}
