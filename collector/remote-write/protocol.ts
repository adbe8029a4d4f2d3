// Prometheus remote-write 1.0 bodies (https://prometheus.io/docs/specs/prw/remote_write_spec/): a
// WriteRequest in protobuf (protobufjs, from remote.proto), compressed with Snappy's block format
// (`snappy`, the napi binding of the reference C++ library: ~50× faster than a JavaScript port on a
// request of 10,000 series), and the mapping of a latency sketch onto a native histogram.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import protobuf from "protobufjs";
import { compressSync, uncompressSync } from "snappy";
import type { Sketch } from "../../shared/node.ts";

const root = protobuf.loadSync(join(import.meta.dirname, "remote.proto"));
const WriteRequest = root.lookupType("prometheus.WriteRequest");
const TimeSeriesType = root.lookupType("prometheus.TimeSeries");
const MetricMetadataType = root.lookupType("prometheus.MetricMetadata");
/** Tags (field number << 3 | wire type 2, length-delimited) of WriteRequest.timeseries and .metadata. */
const TIMESERIES_TAG = (1 << 3) | 2;
const METADATA_TAG = (3 << 3) | 2;

const { version } = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { version: string };

/** Request headers the spec requires of a 1.0 sender (User-Agent: "name & version of the sender"). */
export const REMOTE_WRITE_HEADERS = {
  "content-type": "application/x-protobuf",
  "content-encoding": "snappy",
  "x-prometheus-remote-write-version": "0.1.0",
  "user-agent": `meshlook-collector/${version}`,
} as const;

export interface Label {
  name: string;
  value: string;
}

export interface BucketSpan {
  offset: number;
  length: number;
}

/** prompb.Histogram with integer counts (the fields the exporter writes). */
export interface NativeHistogram {
  countInt: number;
  sum: number;
  schema: number;
  zeroThreshold: number;
  zeroCountInt: number;
  positiveSpans: BucketSpan[];
  positiveDeltas: number[];
  timestamp: number;
}

export interface TimeSeries {
  /** Sorted by name, `__name__` included (the spec requires sorted labels). */
  labels: Label[];
  samples?: { value: number; timestamp: number }[];
  histograms?: NativeHistogram[];
}

export interface MetricMetadata {
  type: "COUNTER" | "HISTOGRAM";
  metricFamilyName: string;
  help: string;
  unit?: string;
}

/** The snappy-compressed protobuf body of one remote-write request. */
export function encodeWriteRequest(timeseries: TimeSeries[], metadata: MetricMetadata[] = []): Buffer {
  const message = WriteRequest.fromObject({ timeseries, metadata });
  return compressSync(Buffer.from(WriteRequest.encode(message).finish()));
}

/**
 * Parts of an encoded TimeSeries. Protobuf concatenates messages by appending their repeated fields, so
 * the encodings of {labels: a}, {labels: b} and {samples: s} laid end to end are the encoding of
 * {labels: a + b, samples: s}: a series' labels, which never change, are encoded once and reused for
 * every request, and each request encodes only the new sample or histogram. (Building every label object
 * for every request cost ~2 ms of CPU per label set, mostly garbage collection.)
 */
export function encodeSeriesPart(part: Omit<TimeSeries, "labels"> & { labels?: Label[] }): Uint8Array {
  return TimeSeriesType.encode(part).finish();
}

/** Builds one request from encoded series, streaming into one protobufjs writer. */
export class WriteRequestWriter {
  private readonly writer = protobuf.Writer.create();
  series = 0;

  /** Adds one TimeSeries, given as the concatenated parts of its encoding. */
  add(parts: readonly Uint8Array[]): void {
    this.writer.uint32(TIMESERIES_TAG).bytes(parts.length === 1 ? parts[0] : Buffer.concat(parts));
    this.series++;
  }

  /** The snappy-compressed body, with the metric metadata (TYPE, HELP, unit) appended. */
  finish(metadata: readonly MetricMetadata[]): Buffer {
    for (const m of metadata) this.writer.uint32(METADATA_TAG).bytes(MetricMetadataType.encode(MetricMetadataType.fromObject(m)).finish());
    return compressSync(Buffer.from(this.writer.finish()));
  }
}

/** The inverse of encodeWriteRequest, for tests and diagnostics. */
export function decodeWriteRequest(body: Uint8Array): { timeseries: TimeSeries[]; metadata: MetricMetadata[] } {
  const message = WriteRequest.decode(uncompressSync(Buffer.from(body)) as Buffer);
  return WriteRequest.toObject(message, { longs: Number, enums: String, defaults: true }) as never;
}

/**
 * A latency sketch as a native histogram with the same buckets: the sketch's scale is the native schema
 * (both are base 2^(2^-scale), 0 <= scale <= 8 fits Prometheus' -4..8), but the two number buckets
 * differently — sketch bucket i holds (base^i, base^(i+1)] (OpenTelemetry's convention, shared/sketch.ts),
 * native bucket j holds (base^(j-1), base^j] — so sketch bucket i is native bucket i + 1. Values are
 * whole microseconds and the sketch's zero count holds exactly the latencies recorded as 0, so the zero
 * bucket's threshold is 0. Empty buckets between non-empty ones start a new span.
 */
export function nativeHistogram(sketch: Sketch, sumUs: number, timestamp: number): NativeHistogram {
  const positiveSpans: BucketSpan[] = [];
  const positiveDeltas: number[] = [];
  let previousCount = 0;
  let spanEnd = 0; // native index just past the last span
  for (let i = sketch.lo; i <= sketch.hi; i++) {
    const c = sketch.bucket(i); // whatever the storage width (a filter-side sketch keeps narrow counts)
    if (c === 0) continue;
    const j = i + 1;
    const last = positiveSpans[positiveSpans.length - 1];
    if (last && j === spanEnd) last.length++;
    else positiveSpans.push({ offset: last ? j - spanEnd : j, length: 1 });
    spanEnd = j + 1;
    positiveDeltas.push(c - previousCount);
    previousCount = c;
  }
  return {
    countInt: sketch.count,
    sum: sumUs,
    schema: sketch.scale,
    zeroThreshold: 0,
    zeroCountInt: sketch.zeroCount,
    positiveSpans,
    positiveDeltas,
    timestamp,
  };
}
