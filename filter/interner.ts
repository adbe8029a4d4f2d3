// Per-window string table: every dimension value of the window, stored once, addressed by a small id.
// Series keys are arrays of these ids, so a key compares in a few integer loads and the wire string
// table falls out of it. Both capacity limits are fixed at configure time; when either is reached,
// `intern` answers -1 and the caller folds the request into the overflow series.

/**
 * Eight bytes per step, the tail packed into one more word, then a 64-bit finalizer (splitmix64) so the
 * low bits are usable as a slot. Each word is mixed on its own before it meets the state (multiply,
 * xor-shift, multiply: MurmurHash64A's step): a single multiply per word only carries a difference
 * upwards, so one in a word's top byte stayed in a few bits of the state, where the next word could
 * cancel it, and addresses two characters apart (10.0.0.5:8060, 10.0.0.9:8000) shared a hash, hence an
 * upstream fact-cache entry. Every dimension value of every request is hashed; a multiply per byte cost
 * as much as the string-table lookup. `seed` keys it: unkeyed, a caller can search offline for printable
 * values that share one hash, and every lookup of one would compare the bytes of all the others (the
 * string table probes linearly, up to its capacity).
 */
export function hashBytes(ptr: usize, len: i32, seed: u64): u64 {
  let h: u64 = seed ^ (<u64>len * WORD_MUL);
  let end = ptr + <usize>len;
  let p = ptr;
  for (; p + 8 <= end; p += 8) h = step(h, load<u64>(p));
  if (p < end) {
    let tail: u64 = 0;
    for (let i = <i32>(end - p) - 1; i >= 0; i--) tail = (tail << 8) | <u64>load<u8>(p + <usize>i);
    h = step(h, tail);
  }
  return mix64(h);
}

const WORD_MUL: u64 = 0xc6a4a7935bd1e995;

function step(h: u64, w: u64): u64 {
  w *= WORD_MUL;
  w ^= w >> 47;
  w *= WORD_MUL;
  return (h ^ w) * WORD_MUL;
}

export function mix64(x: u64): u64 {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
  x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

// Size of the memo of recent values (Interner.recent): twice the distinct dimension values a sidecar's
// new connections bring between repeats in bookinfo (a few peers, seven values each), so that they
// rarely evict each other.
const RECENT_BITS: u64 = 8;

/**
 * Memo slot (Interner.recent) of a value of `len` bytes: from its length and its first and last eight
 * bytes, where dimension values differ (a workload's suffix, a service account), with one multiply.
 */
function recentSlot(ptr: usize, len: i32): i32 {
  let w: u64 = <u64>len;
  if (len >= 8) w ^= load<u64>(ptr) ^ rotl<u64>(load<u64>(ptr + <usize>len - 8), 29);
  else for (let i = 0; i < len; i++) w = (w << 8) ^ <u64>load<u8>(ptr + <usize>i);
  return <i32>((w * 0x9e3779b97f4a7c15) >> (64 - RECENT_BITS));
}

/**
 * Whether [a, a + len) and [b, b + len) hold the same bytes, eight at a time: memory.compare goes byte
 * by byte unless both sides share an alignment, which the table's arena and the host's blocks rarely do,
 * and every value of a request on a new connection is compared once it is found.
 */
export function sameBytes(a: usize, b: usize, len: i32): bool {
  let i = 0;
  for (; i + 8 <= len; i += 8) if (load<u64>(a + <usize>i) != load<u64>(b + <usize>i)) return false;
  for (; i < len; i++) if (load<u8>(a + <usize>i) != load<u8>(b + <usize>i)) return false;
  return true;
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
  // Direct-mapped on recentSlot, id + 1 of the value last interned there; 0 = empty.
  private recentIds: StaticArray<i32> = new StaticArray<i32>(1 << (<i32>RECENT_BITS));
  count: i32 = 0;

  constructor(
    readonly maxStrings: i32,
    readonly maxBytes: i32,
    /** Key of the table's hashes (hashBytes): random per table, so values cannot be made to collide. */
    readonly seed: u64,
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
    memory.fill(changetype<usize>(this.recentIds), 0, (<usize>this.recentIds.length) << 2);
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
      if (unchecked(this.hashes[id]) == h && unchecked(this.lengths[id]) == len && sameBytes(base + unchecked(this.offsets[id]), ptr, len)) {
        unchecked((this.recentIds[recentSlot(ptr, len)] = entry));
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
    unchecked((this.recentIds[recentSlot(ptr, len)] = id + 1));
    return id;
  }

  /**
   * The id of `ptr[0..len)` when it equals one of the recently interned values, else -1 (it may still
   * be in the table). Every value of a request on a new connection (the peer's labels and principal,
   * this proxy's principal) is looked up, and mostly one that a recent connection brought too: found
   * here, it costs one comparison, without the UTF-8 check (an interned value passed it), the keyed
   * hash and the probe run. The memo's own hash only picks a slot, and a slot's value is compared in
   * full, so values made to share a slot only miss it, and cost the ordinary lookup.
   */
  recent(ptr: usize, len: i32): i32 {
    let id = unchecked(this.recentIds[recentSlot(ptr, len)]) - 1;
    if (id < 0 || unchecked(this.lengths[id]) != len) return -1;
    return sameBytes(changetype<usize>(this.arena) + unchecked(this.offsets[id]), ptr, len) ? id : -1;
  }

  /** Interns a string constant (used for the sentinels at every window start). */
  internString(s: string): i32 {
    let b = String.UTF8.encode(s);
    return this.intern(changetype<usize>(b), b.byteLength, hashBytes(changetype<usize>(b), b.byteLength, this.seed));
  }

  offset(id: i32): i32 {
    return this.offsets[id];
  }

  length(id: i32): i32 {
    return this.lengths[id];
  }
}
