// The allocator Envoy calls (export `malloc`) for every value it hands the module, and its inverse.
// The filter releases each value before it reads the next, so one preallocated block serves nearly
// every call; a second value held at the same time, or a larger one, gets a raw heap block. Raw blocks
// rather than the SDK's reference-counted ArrayBuffer: the host only needs room for bytes, so the
// object header, the zero fill and the reference count were paid on every property read for nothing.
// Every block the host allocated goes back through free() (HostBytes.release).

const SCRATCH_BYTES: i32 = 1024;
const scratchBuffer = new ArrayBuffer(SCRATCH_BYTES);
const SCRATCH: usize = changetype<usize>(scratchBuffer);
let scratchInUse = false;

export function malloc(size: i32): usize {
  if (!scratchInUse && <u32>size <= <u32>SCRATCH_BYTES) {
    scratchInUse = true;
    return SCRATCH;
  }
  return heap.alloc(<usize>size);
}

export function free(ptr: usize): void {
  if (ptr == SCRATCH) scratchInUse = false;
  else heap.free(ptr);
}
