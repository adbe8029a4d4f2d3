// Wire format v1 (docs/wire-format.md): the summary a sidecar POSTs to the collector every flush.
// One source for both ends: the filter links the encoder (asc), the collector runs the decoder as
// TypeScript (shared/node.ts). Portable AssemblyScript; the decoder never throws and never recurses — any
// input yields either a summary or a reason code.
import { BitWriter, ByteWriter, crc32, putBytes, putU32le, putVarint, repairUtf8, validUtf8Prefix, zigzag } from "./bytes";
import { SeriesStats, MAX_COUNTER as SERIES_MAX_COUNTER } from "./series";
import { MAX_SCALE as SKETCH_MAX_SCALE, MIN_SCALE as SKETCH_MIN_SCALE, MAX_VALUE_US as SKETCH_MAX_VALUE_US, Sketch, bucketIndex, maxBucketIndex } from "./sketch";

// Module-local copies of the constants the decoder reads per series: run as TypeScript under tsx, every
// read of an imported binding is a getter call (`get <file>` in CPU profiles).
const MAX_COUNTER: f64 = SERIES_MAX_COUNTER;
const MAX_SCALE: i32 = SKETCH_MAX_SCALE;
const MIN_SCALE: i32 = SKETCH_MIN_SCALE;
const MAX_VALUE_US: f64 = SKETCH_MAX_VALUE_US;

/** Content type of a v1 summary body. */
export const CONTENT_TYPE: string = "application/x-meshlook-summary";
/** Format version this code writes and reads. */
export const WIRE_VERSION: i32 = 1;
/** Magic bytes "MLSU". */
export const MAGIC_0: i32 = 0x4d;
export const MAGIC_1: i32 = 0x4c;
export const MAGIC_2: i32 = 0x53;
export const MAGIC_3: i32 = 0x55;

/** Flag: the cardinality guard folded requests into an overflow series this window. */
export const FLAG_OVERFLOW: i32 = 1;
/** Flag: last window of this producer (the VM is stopping). */
export const FLAG_FINAL: i32 = 2;
const KNOWN_FLAGS: i32 = FLAG_OVERFLOW | FLAG_FINAL;

/** Number of dimension codes v1 knows: positions in docs/schema.md's dimension table (shared/schema.ts DIMENSIONS). */
export const DIMENSION_COUNT: i32 = 20;
export const MAX_DIMENSIONS: i32 = DIMENSION_COUNT;
export const MAX_PRODUCER_ID_BYTES: i32 = 256;
/** Longest dimension value (bytes); the encoder cuts longer ones at a character boundary. */
export const MAX_STRING_BYTES: i32 = 2048;
export const MAX_STRINGS: i32 = 1048576;
export const MAX_SERIES: i32 = 65536;
/**
 * Most buckets the sketches of a summary may span per byte of its series records: the sum over the
 * series of (highest - lowest bucket index + 1), up to and including each series, is at most this times
 * the bytes of the series records read so far. A gap of thousands of buckets costs a few bits on the
 * wire, so without a bound a small body would describe sketches that a dense reader (decodeWire, a
 * summary's `series`) expands to megabytes. The filter's widest honest sketches (two values MAX_SPAN
 * buckets apart at scale 8, 1 µs and 65,358 µs, in series of 21 bytes) span 195 buckets per series byte.
 */
export const SPAN_PER_SERIES_BYTE: i32 = 256;
// magic (4) + version (1) + body length (>= 1) + CRC (4)
const MIN_LENGTH: i32 = 10;

// Rejection reasons; names (reasonName) are the machine codes the collector returns.
export const OK: i32 = 0;
export const TRUNCATED: i32 = 1;
export const BAD_MAGIC: i32 = 2;
export const UNSUPPORTED_VERSION: i32 = 3;
export const BAD_VARINT: i32 = 4;
export const BAD_CHECKSUM: i32 = 5;
export const TRAILING_BYTES: i32 = 6;
export const BAD_PRODUCER_ID: i32 = 7;
export const BAD_FLAGS: i32 = 8;
export const TOO_MANY_DIMENSIONS: i32 = 9;
export const UNKNOWN_DIMENSION: i32 = 10;
export const DUPLICATE_DIMENSION: i32 = 11;
export const TOO_MANY_STRINGS: i32 = 12;
export const STRING_TOO_LONG: i32 = 13;
export const TOO_MANY_SERIES: i32 = 14;
export const BAD_DIMENSION_MASK: i32 = 15;
export const BAD_STRING_REF: i32 = 16;
export const EMPTY_SERIES: i32 = 17;
export const ERRORS_EXCEED_REQUESTS: i32 = 18;
export const BAD_SCALE: i32 = 19;
export const BAD_SKETCH: i32 = 20;
export const COUNT_MISMATCH: i32 = 21;
export const BAD_LATENCY: i32 = 22;
export const SKETCH_TOO_WIDE: i32 = 23;
export const REASON_COUNT: i32 = 24;

const REASON_NAMES: string[] = [
  "ok",
  "truncated",
  "bad_magic",
  "unsupported_version",
  "bad_varint",
  "bad_checksum",
  "trailing_bytes",
  "bad_producer_id",
  "bad_flags",
  "too_many_dimensions",
  "unknown_dimension",
  "duplicate_dimension",
  "too_many_strings",
  "string_too_long",
  "too_many_series",
  "bad_dimension_mask",
  "bad_string_ref",
  "empty_series",
  "errors_exceed_requests",
  "bad_scale",
  "bad_sketch",
  "count_mismatch",
  "bad_latency",
  "sketch_too_wide",
];

/** Machine-readable name of a reason code. */
export function reasonName(reason: i32): string {
  return reason >= 0 && reason < REASON_COUNT ? REASON_NAMES[reason] : "unknown";
}

function clampCounter(v: f64): f64 {
  if (!(v >= 0.0)) return 0.0;
  return v >= MAX_COUNTER ? MAX_COUNTER : Math.floor(v);
}

const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/**
 * Builds one summary: begin(), addSeries() per series (or value() per dimension value and addRefs()),
 * then finish() or writeTo(). Dimension values are interned (each distinct value is written once) and
 * repaired to valid UTF-8 of at most MAX_STRING_BYTES. Reusable: begin() starts over and keeps the
 * buffers, so once they have grown to the largest summary encoded a summary allocates nothing.
 */
