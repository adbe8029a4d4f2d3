// Per-window caches of request facts that many requests share (see FactCache).
import { Dim } from "./dimensions";
import { mix64 } from "./interner";

// Open addressing with a short probe run: at the default series cap (2,000 callers, one connection each)
// the table is under half full, so nearly every repeat connection hits. A direct-mapped table of 2,048
// slots missed about a third of them there, and each miss re-reads the peer metadata.
const CACHE_SLOTS = 4096;
const MAX_PROBES = 8;
// A slot's record (FactCache.records): the spill hash (u64), the direction (i32), whether it holds facts
// and whether they spilled (a byte each), then the fact values (i32 each).
const REC_SPILL_HASH: usize = 0;
const REC_DIRECTION: usize = 8;
const REC_HAS_FACTS: usize = 12;
const REC_SPILLED: usize = 13;
const REC_VALUES: usize = 16;
// Dimensions fixed by the downstream connection (inbound), in cache order.
export const DOWNSTREAM_DIMS: StaticArray<i32> = [
  Dim.SourcePrincipal,
  Dim.SourceWorkload,
  Dim.SourceNamespace,
  Dim.SourceCanonicalService,
  Dim.SourceCanonicalRevision,
  Dim.SourceCluster,
  Dim.DestinationPrincipal,
  Dim.ConnectionSecurityPolicy,
];
// Dimensions fixed by the upstream endpoint (outbound): its pod's identity and labels, our own identity.
export const UPSTREAM_DIMS: StaticArray<i32> = [
  Dim.SourcePrincipal,
  Dim.DestinationWorkload,
  Dim.DestinationNamespace,
  Dim.DestinationCanonicalService,
  Dim.DestinationCanonicalRevision,
  Dim.DestinationCluster,
  Dim.DestinationPrincipal,
];

/**
 * Facts fixed for many requests, cached for the window (value ids are window-scoped) so that only the
 * first request pays the property reads: per downstream `connection.id`, the listener's direction and,
 * inbound, the caller's principal and peer metadata, this proxy's principal and the mTLS state; per
 * downstream connection and upstream endpoint (`upstream.address`), the destination pod's principal and
 * peer metadata. Only complete facts are stored (see observe.ts): an absent fact is re-read. Open
 * addressing on a 64-bit key; when the probe run is full the home slot is overwritten, which only costs a re-read.
 */
export class FactCache {
  private epoch: u64 = 1;
  // Per slot, the key and the epoch it was stored in (16 bytes): a probe run walks this array alone.
  private probes: StaticArray<u64> = new StaticArray<u64>(CACHE_SLOTS * 2);
  // Per slot, one record read or written together (the REC_ offsets): a new connection's store then writes
  // one or two cache lines, where a field per array would write one place of memory per field, each long
  // evicted from the CPU's caches by the host's work between two requests.
  private records: ArrayBuffer;
  private stride: usize;

  constructor(private dims: StaticArray<i32>) {
    this.stride = (REC_VALUES + ((<usize>dims.length) << 2) + 7) & ~7;
    this.records = new ArrayBuffer(CACHE_SLOTS * <i32>this.stride);
  }

  @inline private record(slot: i32): usize {
    return changetype<usize>(this.records) + <usize>slot * this.stride;
  }

  /** Forgets every entry (their value ids belong to the closed window). */
  clear(): void {
    this.epoch++;
    this.missSlot = -1;
  }

  /** The slot holding `key`, or -1; a miss remembers where `store` would put `key`. */
  find(key: u64): i32 {
    let home = <i32>(mix64(key) & (CACHE_SLOTS - 1));
    let slot = home;
    let probes = changetype<usize>(this.probes);
    for (let p = 0; p < MAX_PROBES; p++) {
      let at = probes + ((<usize>slot) << 4);
      // A slot of an older window is empty: nothing is stored past it in this window's probe run.
      if (load<u64>(at, 8) != this.epoch) {
        this.remember(key, slot);
        return -1;
      }
      if (load<u64>(at) == key) return slot;
      slot = (slot + 1) & (CACHE_SLOTS - 1);
    }
    this.remember(key, home);
    return -1;
  }

  // Where the last miss would be stored: the first request of each new connection both misses and
  // stores, and a full table (every request on a new connection fills it within a window) made both
  // walk the whole probe run.
  private missKey: u64 = 0;
  private missSlot: i32 = -1;

  private remember(key: u64, slot: i32): void {
    this.missKey = key;
    this.missSlot = slot;
  }

  direction(slot: i32): i64 {
    return load<i32>(this.record(slot), REC_DIRECTION);
  }

  /** Whether the slot holds facts (else only the connection's direction). */
  hasFactsAt(slot: i32): bool {
    return load<u8>(this.record(slot), REC_HAS_FACTS) != 0;
  }

  /**
   * Copies the cached facts into the series key at `key` (StaticArray<i32> data, a pointer as in
   * Observer); a slot stored without facts leaves it alone.
   */
  restore(slot: i32, key: usize): void {
    let r = this.record(slot);
    if (load<u8>(r, REC_HAS_FACTS) == 0) return;
    let n = this.dims.length;
    for (let i = 0; i < n; i++) store<i32>(key + ((<usize>unchecked(this.dims[i])) << 2), load<i32>(r + REC_VALUES + ((<usize>i) << 2)));
  }

  /** Whether a value of the cached facts did not fit in the string table (see `store`). */
  spilledAt(slot: i32): bool {
    return load<u8>(this.record(slot), REC_SPILLED) != 0;
  }

  /** The spill hash of the values that did not fit, as the reads that stored the facts left it. */
  spillHashAt(slot: i32): u64 {
    return load<u64>(this.record(slot), REC_SPILL_HASH);
  }

  /**
   * Stores the facts of `cacheKey` from the series key at `key` (0: the direction only). Facts with values that did not fit in the string table are cached
   * too, with their spill hash: the table only fills up within a window, so a value that did not fit
   * never will until the window (and this cache) is cleared, and re-reading it would give the same answer.
   */
  store(cacheKey: u64, direction: i64, key: usize, spilled: bool = false, spillHash: u64 = 0): void {
    let slot = -1;
    // Without a miss of this key just before, find walks the probe run (and on a miss remembers the slot).
    if (this.missSlot < 0 || this.missKey != cacheKey) slot = this.find(cacheKey);
    if (slot < 0) slot = this.missSlot;
    this.missSlot = -1;
    let at = changetype<usize>(this.probes) + ((<usize>slot) << 4);
    store<u64>(at, cacheKey);
    store<u64>(at, this.epoch, 8);
    let r = this.record(slot);
    store<u64>(r, spillHash, REC_SPILL_HASH);
    store<i32>(r, <i32>direction, REC_DIRECTION);
    store<u8>(r, key != 0 ? 1 : 0, REC_HAS_FACTS);
    store<u8>(r, spilled ? 1 : 0, REC_SPILLED);
    if (key == 0) return;
    let n = this.dims.length;
    for (let i = 0; i < n; i++) store<i32>(r + REC_VALUES + ((<usize>i) << 2), load<i32>(key + ((<usize>unchecked(this.dims[i])) << 2)));
  }
}
