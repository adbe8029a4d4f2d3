// The latency sketch: an exponential histogram in the scheme of OpenTelemetry's ExponentialHistogram
// and Prometheus native histograms, over whole microseconds (docs/schema.md, "The latency sketch").
//
// Portable AssemblyScript: this file compiles with asc into the filter and runs as TypeScript in Node
// after `import "assemblyscript/std/portable/index.js"` (see shared/README.md for the rules it follows).
//
// With base = 2^(2^-scale), bucket index i holds values v with base^i < v <= base^(i+1); 0 goes to the
// zero count. Counts are exact: f64 (exact to 2^53) on the collector, the narrowest unsigned width that
// holds them in the filter (see Sketch), widened before a count could overflow.

/**
 * Default scale: base 2^(1/64); a quantile read from it (shared/quantile-core.js meshBucketValue) is
 * within (base-1)/(base+1) ~ 0.5415 % of the exact value.
 */
export const DEFAULT_SCALE: i32 = 6;
/** Smallest scale a sketch may have on the wire. */
export const MIN_SCALE: i32 = 0;
/** Largest scale (base 2^(1/256), 0.14 %); the index table below is built for it. */
export const MAX_SCALE: i32 = 8;
/**
 * Most buckets one sketch spans (lowest to highest non-empty bucket). A value that would widen the span
 * beyond it makes the sketch downscale (halve its resolution) until it fits. Values are clamped to
 * [1, MAX_VALUE_US], i.e. indices [-1, 40 * 2^scale), so at scale <= 6 this never happens; at 7 and 8 only
 * when a window holds both microsecond and multi-hour latencies.
 */
export const MAX_SPAN: i32 = 4096;
/** Largest latency a sketch records, in microseconds (2^40 - 1, about 12.7 days); larger ones are clamped. */
export const MAX_VALUE_US: f64 = 1099511627775.0;

