// The error-rate test's Wilson bounds as the warehouse computes them, checked against the interval's
// definition — the two roots of the score equation (p̂ − p)² = z²·p(1 − p)/n (Wilson 1927; Brown, Cai &
// DasGupta 2001) — rather than against the closed form the SQL uses; and the minimum-volume rule
// that keeps a 1-in-3 blip from being an outlier.
import { DuckDBInstance } from "@duckdb/node-api";
import { describe, expect, it } from "vitest";
import { DEFAULT_THRESHOLDS, wilson } from "../../shared/outliers.ts";

async function bounds(cases: [number, number][], z: number) {
  const conn = await (await DuckDBInstance.create(":memory:")).connect();
  const values = cases.map(([x, n]) => `(${x}, ${n})`).join(", ");
  const sql = `SELECT x, n, ${wilson("x", "n", String(z), -1)} AS lo, ${wilson("x", "n", String(z), 1)} AS hi FROM (VALUES ${values}) v(x, n) ORDER BY n, x`;
  return (await conn.runAndReadAll(sql)).getRowObjectsJS().map((r) => ({ x: Number(r.x), n: Number(r.n), lo: Number(r.lo), hi: Number(r.hi) }));
}

describe("Wilson score bounds in SQL", () => {
  it("are the roots of the score equation, on either side of the observed rate", async () => {
    const z = DEFAULT_THRESHOLDS.z;
    const cases: [number, number][] = [
      [0, 100],
      [1, 3],
      [5, 100],
      [14, 18219],
      [89, 1908],
      [30, 600],
      [50, 50_000],
      [600, 600],
    ];
    for (const { x, n, lo, hi } of await bounds(cases, z)) {
      const p = x / n;
      const score = (b: number) => (p - b) ** 2 - (z * z * b * (1 - b)) / n;
      for (const b of [lo, hi]) expect(Math.abs(score(b))).toBeLessThan(1e-12);
      expect(lo).toBeLessThanOrEqual(p + 1e-15);
      expect(hi).toBeGreaterThanOrEqual(p - 1e-15);
      expect(lo).toBeGreaterThanOrEqual(-1e-15);
      expect(hi).toBeLessThanOrEqual(1 + 1e-15);
    }
  });

  it("a 1-in-3 blip would pass the Wilson test alone against a 0.1 % baseline: the minimum volumes are what stop it", async () => {
    const t = DEFAULT_THRESHOLDS;
    const [blip, base] = await bounds(
      [
        [1, 3],
        [50, 50_000],
      ],
      t.z,
    );
    // Three requests say little, but 1/3 is so far above 0.1 % that even its lower bound (≈ 3 %) clears the ratio.
    expect(blip.lo).toBeGreaterThan(t.errorMinRatio * base.hi);
    expect(3).toBeLessThan(t.errorMinRequests);
    expect(1).toBeLessThan(t.errorMinErrors);
  });
});
