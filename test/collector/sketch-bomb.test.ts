// The sketch "decompression bomb" (docs/security.md): a few bytes of wire format can describe a sketch
// spanning the whole latency range. Memory and warehouse bytes must follow the input bytes, not the span.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { MinuteRollup } from "../../collector/rollup.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { decodeSummary, type DecodedSummary } from "../../collector/summary.ts";
import { meshQuantile } from "../../shared/quantile.ts";
import { dims, encode, series, summary } from "./helpers.ts";

// The documented worst cases by construction (docs/security.md, "Sketch expansion"), per byte of summary
// body. On the wire a bucket entry costs at least 2 bits (a 1-bit gap of 0 and a 1-bit count change of 0),
// and one with a skip before it at least 3. The rollup accounts 8 bytes per entry (MinuteRollup.bytes):
// at most 2 entries per 3 bits, 128/3 ≈ 42.7 bytes per input byte. A stored entry is at most 13 digits
// (a summary carries at most 2^40 requests) and a comma, and a skip at most 6 more characters: 14
// characters per 2 bits, or 21 per 3 — 56 per input byte. (A row's fixed 600 accounted bytes need at
// least about 14 wire bytes: about 43, the rollup's bound either way.)
const ROLLUP_BYTES_PER_INPUT_BYTE = 43;
const STORED_SKETCH_BYTES_PER_INPUT_BYTE = 56;

