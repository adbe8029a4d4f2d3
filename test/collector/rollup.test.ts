import { describe, expect, it } from "vitest";
import { MinuteRollup, attributedMinute, rollup, type MinuteRow } from "../../collector/rollup.ts";
import { decodeSummary, summaryColumns, type DecodedSeries, type DecodedSummary } from "../../collector/summary.ts";
import { DIMENSIONS, type Dimension } from "../../shared/schema.ts";
import { meshQuantile, meshSketchAddInto, meshSketchMerge } from "../../shared/quantile.ts";
import { encode, latencies, series, sketchOf, summary } from "./helpers.ts";

describe("sketch merge and MESH_QUANTILE", () => {
  it("merging sketches equals the sketch of all values, also across scales", () => {
    const a = latencies(500);
    const b = latencies(700);
    expect(meshSketchMerge([sketchOf(a, 6), JSON.stringify(sketchOf(b, 6))])).toEqual(sketchOf([...a, ...b], 6));
    expect(meshSketchMerge([sketchOf(a, 6), sketchOf(b, 4), null])).toEqual(sketchOf([...a, ...b], 4));
  });

  it("adds into an accumulator in place with the same result as a merge", () => {
    const parts = [latencies(50), latencies(300), [], [0, 0], latencies(20)];
    const scales = [6, 6, 6, 5, 6];
    const acc = { s: 6, z: 0, o: 0, c: [] as number[] };
    for (let i = 0; i < parts.length; i++) meshSketchAddInto(acc, sketchOf(parts[i], scales[i]));
    expect(meshSketchMerge([acc])).toEqual(sketchOf(parts.flat(), 5));
    const wide = { s: 6, z: 0, o: 5, c: [1] };
    meshSketchAddInto(wide, { s: 6, z: 0, o: -3, c: [2, 0, 0] });
    expect(wide).toEqual({ s: 6, z: 0, o: -3, c: [2, -7, 1] });
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
    const input = [summary(1, 60_000, [series("a", va.slice(0, 100)), series("b", vb)]), summary(2, 60_000, [series("a", va.slice(100))]), summary(3, 70_000, [series("a", vc)])];
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

describe("rollup of freshly decoded summaries", () => {
  it("folds many windows of a series into the sketch of all their values, whether their buckets are new or already held", () => {
    const all: number[] = [];
    const input: DecodedSummary[] = [];
    let previous: number[] = [];
    for (let w = 0; w < 60; w++) {
      // every fifth window repeats the one before it: buckets the row already holds
      const values = w % 5 === 4 ? previous : latencies(1 + ((w * 7) % 30));
      all.push(...values);
      input.push(summary(w + 1, 60_000, [series("a", values)]));
      previous = values;
    }
    const decoded = input.map((s) => {
      const d = decodeSummary(encode(s));
      if (!d.ok) throw new Error(d.message);
      return d.summary;
    });
    const [row] = rollup(decoded);
    expect(row.sketch).toEqual(sketchOf(all, 6));
    expect(row.requests).toBe(all.length);
    // the same from series objects (another rollup's rows, a replay), in reverse order
    const [fromObjects] = rollup([...input].reverse());
    expect(fromObjects.sketch).toEqual(sketchOf(all, 6));
  });

  it("folds the decoder's columns exactly as it folds series objects, across scales, minutes and absent dimensions", () => {
    const partial = (seq: number, endMs: number, s: DecodedSeries[]) => ({ ...summary(seq, endMs, s, "p2"), reported: ["destination_service", "response_code"] as Dimension[] });
    const withCode = (s: DecodedSeries, code: number) => ({ ...s, dimensions: { ...s.dimensions, response_code: code } });
    const input: DecodedSummary[] = [
      summary(1, 60_000, [series("a", latencies(80)), series("b", latencies(5)), series("a", [])]),
      summary(2, 60_000, [series("a", [3, 4, 5]), series("a", latencies(300), 4)]),
      summary(3, 60_000, [series("a", [900_000_000, 1]), withCode(series("b", latencies(40), 8), 503)]),
      partial(4, 120_000, [withCode(series("a", latencies(60)), 404), series("c", [0, 0])]),
      partial(5, 120_000, [withCode(series("a", [7]), 404)]),
    ].map((s) => ({ ...s, series: s.series.filter((x) => x.requests > 0) }));
    const decoded = input.map((s) => {
      const d = decodeSummary(encode(s));
      if (!d.ok) throw new Error(d.message);
      return d.summary;
    });
    expect(decoded.every((s) => summaryColumns(s) !== undefined)).toBe(true);
    const fromColumns = rollup(decoded);
    expect(decoded.every((s) => summaryColumns(s) !== undefined)).toBe(true); // the fold built no series objects
    const key = (r: MinuteRow) => `${r.minuteMs}/${DIMENSIONS.map((d) => r.dimensions[d]).join("/")}`;
    const sorted = (rows: MinuteRow[]) => [...rows].sort((x, y) => (key(x) < key(y) ? -1 : 1));
    expect(sorted(fromColumns)).toEqual(sorted(rollup(input)));
    expect(fromColumns.length).toBe(5);
    const a404 = fromColumns.find((r) => r.minuteMs === 60_000 && r.dimensions.response_code === 404)!;
    expect(a404).toMatchObject({ requests: 61, dimensions: { destination_service: "a", source_workload: "unknown" } });
  });

  it("keeps a flood of keys built to collide under a computable row hash in separate rows and short chains", () => {
    // The row hash is a sum of one term per dimension. Where the terms can be computed (as with this
    // unkeyed function), two sums that collide in each of ten pairs of dimensions, found by birthday
    // search over 512 values, combine into 2^10 keys of one hash.
    const term = (d: number, id: number) => {
      let x = Math.imul(id + 1, 0x9e3779b1) ^ Math.imul(d + 1, 0x85ebca6b);
      x = Math.imul(x ^ (x >>> 15), 0x2c1b3c6d);
      return x ^ (x >>> 12);
    };
    const r = new MinuteRollup();
    const internals = r as unknown as { ids: Map<string, number>; slots: Map<number, object> };
    const values = 512;
    const firstId = internals.ids.size; // ids are handed out in order of first appearance, after the absent values
    const name = (j: number) => `v${j}`;
    const row = (pick: (d: number) => string, requests: number): DecodedSeries => ({
      ...series("x", [5]),
      dimensions: Object.fromEntries(DIMENSIONS.map((d, k) => [d, pick(k)])) as Record<Dimension, string>,
      requests,
    });
    // warm-up series give v0, v1, ... their ids in order
    const warmUp = Array.from({ length: Math.ceil(values / DIMENSIONS.length) }, (_, w) => row((k) => name(Math.min(values - 1, w * DIMENSIONS.length + k)), 1));
    r.add(summary(1, 60_000, warmUp));
    expect(internals.ids.get(name(values - 1))).toBe(firstId + values - 1);
    const alternatives: Array<[[number, number], [number, number]]> = [];
    for (let d = 0; d + 1 < DIMENSIONS.length; d += 2) {
      const seen = new Map<number, [number, number]>();
      search: for (let a = 0; a < values; a++) {
        for (let b = 0; b < values; b++) {
          const h = (term(d, firstId + a) + term(d + 1, firstId + b)) | 0;
          const other = seen.get(h);
          if (other !== undefined) {
            alternatives.push([other, [a, b]]);
            break search;
          }
          seen.set(h, [a, b]);
        }
      }
    }
    expect(alternatives.length).toBe(Math.floor(DIMENSIONS.length / 2));
    const flood: DecodedSeries[] = [];
    for (let k = 0; k < 2 ** alternatives.length; k++) {
      const choice = (d: number) => {
        const pair = alternatives[d >> 1];
        return pair === undefined ? "fixed" : name(pair[(k >> (d >> 1)) & 1][d & 1]);
      };
      flood.push(row(choice, k + 1));
    }
    r.add(summary(2, 60_000, flood));
    const rows = [...r.rows()];
    expect(rows.length).toBe(warmUp.length + flood.length);
    expect(rows.slice(warmUp.length).map((x) => x.requests)).toEqual(flood.map((x) => x.requests));
    type Chained = { next?: Chained };
    let longest = 0;
    for (const head of internals.slots.values()) {
      let n = 0;
      for (let s: Chained | undefined = head; s !== undefined; s = s.next) n++;
      longest = Math.max(longest, n);
    }
    expect(longest).toBeLessThanOrEqual(4);
  });
});
