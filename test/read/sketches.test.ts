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

  it("percentiles of a merge at mixed scales name the bucket holding the true nearest-rank value of the sorted raw latencies", () => {
    // Independent truth: the recorded values themselves, sorted. Scales 8, 5 and 0 merge down to 0, where a
    // bucket spans a factor of 2; 0 and 1 µs (the zero count and bucket -1, a negative index) are among them.
    let x = 777;
    const next = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
    const raw: number[] = [];
    const parts: SketchJson[] = [];
    for (const scale of [8, 5, 0, 8, 5]) {
      const stats = new SeriesStats(scale);
      for (let i = 0; i < 3000; i++) {
        const v = next() < 0.03 ? 0 : next() < 0.05 ? 1 : Math.floor(10 ** (next() * 6.5));
        stats.record(v, 1, 1, false);
        raw.push(v);
      }
      parts.push(sketchToJson(stats.sketch));
    }
    raw.sort((a, b) => a - b);
    const acc = new SketchAccumulator();
    parts.forEach((p, k) => {
      if (k % 2 === 0) acc.addJson(JSON.stringify(p));
      else {
        const one = new SketchAccumulator();
        one.addJson(p);
        acc.addBinary(one.toBinary());
      }
    });
    const merged = acc.toJson()!;
    expect(merged.s).toBe(0);
    const base = 2; // 2^(2^-0)
    // q as a fraction num/1000, so the nearest rank ceil(q·n) is computed in integers.
    for (const perMille of [1, 10, 250, 500, 900, 990, 999, 1000]) {
      const rank = Math.max(1, Math.ceil((perMille * raw.length) / 1000));
      const truth = raw[rank - 1];
      const got = meshQuantile([merged], perMille / 1000)!;
      if (truth === 0) {
        expect(got, `q=${perMille / 1000}`).toBe(0);
        continue;
      }
      // The reported value 2·upper/(1 + base) of the bucket (upper/base, upper] that must hold the true value.
      const upper = (got * (1 + base)) / 2;
      expect(truth, `q=${perMille / 1000}`).toBeGreaterThan((upper / base) * (1 + 1e-12));
      expect(truth, `q=${perMille / 1000}`).toBeLessThanOrEqual(upper * (1 + 1e-12));
    }
  });

  it("binary form keeps counts beyond 32 bits exactly", () => {
    const big: SketchJson = { s: 3, z: 2 ** 35 + 1, o: -1, c: [2 ** 40 + 3, -5, 2 ** 52 + 1] };
    const a = new SketchAccumulator();
    a.addJson(big);
    const b = new SketchAccumulator();
    b.addBinary(a.toBinary());
    expect(b.toJson()).toEqual(big);
  });
});
