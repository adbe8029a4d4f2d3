// Node edge of the shared core: loads AssemblyScript's portable runtime, then exposes the wire codec
// and the sketch with JavaScript strings and JSON sketches. The collector, the simulator, tests and
// benchmarks import this module, never the portable files directly (they need the runtime loaded first).
import "assemblyscript/std/portable/index";
import { DIMENSIONS, type Dimension } from "./schema.ts";
import { SeriesStats } from "./series";
import { MAX_SCALE, MIN_SCALE, Sketch, maxBucketIndex } from "./sketch";
import { DIMENSION_COUNT, OK, SummaryEncoder, decodeWire, reasonName } from "./wire";

export { CONTENT_TYPE, FLAG_FINAL, FLAG_OVERFLOW, MAX_STRING_BYTES, REASON_COUNT, WIRE_VERSION, decodeWire, reasonName } from "./wire";
export { crc32, toValidUtf8 } from "./bytes";
export { Sketch, SeriesStats };
export { bucketIndex, bucketMidpoint, DEFAULT_SCALE, MAX_SCALE, MIN_SCALE, MAX_VALUE_US } from "./sketch";

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

/**
 * Decodes and validates a wire format v1 summary. Never throws: any input gives either the summary or a
 * machine-readable reason (docs/wire-format.md lists them) with a human message.
 */
export function decodeSummary(bytes: Uint8Array): DecodeResult {
  const r = decodeWire(bytes);
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
  const reported = codes.map((c) => DIMENSIONS[c]);
  const template = {} as Record<Dimension, string | number>;
  for (const d of DIMENSIONS) template[d] = absentValue(d);
  const responseCodeAt = codes.indexOf(RESPONSE_CODE);
  const series: DecodedSeries[] = new Array(w.series.length);
  for (let i = 0; i < series.length; i++) {
    const ws = w.series[i];
    const dimensions = { ...template };
    for (let j = 0; j < codes.length; j++) dimensions[reported[j]] = strings[ws.refs[j]];
    if (responseCodeAt >= 0) {
      const text = strings[ws.refs[responseCodeAt]];
      if (!RESPONSE_CODE_PATTERN.test(text)) {
        return { ok: false, reason: BAD_DIMENSION_VALUE, message: `series ${i}: response_code ${JSON.stringify(text.slice(0, 40))} is not an integer in 0..999` };
      }
      dimensions.response_code = Number(text);
    }
    const s = ws.stats;
    series[i] = {
      dimensions,
      requests: s.requests,
      errors: s.errors,
      requestBytes: s.requestBytes,
      responseBytes: s.responseBytes,
      latencySumUs: s.latencySumUs,
      latencyMinUs: s.latencyMinUs,
      latencyMaxUs: s.latencyMaxUs,
      sketch: sketchToJson(s.sketch),
    };
  }
  return {
    ok: true,
    summary: {
      producerId,
      seq: w.seq,
      windowStartMs: w.windowStartMs,
      windowEndMs: w.windowEndMs,
      flags: w.flags,
      droppedRequests: w.droppedRequests,
      droppedWindows: w.droppedWindows,
      overflowKeys: w.overflowKeys,
      reported,
      series,
    },
  };
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

/** The JSON form of a sketch: buckets from the lowest to the highest non-empty one. */
export function sketchToJson(sk: Sketch): SketchJson {
  if (sk.lo > sk.hi) return { s: sk.scale, z: sk.zeroCount, o: 0, c: [] };
  const from = sk.lo - sk.offset;
  const c: number[] = new Array(sk.hi - sk.lo + 1);
  for (let i = 0; i < c.length; i++) c[i] = sk.counts[from + i];
  return { s: sk.scale, z: sk.zeroCount, o: sk.lo, c };
}

/** A sketch from its JSON form; throws on a malformed one (wrong types, scale out of range, negative counts). */
export function sketchFromJson(j: SketchJson): Sketch {
  const whole = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  if (!Number.isInteger(j.s) || j.s < MIN_SCALE || j.s > MAX_SCALE) throw new Error(`sketch scale ${j.s} outside [${MIN_SCALE}, ${MAX_SCALE}]`);
  if (!whole(j.z) || !Number.isSafeInteger(j.o) || !Array.isArray(j.c) || !j.c.every(whole)) throw new Error("malformed sketch JSON");
  if (j.c.length > 0 && (j.o < -1 || j.o + j.c.length - 1 > maxBucketIndex(j.s))) {
    throw new Error(`sketch buckets ${j.o}..${j.o + j.c.length - 1} outside the latency range of scale ${j.s}`);
  }
  const sk = new Sketch(j.s);
  sk.addZero(j.z);
  if (j.c.length > 0) sk.adopt(new Float64Array(j.c.length), j.o, j.o + j.c.length - 1);
  for (let b = 0; b < j.c.length; b++) if (j.c[b] !== 0) sk.addToBucket(j.o + b, j.c[b]);
  return sk;
}
