// Per-window string table: every dimension value of the window, stored once, addressed by a small id.
// Series keys are arrays of these ids, so a key compares in a few integer loads and the wire string
// table falls out of it. Both capacity limits are fixed at configure time; when either is reached,
// `intern` answers -1 and the caller folds the request into the overflow series.

/** FNV-1a over bytes, then a 64-bit finalizer (splitmix64) so the low bits are usable as a slot. */
export function hashBytes(ptr: usize, len: i32): u64 {
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0; i < len; i++) h = (h ^ <u64>load<u8>(ptr + i)) * 0x100000001b3;
  return mix64(h ^ <u64>len);
}

export function mix64(x: u64): u64 {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

export class Interner {
  private arena: ArrayBuffer;
  /**
   * The arena as bytes, for the flush: string `id` is text[offset(id), offset(id) + length(id)) until the
   * next reset(), which is after the window's summary is encoded. One view for the table's life, so
   * encoding a window allocates neither copies of its strings nor a view per string.
   */
  readonly text: Uint8Array;
  private used: i32 = 0;
  private offsets: Int32Array;
  private lengths: Int32Array;
  private hashes: Uint64Array;
  private slots: Int32Array; // id + 1; 0 = empty
  private mask: i32;
  count: i32 = 0;

  constructor(
    readonly maxStrings: i32,
    readonly maxBytes: i32,
  ) {
    this.arena = new ArrayBuffer(maxBytes);
    this.text = Uint8Array.wrap(this.arena);
    this.offsets = new Int32Array(maxStrings);
    this.lengths = new Int32Array(maxStrings);
    this.hashes = new Uint64Array(maxStrings);
    let size = 16;
    while (size < maxStrings * 2) size <<= 1;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
  }

  reset(): void {
    this.slots.fill(0);
    this.count = 0;
    this.used = 0;
  }

  /** The id of the string `ptr[0..len)` with hash `h`, adding it if new; -1 when the table is full. */
  intern(ptr: usize, len: i32, h: u64): i32 {
    let slot = <i32>h & this.mask;
    let base = changetype<usize>(this.arena);
    while (true) {
      let entry = unchecked(this.slots[slot]);
      if (entry == 0) break;
      let id = entry - 1;
      if (unchecked(this.hashes[id]) == h && unchecked(this.lengths[id]) == len && memory.compare(base + unchecked(this.offsets[id]), ptr, len) == 0) {
        return id;
      }
      slot = (slot + 1) & this.mask;
    }
    if (this.count >= this.maxStrings || this.used + len > this.maxBytes) return -1;
    let id = this.count++;
    memory.copy(base + this.used, ptr, len);
    unchecked((this.offsets[id] = this.used));
    unchecked((this.lengths[id] = len));
    unchecked((this.hashes[id] = h));
    this.used += len;
    unchecked((this.slots[slot] = id + 1));
    return id;
  }

  /** Interns a string constant (used for the sentinels at every window start). */
  internString(s: string): i32 {
    let b = String.UTF8.encode(s);
    return this.intern(changetype<usize>(b), b.byteLength, hashBytes(changetype<usize>(b), b.byteLength));
  }

  offset(id: i32): i32 {
    return this.offsets[id];
  }

  length(id: i32): i32 {
    return this.lengths[id];
  }
}
