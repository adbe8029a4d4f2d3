// Latency sketches as the read path merges them: an accumulator of bucket counts that absorbs the stored
// JSON form ({s,z,o,c}, shared/quantile-core.js) or a binary form, and writes the binary form that
// mesh_board_hour keeps. Parsing JSON text is what made percentile tiles slow (one JSON.parse per minute
// or hour row); the binary form is read with a DataView, without allocating per bucket.
//
// Binary form, little endian: int32 scale, int32 n, float64 zero count, then n × (int32 bucket index,
// float64 count) for the non-empty buckets in increasing index order. Counts are float64 because the
// stored JSON counts are JavaScript numbers too (exact up to 2^53).
//
// Merging is the exact merge of meshSketchMerge: every input is brought down to the smallest scale seen
// (bucket i → floor(i / 2^steps), which keeps the bucket bounds nested), then counts add bucket-wise; so
// quantiles of the result equal MESH_QUANTILE over the same sketches.
import type { SketchJson } from "../../shared/quantile.ts";

const HEADER = 16;
const ENTRY = 12;

export class SketchAccumulator {
  scale = Infinity;
  zero = 0;
  /** Count per bucket index at `scale`. */
  private counts = new Map<number, number>();

  get empty(): boolean {
    return this.scale === Infinity;
  }

  /** Brings what is held down to `scale` (≤ the current one). */
  private downscale(scale: number): void {
    if (scale >= this.scale) return;
    if (this.counts.size > 0) {
      const div = 2 ** (this.scale - scale);
      const old = this.counts;
      this.counts = new Map();
      for (const [i, n] of old) this.bump(Math.floor(i / div), n);
    }
    this.scale = scale;
  }

  private bump(i: number, n: number): void {
    this.counts.set(i, (this.counts.get(i) ?? 0) + n);
  }

  /** Adds a sketch in the stored JSON form (text or parsed); null adds nothing. */
  addJson(x: string | SketchJson | null): void {
    if (x === null) return;
    const sk: SketchJson = typeof x === "string" ? JSON.parse(x) : x;
    this.downscale(sk.s);
    const div = 2 ** (sk.s - this.scale);
    let at = sk.o;
    for (const v of sk.c) {
      if (v < 0) {
        at -= v;
        continue;
      }
      if (v > 0) this.bump(div === 1 ? at : Math.floor(at / div), v);
      at++;
    }
    this.zero += sk.z;
  }

  /** Adds a sketch in the binary form; null adds nothing. */
  addBinary(b: Uint8Array | null): void {
    if (b === null) return;
    const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const scale = view.getInt32(0, true);
    const n = view.getInt32(4, true);
    this.downscale(scale);
    const div = 2 ** (scale - this.scale);
    this.zero += view.getFloat64(8, true);
    for (let k = 0, p = HEADER; k < n; k++, p += ENTRY) {
      const i = view.getInt32(p, true);
      this.bump(div === 1 ? i : Math.floor(i / div), view.getFloat64(p + 4, true));
    }
  }

  private sorted(): [number, number][] {
    return [...this.counts].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  }

  /** The binary form of what is held (empty accumulator: null). */
  toBinary(): Uint8Array | null {
    if (this.empty) return null;
    const buckets = this.sorted();
    const out = new Uint8Array(HEADER + ENTRY * buckets.length);
    const view = new DataView(out.buffer);
    view.setInt32(0, this.scale, true);
    view.setInt32(4, buckets.length, true);
    view.setFloat64(8, this.zero, true);
    buckets.forEach(([i, n], k) => {
      view.setInt32(HEADER + k * ENTRY, i, true);
      view.setFloat64(HEADER + k * ENTRY + 4, n, true);
    });
    return out;
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
