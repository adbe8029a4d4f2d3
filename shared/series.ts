// Per-series aggregate: what the filter accumulates for one series key during a window, what the wire
// format carries per series record, and what the decoder hands back. Portable AssemblyScript.
import { DEFAULT_SCALE, Sketch, wholeMicros } from "./sketch";

/** Largest value of any wire counter: 2^53 - 1, the last integer f64 holds exactly. Sums saturate here. */
export const MAX_COUNTER: f64 = 9007199254740991.0;

/** A byte count as the filter records it: whole bytes, NaN and negatives as 0, at most MAX_COUNTER. */
export function wholeBytes(v: f64): f64 {
  if (!(v >= 1.0)) return 0.0;
  if (v >= MAX_COUNTER) return MAX_COUNTER;
  return Math.floor(v);
}

/** a + b, saturating at MAX_COUNTER so an encoded counter is always valid. */
export function addSaturating(a: f64, b: f64): f64 {
  const s = a + b;
  return s >= MAX_COUNTER ? MAX_COUNTER : s;
}

/**
 * Requests, errors, byte sums, latency min/max/sum and the latency sketch of one series. record() keeps
 * all of them consistent with each other (the decoder checks that they are).
 */
export class SeriesStats {
  requests: f64 = 0.0;
  errors: f64 = 0.0;
  requestBytes: f64 = 0.0;
  responseBytes: f64 = 0.0;
  latencySumUs: f64 = 0.0;
  /** Smallest latency (µs); 0 while requests == 0. */
  latencyMinUs: f64 = 0.0;
  latencyMaxUs: f64 = 0.0;
  sketch: Sketch;

  /** `compact`: the sketch keeps narrow counts (the filter's live series; see Sketch). */
  constructor(scale: i32 = DEFAULT_SCALE, compact: bool = false) {
    this.sketch = new Sketch(scale, compact);
  }

  /**
   * Records one finished request. `latencyUs` is floor(duration_ns / 1000) (sanitised by wholeMicros:
   * NaN/negative -> 0, clamped to MAX_VALUE_US); byte sizes are sanitised by wholeBytes.
   */
  record(latencyUs: f64, requestBytes: f64, responseBytes: f64, isError: bool): void {
    const v = wholeMicros(latencyUs);
    if (this.requests == 0.0 || v < this.latencyMinUs) this.latencyMinUs = v;
    if (this.requests == 0.0 || v > this.latencyMaxUs) this.latencyMaxUs = v;
    this.requests += 1.0;
    if (isError) this.errors += 1.0;
    this.requestBytes = addSaturating(this.requestBytes, wholeBytes(requestBytes));
    this.responseBytes = addSaturating(this.responseBytes, wholeBytes(responseBytes));
    this.latencySumUs = addSaturating(this.latencySumUs, v);
    this.sketch.record(v);
  }

  /** Adds another aggregate of the same series (exact; the sketch merges at the smaller scale). */
  merge(other: SeriesStats): void {
    if (other.requests == 0.0) return;
    if (this.requests == 0.0 || other.latencyMinUs < this.latencyMinUs) this.latencyMinUs = other.latencyMinUs;
    if (this.requests == 0.0 || other.latencyMaxUs > this.latencyMaxUs) this.latencyMaxUs = other.latencyMaxUs;
    this.requests += other.requests;
    this.errors += other.errors;
    this.requestBytes = addSaturating(this.requestBytes, other.requestBytes);
    this.responseBytes = addSaturating(this.responseBytes, other.responseBytes);
    this.latencySumUs = addSaturating(this.latencySumUs, other.latencySumUs);
    this.sketch.merge(other.sketch);
  }

  /** Zeroes everything for the next window, keeping the sketch's storage. */
  reset(): void {
    this.requests = 0.0;
    this.errors = 0.0;
    this.requestBytes = 0.0;
    this.responseBytes = 0.0;
    this.latencySumUs = 0.0;
    this.latencyMinUs = 0.0;
    this.latencyMaxUs = 0.0;
    this.sketch.reset();
  }
}