export class SummaryEncoder {
  private dimensions: i32[];
  private header: ByteWriter = new ByteWriter(256);
  private records: ByteWriter;
  // The string table as the wire carries it (each value's varint length, then its bytes), and where each
  // value's bytes start in it: values are copied in once, never held as objects of their own.
  private table: ByteWriter;
  private starts: Int32Array = new Int32Array(256);
  private lengths: Int32Array = new Int32Array(256);
  private hashes: Int32Array = new Int32Array(256);
  private stringCount: i32 = 0;
  private slots: Int32Array = new Int32Array(1024);
  // A value that needed UTF-8 repair, repaired.
  private repaired: ByteWriter = new ByteWriter(64);
  private previous: Int32Array;
  private refs: Int32Array;
  private seriesCount: i32 = 0;

  /**
   * `dimensions`: the dimension codes every series carries, in the order addSeries() gets values.
   * `stringBytes` and `recordBytes` size the string table and the series records up front (they grow
   * past that when a summary needs it).
   */
  constructor(dimensions: i32[], stringBytes: i32 = 4096, recordBytes: i32 = 4096) {
    this.dimensions = dimensions;
    this.previous = new Int32Array(dimensions.length);
    this.refs = new Int32Array(dimensions.length);
    this.table = new ByteWriter(stringBytes);
    this.records = new ByteWriter(recordBytes);
  }

  /**
   * Starts a summary. `producerId` (1..256 bytes; longer is cut) names the sending VM uniquely across
   * restarts; `seq` counts its summaries; the window is [windowStartMs, windowEndMs) in Unix ms;
   * `flags` is FLAG_* bits; the three counters report data the producer could not send or key.
   */
  begin(producerId: Uint8Array, seq: f64, windowStartMs: f64, windowEndMs: f64, flags: i32, droppedRequests: f64, droppedWindows: f64, overflowKeys: f64): void {
    const h = this.header;
    h.reset();
    this.records.reset();
    this.table.reset();
    this.stringCount = 0;
    this.slots.fill(0);
    this.seriesCount = 0;
    const idLength = producerId.length > MAX_PRODUCER_ID_BYTES ? MAX_PRODUCER_ID_BYTES : producerId.length;
    h.varint(f64(idLength));
    h.range(producerId, 0, idLength);
    h.varint(clampCounter(seq));
    const start = clampCounter(windowStartMs);
    h.varint(start);
    h.varint(clampCounter(windowEndMs - start));
    h.varint(f64(flags & KNOWN_FLAGS));
    h.varint(clampCounter(droppedRequests));
    h.varint(clampCounter(droppedWindows));
    h.varint(clampCounter(overflowKeys));
    h.varint(f64(this.dimensions.length));
    for (let j = 0; j < this.dimensions.length; j++) h.varint(f64(this.dimensions[j]));
  }

  /**
   * Adds one series: `values[j]` is the UTF-8 value of dimension `dimensions[j]` (missing entries are
   * empty). Returns false, adding nothing, for a series accepts() refuses.
   */
  addSeries(values: Array<Uint8Array>, stats: SeriesStats): bool {
    if (!this.accepts(stats)) return false;
    for (let j = 0; j < this.dimensions.length; j++) {
      let v = EMPTY_BYTES;
      if (j < values.length) v = values[j];
      this.refs[j] = this.value(v, 0, v.length);
    }
    return this.addRefs(this.refs, stats);
  }

  /**
   * Whether a series with these aggregates can be added: not one without requests (the decoder rejects
   * empty series), not one beyond MAX_SERIES. Ask before value(), so a refused series leaves no string.
   */
  accepts(stats: SeriesStats): bool {
    return stats.requests >= 1.0 && this.seriesCount < MAX_SERIES;
  }

  /**
   * The reference of the dimension value buf[start, start + n) in this summary's string table, added on
   * first sight. The bytes are copied: `buf` may change once this returns.
   */
  value(buf: Uint8Array, start: i32, n: i32): i32 {
    let src = buf;
    let from = start;
    let length = n;
    if (validUtf8Prefix(buf, start, n, MAX_STRING_BYTES) != n) {
      const r = this.repaired;
      r.reset();
      repairUtf8(buf, start, n, MAX_STRING_BYTES, r);
      src = r.buf;
      from = 0;
      length = r.length;
    }
    if (this.stringCount * 2 >= this.slots.length) this.rehash(this.slots.length * 2);
    const h = hashBytes(src, from, length);
    const mask = this.slots.length - 1;
    let slot = h & mask;
    while (true) {
      const entry = unchecked(this.slots[slot]);
      if (entry == 0) break;
      const id = entry - 1;
      if (unchecked(this.hashes[id]) == h && this.sameAs(id, src, from, length)) return id;
      slot = (slot + 1) & mask;
    }
    const id = this.stringCount++;
    if (id == this.starts.length) this.growStrings();
    const t = this.table;
    t.varint(f64(length));
    this.starts[id] = t.length;
    this.lengths[id] = length;
    this.hashes[id] = h;
    t.range(src, from, length);
    this.slots[slot] = id + 1;
    return id;
  }

  /**
   * Adds one series by the references value() gave its values (`refs[j]` for dimension `dimensions[j]`).
   * Returns false, adding nothing, for a series accepts() refuses.
   */
  addRefs(refs: Int32Array, stats: SeriesStats): bool {
    if (!this.accepts(stats)) return false;
    const k = this.dimensions.length;
    let mask: i32 = 0;
    for (let j = 0; j < k; j++) if (this.seriesCount == 0 || refs[j] != this.previous[j]) mask |= 1 << j;
    const r = this.records;
    r.varint(f64(mask));
    for (let j = 0; j < k; j++) {
      if ((mask & (1 << j)) != 0) r.varint(f64(refs[j]));
      this.previous[j] = refs[j];
    }
    r.varint(clampCounter(stats.requests));
    r.varint(clampCounter(stats.errors));
    r.varint(clampCounter(stats.requestBytes));
    r.varint(clampCounter(stats.responseBytes));
    r.varint(clampCounter(stats.latencySumUs));
    r.varint(clampCounter(stats.latencyMinUs));
    r.varint(clampCounter(stats.latencyMaxUs));
    writeSketch(r, stats.sketch);
    this.seriesCount++;
    return true;
  }

