// The read path's sketch accumulator (collector/read/sketches.ts) merges exactly as MESH_SKETCH_MERGE does,
// from the stored JSON and from its binary form alike, so percentiles read from mesh_board_hour equal those
// the LookML measures compute from the minute rows.
import { describe, expect, it } from "vitest";
import { SketchAccumulator } from "../../collector/read/sketches.ts";
import { meshQuantile, meshSketchMerge, type SketchJson } from "../../shared/quantile.ts";
import { DEFAULT_SCALE, SeriesStats, sketchToJson } from "../../shared/node.ts";

/** Sketches the filter's own recorder produces, at several scales and value ranges, with zero and 1 µs values (bucket -1) among them (a fixed pseudo-random walk). */
function sketches(): SketchJson[] {
  let x = 12345;
  const next = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
  const out: SketchJson[] = [];
  for (let k = 0; k < 40; k++) {
    const stats = new SeriesStats(k % 7 === 0 ? DEFAULT_SCALE - 2 : DEFAULT_SCALE);
    const n = 1 + Math.floor(next() * 200);
    for (let i = 0; i < n; i++) stats.record(next() < 0.05 ? 0 : next() < 0.05 ? 1 : Math.floor(10 ** (1 + next() * (k % 3 === 0 ? 6 : 3))), 1, 1, false);
    out.push(sketchToJson(stats.sketch));
  }
  return out;
}

describe("sketch accumulator", () => {
  it("merges JSON and binary sketches to exactly MESH_SKETCH_MERGE's result", () => {
    const all = sketches();
    const want = meshSketchMerge(all)!;
    const fromJson = new SketchAccumulator();
    for (const s of all) fromJson.addJson(JSON.stringify(s));
    expect(fromJson.toJson()).toEqual(want);
    // Half of them through the binary form (as mesh_board_hour stores them), in another order.
    const half = new SketchAccumulator();
    for (const s of all.slice(0, 20)) half.addJson(s);
    const mixed = new SketchAccumulator();
    for (const s of all.slice(20).reverse()) {
      const one = new SketchAccumulator();
      one.addJson(s);
      mixed.addBinary(one.toBinary());
    }
    mixed.addBinary(half.toBinary());
    expect(mixed.toJson()).toEqual(want);
    for (const q of [0, 0.5, 0.9, 0.99, 0.999, 1]) expect(meshQuantile([mixed.toJson()], q)).toBe(meshQuantile(all, q));
  });

  it("an accumulator given nothing has no sketch", () => {
    const a = new SketchAccumulator();
    a.addJson(null);
    a.addBinary(null);
    expect([a.toJson(), a.toBinary()]).toEqual([null, null]);
  });
});
