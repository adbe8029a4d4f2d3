// Property test of the rollup's sketch fold: random windows of random scales, folded from decoded
// columns, from series objects and from other rollups' rows, must hold exactly the per-bucket counts of
// the values sent. The truth here is computed with integer arithmetic straight from the bucket definition
// (docs/schema.md: bucket i holds base^i < v <= base^(i+1), base = 2^(2^-s)), shared with no product code
// and with no floating-point logarithm.
import { describe, expect, it } from "vitest";
import { MinuteRollup, rollup, type MinuteRow } from "../../collector/rollup.ts";
import { decodeSummary, summaryColumns, type DecodedSummary } from "../../collector/summary.ts";
import type { SketchJson } from "../../shared/quantile.ts";
import { encode, series, summary } from "./helpers.ts";

// v <= base^(i+1) <=> v^(2^s) <= 2^(i+1), so the bucket is one below the bit length of v^(2^s) - 1.
function exactBucket(v: number, scale: number): number {
  const power = BigInt(v) ** (1n << BigInt(scale));
  return power === 1n ? -1 : (power - 1n).toString(2).length - 1;
}

function exactSketch(values: number[], scale: number): SketchJson {
  const counts = new Map<number, number>();
  let zero = 0;
  for (const v of values) {
    if (v === 0) zero++;
    else counts.set(exactBucket(v, scale), (counts.get(exactBucket(v, scale)) ?? 0) + 1);
  }
  const present = [...counts.keys()].sort((a, b) => a - b);
  const c: number[] = [];
  for (let k = 0; k < present.length; k++) {
    if (k > 0 && present[k] > present[k - 1] + 1) c.push(present[k - 1] + 1 - present[k]);
    c.push(counts.get(present[k])!);
  }
  return { s: scale, z: zero, o: present.length ? present[0] : 0, c };
}

let seed = 20261207;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)];

// Values at bucket edges as well as inside: 0, 1 (bucket -1 at every scale), powers of two and their
// neighbours, and anything up to 2^40 - 1 µs.
function value(): number {
  const r = rand();
  if (r < 0.05) return 0;
  if (r < 0.12) return 1;
  const e = Math.floor(rand() * 40);
  if (r < 0.4) return Math.max(1, Math.min(2 ** 40 - 1, 2 ** e + pick([-1, 0, 1])));
  return Math.max(1, Math.floor(2 ** (e + rand())) % 2 ** 40);
}

// Values within a factor of four, with a rare outlier far above: rows of such series cover few buckets
// densely, and an outlier widens one past what its stored form could take.
function narrowValue(): number {
  return rand() < 0.02 ? 2 ** 39 + Math.floor(rand() * 1000) : Math.floor(1000 * 2 ** (2 * rand()));
}

// The filter downscales a sketch whose span reaches 4096 buckets (shared/sketch.ts MAX_SPAN); so does
// this generator, so that every window is one an honest filter could send.
function honestScale(values: number[], wanted: number): number {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return wanted;
  let s = wanted;
  const lo = Math.min(...positive);
  const hi = Math.max(...positive);
  while (s > 0 && exactBucket(hi, s) - exactBucket(lo, s) >= 4096) s--;
  return s;
}

// Sketch entries the rollup's rows hold, stored and dense, against those it accounts (MinuteRollup.bytes:
// a fixed 600 per row and 8 per entry).
const heldEntries = (r: MinuteRollup) =>
  (r as unknown as { list: { row: MinuteRow; dense?: Float64Array }[] }).list.reduce((n, slot) => n + slot.row.sketch.c.length + (slot.dense?.length ?? 0), 0);
const accountedEntries = (r: MinuteRollup) => (r.bytes - 600 * r.size) / 8;

