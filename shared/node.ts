// Node edge of the shared core: loads AssemblyScript's portable runtime, then exposes the wire codec
// and the sketch with JavaScript strings and JSON sketches. The collector, the simulator, tests and
// benchmarks import this module, never the portable files directly (they need the runtime loaded first).
import "assemblyscript/std/portable/index";
import { DIMENSIONS, type Dimension } from "./schema.ts";
import { SeriesStats } from "./series";
import { MAX_SCALE, MIN_SCALE, Sketch, maxBucketIndex } from "./sketch";
import {
  DIMENSION_COUNT,
  FIELD_ERRORS,
  FIELD_LATENCY_MAX,
  FIELD_LATENCY_MIN,
  FIELD_LATENCY_SUM,
  FIELD_REQUESTS,
  FIELD_REQUEST_BYTES,
  FIELD_RESPONSE_BYTES,
  FIELD_ZERO,
  OK,
  SERIES_FIELDS,
  SeriesColumns,
  SummaryEncoder,
  decodeColumns,
  reasonName,
} from "./wire";

export {
  FIELD_ERRORS,
  FIELD_LATENCY_MAX,
  FIELD_LATENCY_MIN,
  FIELD_LATENCY_SUM,
  FIELD_REQUESTS,
  FIELD_REQUEST_BYTES,
  FIELD_RESPONSE_BYTES,
  FIELD_ZERO,
  SERIES_FIELDS,
  SeriesColumns,
} from "./wire";
export { CONTENT_TYPE, FLAG_FINAL, FLAG_OVERFLOW, MAX_STRING_BYTES, REASON_COUNT, WIRE_VERSION, decodeWire, reasonName } from "./wire";
export { crc32, toValidUtf8 } from "./bytes";
export { Sketch, SeriesStats };
export { bucketIndex, DEFAULT_SCALE, MAX_SCALE, MIN_SCALE, MAX_VALUE_US } from "./sketch";

if (DIMENSIONS.length !== DIMENSION_COUNT) throw new Error("shared/schema.ts DIMENSIONS and wire DIMENSION_COUNT disagree");

/** Sketch JSON as stored in `mesh_traffic_minute.latency_sketch` (docs/schema.md). */
export interface SketchJson {
  s: number;
  z: number;
  o: number;
  c: number[];
}

/** One series of a summary: every dimension (absent ones as docs/schema.md sentinels) and its aggregates. */
export interface DecodedSeries {
  dimensions: Record<Dimension, string | number>;
  requests: number;
  errors: number;
  requestBytes: number;
  responseBytes: number;
  latencySumUs: number;
  latencyMinUs: number;
  latencyMaxUs: number;
  sketch: SketchJson;
}

/** A decoded, validated summary; (producerId, seq) identifies it. */
export interface DecodedSummary {
  producerId: string;
  seq: number;
  /** Window [start, end) in Unix milliseconds. */
  windowStartMs: number;
  windowEndMs: number;
  /** FLAG_* bits. */
  flags: number;
  /** Requests in windows the producer dropped (memory budget) since its previous delivered summary. */
  droppedRequests: number;
  droppedWindows: number;
  /** Distinct series keys folded into overflow series this window (approximate). */
  overflowKeys: number;
  /** The dimensions the producer reported, in wire order; the others hold their sentinel. */
  reported: Dimension[];
  series: DecodedSeries[];
  /**
   * Who sent it, as the load ledger records it (collector/identity.ts ledgerIdentity). Never on the wire:
   * the collector sets it at ingest and the spool keeps it; absent = "" (an unbound caller).
   */
  caller?: string;
}

export type DecodeResult = { ok: true; summary: DecodedSummary } | { ok: false; reason: string; message: string };

/** Reason codes only the Node edge produces (the portable decoder's are in shared/wire.ts). */
export const BAD_UTF8 = "bad_utf8";
export const BAD_DIMENSION_VALUE = "bad_dimension_value";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const utf8Encoder = new TextEncoder();
const RESPONSE_CODE = DIMENSIONS.indexOf("response_code");
const RESPONSE_CODE_PATTERN = /^(0|[1-9][0-9]{0,2})$/;