  /** Number of series added since begin(). */
  get series(): i32 {
    return this.seriesCount;
  }

  /** Bytes of the summary as finish() and writeTo() write it. */
  encodedLength(): i32 {
    const body = this.bodyLength();
    return 5 + varintLength(f64(body)) + body + 4;
  }

  /** Writes the summary into dest[at, at + encodedLength()), which must be that long. */
  writeTo(dest: Uint8Array, at: i32): void {
    let p = at;
    dest[p++] = u8(MAGIC_0);
    dest[p++] = u8(MAGIC_1);
    dest[p++] = u8(MAGIC_2);
    dest[p++] = u8(MAGIC_3);
    dest[p++] = u8(WIRE_VERSION);
    p = putVarint(dest, p, f64(this.bodyLength()));
    p = putBytes(dest, p, this.header.buf, 0, this.header.length);
    p = putVarint(dest, p, f64(this.stringCount));
    p = putBytes(dest, p, this.table.buf, 0, this.table.length);
    p = putVarint(dest, p, f64(this.seriesCount));
    p = putBytes(dest, p, this.records.buf, 0, this.records.length);
    putU32le(dest, p, crc32(dest, at, p));
  }

  /** The encoded summary (a fresh copy; the encoder may be reused). */
  finish(): Uint8Array {
    const out = new Uint8Array(this.encodedLength());
    this.writeTo(out, 0);
    return out;
  }

  private bodyLength(): i32 {
    return this.header.length + varintLength(f64(this.stringCount)) + this.table.length + varintLength(f64(this.seriesCount)) + this.records.length;
  }

  private sameAs(id: i32, src: Uint8Array, from: i32, length: i32): bool {
    if (unchecked(this.lengths[id]) != length) return false;
    const buf = this.table.buf;
    const at = unchecked(this.starts[id]);
    for (let i = 0; i < length; i++) if (unchecked(buf[at + i]) != unchecked(src[from + i])) return false;
    return true;
  }

  private growStrings(): void {
    const size = this.starts.length * 2;
    this.starts = growInts(this.starts, size);
    this.lengths = growInts(this.lengths, size);
    this.hashes = growInts(this.hashes, size);
  }

  private rehash(size: i32): void {
    this.slots = new Int32Array(size);
    const mask = size - 1;
    for (let i = 0; i < this.stringCount; i++) {
      let slot = this.hashes[i] & mask;
      while (this.slots[slot] != 0) slot = (slot + 1) & mask;
      this.slots[slot] = i + 1;
    }
  }
}

function hashBytes(b: Uint8Array, start: i32, n: i32): i32 {
  let h: i32 = n;
  for (let i = start; i < start + n; i++) h = i32(h * 31 + i32(unchecked(b[i])));
  return h ^ (h >>> 15);
}

// Number of base-`radix` digits of a whole v (0 for v = 0).
function digits(v: f64, radix: f64): i32 {
  let n: i32 = 0;
  let x = v;
  while (x >= 1.0) {
    x = Math.floor(x / radix);
    n++;
  }
  return n;
}

function varintLength(v: f64): i32 {
  return v < 128.0 ? 1 : digits(v, 128.0);
}

// Bucket gaps and count changes are Rice-coded (docs/wire-format.md, "Sketch"): v with parameter k is
// q = floor(v / 2^k) one-bits, a zero bit, then the low k bits of v; from q = 24 on, an escape (24 one-bits,
// the bit length L of v in 6 bits, then v in L bits) keeps rare large values short.
const RICE_ESCAPE: i32 = 24;
const MAX_RICE_K: i32 = 15;
const MAX_ESCAPED_BITS: i32 = 52;
const GAP_COSTS: Float64Array = new Float64Array(MAX_RICE_K + 1);
const COUNT_COSTS: Float64Array = new Float64Array(MAX_RICE_K + 1);

function riceCost(v: f64, k: i32): f64 {
  const q = Math.floor(v / f64(1 << k));
  return q < f64(RICE_ESCAPE) ? q + 1.0 + f64(k) : f64(RICE_ESCAPE + 6 + digits(v, 2.0));
}

function writeRice(w: BitWriter, v: f64, k: i32): void {
  const unit = f64(1 << k);
  const q = Math.floor(v / unit);
  if (q < f64(RICE_ESCAPE)) {
    for (let i: i32 = 0; i < i32(q); i++) w.bit(1);
    w.bit(0);
    w.bits(i32(v - q * unit), k);
    return;
  }
  for (let i: i32 = 0; i < RICE_ESCAPE; i++) w.bit(1);
  const n = digits(v, 2.0);
  w.bits(n, 6);
  let rest = v;
  let place = Math.pow(2.0, f64(n - 1));
  for (let i: i32 = 0; i < n; i++) {
    if (rest >= place) {
      w.bit(1);
      rest -= place;
    } else w.bit(0);
    place = place / 2.0;
  }
}

// The Rice parameter with the fewest bits for the values costed in `costs` (the smallest on ties).
function cheapest(costs: Float64Array): i32 {
  let best: i32 = 0;
  for (let k: i32 = 1; k <= MAX_RICE_K; k++) if (costs[k] < costs[best]) best = k;
  return best;
}

// Sketch: scale, zero count, number of non-empty buckets, index of the first, the two Rice parameters,
// then per non-empty bucket the gap (empty buckets skipped) and zigzag(count - previous count).
function writeSketch(w: ByteWriter, s: Sketch): void {
  w.zigzag(f64(s.scale));
  w.varint(s.zeroCount);
  const n = s.nonEmptyBuckets();
  w.varint(f64(n));
  if (n == 0) return;
  w.zigzag(f64(s.lo));
  GAP_COSTS.fill(0.0);
  COUNT_COSTS.fill(0.0);
  for (let pass: i32 = 0; pass < 2; pass++) {
    const kGap = cheapest(GAP_COSTS);
    const kCount = cheapest(COUNT_COSTS);
    const bits = new BitWriter(w);
    if (pass == 1) w.byte(kGap | (kCount << 4));
    let previousIndex = s.lo - 1;
    let previousCount: f64 = 0.0;
    for (let i = s.lo; i <= s.hi; i++) {
      const c = s.bucket(i);
      if (c == 0.0) continue;
      const gap = f64(i - previousIndex - 1);
      const zz = zigzag(c - previousCount);
      if (pass == 0) {
        for (let k: i32 = 0; k <= MAX_RICE_K; k++) {
          GAP_COSTS[k] += riceCost(gap, k);
          COUNT_COSTS[k] += riceCost(zz, k);
        }
      } else {
        writeRice(bits, gap, kGap);
        writeRice(bits, zz, kCount);
      }
      previousIndex = i;
      previousCount = c;
    }
    bits.flush();
  }
}