describe("rollup sketch fold against exact bucket counts", () => {
  it("holds every bucket's exact count across scales, repeats, new buckets and row merges", () => {
    for (let trial = 0; trial < 40; trial++) {
      // trials from 30 on send narrow values, many per window (rows updated densely, then widened)
      const draw = trial < 30 ? value : narrowValue;
      const services = ["a", "b", "c"].slice(0, 1 + (trial % 3));
      const all = new Map<string, { values: number[]; scale: number }>();
      const input: DecodedSummary[] = [];
      // a trial either keeps one scale (the in-place path dominates) or mixes them (downscales)
      const scales = trial % 2 === 0 ? [pick([0, 4, 6, 8])] : [0, 1, 2, 3, 4, 5, 6, 7, 8];
      let previous: number[] = [];
      for (let w = 0; w < 25; w++) {
        const windowSeries = services.flatMap((svc) => {
          if (rand() < 0.2) return [];
          const n = 1 + Math.floor(rand() * (rand() < 0.3 ? 3 : 40));
          const values = rand() < 0.3 && previous.length ? previous : Array.from({ length: n }, draw);
          previous = values;
          const scale = honestScale(values, pick(scales));
          const seen = all.get(svc) ?? { values: [], scale: Infinity };
          all.set(svc, { values: [...seen.values, ...values], scale: Math.min(seen.scale, scale) });
          return [series(svc, values, scale)];
        });
        input.push(summary(w + 1, 60_000, windowSeries));
      }
      const decoded = input.map((s) => {
        const d = decodeSummary(encode(s));
        if (!d.ok) throw new Error(`${d.reason}: ${d.message}`);
        return d.summary;
      });
      const expected = (rows: MinuteRow[], times = 1) => {
        const bySvc = Object.fromEntries(rows.map((r) => [r.dimensions.destination_service, r.sketch]));
        for (const [svc, { values, scale }] of all) {
          expect(bySvc[svc], `trial ${trial} service ${svc}`).toEqual(exactSketch(Array.from({ length: times }, () => values).flat(), scale));
        }
        expect(rows.length).toBe(all.size);
      };
      expected(rollup(decoded)); // columns
      // rows read, then folded into again: the second read has both passes; what the rows hold is what
      // the rollup accounts at every step
      const twice = new MinuteRollup();
      for (const d of decoded) twice.add(d);
      expect(heldEntries(twice), `trial ${trial}`).toBe(accountedEntries(twice));
      expected([...twice.rows()]);
      expect(heldEntries(twice), `trial ${trial}`).toBe(accountedEntries(twice));
      for (const d of decoded) twice.add(d);
      expect(heldEntries(twice), `trial ${trial}`).toBe(accountedEntries(twice));
      expected([...twice.rows()], 2);
      expected(rollup([...input].reverse())); // series objects
      // rows of two partial rollups folded into a third
      const half = Math.floor(rand() * input.length);
      const merged = new MinuteRollup();
      for (const r of rollup(decoded.slice(half))) merged.addRow(r);
      for (const r of rollup(input.slice(0, half))) merged.addRow(r);
      expected([...merged.rows()]);
    }
  });

  it("keeps decoded summaries and the rows folded from them apart: no shared buffers, no writes through views", () => {
    const va = [1, 5, 900, 900, 70_000];
    const vb = [2, 2, 3, 4_000_000];
    const decode = (values: number[], seq: number) => {
      const d = decodeSummary(encode(summary(seq, 60_000, [series("a", values)])));
      if (!d.ok) throw new Error(d.message);
      return d.summary;
    };
    const a = decode(va, 1);
    const b = decode(vb, 2); // the decoder's reused columns now hold b
    const folded = new MinuteRollup();
    folded.add(a); // a new row from a's columns
    folded.add(b); // b's buckets added into that row's sketch, in place or rebuilt
    folded.add(a); // a again: every bucket held, in place
    const [row] = [...folded.rows()];
    expect(row.sketch).toEqual(exactSketch([...va, ...vb, ...va], 6));
    // each summary still reads its own values, through columns the fold left untouched
    expect(summaryColumns(a)).toBeDefined();
    expect(a.series[0].sketch).toEqual(expect.objectContaining({ s: 6 }));
    expect(a.series[0].latencyMaxUs).toBe(70_000);
    expect(b.series[0].latencyMaxUs).toBe(4_000_000);
    expect(summaryColumns(a)).toBeUndefined(); // settled into plain series objects
    // writing through one summary's series reaches neither the other summary nor the row
    a.series[0].sketch.c.fill(99);
    a.series[0].requests = 0;
    expect(b.series[0].requests).toBe(vb.length);
    expect(row.sketch).toEqual(exactSketch([...va, ...vb, ...va], 6));
    expect(rollup([b])[0].sketch).toEqual(exactSketch(vb, 6));
    expect(rollup([decode(va, 3)])[0].sketch).toEqual(exactSketch(va, 6));
  });
});