const dir = mkdtempSync(join(tmpdir(), "meshlook-bomb-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Bucket i at scale 8 holds (2^(i/256), 2^((i+1)/256)]; from i = 5120 on a bucket is wider than 1 µs,
// so the floor of its upper bound lies in it.
const inBucket = (i: number) => Math.floor(2 ** ((i + 1) / 256));

/**
 * One series of `buckets` non-empty scale-8 buckets from index 5120, `step` apart, each holding the same
 * count, as large as the 2^40 requests a summary may carry allow: every entry after the first costs the
 * fewest bits the encoding has (a repeated gap and no change of count), while its stored text is as long
 * as a count gets.
 */
function repeatedCounts(seq: number, buckets: number, step: 1 | 2): DecodedSummary {
  const count = Math.floor(2 ** 40 / buckets);
  const c = Array.from({ length: buckets }, (_, k) => (k > 0 && step === 2 ? [-1, count] : [count])).flat();
  return summary(
    seq,
    60_000,
    [
      {
        dimensions: dims(`r${seq}`),
        requests: count * buckets,
        errors: 0,
        requestBytes: 0,
        responseBytes: 0,
        latencySumUs: Number.MAX_SAFE_INTEGER, // saturated: the real sum is beyond 2^53
        latencyMinUs: inBucket(5120),
        latencyMaxUs: inBucket(5120 + step * (buckets - 1)),
        sketch: { s: 8, z: 0, o: 5120, c },
      },
    ],
    `bomb-${seq}`,
  );
}

// Each shape: the summary of one body, the rows it makes, and the smallest and largest value it holds.
const SHAPES: Record<string, { make: (seq: number) => DecodedSummary; rows: number; lowest: number; highest: number }> = {
  // 101 series, each two values 6,001 buckets apart, two non-empty: about as wide as the decoder's span
  // budget admits (shared/wire.ts SPAN_PER_SERIES_BYTE; the full range, 10,241 buckets, is refused as
  // sketch_too_wide, test/collector/helpers.ts invalidBodies).
  "wide gaps": {
    make: (seq) =>
      summary(
        seq,
        60_000,
        Array.from({ length: 101 }, (_, k) => series(`w${seq}-${k}`, [1, inBucket(5999)], 8)),
        `bomb-${seq}`,
      ),
    rows: 101,
    lowest: 1,
    highest: inBucket(5999),
  },
  // One series whose every bucket over a long run holds one value: the most non-empty buckets per byte.
  contiguous: {
    make: (seq) =>
      summary(
        seq,
        60_000,
        [
          series(
            `c${seq}`,
            Array.from({ length: 4000 }, (_, k) => inBucket(5120 + k)),
            8,
          ),
        ],
        `bomb-${seq}`,
      ),
    rows: 1,
    lowest: inBucket(5120),
    highest: inBucket(5120 + 3999),
  },
  // The worst cases by construction: large repeated counts, adjacent (most stored text per bit) and
  // every other bucket (most rollup entries per bit: a skip and a count per 3 bits).
  "repeated counts, adjacent": { make: (seq) => repeatedCounts(seq, 4000, 1), rows: 1, lowest: inBucket(5120), highest: inBucket(5120 + 3999) },
  // (2,500 buckets two apart reach index 10,118, near the top of the scale-8 range, 10,239.)
  "repeated counts, every other bucket": { make: (seq) => repeatedCounts(seq, 2500, 2), rows: 1, lowest: inBucket(5120), highest: inBucket(5120 + 2 * 2499) },
};

describe("sketch decompression bomb", () => {
  for (const [shape, { make, rows, lowest, highest }] of Object.entries(SHAPES)) {
    it(`keeps the rollup and the stored sketches within the documented factor of input bytes: ${shape}`, async () => {
      const bodies = Array.from({ length: 100 }, (_, seq) => encode(make(seq)));
      const inputBytes = bodies.reduce((n, b) => n + b.length, 0);
      const rss0 = process.memoryUsage().rss;
      const decoded = bodies.map((b) => {
        const d = decodeSummary(b);
        if (!d.ok) throw new Error(`${d.reason}: ${d.message}`);
        return d.summary;
      });
      const rollup = new MinuteRollup();
      for (const s of decoded) rollup.add(s);
      const rss1 = process.memoryUsage().rss;

      const path = join(dir, `${shape.replace(/\W+/g, "-")}.duckdb`);
      const sink = new DuckDBSink(path);
      await sink.open();
      const size0 = statSync(path).size;
      await sink.load(decoded);
      const [stored] = (
        await sink.connection.runAndReadAll("SELECT SUM(LENGTH(latency_sketch))::DOUBLE AS bytes, COUNT(*)::INTEGER AS n FROM mesh_traffic_minute")
      ).getRowObjectsJS() as { bytes: number; n: number }[];
      // The loaded sketches still answer exactly: the extremes of the values sent.
      const sketches = (await sink.connection.runAndReadAll("SELECT latency_sketch FROM mesh_traffic_minute")).getRowObjectsJS().map((r) => String(r.latency_sketch));
      // (Reading decoded.series would build dense per-series sketches; the collector never does.)
      expect(Math.abs(meshQuantile(sketches, 0)! / lowest - 1)).toBeLessThan(0.0014);
      expect(Math.abs(meshQuantile(sketches, 1)! / highest - 1)).toBeLessThan(0.0014);
      await sink.close();
      const size1 = statSync(path).size;

      const rollupFactor = rollup.bytes / inputBytes;
      const storedFactor = stored.bytes / inputBytes;
      console.log(
        `${shape}: ${bodies.length} bodies, ${inputBytes} input bytes, ${stored.n} rows; rollup accounts ${rollup.bytes} bytes ` +
          `(${rollupFactor.toFixed(2)}/input byte); stored sketches ${stored.bytes} bytes (${storedFactor.toFixed(2)}/input byte); ` +
          `DuckDB file ${size0} -> ${size1} bytes (${((size1 - size0) / inputBytes).toFixed(2)}/input byte, block-granular); ` +
          `RSS ${(rss0 / 2 ** 20).toFixed(1)} -> ${(rss1 / 2 ** 20).toFixed(1)} MiB after decode and fold (${((rss1 - rss0) / inputBytes).toFixed(1)}/input byte, noisy)`,
      );
      expect(stored.n).toBe(rows * bodies.length);
      expect(rollupFactor).toBeLessThanOrEqual(ROLLUP_BYTES_PER_INPUT_BYTE);
      expect(storedFactor).toBeLessThanOrEqual(STORED_SKETCH_BYTES_PER_INPUT_BYTE);
    }, 120_000);
  }

  it("keeps rows updated often within the same factor when their counts go dense", () => {
    // Each row gets three bodies: the lowest 3,414 buckets of scale 8, then the highest, then the lowest
    // again, each bucket one value, so every entry takes the fewest bits (a gap of 0, no change of count).
    // From the second on the row spans all 10,241 buckets: it may go dense only once that is no more
    // entries than its stored form could take from the bits it was sent. Checked after every body.
    const width = 3414;
    const region = (seq: number, high: boolean) =>
      summary(
        seq,
        60_000,
        Array.from({ length: 10 }, (_, k) => {
          const [o, min, max] = high ? [10_240 - width, inBucket(10_240 - width), 2 ** 40 - 1] : [-1, 1, inBucket(width - 2)];
          return {
            dimensions: dims(`dense-${Math.floor(seq / 3)}-${k}`),
            requests: width,
            errors: 0,
            requestBytes: 0,
            responseBytes: 0,
            latencySumUs: min * width,
            latencyMinUs: min,
            latencyMaxUs: max,
            sketch: { s: 8, z: 0, o, c: new Array<number>(width).fill(1) },
          };
        }),
        `dense-${seq}`,
      );
    const rollup = new MinuteRollup();
    let inputBytes = 0;
    let worst = 0;
    for (let seq = 0; seq < 30; seq++) {
      const body = encode(region(seq, seq % 3 === 1));
      inputBytes += body.length;
      const d = decodeSummary(body);
      if (!d.ok) throw new Error(`${d.reason}: ${d.message}`);
      rollup.add(d.summary);
      worst = Math.max(worst, rollup.bytes / inputBytes);
    }
    console.log(
      `dense rows: 30 bodies, ${inputBytes} input bytes, ${rollup.size} rows; rollup accounts ${rollup.bytes} bytes, at most ${worst.toFixed(2)}/input byte after a body`,
    );
    expect(rollup.size).toBe(100);
    expect(worst).toBeLessThanOrEqual(ROLLUP_BYTES_PER_INPUT_BYTE);
  });
});
