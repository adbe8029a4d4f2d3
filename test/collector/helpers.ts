// Test-side builders with independent math (straight from docs/schema.md), shared by the collector tests.
import type { DecodedSeries, DecodedSummary } from "../../collector/summary.ts";
import type { SketchJson } from "../../shared/quantile.ts";
import { DIMENSIONS, type Dimension } from "../../shared/schema.ts";

// Independent bucket math straight from the definition: bucket i holds (base^i, base^(i+1)].
export function bucketOf(v: number, scale: number): number {
  const bound = (i: number) => 2 ** (i / 2 ** scale); // exact at powers of two, unlike base ** i
  let i = Math.ceil(Math.log2(v) * 2 ** scale) - 1;
  while (bound(i + 1) < v) i++;
  while (bound(i) >= v) i--;
  return i;
}
export function sketchOf(values: number[], scale: number): SketchJson {
  const zero = values.filter((v) => v === 0).length;
  const idx = values.filter((v) => v > 0).map((v) => bucketOf(v, scale));
  if (idx.length === 0) return { s: scale, z: zero, o: 0, c: [] };
  const lo = Math.min(...idx);
  const c = new Array(Math.max(...idx) - lo + 1).fill(0);
  for (const i of idx) c[i - lo]++;
  return { s: scale, z: zero, o: lo, c };
}

let seed = 42;
export const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
export const latencies = (n: number) => Array.from({ length: n }, () => (rand() < 0.02 ? 0 : Math.floor(Math.exp(rand() * 14))));

export const dims = (service: string, code = 200): Record<Dimension, string | number> =>
  Object.fromEntries(DIMENSIONS.map((d) => [d, d === "response_code" ? code : d === "destination_service" ? service : "unknown"])) as Record<Dimension, string | number>;

export function series(service: string, values: number[], scale = 6): DecodedSeries {
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
export const summary = (seq: number, endMs: number, s: DecodedSeries[], producerId = "p1"): DecodedSummary => ({
  producerId,
  seq,
  windowStartMs: endMs - 10_000,
  windowEndMs: endMs,
  series: s,
});