/** One decoded series: `refs[j]` indexes WireSummary.strings for dimension `dimensions[j]`. */
export class WireSeries {
  constructor(
    public refs: Int32Array,
    public stats: SeriesStats,
  ) {}
}

/** A decoded, fully validated summary (string values still UTF-8 bytes; shared/node.ts converts). */
export class WireSummary {
  producerId: Uint8Array = EMPTY_BYTES;
  seq: f64 = 0.0;
  windowStartMs: f64 = 0.0;
  windowEndMs: f64 = 0.0;
  flags: i32 = 0;
  droppedRequests: f64 = 0.0;
  droppedWindows: f64 = 0.0;
  overflowKeys: f64 = 0.0;
  /** Dimension codes present, in record order. */
  dimensions: Int32Array = new Int32Array(0);
  /** The string table: views into the input. */
  strings: Array<Uint8Array> = new Array<Uint8Array>();
  /** Filled by decodeWire; decodeColumns leaves it empty and fills a SeriesColumns instead. */
  series: Array<WireSeries> = new Array<WireSeries>();
}

// Per-series numbers in SeriesColumns.numbers, SERIES_FIELDS per series.
export const FIELD_REQUESTS: i32 = 0;
export const FIELD_ERRORS: i32 = 1;
export const FIELD_REQUEST_BYTES: i32 = 2;
export const FIELD_RESPONSE_BYTES: i32 = 3;
export const FIELD_LATENCY_SUM: i32 = 4;
export const FIELD_LATENCY_MIN: i32 = 5;
export const FIELD_LATENCY_MAX: i32 = 6;
/** The sketch's zero count. */
export const FIELD_ZERO: i32 = 7;
export const SERIES_FIELDS: i32 = 8;

/**
 * The series of a summary as flat columns, so decoding allocates nothing per series (decodeColumns).
 * Series i: dimension refs `refs[i * dims + j]`, numbers `numbers[i * SERIES_FIELDS + FIELD_*]`, sketch
 * scale `scales[i]` and its non-empty buckets, in increasing index order, at positions
 * [bucketEnd[i - 1] (0 for i = 0), bucketEnd[i]) of `bucketIndex`/`bucketCount`. Reusable: every decode
 * overwrites it, growing the arrays when needed. Only the first `count` series / `buckets` entries are valid.
 */
export class SeriesColumns {
  count: i32 = 0;
  dims: i32 = 0;
  buckets: i32 = 0;
  /** Requests over all series. */
  requests: f64 = 0.0;
  refs: Int32Array = new Int32Array(1024);
  numbers: Float64Array = new Float64Array(64 * SERIES_FIELDS);
  scales: Int32Array = new Int32Array(64);
  bucketEnd: Int32Array = new Int32Array(64);
  bucketIndex: Int32Array = new Int32Array(4096);
  bucketCount: Float64Array = new Float64Array(4096);

  /** Bytes the columns hold (their capacity, not what the last summary used). */
  heldBytes(): i32 {
    return this.refs.byteLength + this.numbers.byteLength + this.scales.byteLength + this.bucketEnd.byteLength + this.bucketIndex.byteLength + this.bucketCount.byteLength;
  }

  /** Index of series i's first bucket in bucketIndex/bucketCount. */
  bucketStart(i: i32): i32 {
    return i == 0 ? 0 : unchecked(this.bucketEnd[i - 1]);
  }

  // Room for series `i` (its refs and numbers) before it is written.
  reserveSeries(i: i32): void {
    if (i >= this.scales.length) {
      const size = this.scales.length * 2;
      this.scales = growInts(this.scales, size);
      this.bucketEnd = growInts(this.bucketEnd, size);
      this.numbers = growFloats(this.numbers, size * SERIES_FIELDS);
    }
    const refsNeeded = (i + 1) * this.dims;
    if (refsNeeded > this.refs.length) this.refs = growInts(this.refs, refsNeeded * 2);
  }

  // Room for `n` more bucket entries.
  reserveBuckets(n: i32): void {
    const need = this.buckets + n;
    if (need <= this.bucketIndex.length) return;
    let size = this.bucketIndex.length * 2;
    while (size < need) size = size * 2;
    this.bucketIndex = growInts(this.bucketIndex, size);
    this.bucketCount = growFloats(this.bucketCount, size);
  }
}

function growInts(a: Int32Array, size: i32): Int32Array {
  const next = new Int32Array(size);
  for (let i = 0; i < a.length; i++) unchecked((next[i] = a[i]));
  return next;
}

function growFloats(a: Float64Array, size: i32): Float64Array {
  const next = new Float64Array(size);
  for (let i = 0; i < a.length; i++) unchecked((next[i] = a[i]));
  return next;
}

// Hands out zeroed slices of large blocks, so decoded sketches share a few allocations.
class Arena {
  block: Float64Array = new Float64Array(0);
  used: i32 = 0;

  take(n: i32): Float64Array {
    if (this.used + n > this.block.length) {
      this.block = new Float64Array(n > 4096 ? n : 4096);
      this.used = 0;
    }
    const slice = this.block.subarray(this.used, this.used + n);
    this.used += n;
    return slice;
  }
}

/** Outcome of decodeWire: reason OK with a summary, or a reason code, a message and the byte offset. */
export class DecodeResult {
  constructor(
    public reason: i32,
    public message: string,
    public offset: i32,
    public summary: WireSummary | null,
  ) {}
}

