// Rollup: decoded summaries → one row per (minute, series). Pure; both sinks call it inside their load
// transaction after dropping already-ledgered summaries.
//
// Minute attribution: a summary is attributed whole to the UTC minute holding the last millisecond of
// its window (`floor((windowEnd − 1 ms) / 60 s)`). A sketch cannot be split by time, so splitting a
// window that straddles a minute boundary would have to guess; the filter aligns its flush windows to
// multiples of the flush interval, and with an interval dividing 60 s no window straddles a minute, so
// the rule is exact per minute there and exact per series over any span in every case (docs/schema.md).
import { DIMENSIONS } from "../shared/schema.ts";
import { meshSketchAddInto, meshSketchMerge } from "../shared/quantile.ts";
import type { DecodedSeries, DecodedSummary } from "./summary.ts";

const MINUTE_MS = 60_000;

/** One fact row before the sink adds `loaded_at`: a series' numbers summed over its minute. */
export interface MinuteRow extends DecodedSeries {
  /** Start of the UTC minute, epoch milliseconds. */
  minuteMs: number;
}

/** The minute (epoch ms of its start) a summary window is attributed to. */
export function attributedMinute(windowEndMs: number): number {
  return Math.floor((windowEndMs - 1) / MINUTE_MS) * MINUTE_MS;
}

/**
 * Incremental form of rollup(): add() summaries (or rows of another rollup) one at a time, so a caller
 * can yield to the event loop between them or keep folding as summaries arrive, then take rows().
 * Counters add, min/max take the extremes, sketches merge exactly (shared/quantile-core.js) into a
 * sketch the row owns, so the summaries folded in can be garbage-collected right away. Input order does
 * not matter. Callers dedupe by (producerId, seq) first — the rollup counts what it is given.
 */
export class MinuteRollup {
  private readonly acc = new Map<string, MinuteRow>();

  get size(): number {
    return this.acc.size;
  }

  add(summary: DecodedSummary): void {
    const minuteMs = attributedMinute(summary.windowEndMs);
    for (const s of summary.series) this.addSeries(minuteMs, s);
  }

  /** Folds in a row produced by another rollup (same minute attribution already applied). */
  addRow(row: MinuteRow): void {
    this.addSeries(row.minuteMs, row);
  }

  private addSeries(minuteMs: number, s: DecodedSeries): void {
    let key = String(minuteMs);
    for (const d of DIMENSIONS) key += "\u0000" + s.dimensions[d];
    const r = this.acc.get(key);
    if (r === undefined) {
      const k = s.sketch;
      this.acc.set(key, { ...s, minuteMs, sketch: { s: k.s, z: k.z, o: k.o, c: k.c.slice() } });
      return;
    }
    r.requests += s.requests;
    r.errors += s.errors;
    r.requestBytes += s.requestBytes;
    r.responseBytes += s.responseBytes;
    r.latencySumUs += s.latencySumUs;
    r.latencyMinUs = Math.min(r.latencyMinUs, s.latencyMinUs);
    r.latencyMaxUs = Math.max(r.latencyMaxUs, s.latencyMaxUs);
    meshSketchAddInto(r.sketch, s.sketch);
  }

  /** The rows, one per (minute, series). */
  *rows(): Generator<MinuteRow> {
    for (const r of this.acc.values()) {
      const c = r.sketch.c;
      // Stored sketches list buckets from the first to the last non-empty one.
      if (c.length > 0 && (c[0] === 0 || c[c.length - 1] === 0)) r.sketch = meshSketchMerge([r.sketch])!;
      yield r;
    }
  }
}

/** Merges summaries into one row per (minute, series); see MinuteRollup. */
export function rollup(summaries: readonly DecodedSummary[]): MinuteRow[] {
  const r = new MinuteRollup();
  for (const s of summaries) r.add(s);
  return [...r.rows()];
}