/** Value of a dimension the producer did not report (docs/schema.md). */
export function absentValue(d: Dimension): string | number {
  return d === "response_code" ? 0 : "unknown";
}

const ABSENT = DIMENSIONS.map(absentValue);
// Builds a dimensions record as one object literal naming every dimension, so all records share one
// fast shape (a copied or key-by-key built record of 20 properties ends up a slow dictionary in V8).
const dimensionRecord = new Function("v", `return {${DIMENSIONS.map((d, i) => `${JSON.stringify(d)}: v[${i}]`).join(", ")}};`) as (
  values: (string | number)[],
) => Record<Dimension, string | number>;
const recordValues: (string | number)[] = [...ABSENT];

/**
 * The series of a decoded summary in the decoder's flat form (shared/wire.ts SeriesColumns), owned by the
 * summary (or lent to it, decodeSummaryInto; the arrays may then run past its series): series i has dimension values `strings[refs[i * codes.length + j]]` for dimension code
 * `codes[j]`, numbers `numbers[i * SERIES_FIELDS + FIELD_*]`, sketch scale `scales[i]` and non-empty
 * buckets `bucketIndex`/`bucketCount` at [i == 0 ? 0 : bucketEnd[i - 1], bucketEnd[i]).
 */
export interface SummaryColumns {
  strings: string[];
  codes: number[];
  count: number;
  refs: Int32Array;
  numbers: Float64Array;
  scales: Int32Array;
  bucketEnd: Int32Array;
  bucketIndex: Int32Array;
  bucketCount: Float64Array;
  /** Requests over all series. */
  requests: number;
}

const COLUMNS = Symbol("meshlook.columns");
const DECODE_COLUMNS = new SeriesColumns();

/**
 * The flat series of a summary decodeSummary returned, as long as its `series` has not been read or
 * replaced (reading builds the objects, which callers may then change). Consumers that only fold the
 * numbers (the collector's rollup) use this and never pay for the per-series objects.
 */
export function summaryColumns(summary: DecodedSummary): SummaryColumns | undefined {
  return (summary as { [COLUMNS]?: SummaryColumns })[COLUMNS];
}

/**
 * Decodes and validates a wire format v1 summary. Never throws: any input gives either the summary or a
 * machine-readable reason (docs/wire-format.md lists them) with a human message. The summary's `series`
 * objects are built on first access (summaryColumns has the same data without them).
 */
export function decodeSummary(bytes: Uint8Array): DecodeResult {
  return decodeInto(bytes, DECODE_COLUMNS, ownedColumns);
}

/**
 * decodeSummary into columns the caller owns, which the summary then uses as they are instead of a copy
 * of them: its `series` and summaryColumns are valid only until `cols` is decoded into again. For a
 * caller that folds each summary and then drops it (the collector's ingest, which keeps a few columns
 * for the summaries in flight): it pays no copy and no per-summary buffer for the collector to collect.
 */
export function decodeSummaryInto(bytes: Uint8Array, cols: SeriesColumns): DecodeResult {
  return decodeInto(bytes, cols, borrowedColumns);
}