// Reads from [pos, end); the first failure is sticky: later reads return 0 without moving.
class Cursor {
  pos: i32;
  bitOffset: i32 = 0;
  reason: i32 = OK;
  message: string = "";
  at: i32 = 0;

  constructor(
    public buf: Uint8Array,
    start: i32,
    public end: i32,
  ) {
    this.pos = start;
  }

  fail(reason: i32, message: string): void {
    if (this.reason != OK) return;
    this.reason = reason;
    this.message = message;
    this.at = this.pos;
    this.pos = this.end;
    this.bitOffset = 0;
  }

  get failed(): bool {
    return this.reason != OK;
  }

  remaining(): i32 {
    return this.end - this.pos;
  }

  varint(what: string): f64 {
    if (this.pos >= this.end) {
      this.fail(TRUNCATED, "input ends inside " + what);
      return 0.0;
    }
    let b = i32(unchecked(this.buf[this.pos]));
    if (b < 0x80) {
      this.pos++;
      return f64(b);
    }
    const start = this.pos;
    let result: f64 = 0.0;
    let scale: f64 = 1.0;
    for (let i: i32 = 0; i < 8; i++) {
      if (this.pos >= this.end) {
        this.fail(TRUNCATED, "input ends inside " + what);
        return 0.0;
      }
      b = i32(unchecked(this.buf[this.pos]));
      this.pos++;
      result += f64(b & 0x7f) * scale;
      if (b < 0x80) {
        if (b == 0) {
          this.pos = start;
          this.fail(BAD_VARINT, what + " has a non-minimal varint encoding");
          return 0.0;
        }
        if (result > MAX_COUNTER) {
          this.pos = start;
          this.fail(BAD_VARINT, what + " exceeds 2^53 - 1");
          return 0.0;
        }
        return result;
      }
      scale *= 128.0;
    }
    this.pos = start;
    this.fail(BAD_VARINT, what + " is a varint longer than 8 bytes");
    return 0.0;
  }

  // Advances the bit position by n bits.
  private skipBits(n: i32): void {
    const b = this.bitOffset + n;
    this.pos += b >> 3;
    this.bitOffset = b & 7;
  }

  /** The next n bits (n <= 24) of a sketch's bit stream, most significant first within a byte. */
  bits(n: i32): i32 {
    let v: i32 = 0;
    let need = n;
    while (need > 0) {
      if (this.pos >= this.end) {
        this.fail(TRUNCATED, "input ends inside a sketch");
        return 0;
      }
      const avail = 8 - this.bitOffset;
      const take = need < avail ? need : avail;
      v = (v << take) | ((i32(unchecked(this.buf[this.pos])) >> (avail - take)) & ((1 << take) - 1));
      need -= take;
      this.skipBits(take);
    }
    return v;
  }

  /** A Rice-coded value with parameter k (see writeRice); the unary part is read a byte at a time. */
  rice(k: i32): f64 {
    let q: i32 = 0;
    while (true) {
      if (this.pos >= this.end) {
        this.fail(TRUNCATED, "input ends inside a sketch");
        return 0.0;
      }
      const avail = 8 - this.bitOffset;
      // the unread bits of this byte at the top of an i32; below them zeros, so the count stops there
      const ones = clz(~(i32(unchecked(this.buf[this.pos])) << (24 + this.bitOffset)));
      if (q + ones >= RICE_ESCAPE) {
        this.skipBits(RICE_ESCAPE - q);
        return this.escaped(k);
      }
      if (ones < avail) {
        this.skipBits(ones + 1);
        return f64(q + ones) * f64(1 << k) + f64(this.bits(k));
      }
      q += avail;
      this.skipBits(avail);
    }
  }

  // After 24 one-bits: the value's bit length in 6 bits, then the value (leading bit 1).
  private escaped(k: i32): f64 {
    const n = this.bits(6);
    if (n < 1 || n > MAX_ESCAPED_BITS || this.bits(1) != 1) {
      this.fail(BAD_SKETCH, "malformed escaped value in a sketch");
      return 0.0;
    }
    let v: f64 = 1.0;
    for (let i: i32 = 1; i < n; i++) v = v * 2.0 + f64(this.bits(1));
    if (Math.floor(v / f64(1 << k)) < f64(RICE_ESCAPE)) this.fail(BAD_SKETCH, "escaped value small enough for the plain code");
    return v;
  }

  /** Ends a bit stream: the rest of its last byte must be zero padding. */
  alignBits(): void {
    if (this.bitOffset == 0) return;
    if ((i32(this.buf[this.pos]) & (0xff >> this.bitOffset)) != 0) this.fail(BAD_SKETCH, "non-zero padding after a sketch");
    this.bitOffset = 0;
    this.pos++;
  }

  /** A varint that must be <= max (an i32 bound), else fails with `reason`. */
  bounded(what: string, max: i32, reason: i32): i32 {
    const start = this.pos;
    const v = this.varint(what);
    if (v > f64(max)) {
      this.pos = start;
      this.fail(reason, what + " is " + (v < 2147483648.0 ? i32(v).toString() : "> 2^31") + ", above " + max.toString());
      return 0;
    }
    return i32(v);
  }

  /** A zigzag varint within [min, max], else fails with `reason`. */
  signed(what: string, min: i32, max: i32, reason: i32): i32 {
    const start = this.pos;
    const z = this.varint(what);
    const half = Math.floor(z / 2.0);
    const v = z - half * 2.0 == 0.0 ? half : -half - 1.0;
    if (v < f64(min) || v > f64(max)) {
      this.pos = start;
      this.fail(reason, what + " is outside [" + min.toString() + ", " + max.toString() + "]");
      return 0;
    }
    return i32(v);
  }
}

/**
 * Decodes and validates a v1 summary. Never throws on any input; on failure the result carries a reason
 * code (reasonName), a message and the byte offset where decoding stopped.
 */
