// Latency sketches as the read path merges them: an accumulator of bucket counts that absorbs the stored
// JSON form ({s,z,o,c}, shared/quantile-core.js) or a binary form, and writes the binary form that
// mesh_board_hour keeps. Parsing JSON text is what made percentile tiles slow (one JSON.parse per minute
// or hour row); the binary form is read with a DataView, without allocating per bucket.
//
// Binary form: one byte scale, then unsigned LEB128 varints: zero count, number of buckets n, then per
// non-empty bucket in increasing index order the index step (the first: the index zigzag-encoded, as it
// may be negative; then the gap to the previous index) and the count. An hour's sketch of ~150 buckets
// takes ~2 bytes a bucket, which keeps what each load rewrites and each read copies small. Varints are
// read and written with arithmetic, not 32-bit shifts, so counts stay exact up to 2^53 as in the JSON.
//
// Merging is the exact merge of meshSketchMerge: every input is brought down to the smallest scale seen
// (bucket i → floor(i / 2^steps), which keeps the bucket bounds nested), then counts add bucket-wise; so
// quantiles of the result equal MESH_QUANTILE over the same sketches.
import type { SketchJson } from "../../shared/quantile.ts";

/** Appends `v` (a whole number, 0 ≤ v < 2^53) as an unsigned LEB128 varint. */
function putVarint(out: number[], v: number): void {
  while (v >= 128) {
    out.push((v % 128) + 128);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

/** Reads varints from a byte array, front to back. */
class VarintReader {
  at = 0;
  constructor(private readonly b: Uint8Array) {}
  next(): number {
    let v = 0;
    let mul = 1;
    for (;;) {
      const byte = this.b[this.at++];
      if (byte === undefined) throw new Error("truncated binary sketch");
      v += (byte & 127) * mul;
      if (byte < 128) return v;
      mul *= 128;
    }
  }
}

let scratchIndex = new Float64Array(1024);
let scratchCount = new Float64Array(1024);

export class SketchAccumulator {
  scale = Infinity;
  zero = 0;
  /** Count per bucket index at `scale`: counts[i - lo]. Dense, since a sketch's buckets are few and close. */
  private lo = 0;
  private counts = new Float64Array(0);

  get empty(): boolean {
    return this.scale === Infinity;
  }

  /** Brings what is held down to `scale` (≤ the current one). */
  private downscale(scale: number): void {
    if (scale >= this.scale) return;
    const old = this.counts;
    const oldLo = this.lo;
    const div = 2 ** (this.scale - scale);
    this.scale = scale;
    this.counts = new Float64Array(0);
    for (let k = 0; k < old.length; k++) if (old[k] > 0) this.bump(Math.floor((oldLo + k) / div), old[k]);
  }

  /** Widens the window to hold indices lo…hi, in one allocation. */
  private ensure(lo: number, hi: number): void {
    const has = this.counts.length;
    if (has > 0 && lo >= this.lo && hi < this.lo + has) return;
    const from = has === 0 ? lo : Math.min(this.lo, lo);
    const to = has === 0 ? hi + 1 : Math.max(this.lo + has, hi + 1);
    const grown = new Float64Array(to - from);
    if (has > 0) grown.set(this.counts, this.lo - from);
    this.counts = grown;
    this.lo = from;
  }

  private bump(i: number, n: number): void {
    this.ensure(i, i);
    this.counts[i - this.lo] += n;
  }

  /** Adds a sketch in the stored JSON form (text or parsed); null adds nothing. */
  addJson(x: string | SketchJson | null): void {
    if (x === null) return;
    const sk: SketchJson = typeof x === "string" ? JSON.parse(x) : x;
    this.downscale(sk.s);
    const div = 2 ** (sk.s - this.scale);
    // First the span, so the window grows once; then the counts.
    let at = sk.o;
    let last = sk.o - 1;
    for (const v of sk.c) {
      if (v < 0) at -= v;
      else last = at++;
    }
    if (last >= sk.o) this.ensure(Math.floor(sk.o / div), Math.floor(last / div));
    at = sk.o;
    for (const v of sk.c) {
      if (v < 0) {
        at -= v;
        continue;
      }
      if (v > 0) this.counts[(div === 1 ? at : Math.floor(at / div)) - this.lo] += v;
      at++;
    }
    this.zero += sk.z;
  }

  /** Adds a sketch in the binary form; null adds nothing. */
  addBinary(b: Uint8Array | null): void {
    if (b === null) return;
    const scale = (b[0] << 24) >> 24;
    this.downscale(scale);
    const div = 2 ** (scale - this.scale);
    const r = new VarintReader(b);
    r.at = 1;
    this.zero += r.next();
    const n = r.next();
    if (n === 0) return;
    // Decoded into scratch first: the last index is known only at the end, and the window grows once.
    if (scratchIndex.length < n) {
      scratchIndex = new Float64Array(2 * n);
      scratchCount = new Float64Array(2 * n);
    }
    let i = 0;
    for (let k = 0; k < n; k++) {
      const step = r.next();
      i = k === 0 ? (step % 2 === 0 ? step / 2 : -(step + 1) / 2) : i + step;
      scratchIndex[k] = div === 1 ? i : Math.floor(i / div);
      scratchCount[k] = r.next();
    }
    this.ensure(scratchIndex[0], scratchIndex[n - 1]);
    for (let k = 0; k < n; k++) this.counts[scratchIndex[k] - this.lo] += scratchCount[k];
  }

  private sorted(): [number, number][] {
    const out: [number, number][] = [];
    for (let k = 0; k < this.counts.length; k++) if (this.counts[k] > 0) out.push([this.lo + k, this.counts[k]]);
    return out;
  }

  /** The binary form of what is held (empty accumulator: null). */
  toBinary(): Uint8Array | null {
    if (this.empty) return null;
    const buckets = this.sorted();
    const out: number[] = [this.scale & 255];
    putVarint(out, this.zero);
    putVarint(out, buckets.length);
    buckets.forEach(([i, n], k) => {
      putVarint(out, k === 0 ? (i >= 0 ? 2 * i : -2 * i - 1) : i - buckets[k - 1][0]);
      putVarint(out, n);
    });
    return Uint8Array.from(out);
  }

  /** The stored JSON form (what MESH_QUANTILE reads), with skips over empty buckets; empty: null. */
  toJson(): SketchJson | null {
    if (this.empty) return null;
    const buckets = this.sorted();
    const c: number[] = [];
    let next = buckets.length > 0 ? buckets[0][0] : 0;
    const o = next;
    for (const [i, n] of buckets) {
      if (i > next) c.push(next - i);
      c.push(n);
      next = i + 1;
    }
    return { s: this.scale, z: this.zero, o, c };
  }
}
