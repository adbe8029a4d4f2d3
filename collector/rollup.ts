// Rollup: decoded summaries → one row per (minute, series). Pure; both sinks call it inside their load
// transaction after dropping already-ledgered summaries.
//
// Minute attribution: a summary is attributed whole to the UTC minute holding the last millisecond of
// its window (`floor((windowEnd − 1 ms) / 60 s)`). A sketch cannot be split by time, so splitting a
// window that straddles a minute boundary would have to guess; the filter aligns its flush windows to
// multiples of the flush interval, and with an interval dividing 60 s no window straddles a minute, so
// the rule is exact per minute there and exact per series over any span in every case (docs/schema.md).
import { DIMENSIONS, type Dimension } from "../shared/schema.ts";
import { meshSketchMerge, type SketchJson } from "../shared/quantile.ts";
import type { DecodedSummary } from "./summary.ts";

const MINUTE_MS = 60_000;

/** One fact row before the sink adds `loaded_at`: columns of `mesh_traffic_minute`. */
export interface MinuteRow {
  /** Start of the UTC minute, epoch milliseconds. */
  minuteMs: number;
  dimensions: Record<Dimension, string | number>;
  requests: number;
  errors: number;
  requestBytes: number;
  responseBytes: number;
  latencySumUs: number;
  latencyMinUs: number;
  latencyMaxUs: number;
  /** Merged latency sketch, ready to store in `latency_sketch`. */
  sketch: SketchJson;
}

/** The minute (epoch ms of its start) a summary window is attributed to. */
export function attributedMinute(windowEndMs: number): number {
  return Math.floor((windowEndMs - 1) / MINUTE_MS) * MINUTE_MS;
}

/**
 * Merges summaries into minute rows, one per (minute, series): counters add, min/max take the extremes,
 * sketches merge exactly (shared/quantile-core.js). Input order does not matter. Callers dedupe by
 * (producerId, seq) first — the rollup counts whatever it is given.
 */
export function rollup(summaries: readonly DecodedSummary[]): MinuteRow[] {
  const rows = new Map<string, { row: MinuteRow; sketches: SketchJson[] }>();
  for (const summary of summaries) {
    const minuteMs = attributedMinute(summary.windowEndMs);
    for (const s of summary.series) {
      let key = String(minuteMs);
      for (const d of DIMENSIONS) key += "\u0000" + s.dimensions[d];
      const acc = rows.get(key);
      if (acc === undefined) {
        rows.set(key, {
          row: {
            minuteMs,
            dimensions: s.dimensions,
            requests: s.requests,
            errors: s.errors,
            requestBytes: s.requestBytes,
            responseBytes: s.responseBytes,
            latencySumUs: s.latencySumUs,
            latencyMinUs: s.latencyMinUs,
            latencyMaxUs: s.latencyMaxUs,
            sketch: s.sketch,
          },
          sketches: [s.sketch],
        });
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
  const out: MinuteRow[] = [];
  for (const { row, sketches } of rows.values()) {
    // Merge once per row at the end: merging pairwise as summaries arrive would re-copy bucket arrays.
    if (sketches.length > 1) row.sketch = meshSketchMerge(sketches)!;
    out.push(row);
  }
  return out;
}