export function decodeWire(input: Uint8Array): DecodeResult {
  const r = decodeColumns(input, WIRE_COLUMNS);
  const s = r.summary;
  if (s === null) return r;
  const cols = WIRE_COLUMNS;
  const k = cols.dims;
  const arena = new Arena();
  for (let i = 0; i < cols.count; i++) {
    const at = i * SERIES_FIELDS;
    const stats = new SeriesStats(cols.scales[i]);
    stats.requests = cols.numbers[at + FIELD_REQUESTS];
    stats.errors = cols.numbers[at + FIELD_ERRORS];
    stats.requestBytes = cols.numbers[at + FIELD_REQUEST_BYTES];
    stats.responseBytes = cols.numbers[at + FIELD_RESPONSE_BYTES];
    stats.latencySumUs = cols.numbers[at + FIELD_LATENCY_SUM];
    stats.latencyMinUs = cols.numbers[at + FIELD_LATENCY_MIN];
    stats.latencyMaxUs = cols.numbers[at + FIELD_LATENCY_MAX];
    const sk = stats.sketch;
    sk.addZero(cols.numbers[at + FIELD_ZERO]);
    const from = cols.bucketStart(i);
    const to = cols.bucketEnd[i];
    if (to > from) {
      const lo = cols.bucketIndex[from];
      const hi = cols.bucketIndex[to - 1];
      sk.adopt(arena.take(hi - lo + 1), lo, hi);
      for (let b = from; b < to; b++) sk.addToBucket(unchecked(cols.bucketIndex[b]), unchecked(cols.bucketCount[b]));
    }
    s.series.push(new WireSeries(cols.refs.slice(i * k, i * k + k), stats));
  }
  return r;
}

// decodeWire's columns, reused by every call.
const WIRE_COLUMNS: SeriesColumns = new SeriesColumns();

/**
 * Decodes and validates a v1 summary like decodeWire, but leaves the series in `cols` (overwriting what
 * it held) instead of building objects: the result's summary has the header and the string table, and
 * an empty `series`. Same reasons, messages and offsets as decodeWire.
 */
export function decodeColumns(input: Uint8Array, cols: SeriesColumns): DecodeResult {
  cols.count = 0;
  cols.buckets = 0;
  cols.requests = 0.0;
  const len = input.length;
  const magicLength = len < 4 ? len : 4;
  for (let i = 0; i < magicLength; i++) {
    const expected = i == 0 ? MAGIC_0 : i == 1 ? MAGIC_1 : i == 2 ? MAGIC_2 : MAGIC_3;
    if (i32(input[i]) != expected) return new DecodeResult(BAD_MAGIC, "not a meshlook summary (magic)", i, null);
  }
  if (len >= 5 && i32(input[4]) != WIRE_VERSION) {
    return new DecodeResult(UNSUPPORTED_VERSION, "version " + i32(input[4]).toString() + " (this decoder reads 1)", 4, null);
  }
  if (len < MIN_LENGTH) return new DecodeResult(TRUNCATED, "shorter than the smallest summary", len, null);
  const head = new Cursor(input, 5, len);
  const bodyLength = head.varint("body length");
  if (head.failed) return new DecodeResult(head.reason, head.message, head.at, null);
  const bodyStart = head.pos;
  const expectedLength = f64(bodyStart) + bodyLength + 4.0;
  if (f64(len) < expectedLength) return new DecodeResult(TRUNCATED, "input ends before the declared body length", len, null);
  const bodyEnd = bodyStart + i32(bodyLength);
  if (len > bodyEnd + 4) return new DecodeResult(TRAILING_BYTES, "bytes after the checksum", bodyEnd + 4, null);
  const stored = i32(input[bodyEnd]) | (i32(input[bodyEnd + 1]) << 8) | (i32(input[bodyEnd + 2]) << 16) | (i32(input[bodyEnd + 3]) << 24);
  if (stored != crc32(input, 0, bodyEnd)) return new DecodeResult(BAD_CHECKSUM, "CRC-32 mismatch", bodyEnd, null);

  const c = new Cursor(input, bodyStart, bodyEnd);
  const summary = decodeBody(c, cols);
  if (!c.failed && c.pos != bodyEnd) c.fail(TRAILING_BYTES, "bytes after the last series inside the body");
  if (c.failed) return new DecodeResult(c.reason, c.message, c.at, null);
  return new DecodeResult(OK, "", bodyEnd + 4, summary);
}

function decodeBody(c: Cursor, cols: SeriesColumns): WireSummary {
  const s = new WireSummary();
  const idStart = c.pos;
  const idLength = c.bounded("producer id length", MAX_PRODUCER_ID_BYTES, BAD_PRODUCER_ID);
  if (idLength == 0 && !c.failed) {
    c.pos = idStart;
    c.fail(BAD_PRODUCER_ID, "producer id is empty");
  }
  if (idLength > c.remaining()) c.fail(TRUNCATED, "input ends inside the producer id");
  if (c.failed) return s;
  s.producerId = c.buf.subarray(c.pos, c.pos + idLength);
  c.pos += idLength;
  s.seq = c.varint("seq");
  s.windowStartMs = c.varint("window start");
  const windowLength = c.varint("window length");
  s.windowEndMs = s.windowStartMs + windowLength;
  if (s.windowEndMs > MAX_COUNTER) c.fail(BAD_VARINT, "window end exceeds 2^53 - 1");
  const flagsStart = c.pos;
  const flags = c.varint("flags");
  if (flags > f64(KNOWN_FLAGS) || (i32(flags) & ~KNOWN_FLAGS) != 0) {
    c.pos = flagsStart;
    c.fail(BAD_FLAGS, "unknown flag bits");
  }
  s.flags = c.failed ? 0 : i32(flags);
  s.droppedRequests = c.varint("dropped requests");
  s.droppedWindows = c.varint("dropped windows");
  s.overflowKeys = c.varint("overflow keys");

  const k = c.bounded("dimension count", MAX_DIMENSIONS, TOO_MANY_DIMENSIONS);
  if (c.failed) return s;
  s.dimensions = new Int32Array(k);
  let seen: i32 = 0;
  for (let j = 0; j < k && !c.failed; j++) {
    const at = c.pos;
    const code = c.bounded("dimension code", DIMENSION_COUNT - 1, UNKNOWN_DIMENSION);
    if ((seen & (1 << code)) != 0) {
      c.pos = at;
      c.fail(DUPLICATE_DIMENSION, "dimension code " + code.toString() + " listed twice");
    }
    seen |= 1 << code;
    s.dimensions[j] = code;
  }

  const n = c.bounded("string count", MAX_STRINGS, TOO_MANY_STRINGS);
  if (n > c.remaining()) c.fail(TRUNCATED, "string count exceeds the remaining bytes");
  for (let i = 0; i < n && !c.failed; i++) {
    const l = c.bounded("string length", MAX_STRING_BYTES, STRING_TOO_LONG);
    if (l > c.remaining()) c.fail(TRUNCATED, "input ends inside string " + i.toString());
    if (c.failed) break;
    s.strings.push(c.buf.subarray(c.pos, c.pos + l));
    c.pos += l;
  }

  const m = c.bounded("series count", MAX_SERIES, TOO_MANY_SERIES);
  if (m > c.remaining()) c.fail(TRUNCATED, "series count exceeds the remaining bytes");
  const fullMask: f64 = f64((1 << k) - 1);
  cols.dims = k;
  let spanBudget: f64 = 0.0;
  for (let i = 0; i < m && !c.failed; i++) {
    const maskAt = c.pos;
    const mask = c.varint("dimension mask");
    if (mask > fullMask || (i == 0 && mask != fullMask)) {
      c.pos = maskAt;
      c.fail(BAD_DIMENSION_MASK, "series " + i.toString() + ": dimension mask names absent dimensions or omits one in the first series");
      break;
    }
    cols.reserveSeries(i);
    const refs = cols.refs;
    const bits = i32(mask);
    const at = i * k;
    for (let j = 0; j < k; j++) {
      // an unchanged value repeats the previous series' reference
      if ((bits & (1 << j)) == 0) unchecked((refs[at + j] = refs[at - k + j]));
      else unchecked((refs[at + j] = c.bounded("string reference", n - 1, BAD_STRING_REF)));
    }
    const width = decodeSeries(c, i, cols);
    if (c.failed) break;
    spanBudget += f64(SPAN_PER_SERIES_BYTE) * f64(c.pos - maskAt) - width;
    if (spanBudget < 0.0) {
      c.pos = maskAt;
      c.fail(SKETCH_TOO_WIDE, inSeries(i, "sketches span more than " + SPAN_PER_SERIES_BYTE.toString() + " buckets per byte of series records"));
      break;
    }
    cols.count = i + 1;
  }
  return s;
}