// Bucket indices are computed at TABLE_SCALE and shifted down to the sketch's scale: bucket i at scale s
// is exactly the union of buckets [i << d, (i + 1) << d) at scale s + d, so the shift is exact.
const TABLE_SCALE: i32 = 8;
// THRESHOLDS[k] for 1 <= k <= 255 is the smallest double strictly greater than 2^(k/256), so for any
// double m: m >= THRESHOLDS[k] <=> m > 2^(k/256), with no rounding doubt. Entry 0 is unused, entry 256
// (2.0) is a sentinel no mantissa reaches. test/shared/sketch.test.ts re-derives every entry with exact
// integer arithmetic.
const THRESHOLDS: f64[] = [
  1.0, 1.0027112750502025, 1.005429901112803, 1.0081558981184175, 1.0108892860517005, 1.0136300849514897, 1.016378314910953, 1.0191339960777381, 1.0218971486541168,
  1.0246677928971357, 1.0274459491187637, 1.0302316376860412, 1.0330248790212286, 1.0358256936019572, 1.038634101961379, 1.0414501246883163, 1.044273782427414, 1.04710509587929,
  1.0499440858006874, 1.0527907730046264, 1.0556451783605574, 1.0585073227945128, 1.061377227289262, 1.0642549128844647, 1.0671404006768237, 1.0700337118202419, 1.0729348675259756,
  1.075843889062791, 1.0787607977571199, 1.0816856149932152, 1.0846183622133094, 1.0875590609177699, 1.0905077326652577, 1.093464399072886, 1.0964290818163769, 1.0994018026302221,
  1.1023825833078411, 1.1053714457017414, 1.1083684117236787, 1.1113735033448178, 1.1143867425958927, 1.1174081515673693, 1.1204377524096067, 1.12347556733302, 1.126521618608242,
  1.1295759285662883, 1.1326385195987194, 1.1357094141578057, 1.1387886347566918, 1.1418762039695618, 1.1449721444318044, 1.1480764788401792, 1.151189229952983, 1.1543104205902162,
  1.1574400736337511, 1.1605782120274988, 1.1637248587775777, 1.1668800369524817, 1.1700437696832502, 1.1732160801636373, 1.1763969916502814, 1.179586527462876, 1.1827847109843412,
  1.1859915656609938, 1.1892071150027212, 1.1924313825831514, 1.1956643920398276, 1.1989061670743806, 1.2021567314527033, 1.2054161090051239, 1.2086843236265816,
  1.2119613992768012, 1.215247359980469, 1.2185422298274085, 1.2218460329727576, 1.2251587936371455, 1.22848053610687, 1.231811284734076, 1.2351510639369334, 1.2384998981998168,
  1.2418578120734842, 1.245224830175258, 1.2486009771892048, 1.2519862778663164, 1.255380757024691, 1.2587844395497165, 1.2621973503942507, 1.2656195145788065, 1.2690509571917334,
  1.2724917033894028, 1.2759417783963922, 1.2794012075056693, 1.2828700160787785, 1.2863482295460256, 1.289835873406666, 1.2933329732290895, 1.2968395546510099, 1.3003556433796508,
  1.303881265191936, 1.3074164459346773, 1.3109612115247644, 1.3145155879493549, 1.318079601266064, 1.3216532776031575, 1.3252366431597413, 1.3288297242059546, 1.3324325470831615,
  1.3360451382041458, 1.3396675240533031, 1.3432997311868353, 1.346941786232946, 1.3505937158920345, 1.3542555469368929, 1.3579273062129011, 1.361609020638225, 1.365300717204012,
  1.3690024229745907, 1.3727141650876684, 1.3764359707545302, 1.3801678672602382, 1.383909881963832, 1.3876620422985293, 1.3914243757719262, 1.3951969099662003, 1.3989796725383112,
  1.4027726912202048, 1.4065759938190157, 1.4103896082172709, 1.4142135623730951, 1.4180478843204154, 1.4218926021691656, 1.4257477441054944, 1.42961333839197, 1.433489413367789,
  1.4373759974489824, 1.4412731191286259, 1.4451808069770467, 1.449099089642035, 1.4530279958490526, 1.456967554401444, 1.460917794180647, 1.464878744146406, 1.468850433336982,
  1.4728328908693678, 1.4768261459394993, 1.4808302278224719, 1.4848451658727526, 1.4888709895243972, 1.492907728291265, 1.4969554117672355, 1.5010140696264256, 1.5050837316234067,
  1.5091644275934228, 1.51325618745261, 1.5173590411982147, 1.5214730189088146, 1.5255981507445384, 1.5297344669472872, 1.5338819978409561, 1.538040773831657, 1.542210825407941,
  1.5463921831410217, 1.550584877685, 1.5547889397770887, 1.5590044002378372, 1.5632312899713579, 1.567469639965553, 1.5717194812923414, 1.5759808451078865, 1.5802537626528246,
  1.5845382652524937, 1.588834384317164, 1.593142151342267, 1.5974615979086273, 1.6017927556826934, 1.606135656416771, 1.6104903319492545, 1.6148568142048607, 1.619235135194864,
  1.6236253270173289, 1.6280274218573478, 1.6324414519872752, 1.6368674497669646, 1.6413054476440063, 1.645755478153965, 1.650217573920618, 1.6546917676561945, 1.6591780921616162,
  1.6636765803267366, 1.6681872651305827, 1.6727101796415966, 1.6772453570178787, 1.6817928305074292, 1.6863526334483934, 1.6909247992693053, 1.6955093614893328,
  1.7001063537185235, 1.7047158096580513, 1.709337763100463, 1.7139722479299262, 1.718619298122478, 1.723278947746274, 1.7279512309618377, 1.732636182022311, 1.7373338352737064,
  1.7420442251551564, 1.746767386199169, 1.7515033530318782, 1.7562521603732997, 1.761013843037584, 1.765788435933273, 1.770575974063555, 1.7753764925265214, 1.7801900265154245,
  1.7850166113189352, 1.789856282321401, 1.7947090750031074, 1.7995750249405351, 1.804454167806624, 1.809346539371032, 1.8142521755003989, 1.8191711121586087, 1.8241033854070534,
  1.8290490314048975, 1.8340080864093427, 1.838980586775894, 1.843966568958626, 1.848966069510451, 1.8539791250833857, 1.8590057724288205, 1.8640460483977892, 1.8690999899412386,
  1.8741676341103, 1.8792490180565602, 1.8843441790323345, 1.8894531543909392, 1.8945759815869658, 1.8997126981765553, 1.9048633418176744, 1.9100279502703899, 1.9152065613971474,
  1.9203992131630476, 1.925605943636125, 1.9308267909876273, 1.9360617934922946, 1.9413109895286405, 1.9465744175792334, 1.9518521162309783, 1.9571441241754004, 1.9624504802089275,
  1.9677712232331759, 1.9731063922552343, 1.9784560263879511, 1.9838201648502194, 1.9891988469672666, 1.9945921121709405, 2.0,
];
// CELL[c] = number of thresholds k >= 1 with THRESHOLDS[k] <= 1 + c/1024. Thresholds are at least
// 0.0027 apart and cells 0.00098 wide, so a mantissa in cell c passes either CELL[c] thresholds or one more.
const CELL_BITS: i32 = 10;
const CELL: Uint8Array = new Uint8Array(1 << CELL_BITS);
// POW2_NEG[e] = 2^-e, exact; scaling by it isolates the mantissa without reading float bits.
const POW2_NEG: Float64Array = new Float64Array(41);
initTables();

