// Wire format v1 against its document (an independent writer, wire-builder.ts), the golden vectors,
// the codec compiled into wasm, and a stream of mutated inputs.
import { readdirSync, readFileSync } from "node:fs";
import { crc32 as zlibCrc32 } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import {
  FIELD_LATENCY_MAX,
  FLAG_FINAL,
  MAX_STRING_BYTES,
  REASON_COUNT,
  SERIES_FIELDS,
  SeriesColumns,
  SeriesStats,
  bucketIndex,
  crc32,
  decodeSummary,
  decodeSummaryInto,
  dimensionsOf,
  sketchJsonOf,
  summaryColumns,
  decodeWire,
  encodeSummary,
  reasonName,
  seriesOf,
  toValidUtf8,
  type DecodedSummary,
} from "../../shared/node.ts";
import { DIMENSIONS, type Dimension } from "../../shared/schema.ts";
import { goldenVectors } from "../fixtures/wire/vectors.ts";
import { loadWasmCodec, type WasmCodec } from "./codec-wasm.ts";
import { lognormal, mulberry32 } from "./random.ts";
import { body, frame, mutated, sketchBuckets, validRaw, varint } from "./wire-builder.ts";

const dir = new URL("../fixtures/wire/", import.meta.url);
const read = (name: string) => new Uint8Array(readFileSync(new URL(name, dir)));
const valid = readdirSync(dir)
  .filter((f) => f.endsWith(".bin"))
  .map((f) => f.slice(0, -4));
const rejects = readdirSync(new URL("reject/", dir)).map((f) => f.slice(0, -4));
const NODE_EDGE_REASONS = ["bad_utf8", "bad_dimension_value"];

let wasm: WasmCodec;
beforeAll(() => {
  wasm = loadWasmCodec();
});

describe("golden vectors", () => {
  it("are current: regenerating them gives the checked-in bytes", () => {
    const fresh = goldenVectors();
    expect(Object.keys(fresh).sort()).toEqual([...valid, ...rejects.map((r) => `reject/${r}`)].sort());
    for (const [name, bytes] of Object.entries(fresh)) expect(Buffer.from(bytes).equals(read(`${name}.bin`)), name).toBe(true);
  });

  for (const name of valid) {
    it(`${name}: Node decodes to the JSON, Node and wasm encoders reproduce the bytes`, () => {
      const bytes = read(`${name}.bin`);
      const json = JSON.parse(readFileSync(new URL(`${name}.json`, dir), "utf8")) as DecodedSummary;
      const decoded = decodeSummary(bytes);
      expect(decoded).toEqual({ ok: true, summary: json });
      expect(Buffer.from(encodeSummary(json)).equals(Buffer.from(bytes))).toBe(true);
      const again = wasm.reencode(bytes);
      expect(again instanceof Uint8Array && Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
    });
  }

  it("minimal.bin, written from docs/wire-format.md by hand, holds the values it was written with", () => {
    const r = decodeSummary(read("minimal.bin"));
    if (!r.ok) expect.fail(r.reason);
    const { series, ...header } = r.summary;
    expect(header).toEqual({
      producerId: "sidecar-a/1764000000000000000",
      seq: 3,
      windowStartMs: 1764000000000,
      windowEndMs: 1764000010000,
      flags: 0,
      droppedRequests: 0,
      droppedWindows: 0,
      overflowKeys: 0,
      reported: ["reporter", "response_code"],
    });
    expect(series).toHaveLength(1);
    const { dimensions, ...numbers } = series[0];
    expect(dimensions.reporter).toBe("destination");
    expect(dimensions.response_code).toBe(200);
    expect(dimensions.source_workload).toBe("unknown");
    expect(numbers).toEqual({
      requests: 3,
      errors: 1,
      requestBytes: 900,
      responseBytes: 4000,
      latencySumUs: 2000,
      latencyMinUs: 0,
      latencyMaxUs: 1000,
      sketch: { s: 6, z: 1, o: 637, c: [2] },
    });
  });

  for (const reason of rejects) {
    it(`reject/${reason}.bin is refused with ${reason} (Node${NODE_EDGE_REASONS.includes(reason) ? "" : " and wasm"})`, () => {
      const bytes = read(`reject/${reason}.bin`);
      const r = decodeSummary(bytes);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.reason).toBe(reason);
        expect(r.message.length).toBeGreaterThan(5);
      }
      expect(reasonName(wasm.decodeReason(bytes))).toBe(NODE_EDGE_REASONS.includes(reason) ? "ok" : reason);
    });
  }

  it("covers every reason the decoder knows", () => {
    const all = Array.from({ length: REASON_COUNT - 1 }, (_, i) => reasonName(i + 1));
    expect([...rejects].sort()).toEqual([...all, ...NODE_EDGE_REASONS].sort());
  });
});

