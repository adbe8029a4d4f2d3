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

/**
 * Incremental form of rollup(): add() summaries one at a time (so a caller can yield to the event loop
 * between them), then take rows(). Counters add, min/max take the extremes, sketches merge exactly
 * (shared/quantile-core.js). Input order does not matter. Callers dedupe by (producerId, seq) first —
 * the rollup counts whatever it is given.
 */
export class MinuteRollup {
  private readonly acc = new Map<string, { row: MinuteRow; sketches: SketchJson[] }>();

  get size(): number {
    return this.acc.size;
  }

  add(summary: DecodedSummary): void {
    const minuteMs = attributedMinute(summary.windowEndMs);
    for (const s of summary.series) {
      let key = String(minuteMs);
      for (const d of DIMENSIONS) key += "\u0000" + s.dimensions[d];
      const acc = this.acc.get(key);
      if (acc === undefined) {
        this.acc.set(key, { row: { ...s, minuteMs }, sketches: [s.sketch] });
        continue;
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
    }
  }

  /** The rows, one per (minute, series); each sketch is merged here, once per row, not per add(). */
  *rows(): Generator<MinuteRow> {
    for (const { row, sketches } of this.acc.values()) {
      if (sketches.length > 1) row.sketch = meshSketchMerge(sketches)!;
      yield row;
    }
  }
}

/** Merges summaries into one row per (minute, series); see MinuteRollup. */
export function rollup(summaries: readonly DecodedSummary[]): MinuteRow[] {
  const r = new MinuteRollup();
  for (const s of summaries) r.add(s);
  return [...r.rows()];
}