function initTables(): void {
  let k: i32 = 1;
  for (let c: i32 = 0; c < 1 << CELL_BITS; c++) {
    const start: f64 = 1.0 + f64(c) / f64(1 << CELL_BITS);
    while (k < 256 && THRESHOLDS[k] <= start) k++;
    CELL[c] = u8(k - 1);
  }
  let p: f64 = 1.0;
  for (let e: i32 = 0; e < POW2_NEG.length; e++) {
    POW2_NEG[e] = p;
    p = p * 0.5;
  }
}

/**
 * Index of the bucket holding `v` at `scale`: the i with base^i < v <= base^(i+1). `v` must be a whole
 * number in [1, MAX_VALUE_US] (use wholeMicros() first). Exact: no logarithm, no per-call allocation.
 */
export function bucketIndex(v: f64, scale: i32): i32 {
  // e = floor(log2 v), from the leading zeros of the integer.
  let e: i32;
  if (v < 2147483648.0) e = 31 - clz(i32(v));
  else e = 63 - clz(i32(v * 2.3283064365386963e-10)); // v / 2^32 < 2^8 for v <= MAX_VALUE_US
  const m: f64 = v * unchecked(POW2_NEG[e]); // the mantissa, in [1, 2)
  if (m == 1.0) return ((e << TABLE_SCALE) - 1) >> (TABLE_SCALE - scale); // exact power of two: upper bound
  let j: i32 = i32(unchecked(CELL[i32((m - 1.0) * f64(1 << CELL_BITS))]));
  if (m >= unchecked(THRESHOLDS[j + 1])) j++;
  return ((e << TABLE_SCALE) + j) >> (TABLE_SCALE - scale);
}

/** Largest bucket index a sketch of `scale` can hold (the bucket of MAX_VALUE_US). */
export function maxBucketIndex(scale: i32): i32 {
  return (40 << scale) - 1;
}

/** A latency as the sketch records it: whole microseconds in [0, MAX_VALUE_US]; NaN and negatives are 0. */
export function wholeMicros(v: f64): f64 {
  if (!(v >= 1.0)) return 0.0;
  if (v >= MAX_VALUE_US) return MAX_VALUE_US;
  return Math.floor(v);
}