function randomSummary(rnd: () => number): DecodedSummary {
  const reported = DIMENSIONS.filter(() => rnd() < 0.6);
  const pool = ["", "a", "ünï", "spiffe://cluster.local/ns/x/sa/y", "𝄞 music", "x".repeat(300)];
  const series = Array.from({ length: Math.floor(rnd() * 8) }, () => {
    const stats = new SeriesStats(Math.floor(rnd() * 9));
    const n = 1 + Math.floor(rnd() * 60);
    for (let i = 0; i < n; i++) stats.record(rnd() < 0.05 ? 0 : lognormal(rnd, 3 + rnd() * 10, rnd() * 2), rnd() * 1e6, rnd() * 1e9, rnd() < 0.2);
    const dimensions: Partial<Record<Dimension, string | number>> = {};
    for (const d of reported) dimensions[d] = d === "response_code" ? Math.floor(rnd() * 600) : pool[Math.floor(rnd() * pool.length)];
    return seriesOf(dimensions, stats);
  });
  return {
    producerId: `p${Math.floor(rnd() * 1e9)}`,
    seq: Math.floor(rnd() * 2 ** 53),
    windowStartMs: Math.floor(rnd() * 2 ** 45),
    windowEndMs: 0,
    flags: Math.floor(rnd() * 4),
    droppedRequests: Math.floor(rnd() * 1e6),
    droppedWindows: Math.floor(rnd() * 5),
    overflowKeys: Math.floor(rnd() * 1e5),
    reported,
    series,
  };
}

