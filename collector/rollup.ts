// Rollup: decoded summaries → one row per (minute, series). Pure; both sinks call it inside their load
// transaction after dropping already-ledgered summaries.
//
// Minute attribution: a summary is attributed whole to the UTC minute holding the last millisecond of
// its window (`floor((windowEnd − 1 ms) / 60 s)`). A sketch cannot be split by time, so splitting a
// window that straddles a minute boundary would have to guess; the filter aligns its flush windows to
// multiples of the flush interval, and with an interval dividing 60 s no window straddles a minute, so
// the rule is exact per minute there and exact per series over any span in every case (docs/schema.md).
import { DIMENSIONS } from "../shared/schema.ts";
import { meshSketchMerge, type SketchJson } from "../shared/quantile.ts";
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

/** Sketches a row collects before they are merged into one; bounds memory for long-lived rollups. */
const PENDING_SKETCHES = 32;

/**
 * Incremental form of rollup(): add() summaries (or rows of another rollup) one at a time, so a caller
 * can yield to the event loop between them or keep folding as summaries arrive, then take rows().
 * Counters add, min/max take the extremes, sketches merge exactly (shared/quantile-core.js). Input
 * order does not matter. Callers dedupe by (producerId, seq) first — the rollup counts what it is given.
 */
export class MinuteRollup {
  private readonly acc = new Map<string, { row: MinuteRow; sketches: SketchJson[] }>();

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
    const acc = this.acc.get(key);
    if (acc === undefined) {
      this.acc.set(key, { row: { ...s, minuteMs }, sketches: [s.sketch] });
      return;
    }
    const r = acc.row;
    r.requests += s.requests;
    r.errors += s.errors;
    r.requestBytes += s.requestBytes;
    r.responseBytes += s.responseBytes;
    r.latencySumUs += s.latencySumUs;
    r.latencyMinUs = Math.min(r.latencyMinUs, s.latencyMinUs);
    r.latencyMaxUs = Math.max(r.latencyMaxUs, s.latencyMaxUs);
    acc.sketches.push(s.sketch);
    // Merging in batches, not per add(), avoids re-copying the bucket array for every summary.
    if (acc.sketches.length >= PENDING_SKETCHES) acc.sketches = [meshSketchMerge(acc.sketches)!];
  }

  /** The rows, one per (minute, series), with their sketches merged. */
  *rows(): Generator<MinuteRow> {
    for (const acc of this.acc.values()) {
      if (acc.sketches.length > 1) acc.sketches = [meshSketchMerge(acc.sketches)!];
      acc.row.sketch = acc.sketches[0];
      yield acc.row;
    }
  }
}

/** Merges summaries into one row per (minute, series); see MinuteRollup. */
export function rollup(summaries: readonly DecodedSummary[]): MinuteRow[] {
  const r = new MinuteRollup();
  for (const s of summaries) r.add(s);
  return [...r.rows()];
}
