// The allocator Envoy calls (export `malloc`) for every value it hands the module, and its inverse.
// Raw heap blocks rather than the SDK's reference-counted ArrayBuffer: the host only needs room for
// bytes, so the object header, the zero fill and the reference count were paid on every property read
// for nothing. Every block the host allocated goes back through free() (HostBytes.release).

export function malloc(size: i32): usize {
  return heap.alloc(<usize>size);
}

export function free(ptr: usize): void {
  heap.free(ptr);
}