function decodeInto(bytes: Uint8Array, cols: SeriesColumns, columnsOf: (cols: SeriesColumns, strings: string[], codes: number[]) => SummaryColumns): DecodeResult {
  const r = decodeColumns(bytes, cols);
  const w = r.summary;
  if (r.reason !== OK || w === null) return { ok: false, reason: reasonName(r.reason), message: `${r.message} (byte ${r.offset})` };
  let producerId: string;
  const strings: string[] = new Array(w.strings.length);
  try {
    producerId = utf8.decode(w.producerId);
    for (let i = 0; i < strings.length; i++) strings[i] = utf8.decode(w.strings[i]);
  } catch {
    return { ok: false, reason: BAD_UTF8, message: "producer id or a dimension value is not valid UTF-8" };
  }
  const codes = Array.from(w.dimensions);
  const k = codes.length;
  const m = cols.count;
  const responseCodeAt = codes.indexOf(RESPONSE_CODE);
  if (responseCodeAt >= 0) {
    // each string is checked once: 1 valid, 2 not a response code
    const checked = new Uint8Array(strings.length);
    for (let i = 0; i < m; i++) {
      const ref = cols.refs[i * k + responseCodeAt];
      if (checked[ref] === 0) checked[ref] = RESPONSE_CODE_PATTERN.test(strings[ref]) ? 1 : 2;
      if (checked[ref] === 2) {
        const text = strings[ref];
        return { ok: false, reason: BAD_DIMENSION_VALUE, message: `series ${i}: response_code ${JSON.stringify(text.slice(0, 40))} is not an integer in 0..999` };
      }
    }
  }
  const summary = {
    producerId,
    seq: w.seq,
    windowStartMs: w.windowStartMs,
    windowEndMs: w.windowEndMs,
    flags: w.flags,
    droppedRequests: w.droppedRequests,
    droppedWindows: w.droppedWindows,
    overflowKeys: w.overflowKeys,
    reported: codes.map((c) => DIMENSIONS[c]),
  } as DecodedSummary;
  Object.defineProperty(summary, COLUMNS, { value: columnsOf(cols, strings, codes), configurable: true });
  Object.defineProperty(summary, "series", SERIES_ON_DEMAND);
  return { ok: true, summary };
}

/**
 * `series` of a decoded summary until it is first read or set: then a plain data property, and the
 * columns are dropped (callers may change the objects). One descriptor for every summary, so they all
 * share V8's hidden classes (an accessor made of per-summary closures gives each summary its own, and
 * every reader of a summary turns megamorphic).
 */
const SERIES_ON_DEMAND: PropertyDescriptor = {
  get(this: DecodedSummary) {
    return settleSeries(this, seriesOfColumns(summaryColumns(this)!));
  },
  set(this: DecodedSummary, series: DecodedSeries[]) {
    settleSeries(this, series);
  },
  enumerable: true,
  configurable: true,
};

function settleSeries(summary: DecodedSummary, series: DecodedSeries[]): DecodedSeries[] {
  delete (summary as { [COLUMNS]?: SummaryColumns })[COLUMNS];
  Object.defineProperty(summary, "series", { value: series, writable: true, enumerable: true, configurable: true });
  return series;
}

/**
 * The summary's own copy of the decoder's reused columns, all in one buffer: a summary decodeSummary
 * returns outlives the next decode, and one allocation instead of one per column keeps
 * the garbage collector's share down.
 */
function ownedColumns(cols: SeriesColumns, strings: string[], codes: number[]): SummaryColumns {
  const m = cols.count;
  const buckets = cols.buckets;
  const numberCount = m * SERIES_FIELDS;
  const refCount = m * codes.length;
  const buf = new ArrayBuffer(8 * (numberCount + buckets) + 4 * (refCount + 2 * m + buckets));
  let at = 0;
  const floats = (from: Float64Array, n: number) => {
    const a = new Float64Array(buf, at, n);
    a.set(from.subarray(0, n));
    at += 8 * n;
    return a;
  };
  const ints = (from: Int32Array, n: number) => {
    const a = new Int32Array(buf, at, n);
    a.set(from.subarray(0, n));
    at += 4 * n;
    return a;
  };
  return {
    strings,
    codes,
    count: m,
    numbers: floats(cols.numbers, numberCount),
    bucketCount: floats(cols.bucketCount, buckets),
    refs: ints(cols.refs, refCount),
    scales: ints(cols.scales, m),
    bucketEnd: ints(cols.bucketEnd, m),
    bucketIndex: ints(cols.bucketIndex, buckets),
    requests: cols.requests,
  };
}

/** The decoder's columns themselves as a summary's (decodeSummaryInto): only the first `count` series are its. */
function borrowedColumns(cols: SeriesColumns, strings: string[], codes: number[]): SummaryColumns {
  return {
    strings,
    codes,
    count: cols.count,
    numbers: cols.numbers,
    bucketCount: cols.bucketCount,
    refs: cols.refs,
    scales: cols.scales,
    bucketEnd: cols.bucketEnd,
    bucketIndex: cols.bucketIndex,
    requests: cols.requests,
  };
}