const EMPTY_LO: i32 = 2147483647;
const EMPTY_HI: i32 = -2147483648;
const INITIAL_CAPACITY: i32 = 16;
// Shared by every sketch that has no bucket yet; they have no room, so the first record replaces them.
const NO_COUNTS: Float64Array = new Float64Array(0);
const NO_COUNTS8: Uint8Array = new Uint8Array(0);
const NO_COUNTS16: Uint16Array = new Uint16Array(0);
const NO_COUNTS32: Uint32Array = new Uint32Array(0);
// Largest count each compact width holds; a larger one widens the storage (8 bytes: f64 `counts`).
const MAX_U8: f64 = 255.0;
const MAX_U16: f64 = 65535.0;
const MAX_U32: f64 = 4294967295.0;

/**
 * A growable dense exponential histogram over a window of bucket indices [offset, offset + capacity);
 * `lo`/`hi` are the lowest/highest non-empty indices (lo > hi while no value is in a bucket). Recording
 * allocates only when the window must grow or a count outgrows its width.
 *
 * Storage: by default (the collector) counts are f64 in `counts`. A compact sketch (the filter, one per
 * live series) keeps them in the narrowest unsigned width that holds them, 1, 2 or 4 bytes, and widens
 * when a count would not fit (past 2^32 - 1 it moves to f64 `counts`): a series of a 10 s window rarely
 * has more than 255 values in one bucket, so its buckets cost one byte instead of eight. Either way
 * bucket(i) reads a count; `counts` is the f64 storage only (empty while compact).
 */
export class Sketch {
  /** Current scale; lower than the constructor's only after a downscale (see MAX_SPAN). */
  scale: i32;
  /** Values recorded as 0 (sub-microsecond). */
  zeroCount: f64 = 0.0;
  /** All values recorded, zero count included. */
  count: f64 = 0.0;
  /** Bucket index of the storage's first slot. */
  offset: i32 = 0;
  counts: Float64Array;
  lo: i32 = EMPTY_LO;
  hi: i32 = EMPTY_HI;
  private initialScale: i32;
  // Bytes per count while compact (1, 2 or 4), 0 when counts are f64; only the array of that width is used.
  private width: i32;
  private counts8: Uint8Array = NO_COUNTS8;
  private counts16: Uint16Array = NO_COUNTS16;
  private counts32: Uint32Array = NO_COUNTS32;

  constructor(scale: i32 = DEFAULT_SCALE, compact: bool = false) {
    this.scale = scale;
    this.initialScale = scale;
    this.counts = NO_COUNTS;
    this.width = compact ? 1 : 0;
  }

  /** Records one latency (microseconds; sanitised by wholeMicros). */
  record(valueUs: f64): void {
    const v = wholeMicros(valueUs);
    if (v == 0.0) this.addZero(1.0);
    else this.addToBucket(bucketIndex(v, this.scale), 1.0);
  }

  /** Count held by bucket `index` at the current scale (0 outside the stored window). */
  bucket(index: i32): f64 {
    const i = index - this.offset;
    if (i < 0 || i >= this.capacity()) return 0.0;
    return this.countAt(i);
  }

  /** Number of non-empty buckets. */
  nonEmptyBuckets(): i32 {
    let n: i32 = 0;
    for (let i = this.lo; i <= this.hi; i++) if (this.countAt(i - this.offset) != 0.0) n++;
    return n;
  }

  /**
   * Adds `n` values to bucket `index` (at the current scale), growing or downscaling as needed. Public
   * for the decoder and merge; recording goes through record().
   */
  addToBucket(index: i32, n: f64): void {
    let i = index;
    if (i < this.offset || i >= this.offset + this.capacity()) i = this.makeRoom(i);
    const k = i - this.offset;
    if (this.width == 0) unchecked((this.counts[k] = this.counts[k] + n));
    else this.setCompact(k, this.countAt(k) + n);
    if (i < this.lo) this.lo = i;
    if (i > this.hi) this.hi = i;
    this.count += n;
  }

  /** Adds `n` values to the zero count. */
  addZero(n: f64): void {
    this.zeroCount += n;
    this.count += n;
  }

