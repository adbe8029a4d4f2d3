import { describe, expect, it } from "vitest";
import { atLeast, atMost, judged } from "../../bench/lib/targets.ts";

const ns = (n: number) => `${n} ns`;

describe("bench targets", () => {
  it("says by how much an upper bound is met or missed", () => {
    expect(judged(atMost(643, 1000, ns))).toEqual({ target: "≤ 1000 ns", verdict: "met, 357 ns to spare" });
    expect(judged(atMost(1238, 1000, ns))).toEqual({ target: "≤ 1000 ns", verdict: "MISSED by 238 ns" });
    expect(judged(atMost(0, 0, ns)).verdict).toBe("met, 0 ns to spare");
    expect(judged(atMost(-1379, 0, ns)).verdict).toBe("met, 1379 ns to spare");
  });

  it("says by how much a lower bound is met or missed", () => {
    expect(judged(atLeast(144_928, 400_000, String)).verdict).toBe("MISSED by 255072");
    expect(judged(atLeast(0.81, 0.8, (n) => `${n.toFixed(2)}×`)).verdict).toBe("met, 0.01× to spare");
  });

  it("judges every bound of a figure on its own, each named", () => {
    const j = judged(
      atLeast(500_000, 400_000, String),
      atLeast(0.5, 0.8, (n) => n.toFixed(1)),
    );
    expect(j.target).toBe("≥ 400000; ≥ 0.8");
    expect(j.verdict).toBe("≥ 400000: met, 100000 to spare; ≥ 0.8: MISSED by 0.3");
    expect(judged(atMost(0, 4096, String), atMost(12, 0, String, "growth ")).verdict).toBe("≤ 4096: met, 4096 to spare; growth ≤ 0: MISSED by 12");
  });

  it("calls a figure that was not measured so, never met", () => {
    expect(judged(atMost(Number.NaN, 1000, ns)).verdict).toBe("not measured");
    expect(judged(atLeast(Number.NaN, 0.8, String)).verdict).toBe("not measured");
  });
});