/** Every dimension of series i (absent ones as their sentinel; response_code a number). */
export function dimensionsOf(cols: SummaryColumns, i: number): Record<Dimension, string | number> {
  const values = recordValues;
  for (let d = 0; d < values.length; d++) values[d] = ABSENT[d];
  const k = cols.codes.length;
  for (let j = 0; j < k; j++) {
    const code = cols.codes[j];
    const text = cols.strings[cols.refs[i * k + j]];
    values[code] = code === RESPONSE_CODE ? Number(text) : text;
  }
  return dimensionRecord(values);
}

/** The sketch JSON of series i, dense: every bucket from the lowest to the highest non-empty one. */
export function sketchJsonOf(cols: SummaryColumns, i: number): SketchJson {
  const from = i === 0 ? 0 : cols.bucketEnd[i - 1];
  const to = cols.bucketEnd[i];
  const s = cols.scales[i];
  const z = cols.numbers[i * SERIES_FIELDS + FIELD_ZERO];
  if (to === from) return { s, z, o: 0, c: [] };
  const lo = cols.bucketIndex[from];
  const c: number[] = new Array(cols.bucketIndex[to - 1] - lo + 1).fill(0);
  for (let b = from; b < to; b++) c[cols.bucketIndex[b] - lo] = cols.bucketCount[b];
  return { s, z, o: lo, c };
}

/**
 * The sketch of series i in the stored form (docs/schema.md): one entry per non-empty bucket and one per
 * run of empty ones, so its size follows the bytes that encoded it, not the span it covers. The collector
 * keeps and loads sketches in this form; sketchJsonOf's dense form is for callers that index buckets.
 */
export function storedSketchOf(cols: SummaryColumns, i: number): SketchJson {
  const from = i === 0 ? 0 : cols.bucketEnd[i - 1];
  const to = cols.bucketEnd[i];
  const index = cols.bucketIndex;
  const c: number[] = [];
  for (let b = from; b < to; b++) {
    if (b > from && index[b] > index[b - 1] + 1) c.push(index[b - 1] + 1 - index[b]);
    c.push(cols.bucketCount[b]);
  }
  return { s: cols.scales[i], z: cols.numbers[i * SERIES_FIELDS + FIELD_ZERO], o: to > from ? index[from] : 0, c };
}

/** Series i of `cols` as the object DecodedSummary.series holds (its sketch in the form `sketchOf` gives). */
export function seriesAt(cols: SummaryColumns, i: number, sketchOf: (cols: SummaryColumns, i: number) => SketchJson = sketchJsonOf): DecodedSeries {
  const n = cols.numbers;
  const at = i * SERIES_FIELDS;
  return {
    dimensions: dimensionsOf(cols, i),
    requests: n[at + FIELD_REQUESTS],
    errors: n[at + FIELD_ERRORS],
    requestBytes: n[at + FIELD_REQUEST_BYTES],
    responseBytes: n[at + FIELD_RESPONSE_BYTES],
    latencySumUs: n[at + FIELD_LATENCY_SUM],
    latencyMinUs: n[at + FIELD_LATENCY_MIN],
    latencyMaxUs: n[at + FIELD_LATENCY_MAX],
    sketch: sketchOf(cols, i),
  };
}

function seriesOfColumns(cols: SummaryColumns): DecodedSeries[] {
  const series: DecodedSeries[] = new Array(cols.count);
  for (let i = 0; i < cols.count; i++) series[i] = seriesAt(cols, i);
  return series;
}

/** What encodeSummary needs: a DecodedSummary, with the header counters optional. */
export type SummaryInput = Omit<DecodedSummary, "flags" | "droppedRequests" | "droppedWindows" | "overflowKeys"> &
  Partial<Pick<DecodedSummary, "flags" | "droppedRequests" | "droppedWindows" | "overflowKeys">>;

/**
 * Encodes a summary with the same portable encoder the filter runs (for tests, the simulator and
 * benchmarks): only the `reported` dimensions are written. decodeSummary(encodeSummary(x)) returns x
 * when x is valid (string values valid UTF-8 of at most MAX_STRING_BYTES bytes).
 */
