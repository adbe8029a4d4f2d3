// The rank and the reported value of MESH_QUANTILE against definitions that share nothing with it:
// the rank from exact rationals (BigInt: the least k >= 1 with k·den >= num·n for q = num/den, the
// decimal q prints as), and the relative-error bound of the reported value at the very edges of buckets.
import { describe, expect, it } from "vitest";
import { meshBucketValue, meshQuantile, meshRank } from "../../shared/quantile.ts";
import { decimalFraction, exactQuantile } from "../../sim/traffic/truth.ts";
import { mulberry32 } from "./random.ts";

/** ceil(num·n / den), at least 1, in BigInt. */
function rationalRank(q: number, n: number): number {
  const { num, den } = decimalFraction(q);
  const r = (num * BigInt(n) + den - 1n) / den;
  return Number(r < 1n ? 1n : r);
}

describe("meshRank", () => {
  it("is the nearest rank of the decimal q, not of its floating-point product (0.55 × 100 → 55)", () => {
    expect(0.55 * 100).not.toBe(55); // the rounding error the rank must not inherit
    expect(meshRank(0.55, 100)).toBe(55);
    for (const q of [0.07, 0.14, 0.17, 0.27, 0.28, 0.34, 0.54, 0.56, 0.67, 0.68, 0.81]) {
      const wrong = [];
      for (let n = 1; n <= 1000; n++) if (meshRank(q, n) !== rationalRank(q, n)) wrong.push(n);
      expect(wrong, `q=${q}`).toEqual([]);
    }
  });

  it("agrees with exact rationals over every percentile and permille, many n, and random decimals", () => {
    const qs: number[] = [0, 1, 1e-7, 5.5e-7, 0.999999, 0.123456789, 0.3333333333333333];
    for (let k = 0; k <= 1000; k++) qs.push(k / 1000, k / 100 > 1 ? 1 : k / 100);
    const rnd = mulberry32(7);
    for (let k = 0; k < 300; k++) qs.push(Number(rnd().toFixed(1 + (k % 12))), rnd());
    const ns = [1, 2, 3, 7, 10, 99, 100, 101, 999, 1000, 12345, 1e6, 123456789, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
    for (let k = 0; k < 50; k++) ns.push(1 + Math.floor(rnd() * 1e9));
    const wrong: string[] = [];
    for (const q of qs) for (const n of ns) if (meshRank(q, n) !== rationalRank(q, n)) wrong.push(`q=${q} n=${n}`);
    expect(wrong).toEqual([]);
  });

  it("gives MESH_QUANTILE the ground truth's p55 of 1…100 bucket", () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    const exact = exactQuantile(values, 0.55);
    expect(exact).toBe(55);
    // One value per bucket (scale 0: buckets (2^i, 2^(i+1)]): pick values 2^k so rank 55 lands in its own bucket.
    const sketch = { s: 0, z: 0, o: 0, c: [] as number[] };
    for (let i = 0; i < 100; i++) sketch.c.push(1); // bucket i holds one value, in (2^i, 2^(i+1)]
    expect(meshQuantile([sketch], 0.55)).toBe(meshBucketValue(54, 0));
  });
});

describe("meshBucketValue", () => {
  for (const scale of [0, 3, 6, 8]) {
    it(`is within (b−1)/(b+1) of every value of its bucket at scale ${scale}, and attains it at both edges`, () => {
      const b = 2 ** (2 ** -scale);
      const bound = (b - 1) / (b + 1);
      const slack = 1e-12;
      for (const i of [-1, 0, 1, 17, 64, 255, 40 * 2 ** scale - 1]) {
        const lower = 2 ** (i / 2 ** scale); // the bucket is (lower, upper]
        const upper = 2 ** ((i + 1) / 2 ** scale);
        const est = meshBucketValue(i, scale);
        const err = (v: number) => Math.abs(est - v) / v;
        expect(err(upper)).toBeLessThanOrEqual(bound + slack);
        expect(err(upper)).toBeGreaterThanOrEqual(bound - slack);
        const justAbove = lower * (1 + 2 ** -50);
        expect(err(justAbove)).toBeLessThanOrEqual(bound + slack);
        expect(err(justAbove)).toBeGreaterThanOrEqual(bound - 1e-9);
        for (let k = 1; k < 16; k++) expect(err(lower + ((upper - lower) * k) / 16)).toBeLessThan(bound);
        // The midpoint the estimate replaces is off by (b−1)/2 > (b−1)/(b+1) just above the lower edge.
        expect(((lower * (1 + b)) / 2 - justAbove) / justAbove).toBeGreaterThan(bound + slack);
      }
    });
  }
});
