// MESH_SKETCH_MERGE (shared/quantile-core.js), what the hourly rollup stores: merging first, then asking
// for a quantile, must answer exactly what the quantile over all the original sketches answers, and the
// merged sketch must be the one the sidecar's own Sketch.merge (shared/sketch.ts) builds.
import { describe, expect, it } from "vitest";
import { Sketch, sketchToJson } from "../../shared/node.ts";
import { meshQuantile, meshSketchMerge, meshSketchMergeJson, type SketchJson } from "../../shared/quantile.ts";
import { lognormal, mulberry32 } from "./random.ts";

const QS = [0, 0.001, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1];

/** `groups` lists of sketches (as stored, JSON text) of seeded latencies at mixed scales. */
function sketchGroups(seed: number, groups: number, perGroup: number): { json: string[][]; sketches: Sketch[][] } {
  const rnd = mulberry32(seed);
  const json: string[][] = [];
  const sketches: Sketch[][] = [];
  for (let g = 0; g < groups; g++) {
    json.push([]);
    sketches.push([]);
    for (let k = 0; k < perGroup; k++) {
      const sk = new Sketch([6, 6, 6, 5, 3, 8][Math.floor(rnd() * 6)]);
      const n = Math.floor(rnd() * 200);
      for (let i = 0; i < n; i++) sk.record(rnd() < 0.03 ? 0 : Math.floor(lognormal(rnd, 8 + g, 1.5)));
      sketches[g].push(sk);
      json[g].push(JSON.stringify(sketchToJson(sk)));
    }
  }
  return { json, sketches };
}

describe("MESH_SKETCH_MERGE", () => {
  it("merging groups of sketches, then taking quantiles, answers exactly what the quantiles of all the sketches answer", () => {
    for (const seed of [1, 2, 3]) {
      const { json } = sketchGroups(seed, 5, 12);
      const merged = json.map((g) => meshSketchMergeJson(g)!);
      const all = json.flat();
      for (const q of QS) expect(meshQuantile(merged, q), `seed ${seed} q ${q}`).toBe(meshQuantile(all, q));
      // Merging merged sketches again (an hour of hours) changes nothing either.
      expect(meshQuantile([meshSketchMergeJson(merged)!], 0.99)).toBe(meshQuantile(all, 0.99));
    }
  });

  it("builds the same sketch as Sketch.merge in shared/sketch.ts", () => {
    const { json, sketches } = sketchGroups(9, 4, 10);
    for (let g = 0; g < json.length; g++) {
      const acc = new Sketch(8);
      for (const sk of sketches[g]) acc.merge(sk);
      // meshSketchMerge of one sketch is that sketch in the stored form
      expect(JSON.parse(meshSketchMergeJson(json[g])!) as SketchJson).toEqual(meshSketchMerge([sketchToJson(acc)]));
    }
  });

  it("returns the stored JSON form, null for no sketch, and refuses a value that is not a sketch", () => {
    expect(meshSketchMergeJson(['{"s":6,"z":1,"o":10,"c":[2,0,1]}', null, '{"s":5,"z":0,"o":4,"c":[1]}'])).toBe('{"s":5,"z":1,"o":4,"c":[1,2,1]}');
    expect(meshSketchMergeJson([])).toBeNull();
    expect(meshSketchMergeJson([null])).toBeNull();
    expect(meshSketchMergeJson(null)).toBeNull();
    expect(() => meshSketchMergeJson(['{"a":1}'])).toThrow(/not a latency sketch/);
  });
});