  /**
   * While empty, takes `counts` (zeroed, at least hi - lo + 1 long) as the window for [lo, hi]: the
   * decoder hands out slices of one shared block instead of allocating per sketch. The sketch keeps f64
   * counts from then on.
   */
  adopt(counts: Float64Array, lo: i32, hi: i32): void {
    if (this.lo <= this.hi || counts.length < hi - lo + 1) return;
    this.counts = counts;
    this.offset = lo;
    this.width = 0;
  }

  /**
   * Adds every value of `other` (exact): both are brought to the smaller scale (index i -> i >> d), and
   * further down if the union would exceed MAX_SPAN, then counts add bucket-wise.
   */
  merge(other: Sketch): void {
    if (other.lo <= other.hi) {
      let s = this.scale < other.scale ? this.scale : other.scale;
      // Each step down halves the union's span; indices are bounded, so this ends within a few steps.
      while (true) {
        let lo = other.lo >> (other.scale - s);
        let hi = other.hi >> (other.scale - s);
        if (this.lo <= this.hi) {
          const a = this.lo >> (this.scale - s);
          const b = this.hi >> (this.scale - s);
          if (a < lo) lo = a;
          if (b > hi) hi = b;
        }
        if (hi - lo < MAX_SPAN) break;
        s--;
      }
      if (s < this.scale) this.downscale(this.scale - s);
      const d = other.scale - s;
      for (let i = other.lo; i <= other.hi; i++) {
        const c = other.countAt(i - other.offset);
        if (c != 0.0) this.addToBucket(i >> d, c);
      }
    }
    this.addZero(other.zeroCount);
  }

  /** Empties the sketch for the next window, keeping its storage (and width) and restoring the initial scale. */
  reset(): void {
    if (this.width == 0) for (let i = this.lo; i <= this.hi; i++) unchecked((this.counts[i - this.offset] = 0.0));
    else for (let i = this.lo; i <= this.hi; i++) this.setCompact(i - this.offset, 0.0);
    this.lo = EMPTY_LO;
    this.hi = EMPTY_HI;
    this.count = 0.0;
    this.zeroCount = 0.0;
    this.scale = this.initialScale;
  }

  // Slots of the storage.
  private capacity(): i32 {
    const w = this.width;
    if (w == 0) return this.counts.length;
    if (w == 1) return this.counts8.length;
    if (w == 2) return this.counts16.length;
    return this.counts32.length;
  }

  // Count at storage slot k (0 <= k < capacity()).
  private countAt(k: i32): f64 {
    const w = this.width;
    if (w == 0) return unchecked(this.counts[k]);
    if (w == 1) return f64(unchecked(this.counts8[k]));
    if (w == 2) return f64(unchecked(this.counts16[k]));
    return f64(unchecked(this.counts32[k]));
  }

  // Stores `v` at slot k of compact storage, widening it first when v does not fit.
  private setCompact(k: i32, v: f64): void {
    if (v > this.maxCount()) this.widen(v);
    const w = this.width;
    if (w == 1) unchecked((this.counts8[k] = u8(v)));
    else if (w == 2) unchecked((this.counts16[k] = u16(v)));
    else if (w == 4) unchecked((this.counts32[k] = u32(v)));
    else unchecked((this.counts[k] = v));
  }

  private maxCount(): f64 {
    const w = this.width;
    if (w == 1) return MAX_U8;
    if (w == 2) return MAX_U16;
    if (w == 4) return MAX_U32;
    return Infinity;
  }

  // Moves compact storage to the narrowest wider width that holds `v` (the same slots, counts copied).
  private widen(v: f64): void {
    let w = this.width;
    while (w != 0 && v > (w == 1 ? MAX_U8 : w == 2 ? MAX_U16 : MAX_U32)) w = w == 4 ? 0 : w * 2;
    const cap = this.capacity();
    const old = this.snapshot(0, cap);
    this.allocate(w, cap);
    for (let k: i32 = 0; k < cap; k++) {
      const c = unchecked(old[k]);
      if (c != 0.0) this.setCompact(k, c);
    }
  }