export function encodeSummary(summary: SummaryInput): Uint8Array {
  const codes = summary.reported.map((d) => {
    const c = DIMENSIONS.indexOf(d);
    if (c < 0) throw new Error(`unknown dimension ${JSON.stringify(d)}`);
    return c;
  });
  const enc = new SummaryEncoder(codes);
  enc.begin(
    utf8Encoder.encode(summary.producerId),
    summary.seq,
    summary.windowStartMs,
    summary.windowEndMs,
    summary.flags ?? 0,
    summary.droppedRequests ?? 0,
    summary.droppedWindows ?? 0,
    summary.overflowKeys ?? 0,
  );
  for (const s of summary.series) {
    const values = summary.reported.map((d) => utf8Encoder.encode(String(s.dimensions[d])));
    enc.addSeries(values, statsOf(s));
  }
  return enc.finish();
}

/** A series from its dimensions (absent ones get their sentinel) and an aggregate, e.g. to encode it. */
export function seriesOf(dimensions: Partial<Record<Dimension, string | number>>, stats: SeriesStats): DecodedSeries {
  const all = {} as Record<Dimension, string | number>;
  for (const d of DIMENSIONS) all[d] = dimensions[d] ?? absentValue(d);
  return {
    dimensions: all,
    requests: stats.requests,
    errors: stats.errors,
    requestBytes: stats.requestBytes,
    responseBytes: stats.responseBytes,
    latencySumUs: stats.latencySumUs,
    latencyMinUs: stats.latencyMinUs,
    latencyMaxUs: stats.latencyMaxUs,
    sketch: sketchToJson(stats.sketch),
  };
}

/** The portable aggregate holding a decoded series' numbers. */
export function statsOf(s: Omit<DecodedSeries, "dimensions">): SeriesStats {
  const stats = new SeriesStats(s.sketch.s);
  stats.requests = s.requests;
  stats.errors = s.errors;
  stats.requestBytes = s.requestBytes;
  stats.responseBytes = s.responseBytes;
  stats.latencySumUs = s.latencySumUs;
  stats.latencyMinUs = s.latencyMinUs;
  stats.latencyMaxUs = s.latencyMaxUs;
  stats.sketch = sketchFromJson(s.sketch);
  return stats;
}

/** The JSON form of a sketch, dense: buckets from the lowest to the highest non-empty one. */
export function sketchToJson(sk: Sketch): SketchJson {
  if (sk.lo > sk.hi) return { s: sk.scale, z: sk.zeroCount, o: 0, c: [] };
  const c: number[] = new Array(sk.hi - sk.lo + 1);
  for (let i = 0; i < c.length; i++) c[i] = sk.bucket(sk.lo + i);
  return { s: sk.scale, z: sk.zeroCount, o: sk.lo, c };
}

/** A sketch from its JSON form (dense or stored, docs/schema.md); throws on a malformed one (wrong types, scale out of range, negative counts). */
export function sketchFromJson(j: SketchJson): Sketch {
  const whole = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  if (!Number.isInteger(j.s) || j.s < MIN_SCALE || j.s > MAX_SCALE) throw new Error(`sketch scale ${j.s} outside [${MIN_SCALE}, ${MAX_SCALE}]`);
  if (!whole(j.z) || !Number.isSafeInteger(j.o) || !Array.isArray(j.c) || !j.c.every(Number.isSafeInteger)) throw new Error("malformed sketch JSON");
  let end = j.o;
  for (const n of j.c) end += n < 0 ? -n : 1;
  if (j.c.length > 0 && (j.o < -1 || end - 1 > maxBucketIndex(j.s))) {
    throw new Error(`sketch buckets ${j.o}..${end - 1} outside the latency range of scale ${j.s}`);
  }
  const sk = new Sketch(j.s);
  sk.addZero(j.z);
  // Sized up front: growing bucket by bucket would downscale a sketch wider than MAX_SPAN.
  if (j.c.length > 0) sk.adopt(new Float64Array(end - j.o), j.o, end - 1);
  let at = j.o;
  for (const n of j.c) {
    if (n < 0) at -= n;
    else {
      if (n > 0) sk.addToBucket(at, n);
      at++;
    }
  }
  return sk;
}
