// Smoke run of the load-cycle benchmark (bench/load-cycle.ts, `npm run bench -- --quick` runs the same):
// its counts must agree with what the simulated sidecars sent, worked out here from the benchmark's
// traffic shape — 20 sidecars, one summary per 10 s window for 60 s, 8 series each, all in one minute.
import { describe, expect, it } from "vitest";
import { measureLoadCycle } from "../../bench/lib/load-cycle.ts";

describe("load-cycle benchmark", () => {
  it("counts one transaction and one row per (minute, series) for a cycle, on both sinks", { timeout: 300_000 }, async () => {
    const { cycles, output } = await measureLoadCycle({ sidecars: [20], intervalS: 60 });
    expect(cycles).toHaveLength(1);
    const [c] = cycles;
    expect(c.snowflake.summaries).toBe(20 * 6);
    expect(c.trips.transactions).toBe(1);
    expect(c.trips.factRows).toBe(20 * 8);
    expect(c.snowflake.rows).toBe(20 * 8);
    expect(c.duckdb.rows).toBe(20 * 8);
    expect(c.trips.largestStatementBytes).toBeLessThanOrEqual(1_000_000);
    expect(c.trips.roundTrips).toBeGreaterThanOrEqual(c.trips.statements);
    // A 60 s interval keeps the warehouse up all day whatever a cycle does.
    expect(c.creditsPerDay).toBe(24);
    expect(output).toContain("| 20 |");
  });
});
