// The aggregation table of one window: at most `maxSeries` series, each a shared SeriesStats (counters
// and latency sketch). Keys and the hash index are preallocated, and series aggregates are reused
// across windows, so recording a request allocates nothing once a series' sketch has grown.
// Requests whose key does not fit — the series cap is reached, or one of its values did not fit in the
// string table — are folded into one overflow series per reporter, whose string dimensions other than
// `reporter` are `__overflow__`, so totals stay exact. The number of distinct keys folded is estimated with a HyperLogLog (HLL_REGISTERS
// registers: about 1.04/sqrt(256) = 6.5 % standard error).
import { SeriesStats } from "../shared";
import { DIM_COUNT, Dim } from "./dimensions";
import { Observation } from "./observe";

const HLL_BITS: i32 = 8;
export const HLL_REGISTERS: i32 = 1 << HLL_BITS;

export class SeriesTable {
  /** Series in this window, overflow series included. */
  count: i32 = 0;
  /** Requests folded into an overflow series this window. */
  overflowRequests: f64 = 0;
  keys: Int32Array;
  stats: Array<SeriesStats>;
  private hashes: Uint64Array;
  private slots: Int32Array; // series index + 1; 0 = empty
  private mask: i32;
  private regularLimit: i32;
  // Overflow series index per reporter (0 source, 1 destination), -1 until first used.
  private overflowIndex: StaticArray<i32> = new StaticArray<i32>(2);
  private hll: Uint8Array = new Uint8Array(HLL_REGISTERS);

  /**
   * `reservedOverflow` series slots are kept for the overflow series (one per reported direction), so
   * the table never holds more than `maxSeries` series.
   */
  constructor(
    readonly maxSeries: i32,
    reservedOverflow: i32,
    private scale: i32,
  ) {
    this.regularLimit = maxSeries - reservedOverflow;
    this.keys = new Int32Array(maxSeries * DIM_COUNT);
    this.hashes = new Uint64Array(maxSeries);
    this.stats = new Array<SeriesStats>(0);
    let size = 16;
    while (size < maxSeries * 2) size <<= 1;
    this.slots = new Int32Array(size);
    this.mask = size - 1;
    this.reset();
  }

  /** Empties the table for the next window. Series aggregates (and their sketches) keep their storage. */
  reset(): void {
    for (let i = 0; i < this.count; i++) this.stats[i].reset();
    this.slots.fill(0);
    this.count = 0;
    this.overflowRequests = 0;
    this.overflowIndex[0] = -1;
    this.overflowIndex[1] = -1;
    this.hll.fill(0);
  }

  /** Adds one request; `overflowId` is the id of `__overflow__` in this window's string table. */
  record(o: Observation, overflowId: i32): void {
    let s = o.spilled ? -1 : this.find(o);
    if (s < 0) s = this.overflow(o, overflowId);
    unchecked(this.stats[s]).record(<f64>o.latencyUs, <f64>o.requestBytes, <f64>o.responseBytes, o.error);
  }

  /** Estimated number of distinct keys folded into overflow series this window (HyperLogLog). */
  overflowKeysEstimate(): f64 {
    if (this.overflowRequests == 0) return 0;
    let m = <f64>HLL_REGISTERS;
    let sum: f64 = 0;
    let zeros = 0;
    for (let i = 0; i < HLL_REGISTERS; i++) {
      let r = this.hll[i];
      sum += Math.pow(2, -(<f64>r));
      if (r == 0) zeros++;
    }
    let estimate = ((0.7213 / (1 + 1.079 / m)) * m * m) / sum;
    // Small-range correction (linear counting), as in the original HyperLogLog paper.
    if (estimate <= 2.5 * m && zeros > 0) estimate = m * Math.log(m / <f64>zeros);
    let rounded = Math.round(estimate);
    return rounded < 1 ? 1 : rounded;
  }

  private find(o: Observation): i32 {
    let h = o.keyHash;
    let slot = <i32>h & this.mask;
    while (true) {
      let entry = unchecked(this.slots[slot]);
      if (entry == 0) break;
      let s = entry - 1;
      if (unchecked(this.hashes[s]) == h && this.sameKey(s, o)) return s;
      slot = (slot + 1) & this.mask;
    }
    if (this.count >= this.regularLimit) return -1;
    let s = this.add(o.key, h);
    unchecked((this.slots[slot] = s + 1));
    return s;
  }

  private sameKey(s: i32, o: Observation): bool {
    let base = s * DIM_COUNT;
    for (let i = 0; i < DIM_COUNT; i++) if (unchecked(this.keys[base + i]) != unchecked(o.key[i])) return false;
    return true;
  }

  private add(key: StaticArray<i32>, h: u64): i32 {
    let s = this.count++;
    let base = s * DIM_COUNT;
    for (let i = 0; i < DIM_COUNT; i++) unchecked((this.keys[base + i] = key[i]));
    this.hashes[s] = h;
    if (s == this.stats.length) this.stats.push(new SeriesStats(this.scale, true));
    return s;
  }

  private overflow(o: Observation, overflowId: i32): i32 {
    this.overflowRequests += 1;
    let h = o.keyHash;
    let register = <i32>(h & <u64>(HLL_REGISTERS - 1));
    let rank = <u8>(clz<u64>(h | <u64>(HLL_REGISTERS - 1)) + 1);
    if (rank > this.hll[register]) this.hll[register] = rank;

    let which = o.inbound ? 1 : 0;
    let s = this.overflowIndex[which];
    if (s >= 0) return s;
    let key = o.key;
    let reporter = key[Dim.Reporter];
    for (let i = 0; i < DIM_COUNT; i++) key[i] = overflowId;
    key[Dim.Reporter] = reporter;
    key[Dim.ResponseCode] = 0;
    // Overflow series live in the reserved slots past regularLimit, outside the hash index.
    s = this.add(key, 0);
    this.overflowIndex[which] = s;
    return s;
  }
}
