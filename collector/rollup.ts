// Rollup: decoded summaries → one row per (minute, series). Pure; both sinks call it inside their load
// transaction after dropping already-ledgered summaries.
//
// Minute attribution: a summary is attributed whole to the UTC minute holding the last millisecond of
// its window (`floor((windowEnd − 1 ms) / 60 s)`). A sketch cannot be split by time, so splitting a
// window that straddles a minute boundary would have to guess; the filter aligns its flush windows to
// multiples of the flush interval, and with an interval dividing 60 s no window straddles a minute, so
// the rule is exact per minute there and exact per series over any span in every case (docs/schema.md).
import { DIMENSIONS } from "../shared/schema.ts";
import { meshSketchAddInto, meshSketchMerge, type SketchJson } from "../shared/quantile.ts";
import {
  FIELD_ERRORS,
  FIELD_LATENCY_MAX,
  FIELD_LATENCY_MIN,
  FIELD_LATENCY_SUM,
  FIELD_REQUESTS,
  FIELD_REQUEST_BYTES,
  FIELD_RESPONSE_BYTES,
  FIELD_ZERO,
  SERIES_FIELDS,
  absentValue,
  dimensionsOf,
  sketchJsonOf,
  summaryColumns,
  type DecodedSeries,
  type DecodedSummary,
  type SummaryColumns,
} from "./summary.ts";

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
  // Row keys are the minute followed by small ids, one per distinct dimension value, instead of the values
  // themselves: two UTF-16 units per dimension in DIMENSIONS order.
  private readonly ids = new Map<string, number>();
  private readonly key: number[] = new Array(2 * DIMENSIONS.length).fill(0);
  private readonly absentIds = DIMENSIONS.map((d) => this.idOf(String(absentValue(d))));

  get size(): number {
    return this.acc.size;
  }

  add(summary: DecodedSummary): void {
    const minuteMs = attributedMinute(summary.windowEndMs);
    const cols = summaryColumns(summary);
    if (cols) this.addColumns(minuteMs, cols);
    else for (const s of summary.series) this.addSeries(minuteMs, s);
  }

  /** Folds in a row produced by another rollup (same minute attribution already applied). */
  addRow(row: MinuteRow): void {
    this.addSeries(row.minuteMs, row);
  }

  private idOf(value: string): number {
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(value, id);
    }
    return id;
  }

  private setKey(slot: number, id: number): void {
    this.key[slot] = id & 0xffff;
    this.key[slot + 1] = id >>> 16;
  }

  private keyString(minuteMs: number): string {
    return minuteMs + String.fromCharCode.apply(null, this.key);
  }

  private addSeries(minuteMs: number, s: DecodedSeries): void {
    for (let d = 0; d < DIMENSIONS.length; d++) this.setKey(2 * d, this.idOf(String(s.dimensions[DIMENSIONS[d]])));
    const key = this.keyString(minuteMs);
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

  // The same fold as addSeries over a decoded summary's flat columns, building objects only for new rows.
  private addColumns(minuteMs: number, cols: SummaryColumns): void {
    const ids = cols.strings.map((v) => this.idOf(v));
    const codes = cols.codes;
    const k = codes.length;
    for (let d = 0; d < DIMENSIONS.length; d++) this.setKey(2 * d, this.absentIds[d]);
    const n = cols.numbers;
    for (let i = 0; i < cols.count; i++) {
      for (let j = 0; j < k; j++) this.setKey(2 * codes[j], ids[cols.refs[i * k + j]]);
      const key = this.keyString(minuteMs);
      const at = i * SERIES_FIELDS;
      const r = this.acc.get(key);
      if (r === undefined) {
        this.acc.set(key, {
          dimensions: dimensionsOf(cols, i),
          requests: n[at + FIELD_REQUESTS],
          errors: n[at + FIELD_ERRORS],
          requestBytes: n[at + FIELD_REQUEST_BYTES],
          responseBytes: n[at + FIELD_RESPONSE_BYTES],
          latencySumUs: n[at + FIELD_LATENCY_SUM],
          latencyMinUs: n[at + FIELD_LATENCY_MIN],
          latencyMaxUs: n[at + FIELD_LATENCY_MAX],
          sketch: sketchJsonOf(cols, i),
          minuteMs,
        });
        continue;
      }
      r.requests += n[at + FIELD_REQUESTS];
      r.errors += n[at + FIELD_ERRORS];
      r.requestBytes += n[at + FIELD_REQUEST_BYTES];
      r.responseBytes += n[at + FIELD_RESPONSE_BYTES];
      r.latencySumUs += n[at + FIELD_LATENCY_SUM];
      r.latencyMinUs = Math.min(r.latencyMinUs, n[at + FIELD_LATENCY_MIN]);
      r.latencyMaxUs = Math.max(r.latencyMaxUs, n[at + FIELD_LATENCY_MAX]);
      if (cols.scales[i] === r.sketch.s) addBuckets(r.sketch, cols, i);
      else meshSketchAddInto(r.sketch, sketchJsonOf(cols, i));
    }
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

// meshSketchAddInto for series i of `cols` at the accumulator's scale, straight from its sparse buckets.
function addBuckets(acc: SketchJson, cols: SummaryColumns, i: number): void {
  acc.z += cols.numbers[i * SERIES_FIELDS + FIELD_ZERO];
  const from = i === 0 ? 0 : cols.bucketEnd[i - 1];
  const to = cols.bucketEnd[i];
  if (to === from) return;
  const index = cols.bucketIndex;
  const lo = Math.min(index[from], acc.c.length === 0 ? Infinity : acc.o);
  const hi = Math.max(index[to - 1], acc.c.length === 0 ? -Infinity : acc.o + acc.c.length - 1);
  if (acc.c.length === 0 || lo !== acc.o || hi !== acc.o + acc.c.length - 1) {
    const grown: number[] = new Array(hi - lo + 1).fill(0);
    for (let b = 0; b < acc.c.length; b++) grown[acc.o - lo + b] = acc.c[b];
    acc.o = lo;
    acc.c = grown;
  }
  const c = acc.c;
  for (let b = from; b < to; b++) c[index[b] - lo] += cols.bucketCount[b];
}

/** Merges summaries into one row per (minute, series); see MinuteRollup. */
export function rollup(summaries: readonly DecodedSummary[]): MinuteRow[] {
  const r = new MinuteRollup();
  for (const s of summaries) r.add(s);
  return [...r.rows()];
}