describe("codec", () => {
  it("round-trips random summaries exactly, in Node and through wasm", () => {
    const rnd = mulberry32(99);
    for (let i = 0; i < 300; i++) {
      const s = randomSummary(rnd);
      s.windowEndMs = s.windowStartMs + Math.floor(rnd() * 60_000);
      const bytes = encodeSummary(s);
      expect(decodeSummary(bytes)).toEqual({ ok: true, summary: s });
      const again = wasm.reencode(bytes);
      expect(again instanceof Uint8Array && Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
    }
  });

  it("admits the widest sketches the filter sends, many to a summary, at its default and finest scales", () => {
    // Two values as far apart as a filter sketch keeps them (it downscales beyond MAX_SPAN buckets), in
    // series with one short dimension: the most buckets spanned per byte an honest summary carries.
    for (const scale of [6, 8]) {
      for (const highest of [55_108, 65_358, 2 ** 40 - 1]) {
        const series = Array.from({ length: 1000 }, (_, k) => {
          const stats = new SeriesStats(scale);
          stats.record(1, 0, 0, false);
          stats.record(highest, 0, 0, false);
          return seriesOf({ destination_service: String(k) }, stats);
        });
        const body = encodeSummary({ producerId: "p", seq: 1, windowStartMs: 0, windowEndMs: 10_000, reported: ["destination_service"], series });
        const r = decodeSummary(body);
        expect(r.ok ? "ok" : `${r.reason}: ${r.message}`, `scale ${scale}, values 1 and ${highest}`).toBe("ok");
        if (scale === 8 && highest === 65_358) {
          // the widest span a filter sketch keeps, 4096 buckets (MAX_SPAN) in series of 21 bytes: 195 per byte
          const { s, o, c } = series[0].sketch;
          expect({ s, o, width: c.length }).toEqual({ s: 8, o: -1, width: 4096 });
        }
      }
    }
  });

  it("stores a repeated value once and an unchanged one not at all", () => {
    const base = decodeSummary(read("mesh.bin"));
    if (!base.ok) expect.fail(base.reason);
    const one = encodeSummary({ ...base.summary, series: base.summary.series.slice(0, 1) }).length;
    const twice = encodeSummary({ ...base.summary, series: [base.summary.series[0], base.summary.series[0]] }).length;
    const sketchAndCounters = one - encodeSummary({ ...base.summary, series: [] }).length;
    // the second copy costs a 3-byte empty mask plus counters and sketch, no dimension refs
    expect(twice - one).toBeLessThan(sketchAndCounters - 20);
  });

  it("repairs invalid UTF-8 and over-long values so the collector accepts them", () => {
    const rnd = mulberry32(5);
    const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    for (let i = 0; i < 2000; i++) {
      const raw = Uint8Array.from({ length: Math.floor(rnd() * 40) }, () => (rnd() < 0.5 ? Math.floor(rnd() * 256) : 0x80 + Math.floor(rnd() * 64)));
      const max = 1 + Math.floor(rnd() * 50);
      const fixed = toValidUtf8(raw, max);
      expect(fixed.length).toBeLessThanOrEqual(Math.max(max, 0));
      expect(() => strict.decode(fixed)).not.toThrow();
    }
    const text = new TextEncoder().encode("ok ü 𝄞 €");
    expect(toValidUtf8(text, 100)).toBe(text);
    expect(new TextDecoder().decode(toValidUtf8(text, 6))).toBe("ok ü ");
    expect(new TextDecoder().decode(toValidUtf8(Uint8Array.from([0x61, 0xc0, 0xaf, 0x62]), 100))).toBe("a\ufffd\ufffdb");
    const long = "é".repeat(MAX_STRING_BYTES);
    const r = decodeSummary(encodeSummary({ ...decodedMinimal(), series: decodedMinimal().series.map((s) => ({ ...s, dimensions: { ...s.dimensions, reporter: long } })) }));
    expect(r.ok && r.summary.series[0].dimensions.reporter).toBe("é".repeat(MAX_STRING_BYTES / 2));
  });

  it("accepts counters up to 2^53 - 1 and refuses larger, overlong or 9-byte varints", () => {
    const max = 2 ** 53 - 1;
    const big = frame(body({ ...validRaw(), seq: max }));
    expect(decodeSummary(big).ok && (decodeSummary(big) as { summary: DecodedSummary }).summary.seq).toBe(max);
    for (const seqBytes of [varint(2n ** 53n), [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], [0x80, 0x80, 0x00]]) {
      const b = body(validRaw());
      const r = decodeSummary(frame([...b.slice(0, 30), ...seqBytes, ...b.slice(31)]));
      expect(r.ok ? "ok" : r.reason).toBe("bad_varint");
    }
  });

  it("reads gaps of 7 and more and falling counts as the document says", () => {
    const raw = validRaw();
    raw.series[0] = { ...raw.series[0], requests: 9, zero: 0, min: 10, max: 5000, sum: 9 * 1000 };
    const buckets: Array<[number, number]> = [
      [bucketIndex(10, 6), 5],
      [bucketIndex(12, 6), 1],
      [bucketIndex(5000, 6), 3],
    ];
    raw.series[0].buckets = sketchBuckets(buckets);
    const r = decodeSummary(frame(body(raw)));
    if (!r.ok) expect.fail(`${r.reason}: ${r.message}`);
    const sk = r.summary.series[0].sketch;
    expect(sk.o).toBe(buckets[0][0]);
    for (const [index, count] of buckets) expect(sk.c[index - sk.o]).toBe(count);
    expect(sk.c.reduce((a, b) => a + b, 0)).toBe(9);
  });

  it("decodes Rice escapes for large gaps and count changes, and refuses malformed bit streams", () => {
    const raw = validRaw();
    const big = 5_000_000;
    raw.series[0] = { ...raw.series[0], requests: big + 2, zero: 0, min: 1, max: 1_000_000, sum: 2 + big * 1000 + 1_000_000 };
    const buckets: Array<[number, number]> = [
      [-1, 1],
      [bucketIndex(1000, 6), big],
      [bucketIndex(1_000_000, 6), 1],
    ];
    raw.series[0].buckets = sketchBuckets(buckets, { kGap: 0, kCount: 0 }); // every gap and change escapes
    const r = decodeSummary(frame(body(raw)));
    if (!r.ok) expect.fail(`${r.reason}: ${r.message}`);
    const sk = r.summary.series[0].sketch;
    for (const [index, count] of buckets) expect(sk.c[index - sk.o]).toBe(count);
    // the encoder refits the parameters: same sketch, fewer bytes
    expect(encodeSummary(r.summary).length).toBeLessThan(frame(body(raw)).length);

    const bitsToBytes = (bits: string) => Array.from({ length: Math.ceil(bits.length / 8) }, (_, i) => parseInt(bits.slice(8 * i, 8 * i + 8).padEnd(8, "0"), 2));
    const one = validRaw();
    one.series[0] = { ...one.series[0], requests: 2, zero: 0, min: 1000, max: 1000, sum: 2000 };
    const section = (bits: string) => [...varint(1), ...varint(2 * 637), 0x00, ...bitsToBytes(bits)];
    const reason = (bits: string) => {
      one.series[0].buckets = section(bits);
      const d = decodeSummary(frame(body(one)));
      return d.ok ? "ok" : d.reason;
    };
    expect(reason("0" + "11110")).toBe("ok"); // gap 0, change +2 (zigzag 4)
    expect(reason("0" + "11110" + "1")).toBe("bad_sketch"); // non-zero padding
    expect(reason("0" + "1".repeat(24) + "000011" + "100")).toBe("bad_sketch"); // escape for the small value 4
    expect(reason("0" + "1".repeat(24) + "111111")).toBe("bad_sketch"); // escaped length 63
    expect(reason("0" + "1".repeat(23))).toBe("truncated"); // ends inside the unary part
  });

  it("reads every pair of Rice parameters at every bit offset, for entries either side of a 4-byte window and at the input's end", () => {
    // Entries whose gap and count change take 20 to 30 bits together, either side of what the decoder's
    // one-window read takes (24); escapes and the last 14 bytes take its other paths. The expected buckets are the ones the
    // independent writer encoded, never a decode.
    const rnd = mulberry32(2024);
    const scale = 8;
    const lowest = bucketIndex(1000, scale); // from here on every bucket holds an integer latency
    const highest = lowest + 4000;
    const valueIn = (index: number) => {
      let [a, b] = [1, 2 ** 40 - 1];
      while (a < b) {
        const m = Math.floor((a + b) / 2);
        if (bucketIndex(m, scale) < index) a = m + 1;
        else b = m;
      }
      return a;
    };
    // a value whose Rice code with parameter k has a unary part of q (an escape from q = 24 on)
    const riceValue = (q: number, k: number) => q * 2 ** k + Math.floor(rnd() * 2 ** k);
    const riceBits = (v: number, k: number) => (v < 24 * 2 ** k ? Math.floor(v / 2 ** k) + 1 + k : 30 + v.toString(2).length);
    const pairs = { within: 0, beyond: 0 }; // entries that fit a 4-byte window past any bit offset, and the others
    for (let kGap = 0; kGap < 16; kGap++) {
      for (let kCount = 0; kCount < 16; kCount++) {
        const buckets: Array<[number, number]> = [];
        let index = lowest + Math.floor(rnd() * 50);
        let count = 1 + Math.floor(rnd() * 1000);
        buckets.push([index, count]);
        for (let e = 0; e < 60; e++) {
          const pairBits = 20 + Math.floor(rnd() * 11);
          const gapBits = 1 + kGap + Math.floor(rnd() * Math.max(1, pairBits - kGap - kCount - 1));
          let gap = riceValue(Math.max(0, gapBits - 1 - kGap), kGap);
          if (rnd() < 0.05) gap = riceValue(24 + Math.floor(rnd() * 4), kGap);
          if (index + gap + 1 > highest) gap = Math.floor(rnd() * Math.min(2 ** kGap, highest - index));
          if (index + 1 > highest) break;
          let zz = riceValue(Math.max(0, pairBits - gapBits - 1 - kCount), kCount);
          if (rnd() < 0.05) zz = riceValue(24 + Math.floor(rnd() * 4), kCount);
          let change = zz % 2 === 0 ? zz / 2 : -(zz + 1) / 2;
          if (count + change < 1) change = -change;
          index += gap + 1;
          count += change;
          buckets.push([index, count]);
          if (riceBits(gap, kGap) + riceBits(change < 0 ? -2 * change - 1 : 2 * change, kCount) <= 24) pairs.within++;
          else pairs.beyond++;
        }
        const requests = buckets.reduce((n, [, c]) => n + c, 0);
        const [min, max] = [valueIn(buckets[0][0]), valueIn(buckets[buckets.length - 1][0])];
        const raw = validRaw();
        raw.series[0] = { ...raw.series[0], requests, errors: 0, zero: 0, scale, min, max, sum: min * requests, buckets: sketchBuckets(buckets, { kGap, kCount }) };
        const input = frame(body(raw));
        const r = decodeSummary(input);
        if (!r.ok) expect.fail(`kGap ${kGap}, kCount ${kCount}: ${r.reason}: ${r.message}`);
        const sk = r.summary.series[0].sketch;
        expect(sk.c.filter((c) => c > 0).length, `kGap ${kGap}, kCount ${kCount}`).toBe(buckets.length);
        for (const [i, c] of buckets) expect(sk.c[i - sk.o], `kGap ${kGap}, kCount ${kCount}, bucket ${i}`).toBe(c);
        const again = wasm.reencode(input);
        if (!(again instanceof Uint8Array)) expect.fail(`wasm refused kGap ${kGap}, kCount ${kCount}: reason ${again}`);
        const w = decodeSummary(again);
        expect(w.ok && w.summary.series[0].sketch, `wasm, kGap ${kGap}, kCount ${kCount}`).toEqual(sk);
        // every proper prefix is refused, never read past its end
        for (const cut of [1, 2, 3, 5, 9, 14, 15]) {
          const short = body(raw).slice(0, -cut);
          const reason = decodeWire(frame(short)).reason;
          expect(reason, `kGap ${kGap}, kCount ${kCount}, ${cut} bytes short`).not.toBe(0);
          expect(wasm.decodeReason(frame(short))).toBe(reason);
        }
      }
    }
    expect(Math.min(pairs.within, pairs.beyond)).toBeGreaterThan(2000);
  });

  it("never throws on mutated input, and wasm gives the same reason as Node", () => {
    const bases = [read("mesh.bin"), read("edges.bin"), read("minimal.bin")];
    const rnd = mulberry32(1234);
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const base = bases[i % bases.length];
      let input: Uint8Array;
      if (i % 10 === 9) input = base.subarray(0, Math.floor(rnd() * base.length));
      else input = mutated(base, Math.floor(rnd() * base.length), Math.floor(rnd() * 256), rnd() < 0.8);
      const r = decodeSummary(input);
      seen.add(r.ok ? "ok" : r.reason);
      if (i % 8 === 0) expect(wasm.decodeReason(input), `input ${i}`).toBe(decodeWire(input).reason);
    }
    expect(seen.size).toBeGreaterThan(8);
  });

  it("recording and encoding in wasm gives the bytes Node gives (clamping and downscaling included)", () => {
    for (const [n, scale] of [
      [1, 6],
      [5000, 6],
      [5000, 8],
      [300, 0],
    ]) {
      const stats = new SeriesStats(scale);
      let x = -1640531527;
      for (let i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        const latency = (x & 63) === 0 ? 0 : (x >>> 12) * 2 ** (i % 29);
        stats.record(latency, x & 0xffff, x >>> 8, (x & 7) === 0);
      }
      if (scale === 8 && n > 1) expect(stats.sketch.scale).toBeLessThan(8);
      const node = encodeSummary({
        producerId: "recorded",
        seq: 1,
        windowStartMs: 1000,
        windowEndMs: 2000,
        flags: FLAG_FINAL,
        droppedRequests: 0,
        droppedWindows: 0,
        overflowKeys: 0,
        reported: ["reporter", "response_code"],
        series: [seriesOf({ reporter: "source", response_code: 200 }, stats)],
      });
      expect(Buffer.from(wasm.encodeRecorded(n, scale)).equals(Buffer.from(node)), `n=${n} scale=${scale}`).toBe(true);
    }
  });

  it("computes zlib's CRC-32 from any start and over any length, in Node and in wasm", () => {
    // Starts and lengths around the eight-byte steps, over random, all-ones (every table index at its
    // top, the register's sign bit set) and all-zero bytes.
    const rnd = mulberry32(802);
    const inputs = [Uint8Array.from({ length: 80 }, () => Math.floor(rnd() * 256)), new Uint8Array(80).fill(0xff), new Uint8Array(80)];
    for (const bytes of inputs) {
      for (let start = 0; start <= 9; start++) {
        for (let end = start; end <= bytes.length; end++) {
          const expected = zlibCrc32(bytes.subarray(start, end)) | 0;
          expect(crc32(bytes, start, end), `Node [${start}, ${end})`).toBe(expected);
          expect(wasm.crc32(bytes, start, end), `wasm [${start}, ${end})`).toBe(expected);
        }
      }
    }
  });

  it("wasm computes the same bucket indices as Node", () => {
    const rnd = mulberry32(77);
    for (let i = 0; i < 20_000; i++) {
      const v = Math.max(1, Math.floor(2 ** (rnd() * 40)));
      const scale = i % 9;
      if (wasm.bucketIndex(v, scale) !== bucketIndex(v, scale)) expect.fail(`v=${v} scale=${scale}`);
    }
  });
});

