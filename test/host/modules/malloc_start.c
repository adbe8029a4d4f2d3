/* A WASI command built with wasi-libc (crt1-command.o): it exports _start, which runs main, and wasi-libc's
 * malloc. Envoy calls _start when a module has no _initialize (cpp-host WasmBase::startVm) and then
 * drives the module as any other. */
#include <stdio.h>
#include <stdlib.h>
#include "proxy_wasm.h"

EXPORT(proxy_abi_version_0_2_1) void abi_version(void) {}

static int started;

int main(void) {
  started = 1;
  printf("main ran\n");
  fflush(stdout);
  return 0;
}

EXPORT(proxy_on_configure) int32_t on_configure(int32_t root, int32_t size) {
  say(started ? "configured after main" : "configured without main");
  return started;
}

EXPORT(proxy_on_request_headers) int32_t on_request_headers(int32_t id, int32_t headers, int32_t end_of_stream) {
  char *copy = malloc(32);
  say(copy ? "malloc ok" : "malloc failed");
  free(copy);
  return CONTINUE;
}