// Messages name the series; built only on failure so that decoding allocates no strings.
function inSeries(i: i32, text: string): string {
  return "series " + i.toString() + ": " + text;
}

// Decodes series i into `cols` (numbers, scale, buckets); returns its sketch's span in buckets.
function decodeSeries(c: Cursor, i: i32, cols: SeriesColumns): f64 {
  const requestsAt = c.pos;
  const requests = c.varint("requests");
  if (requests == 0.0) {
    c.pos = requestsAt;
    c.fail(EMPTY_SERIES, inSeries(i, "no requests"));
  }
  const errorsAt = c.pos;
  const errors = c.varint("errors");
  if (errors > requests) {
    c.pos = errorsAt;
    c.fail(ERRORS_EXCEED_REQUESTS, inSeries(i, "more errors than requests"));
  }
  const requestBytes = c.varint("request bytes");
  const responseBytes = c.varint("response bytes");
  const latencyAt = c.pos;
  const sum = c.varint("latency sum");
  const min = c.varint("latency min");
  const max = c.varint("latency max");
  const scale = c.signed("sketch scale", MIN_SCALE, MAX_SCALE, BAD_SCALE);
  const zeroAt = c.pos;
  const zero = c.varint("zero count");
  if (zero > requests) {
    c.pos = zeroAt;
    c.fail(COUNT_MISMATCH, inSeries(i, "zero count exceeds requests"));
  }
  const nb = c.bounded("bucket count", maxBucketIndex(scale) + 2, BAD_SKETCH);
  // every bucket entry takes at least two bits
  if (f64(nb) > requests - zero || f64(nb) > f64(c.remaining()) * 4.0) {
    c.fail(COUNT_MISMATCH, inSeries(i, "more non-empty buckets than values"));
  }
  if (c.failed) return 0.0;
  const at = i * SERIES_FIELDS;
  const numbers = cols.numbers;
  unchecked((numbers[at + FIELD_REQUESTS] = requests));
  unchecked((numbers[at + FIELD_ERRORS] = errors));
  unchecked((numbers[at + FIELD_REQUEST_BYTES] = requestBytes));
  unchecked((numbers[at + FIELD_RESPONSE_BYTES] = responseBytes));
  unchecked((numbers[at + FIELD_LATENCY_SUM] = sum));
  unchecked((numbers[at + FIELD_LATENCY_MIN] = min));
  unchecked((numbers[at + FIELD_LATENCY_MAX] = max));
  unchecked((numbers[at + FIELD_ZERO] = zero));
  unchecked((cols.scales[i] = scale));
  cols.requests += requests;
  let total: f64 = 0.0;
  let lo: i32 = 0;
  let hi: i32 = -1;
  if (nb > 0) {
    const first = c.signed("first bucket index", -1, maxBucketIndex(scale), BAD_SKETCH);
    if (c.failed) return 0.0;
    total = readBuckets(c, i, scale, first, nb, requests - zero, cols);
    if (c.failed) return 0.0;
    lo = unchecked(cols.bucketIndex[cols.buckets]);
    hi = unchecked(cols.bucketIndex[cols.buckets + nb - 1]);
    cols.buckets += nb;
  }
  unchecked((cols.bucketEnd[i] = cols.buckets));
  if (zero + total != requests) c.fail(COUNT_MISMATCH, inSeries(i, "sketch holds a different number of values than requests"));
  else checkLatency(c, i, requests, sum, min, max, zero, scale, lo, hi, latencyAt);
  return f64(hi - lo + 1);
}