function decodedMinimal(): DecodedSummary {
  const r = decodeSummary(read("minimal.bin"));
  if (!r.ok) throw new Error(r.reason);
  return r.summary;
}

describe("decodeSummary's flat columns", () => {
  it("hold the series until they are read; reading or replacing them builds or takes the objects", () => {
    const bytes = read("mesh.bin");
    const expected = (decodeSummary(bytes) as { summary: DecodedSummary }).summary.series;
    const r = decodeSummary(bytes);
    if (!r.ok) throw new Error(r.message);
    const cols = summaryColumns(r.summary)!;
    expect(cols.count).toBe(expected.length);
    expect(cols.requests).toBe(expected.reduce((n, s) => n + s.requests, 0));
    for (let i = 0; i < cols.count; i++) {
      expect(dimensionsOf(cols, i)).toEqual(expected[i].dimensions);
      expect(sketchJsonOf(cols, i)).toEqual(expected[i].sketch);
      expect(cols.numbers[i * SERIES_FIELDS + FIELD_LATENCY_MAX]).toBe(expected[i].latencyMaxUs);
    }
    expect(r.summary.series).toEqual(expected);
    expect(summaryColumns(r.summary)).toBeUndefined();
    const again = decodeSummary(bytes) as { summary: DecodedSummary };
    again.summary.series = [];
    expect(summaryColumns(again.summary)).toBeUndefined();
    expect(again.summary.series).toEqual([]);
  });

  it("decodeSummaryInto lends the caller's columns to the summary, valid until they are decoded into again", () => {
    const mesh = read("mesh.bin");
    const expected = (decodeSummary(mesh) as { summary: DecodedSummary }).summary;
    const cols = new SeriesColumns();
    const r = decodeSummaryInto(mesh, cols);
    if (!r.ok) throw new Error(r.message);
    // The caller's own arrays, no copy: what makes the next decode into them overwrite this summary.
    expect(summaryColumns(r.summary)!.bucketCount).toBe(cols.bucketCount);
    expect(r.summary).toEqual(expected);
    const other = decodeSummaryInto(read("minimal.bin"), new SeriesColumns());
    expect(r.summary.series).toEqual(expected.series); // columns of its own: another decode leaves them be
    expect(other.ok && other.summary.series).toEqual(decodedMinimal().series);
    const bad = decodeSummaryInto(mesh.subarray(0, mesh.length - 1), cols);
    expect(bad.ok || bad.reason).toBe("truncated");
  });
});
