// The latency sketch against exact arithmetic: bucket indices against BigInt powers (the mathematical
// definition base^i < v <= base^(i+1)), quantiles against sorted data, merges against recording the union.
import { describe, expect, it } from "vitest";
import { MAX_VALUE_US, SeriesStats, Sketch, bucketIndex, decodeSummary, sketchFromJson, sketchToJson } from "../../shared/node.ts";
// After node.ts, which loads the portable runtime the encoder needs.
import { SummaryEncoder } from "../../shared/wire.ts";
import { meshQuantile, meshSketchMerge } from "../../shared/quantile.ts";
import { exactQuantile } from "../../sim/traffic/truth.ts";
import { lognormal, mulberry32, pareto } from "./random.ts";

// Exact index of whole v >= 1 at scale s: base^i < v <=> 2^i < v^(2^s), so i = ceil(log2(v^(2^s))) - 1,
// which is bitLength(v^(2^s) - 1) - 1.
function exactIndex(v: number, scale: number): number {
  const p = BigInt(v) ** (1n << BigInt(scale));
  return (p - 1n).toString(2).length - (p === 1n ? 2 : 1);
}

// floor(2^(x / 256)) exactly: the largest integer v with v^256 <= 2^x.
function floorPow2(x: number): number {
  let v = BigInt(Math.floor(2 ** (x / 256)));
  const limit = 1n << BigInt(x);
  while (v ** 256n > limit) v--;
  while ((v + 1n) ** 256n <= limit) v++;
  return Number(v);
}

