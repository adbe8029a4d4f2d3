import { describe, expect, it } from "vitest";
import { attributedMinute, rollup } from "../../collector/rollup.ts";
import type { DecodedSeries, DecodedSummary } from "../../collector/summary.ts";
import { meshQuantile, meshSketchMerge, type SketchJson } from "../../shared/quantile.ts";
import { DIMENSIONS, type Dimension } from "../../shared/schema.ts";

// Independent bucket math straight from the definition: bucket i holds (base^i, base^(i+1)].
function bucketOf(v: number, scale: number): number {
  const bound = (i: number) => 2 ** (i / 2 ** scale); // exact at powers of two, unlike base ** i
  let i = Math.ceil(Math.log2(v) * 2 ** scale) - 1;
  while (bound(i + 1) < v) i++;
  while (bound(i) >= v) i--;
  return i;
}
function sketchOf(values: number[], scale: number): SketchJson {
  const zero = values.filter((v) => v === 0).length;
  const idx = values.filter((v) => v > 0).map((v) => bucketOf(v, scale));
  if (idx.length === 0) return { s: scale, z: zero, o: 0, c: [] };
  const lo = Math.min(...idx);
  const c = new Array(Math.max(...idx) - lo + 1).fill(0);
  for (const i of idx) c[i - lo]++;
  return { s: scale, z: zero, o: lo, c };
}

let seed = 42;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
const latencies = (n: number) => Array.from({ length: n }, () => (rand() < 0.02 ? 0 : Math.floor(Math.exp(rand() * 14))));

const dims = (service: string, code = 200): Record<Dimension, string | number> =>
  Object.fromEntries(DIMENSIONS.map((d) => [d, d === "response_code" ? code : d === "destination_service" ? service : "unknown"])) as Record<Dimension, string | number>;

function series(service: string, values: number[], scale = 6): DecodedSeries {
  return {
    dimensions: dims(service),
    requests: values.length,
    errors: values.filter((v) => v % 7 === 0).length,
    requestBytes: values.length * 100,
    responseBytes: values.length * 1000,
    latencySumUs: values.reduce((a, b) => a + b, 0),
    latencyMinUs: Math.min(...values),
    latencyMaxUs: Math.max(...values),
    sketch: sketchOf(values, scale),
  };
}
const summary = (seq: number, endMs: number, s: DecodedSeries[]): DecodedSummary => ({
  producerId: "p1",
  seq,
  windowStartMs: endMs - 10_000,
  windowEndMs: endMs,
  series: s,
});

describe("sketch merge and MESH_QUANTILE", () => {
  it("merging sketches equals the sketch of all values, also across scales", () => {
    const a = latencies(500);
    const b = latencies(700);
    expect(meshSketchMerge([sketchOf(a, 6), JSON.stringify(sketchOf(b, 6))])).toEqual(sketchOf([...a, ...b], 6));
    expect(meshSketchMerge([sketchOf(a, 6), sketchOf(b, 4), null])).toEqual(sketchOf([...a, ...b], 4));
  });

  it("answers nearest-rank quantiles within the scale's relative error of the exact value", () => {
    const all = latencies(5000);
    const sorted = [...all].sort((x, y) => x - y);
    const parts = [all.slice(0, 1000), all.slice(1000, 3500), all.slice(3500)].map((p) => JSON.stringify(sketchOf(p, 6)));
    for (const q of [0, 0.01, 0.5, 0.9, 0.99, 0.999, 1]) {
      const exact = sorted[Math.max(1, Math.ceil(q * all.length)) - 1];
      const got = meshQuantile(parts, q)!;
      if (exact === 0) expect(got).toBe(0);
      else expect(Math.abs(got - exact) / exact).toBeLessThanOrEqual(0.0055);
    }
  });

  it("is null for no data and refuses q outside [0, 1]", () => {
    expect(meshQuantile([], 0.5)).toBeNull();
    expect(meshQuantile([null], 0.5)).toBeNull();
    expect(() => meshQuantile([sketchOf([5], 6)], 1.5)).toThrow(/q must be within/);
    expect(() => meshQuantile(["{}"], 0.5)).toThrow(/not a latency sketch/);
  });
});

describe("rollup", () => {
  it("attributes a window to the minute holding its last millisecond", () => {
    expect(attributedMinute(120_000)).toBe(60_000);
    expect(attributedMinute(120_001)).toBe(120_000);
  });

  it("adds counters, keeps extremes and merges sketches per (minute, series), in any order", () => {
    const va = latencies(300);
    const vb = latencies(200);
    const vc = latencies(50);
    const input = [
      summary(1, 60_000, [series("a", va.slice(0, 100)), series("b", vb)]),
      summary(2, 60_000, [series("a", va.slice(100))]),
      summary(3, 70_000, [series("a", vc)]),
    ];
    const rows = rollup(input);
    const reversed = rollup([...input].reverse());
    const key = (r: (typeof rows)[number]) => `${r.minuteMs}/${r.dimensions.destination_service}`;
    expect(rows.map(key).sort()).toEqual(["0/a", "0/b", "60000/a"]);
    const a0 = rows.find((r) => key(r) === "0/a")!;
    expect(a0).toMatchObject({
      requests: 300,
      errors: va.filter((v) => v % 7 === 0).length,
      requestBytes: 30_000,
      latencySumUs: va.reduce((x, y) => x + y, 0),
      latencyMinUs: Math.min(...va),
      latencyMaxUs: Math.max(...va),
      sketch: sketchOf(va, 6),
    });
    expect(reversed.find((r) => key(r) === "0/a")).toEqual(a0);
  });
});
