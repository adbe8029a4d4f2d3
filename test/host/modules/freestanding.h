/* What a module without libc needs: malloc (Envoy hands every value over through it and never frees,
 * so a bump allocator does), and the memcpy/memset clang may emit calls to. */
#pragma once
#include <stddef.h>
#include <stdint.h>

extern unsigned char __heap_base;
static uintptr_t heap_top;
__attribute__((export_name("malloc"))) void *malloc(size_t size) {
  if (!heap_top) heap_top = (uintptr_t)&__heap_base;
  uintptr_t p = (heap_top + 7) & ~(uintptr_t)7;
  size_t need = p + size;
  size_t have = __builtin_wasm_memory_size(0) * 65536;
  if (need > have && __builtin_wasm_memory_grow(0, (need - have + 65535) / 65536) < 0) __builtin_trap();
  heap_top = need;
  return (void *)p;
}

void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  while (n--) *d++ = *s++;
  return dst;
}
void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  while (n--) *d++ = (unsigned char)c;
  return dst;
}