// Reads the parameters and `nb` bucket entries into cols after its `buckets` valid entries (without
// counting them in); returns the sum of their counts.
function readBuckets(c: Cursor, i: i32, scale: i32, first: i32, nb: i32, budget: f64, cols: SeriesColumns): f64 {
  cols.reserveBuckets(nb);
  const indices = cols.bucketIndex;
  const counts = cols.bucketCount;
  const base = cols.buckets;
  const maxIndex = f64(maxBucketIndex(scale));
  const paramsAt = c.pos;
  const params = c.pos < c.end ? i32(c.buf[c.pos]) : 0;
  c.pos++;
  if (paramsAt >= c.end) c.fail(TRUNCATED, inSeries(i, "input ends inside a sketch"));
  const kGap = params & 15;
  const kCount = params >> 4;
  let index: f64 = f64(first) - 1.0;
  let count: f64 = 0.0;
  let total: f64 = 0.0;
  const buf = c.buf;
  // Entries are read inline from a local bit position (byte * 8 + bit) while 14 bytes remain (two values
  // of at most 7 bytes each) and positions fit an i32; escapes and the last bytes go through the cursor.
  const inlineEnd = c.end < MAX_INLINE_END ? c.end - 14 : -1;
  let p = c.pos * 8;
  for (let b = 0; b < nb; b++) {
    let gap: f64 = 0.0;
    let zz: f64 = 0.0;
    // Most entries (a few bits each) fit in the PAIR_BITS a 4-byte window holds past any bit offset:
    // both values come from one window then; longer ones take riceInline, escapes and the last bytes
    // the cursor.
    let windowed = false;
    const at = p >> 3;
    if (at <= inlineEnd) {
      const w = ((i32(unchecked(buf[at])) << 24) | (i32(unchecked(buf[at + 1])) << 16) | (i32(unchecked(buf[at + 2])) << 8) | i32(unchecked(buf[at + 3]))) << (p & 7);
      const gapOnes = clz(~w);
      const gapBits = gapOnes + 1 + kGap;
      if (gapBits <= PAIR_BITS) {
        const rest = w << gapBits;
        const countOnes = clz(~rest);
        const pairBits = gapBits + countOnes + 1 + kCount;
        if (pairBits <= PAIR_BITS) {
          gap = f64((gapOnes << kGap) | lowBits(w, gapOnes + 1, kGap));
          zz = f64((countOnes << kCount) | lowBits(rest, countOnes + 1, kCount));
          p += pairBits;
          windowed = true;
        }
      }
    }
    if (!windowed) {
      const g = at <= inlineEnd ? riceInline(buf, p, kGap) : -1;
      const z = g >= 0 ? riceInline(buf, p + (g & 63), kCount) : -1;
      if (z >= 0) {
        p += (g & 63) + (z & 63);
        gap = f64(g >> 6);
        zz = f64(z >> 6);
      } else {
        c.pos = p >> 3;
        c.bitOffset = p & 7;
        gap = c.rice(kGap);
        zz = c.rice(kCount);
        p = c.pos * 8 + c.bitOffset;
      }
    }
    index += gap + 1.0;
    const half = Math.floor(zz / 2.0);
    count += zz - half * 2.0 == 0.0 ? half : -half - 1.0;
    total += count;
    if (c.failed) return 0.0;
    if (index > maxIndex) {
      c.fail(BAD_SKETCH, inSeries(i, "bucket index beyond the largest latency"));
      return 0.0;
    }
    if (count < 1.0 || total > budget) {
      c.fail(COUNT_MISMATCH, inSeries(i, "bucket counts do not add up to requests"));
      return 0.0;
    }
    unchecked((indices[base + b] = i32(index)));
    unchecked((counts[base + b] = count));
  }
  c.pos = p >> 3;
  c.bitOffset = p & 7;
  c.alignBits();
  return total;
}

// Bits of a 4-byte window that are valid past any bit offset (32 - 7 = 25), less one: a pair of Rice
// values that fits in it has unary parts below RICE_ESCAPE, so neither is escaped.
const PAIR_BITS: i32 = 24;

// The k bits (k <= 15) of `w` that follow its top `skip` bits (skip + k <= 32), as an unsigned value; 0 for k = 0.
function lowBits(w: i32, skip: i32, k: i32): i32 {
  return ((w << skip) >>> 1) >>> (31 - k);
}

// Inputs from this length on are read by the cursor only, so that bit positions stay within an i32.
const MAX_INLINE_END: i32 = 1 << 27;

// Cursor.rice at bit position `start`, for callers that know 7 bytes are readable from there: the value
// (below 24 * 2^15) shifted left by 6, or-ed with the number of bits it took (at most 39); -1 when the
// value is escaped.
function riceInline(buf: Uint8Array, start: i32, k: i32): i32 {
  let p = start;
  let q: i32 = 0;
  while (true) {
    const shift = p & 7;
    // the unread bits of this byte at the top of an i32; below them zeros, so the count stops there
    const ones = clz(~(i32(unchecked(buf[p >> 3])) << (24 + shift)));
    const avail = 8 - shift;
    if (ones < avail) {
      q += ones;
      p += ones + 1;
      break;
    }
    q += avail;
    p += avail;
    if (q >= RICE_ESCAPE) return -1;
  }
  if (q >= RICE_ESCAPE) return -1;
  let low: i32 = 0;
  if (k > 0) {
    // k <= 15 bits from bit (p & 7) lie within three bytes
    const at = p >> 3;
    const window = (i32(unchecked(buf[at])) << 16) | (i32(unchecked(buf[at + 1])) << 8) | i32(unchecked(buf[at + 2]));
    low = (window >>> (24 - (p & 7) - k)) & ((1 << k) - 1);
    p += k;
  }
  return (((q << k) | low) << 6) | (p - start);
}

// min <= max, each in the bucket the sketch says ([lo, hi] its non-empty range, lo > hi when none), and
// min * n <= sum <= max * n (sum may saturate).
function checkLatency(c: Cursor, i: i32, requests: f64, sum: f64, min: f64, max: f64, zero: f64, scale: i32, lo: i32, hi: i32, at: i32): void {
  let ok = min <= max && max <= MAX_VALUE_US;
  if (ok) {
    if (zero > 0.0) ok = min == 0.0;
    else ok = min >= 1.0 && bucketIndex(min, scale) == lo;
  }
  if (ok) {
    if (lo <= hi) ok = max >= 1.0 && bucketIndex(max, scale) == hi;
    else ok = max == 0.0;
  }
  if (ok) ok = sum <= max * requests && (sum >= min * requests || sum == MAX_COUNTER);
  if (!ok) {
    c.pos = at;
    c.fail(BAD_LATENCY, inSeries(i, "latency sum/min/max disagree with each other or with the sketch"));
  }
}