  // The counts of slots [from, from + n) as f64 (compact storage only; rare: growth and widening).
  private snapshot(from: i32, n: i32): Float64Array {
    const out = new Float64Array(n);
    for (let k: i32 = 0; k < n; k++) unchecked((out[k] = this.countAt(from + k)));
    return out;
  }

  // Replaces the storage with `size` zeroed slots of width `w` (0: f64).
  private allocate(w: i32, size: i32): void {
    this.width = w;
    this.counts = NO_COUNTS;
    this.counts8 = NO_COUNTS8;
    this.counts16 = NO_COUNTS16;
    this.counts32 = NO_COUNTS32;
    if (w == 0) this.counts = new Float64Array(size);
    else if (w == 1) this.counts8 = new Uint8Array(size);
    else if (w == 2) this.counts16 = new Uint16Array(size);
    else this.counts32 = new Uint32Array(size);
  }

  // Makes `index` storable; returns where it landed (it moves when the sketch had to downscale).
  private makeRoom(index: i32): i32 {
    const cap = this.capacity();
    if (this.lo > this.hi) {
      // Empty: re-centre the existing window on the first value instead of reallocating.
      if (cap == 0) this.allocate(this.width, INITIAL_CAPACITY);
      this.offset = index - (this.capacity() >> 1);
      return index;
    }
    let i = index;
    let lo = i < this.lo ? i : this.lo;
    let hi = i > this.hi ? i : this.hi;
    if (hi - lo >= MAX_SPAN) {
      let d: i32 = 0;
      while ((hi >> d) - (lo >> d) >= MAX_SPAN) d++;
      this.downscale(d);
      i = i >> d;
      lo = lo >> d;
      hi = hi >> d;
      if (i >= this.offset && i < this.offset + this.capacity()) return i;
    }
    let size = cap * 2;
    if (size < hi - lo + 1) size = hi - lo + 1;
    if (size > MAX_SPAN) size = MAX_SPAN;
    // Leave the spare room on the side the sketch is growing towards.
    const offset = i < this.lo ? hi - size + 1 : lo;
    this.relocate(offset, size);
    return i;
  }

  private relocate(offset: i32, size: i32): void {
    if (this.width == 0) {
      const next = new Float64Array(size);
      for (let i = this.lo; i <= this.hi; i++) unchecked((next[i - offset] = this.counts[i - this.offset]));
      this.counts = next;
    } else this.rebuildCompact(offset, size, 0);
    this.offset = offset;
  }

  // Compact storage only: `size` fresh slots from bucket `offset` holding the buckets [lo, hi] shifted
  // down by d (d = 0: moved), counts re-stored at the width they need.
  private rebuildCompact(offset: i32, size: i32, d: i32): void {
    const old = this.snapshot(this.lo - this.offset, this.hi - this.lo + 1);
    this.allocate(this.width, size);
    for (let i = this.lo; i <= this.hi; i++) {
      const c = unchecked(old[i - this.lo]);
      if (c != 0.0) {
        const k = (i >> d) - offset;
        this.setCompact(k, this.countAt(k) + c);
      }
    }
  }

  // Lowers the scale by d: bucket i becomes i >> d (exact, buckets nest).
  private downscale(d: i32): void {
    if (d <= 0) return;
    this.scale -= d;
    if (this.lo > this.hi) return;
    const lo = this.lo >> d;
    const hi = this.hi >> d;
    const cap = this.capacity();
    const size = cap > hi - lo + 1 ? cap : hi - lo + 1;
    if (this.width == 0) {
      const next = new Float64Array(size);
      for (let i = this.lo; i <= this.hi; i++) {
        const c = unchecked(this.counts[i - this.offset]);
        if (c != 0.0) {
          const k = (i >> d) - lo;
          unchecked((next[k] = next[k] + c));
        }
      }
      this.counts = next;
    } else this.rebuildCompact(lo, size, d);
    this.offset = lo;
    this.lo = lo;
    this.hi = hi;
  }
}