describe("bucketIndex", () => {
  it("matches the definition on both sides of every scale-8 bucket boundary up to MAX_VALUE_US", () => {
    // bucketIndex is non-decreasing in v, so agreeing with the exact step function on the last integer
    // below and the first above each boundary 2^(x/256) proves agreement on every integer in between.
    let checked = 0;
    for (let x = 0; x < 40 * 256; x++) {
      const below = floorPow2(x);
      for (const v of [below, below + 1]) {
        if (v < 1 || v > MAX_VALUE_US) continue;
        const want = exactIndex(v, 8);
        if (bucketIndex(v, 8) !== want) expect.fail(`v=${v} x=${x}: got ${bucketIndex(v, 8)}, want ${want}`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(15_000);
  });

  it("puts powers of two on the upper edge of their bucket at every scale", () => {
    for (let scale = 0; scale <= 8; scale++) {
      for (let e = 0; e < 40; e++) {
        expect(bucketIndex(2 ** e, scale)).toBe((e << scale) - 1);
        // 1 + 2^-e lies in the first sub-bucket above 2^e once 2^-e < 2^(1/256) - 1.
        if (e >= 9) expect(bucketIndex(2 ** e + 1, scale)).toBe(e << scale);
      }
    }
  });

  it("matches the definition at scales 0..7 on random values of every magnitude", () => {
    const rnd = mulberry32(7);
    for (let n = 0; n < 3000; n++) {
      const v = Math.max(1, Math.floor(2 ** (rnd() * 40)));
      const scale = n % 8;
      expect(bucketIndex(v, scale), `v=${v} scale=${scale}`).toBe(exactIndex(v, scale));
    }
  });
});

describe("Sketch", () => {
  const rnd = mulberry32(42);
  const data = [
    ["lognormal", Array.from({ length: 100_000 }, () => Math.floor(lognormal(rnd, Math.log(20_000), 1.2)))],
    ["pareto", Array.from({ length: 100_000 }, () => Math.floor(pareto(rnd, 500, 1.1)))],
  ] as const;

  for (const [name, values] of data) {
    it(`answers quantiles of a ${name} distribution within (b−1)/(b+1) ≈ 0.5415 % of the exact nearest rank`, () => {
      const sk = new Sketch(6);
      for (const v of values) sk.record(v);
      const sorted = [...values].sort((a, b) => a - b);
      const b = 2 ** (1 / 64);
      for (const q of [0.01, 0.5, 0.55, 0.9, 0.99, 0.999, 1]) {
        const exact = exactQuantile(sorted, q);
        const got = meshQuantile([JSON.stringify(sketchToJson(sk))], q)!;
        expect(Math.abs(got - exact) / exact, `q=${q}`).toBeLessThanOrEqual((b - 1) / (b + 1) + 1e-12);
      }
    });
  }

  it("merges exactly: split data merged equals the whole, also across scales", () => {
    const values = data[0][1];
    const whole = new Sketch(6);
    for (const v of values) whole.record(v);
    const parts = [new Sketch(8), new Sketch(6), new Sketch(7)];
    values.forEach((v, i) => parts[i % 3].record(v));
    const merged = new Sketch(8);
    for (const p of parts) merged.merge(p);
    expect(sketchToJson(merged)).toEqual(sketchToJson(whole));
  });

  it("merges like MESH_QUANTILE's JSON merge (the warehouse's copy of the rule)", () => {
    const rnd = mulberry32(3);
    const sketches = [4, 6, 8, 6].map((scale) => {
      const sk = new Sketch(scale);
      for (let i = 0; i < 500; i++) sk.record(rnd() < 0.02 ? 0 : lognormal(rnd, 8 + scale, 1.5));
      return sk;
    });
    const merged = new Sketch(8);
    for (const sk of sketches) merged.merge(sk);
    expect(meshSketchMerge([sketchToJson(merged)])).toEqual(meshSketchMerge(sketches.map(sketchToJson)));
  });

  it("refuses JSON sketches outside the latency range", () => {
    expect(() => sketchFromJson({ s: 6, z: 0, o: 40 * 64, c: [1] })).toThrow(/outside/);
    expect(() => sketchFromJson({ s: 9, z: 0, o: 0, c: [1] })).toThrow(/scale/);
    expect(() => sketchFromJson({ s: 6, z: -1, o: 0, c: [1] })).toThrow(/malformed/);
  });

  it("counts zero and sanitises NaN, negatives and huge values", () => {
    const sk = new Sketch(6);
    for (const v of [0, 0.7, -5, Number.NaN, 1e300, 1]) sk.record(v);
    expect(sk.zeroCount).toBe(4);
    expect(sk.count).toBe(6);
    expect(sketchToJson(sk)).toEqual({ s: 6, z: 4, o: -1, c: [1, ...new Array(40 * 64 - 1).fill(0), 1] });
    expect(meshQuantile([sketchToJson(sk)], 0.5)).toBe(0);
  });

  it("downscales when a window spans more than MAX_SPAN buckets, keeping every value", () => {
    const sk = new Sketch(8);
    sk.record(1);
    sk.record(MAX_VALUE_US);
    expect(sk.scale).toBe(6);
    const direct = new Sketch(6);
    direct.record(1);
    direct.record(MAX_VALUE_US);
    expect(sketchToJson(sk)).toEqual(sketchToJson(direct));
    sk.reset();
    expect(sk.scale).toBe(8);
    sk.record(1000);
    expect(sketchToJson(sk)).toEqual({ s: 8, z: 0, o: bucketIndex(1000, 8), c: [1] });
  });

  it("grows its window in both directions without losing counts", () => {
    const sk = new Sketch(6);
    const values = [5000, 4000, 100000, 3, 7, 2_000_000, 5000];
    for (const v of values) sk.record(v);
    const json = sketchToJson(sk);
    expect(json.c.reduce((a, b) => a + b, 0)).toBe(values.length);
    for (const v of values) expect(json.c[bucketIndex(v, 6) - json.o]).toBeGreaterThan(0);
    expect(sketchToJson(sketchFromJson(json))).toEqual(json);
  });
});

describe("compact Sketch (the filter's narrow counts)", () => {
  // Every step is checked against an f64 sketch given the same input: the narrow storage must be
  // invisible in what the sketch answers.
  const same = (compact: Sketch, wide: Sketch) => expect(sketchToJson(compact)).toEqual(sketchToJson(wide));

  it("widens a count past 255, 65,535 and 2^32 − 1 without losing any", () => {
    const compact = new Sketch(6, true);
    const wide = new Sketch(6);
    const both = (f: (sk: Sketch) => void) => {
      f(compact);
      f(wide);
      same(compact, wide);
    };
    both((sk) => [3000, 3000, 5, 90_000].forEach((v) => sk.record(v)));
    both((sk) => {
      for (let i = 0; i < 300; i++) sk.record(3000);
    });
    both((sk) => sk.addToBucket(bucketIndex(5, 6), 70_000));
    both((sk) => sk.addToBucket(bucketIndex(90_000, 6), 2 ** 32));
    both((sk) => sk.addToBucket(bucketIndex(3000, 6), 2 ** 40));
    expect(compact.bucket(bucketIndex(3000, 6))).toBe(2 ** 40 + 302);
    expect(compact.count).toBe(wide.count);
  });

  it("grows, downscales, resets and merges like the f64 sketch", () => {
    const rnd = mulberry32(11);
    for (const scale of [6, 8]) {
      const compact = new Sketch(scale, true);
      const wide = new Sketch(scale);
      for (let window = 0; window < 3; window++) {
        for (let i = 0; i < 5000; i++) {
          const v = rnd() < 0.001 ? MAX_VALUE_US : rnd() < 0.01 ? 1 : lognormal(rnd, 8 + window, 1.5);
          compact.record(v);
          wide.record(v);
        }
        same(compact, wide);
        const into = new Sketch(8);
        into.merge(compact);
        expect(sketchToJson(into)).toEqual(sketchToJson(wide));
        const compactInto = new Sketch(8, true);
        compactInto.merge(wide);
        same(compactInto, wide);
        compact.reset();
        wide.reset();
        same(compact, wide);
      }
    }
  });

  it("holds each width's largest count exactly and widens on the next one, neighbours intact", () => {
    for (const max of [255, 65535, 2 ** 32 - 1]) {
      const compact = new Sketch(6, true);
      const hot = bucketIndex(3000, 6);
      const cold = bucketIndex(7, 6);
      compact.record(7);
      compact.record(7);
      compact.addToBucket(hot, max - 1);
      compact.record(3000); // reaches max: must still fit
      expect([compact.bucket(hot), compact.bucket(cold), compact.count]).toEqual([max, 2, max + 2]);
      compact.record(3000); // one past: must widen, not wrap
      expect([compact.bucket(hot), compact.bucket(cold), compact.count]).toEqual([max + 1, 2, max + 3]);
      const wide = new Sketch(6);
      wide.merge(compact);
      expect(sketchToJson(wide)).toEqual(sketchToJson(compact));
      // Same width kept across a window: a count one past the old width's limit still reads back.
      compact.reset();
      compact.addToBucket(hot, max + 1);
      expect(compact.bucket(hot)).toBe(max + 1);
    }
  });

  it("encodes the same summary bytes as f64 counts", () => {
    const rnd = mulberry32(5);
    const stats = [new SeriesStats(6, true), new SeriesStats(6)];
    for (let i = 0; i < 20_000; i++) {
      const v = lognormal(rnd, 8, 1);
      for (const s of stats) s.record(v, 100, 200, i % 17 === 0);
    }
    // The encoder the filter runs, given each aggregate as it is (no round trip through JSON).
    const [compactBytes, wideBytes] = stats.map((s) => {
      const enc = new SummaryEncoder([0]);
      enc.begin(new TextEncoder().encode("p"), 1, 0, 10_000, 0, 0, 0, 0);
      enc.addSeries([new TextEncoder().encode("destination")], s);
      return enc.finish();
    });
    expect(Buffer.from(compactBytes).equals(Buffer.from(wideBytes))).toBe(true);
    expect(decodeSummary(compactBytes).ok).toBe(true);
  });
});

describe("SeriesStats", () => {
  it("keeps counters, min/max/sum and the sketch consistent", () => {
    const a = new SeriesStats();
    const b = new SeriesStats();
    a.record(1500.9, 100, 2000, false);
    a.record(-3, Number.NaN, 1e30, true);
    b.record(99, 10, 20, true);
    a.merge(b);
    expect([a.requests, a.errors, a.latencyMinUs, a.latencyMaxUs, a.latencySumUs]).toEqual([3, 2, 0, 1500, 1599]);
    expect([a.requestBytes, a.responseBytes]).toEqual([110, 2 ** 53 - 1]);
    expect(a.sketch.count).toBe(3);
    expect(a.sketch.zeroCount).toBe(1);
  });
});
