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
  FIELD_ERRORS as ERRORS,
  FIELD_LATENCY_MAX as LATENCY_MAX,
  FIELD_LATENCY_MIN as LATENCY_MIN,
  FIELD_LATENCY_SUM as LATENCY_SUM,
  FIELD_REQUESTS as REQUESTS,
  FIELD_REQUEST_BYTES as REQUEST_BYTES,
  FIELD_RESPONSE_BYTES as RESPONSE_BYTES,
  FIELD_ZERO as ZERO,
  SERIES_FIELDS as FIELDS,
  absentValue,
  seriesAt,
  sketchJsonOf,
  summaryColumns,
  type DecodedSeries,
  type DecodedSummary,
  type SummaryColumns,
} from "./summary.ts";

const MINUTE_MS = 60_000;
// Module-local copies of the column layout: under tsx every read of an imported binding is a getter call
// (one per re-export on the way), and the fold reads them per series.
const FIELD_REQUESTS = REQUESTS;
const FIELD_ERRORS = ERRORS;
const FIELD_REQUEST_BYTES = REQUEST_BYTES;
const FIELD_RESPONSE_BYTES = RESPONSE_BYTES;
const FIELD_LATENCY_SUM = LATENCY_SUM;
const FIELD_LATENCY_MIN = LATENCY_MIN;
const FIELD_LATENCY_MAX = LATENCY_MAX;
const FIELD_ZERO = ZERO;
const SERIES_FIELDS = FIELDS;

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
  private readonly list: MinuteRow[] = [];
  // Rows by a hash of their key (the minute and the id of each dimension value, ids handed out per
  // distinct value); rows whose hashes collide chain through Slot.next. Cheaper than a string key per
  // series update.
  private readonly slots = new Map<number, Slot>();
  private readonly ids = new Map<string, number>();
  private readonly key = new Int32Array(DIMENSIONS.length);
  private readonly absentIds = DIMENSIONS.map((d) => this.idOf(String(absentValue(d))));
  private hash = 0;

  get size(): number {
    return this.list.length;
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

  // The row filed under the key in `key` for `minuteMs`, if any; leaves the key's hash in `hash`.
  private find(minuteMs: number): MinuteRow | undefined {
    const key = this.key;
    let h = (minuteMs / MINUTE_MS) | 0;
    for (let d = 0; d < key.length; d++) {
      h = Math.imul(h ^ key[d], 0x9e3779b1);
      h ^= h >>> 15;
    }
    this.hash = h;
    for (let s = this.slots.get(h); s !== undefined; s = s.next) {
      if (s.minuteMs !== minuteMs) continue;
      let d = 0;
      while (d < key.length && s.ids[d] === key[d]) d++;
      if (d === key.length) return s.row;
    }
    return undefined;
  }

  // Files a new row under the key `find` just missed.
  private file(minuteMs: number, row: MinuteRow): void {
    this.slots.set(this.hash, { row, minuteMs, ids: this.key.slice(), next: this.slots.get(this.hash) });
    this.list.push(row);
  }

  private addSeries(minuteMs: number, s: DecodedSeries): void {
    for (let d = 0; d < DIMENSIONS.length; d++) this.key[d] = this.idOf(String(s.dimensions[DIMENSIONS[d]]));
    const r = this.find(minuteMs);
    if (r === undefined) {
      const k = s.sketch;
      this.file(minuteMs, { ...s, minuteMs, sketch: { s: k.s, z: k.z, o: k.o, c: k.c.slice() } });
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
    for (let d = 0; d < DIMENSIONS.length; d++) this.key[d] = this.absentIds[d];
    const n = cols.numbers;
    for (let i = 0; i < cols.count; i++) {
      for (let j = 0; j < k; j++) this.key[codes[j]] = ids[cols.refs[i * k + j]];
      const at = i * SERIES_FIELDS;
      const r = this.find(minuteMs);
      if (r === undefined) {
        this.file(minuteMs, { ...seriesAt(cols, i), minuteMs });
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
    for (const r of this.list) {
      const c = r.sketch.c;
      // Stored sketches list buckets from the first to the last non-empty one.
      if (c.length > 0 && (c[0] === 0 || c[c.length - 1] === 0)) r.sketch = meshSketchMerge([r.sketch])!;
      yield r;
    }
  }
}

interface Slot {
  row: MinuteRow;
  minuteMs: number;
  ids: Int32Array;
  next: Slot | undefined;
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
