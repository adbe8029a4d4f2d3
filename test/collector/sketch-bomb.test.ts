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
import { encode, series, summary } from "./helpers.ts";

// The documented worst cases (docs/security.md, "Sketch expansion"), per byte of summary body.
const ROLLUP_BYTES_PER_INPUT_BYTE = 32;
const STORED_SKETCH_BYTES_PER_INPUT_BYTE = 12;

const dir = mkdtempSync(join(tmpdir(), "meshlook-bomb-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Bucket i at scale 8 holds (2^(i/256), 2^((i+1)/256)]; from i = 5120 on a bucket is wider than 1 µs,
// so the floor of its upper bound lies in it.
const inBucket = (i: number) => Math.floor(2 ** ((i + 1) / 256));

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

      const path = join(dir, `${shape.replace(" ", "-")}.duckdb`);
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
});
