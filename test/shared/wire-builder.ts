// An independent writer of wire format v1, following docs/wire-format.md field by field (BigInt
// varints, zlib's CRC-32) rather than shared/wire.ts, so tests can check the codec against the document
// and craft every malformed input the decoder must refuse.
import { crc32 } from "node:zlib";

export type Bytes = number[];

export function varint(v: number | bigint): Bytes {
  let x = BigInt(v);
  const out: Bytes = [];
  while (x >= 0x80n) {
    out.push(Number(x & 0x7fn) | 0x80);
    x >>= 7n;
  }
  out.push(Number(x));
  return out;
}

export function zvarint(v: number): Bytes {
  return varint(v < 0 ? -2 * v - 1 : 2 * v);
}

export function bytes(s: string | Uint8Array): Bytes {
  const b = typeof s === "string" ? new TextEncoder().encode(s) : s;
  return [...varint(b.length), ...b];
}

// Rice code of v with parameter k, as a string of bits (docs/wire-format.md, "Sketch").
function rice(v: number, k: number): string {
  const q = Math.floor(v / 2 ** k);
  if (q < 24) return "1".repeat(q) + "0" + (k ? (v % 2 ** k).toString(2).padStart(k, "0") : "");
  const bin = v.toString(2);
  return "1".repeat(24) + bin.length.toString(2).padStart(6, "0") + bin;
}

/**
 * Buckets as (index, count) pairs in increasing index order → bucket count, first index, Rice parameters
 * and the bit stream, per the document. Parameters default to the fewest bits (smallest k on ties).
 */
export function sketchBuckets(buckets: Array<[number, number]>, params?: { kGap: number; kCount: number }): Bytes {
  if (buckets.length === 0) return varint(0);
  const gaps: number[] = [];
  const changes: number[] = [];
  let prevIndex = buckets[0][0] - 1;
  let prevCount = 0;
  for (const [index, count] of buckets) {
    gaps.push(index - prevIndex - 1);
    const d = count - prevCount;
    changes.push(d < 0 ? -2 * d - 1 : 2 * d);
    prevIndex = index;
    prevCount = count;
  }
  const best = (values: number[]) => {
    const costs = Array.from({ length: 16 }, (_, k) => values.reduce((n, v) => n + rice(v, k).length, 0));
    return costs.indexOf(Math.min(...costs));
  };
  const kGap = params?.kGap ?? best(gaps);
  const kCount = params?.kCount ?? best(changes);
  let bits = gaps.map((g, i) => rice(g, kGap) + rice(changes[i], kCount)).join("");
  bits += "0".repeat((8 - (bits.length % 8)) % 8);
  const stream = Array.from({ length: bits.length / 8 }, (_, i) => parseInt(bits.slice(8 * i, 8 * i + 8), 2));
  return [...varint(buckets.length), ...zvarint(buckets[0][0]), kGap | (kCount << 4), ...stream];
}

export interface RawSeries {
  mask: number;
  refs: number[];
  requests: number;
  errors: number;
  requestBytes: number;
  responseBytes: number;
  sum: number;
  min: number;
  max: number;
  scale: number;
  zero: number;
  /** Already-encoded bucket section (bucket count onwards), e.g. from sketchBuckets(). */
  buckets: Bytes;
}

export interface RawSummary {
  producerId: string | Uint8Array;
  seq: number;
  start: number;
  length: number;
  flags: number;
  droppedRequests: number;
  droppedWindows: number;
  overflowKeys: number;
  dims: number[];
  strings: Array<string | Uint8Array>;
  series: RawSeries[];
  /** Appended inside the body after the last series. */
  extra?: Bytes;
}

export function seriesBytes(s: RawSeries): Bytes {
  return [
    ...varint(s.mask),
    ...s.refs.flatMap((r) => varint(r)),
    ...[s.requests, s.errors, s.requestBytes, s.responseBytes, s.sum, s.min, s.max].flatMap((v) => varint(v)),
    ...zvarint(s.scale),
    ...varint(s.zero),
    ...s.buckets,
  ];
}

export function body(s: RawSummary): Bytes {
  return [
    ...bytes(s.producerId),
    ...[s.seq, s.start, s.length, s.flags, s.droppedRequests, s.droppedWindows, s.overflowKeys].flatMap((v) => varint(v)),
    ...varint(s.dims.length),
    ...s.dims.flatMap((d) => varint(d)),
    ...varint(s.strings.length),
    ...s.strings.flatMap((x) => bytes(x)),
    ...varint(s.series.length),
    ...s.series.flatMap(seriesBytes),
    ...(s.extra ?? []),
  ];
}

/** magic, version, body length, body, CRC-32 of all before it. */
export function frame(b: Bytes, opts: { magic?: Bytes; version?: number } = {}): Uint8Array {
  const head = [...(opts.magic ?? [0x4d, 0x4c, 0x53, 0x55]), opts.version ?? 1, ...varint(b.length), ...b];
  const crc = crc32(Uint8Array.from(head));
  return Uint8Array.from([...head, crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24]);
}

/** Recomputes the trailing CRC of a framed summary (so mutated bodies reach the parser). */
export function reseal(b: Uint8Array): Uint8Array {
  const out = b.slice();
  if (out.length < 4) return out;
  const crc = crc32(out.subarray(0, out.length - 4));
  out.set([crc & 0xff, (crc >>> 8) & 0xff, (crc >>> 16) & 0xff, crc >>> 24], out.length - 4);
  return out;
}

/** Sets one byte of a summary, optionally resealing the CRC so the mutation reaches the parser. */
export function mutated(base: Uint8Array, position: number, value: number, resealCrc: boolean): Uint8Array {
  const b = base.slice();
  b[position % b.length] = value & 0xff;
  return resealCrc ? reseal(b) : b;
}

/** A small valid summary: one series of 3 requests (0 µs, 1000 µs twice) keyed by reporter + response_code. */
export function validRaw(): RawSummary {
  return {
    producerId: "sidecar-a/1764000000000000000",
    seq: 3,
    start: 1764000000000,
    length: 10000,
    flags: 0,
    droppedRequests: 0,
    droppedWindows: 0,
    overflowKeys: 0,
    dims: [0, 15],
    strings: ["destination", "200"],
    series: [
      {
        mask: 3,
        refs: [0, 1],
        requests: 3,
        errors: 1,
        requestBytes: 900,
        responseBytes: 4000,
        sum: 2000,
        min: 0,
        max: 1000,
        scale: 6,
        zero: 1,
        buckets: sketchBuckets([[637, 2]]), // bucketIndex(1000, 6) = 637
      },
    ],
  };
}
