// Hourly compaction treats hours independently: an hour the warehouse cannot rebuild (here a minute row
// whose sketch MESH_SKETCH_MERGE refuses) fails alone, is reported, and the hours after it are compacted
// in the same pass; the stale-hour search looks back a bounded time only.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import type { CompactionReport } from "../../collector/sink/hourly.ts";
import { latencies, series, summary } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "meshlook-hourly-independent-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const H = 3_600_000;
const H0 = Date.UTC(2026, 0, 5, 10);

describe("hourly compaction, hour by hour", () => {
  it("compacts the hours after one that fails, and reports the failure", async () => {
    let now = H0 + 10 * 60_000;
    const reports: CompactionReport[] = [];
    const sink = new DuckDBSink(join(dir, "h.duckdb"), undefined, { now: () => now, onCompaction: (r) => reports.push(r), lookbackMs: 24 * H });
    await sink.open();
    try {
      const sent = [0, 1, 2].map((h) => summary(h + 1, H0 + h * H + 30 * 60_000, [series("a", latencies(20))]));
      await sink.load(sent);
      // A minute row of hour 0 that the sketch merge refuses (as a row written by a broken tool would be).
      await sink.connection.run(
        `INSERT INTO mesh_traffic_minute SELECT minute, * EXCLUDE (minute, latency_sketch, loaded_at), '{"not":"a sketch"}', loaded_at FROM mesh_traffic_minute WHERE minute < $1`,
        [new Date(H0 + H).toISOString()] as never,
      );
      // Also a row far older than the lookback: never searched, never compacted.
      await sink.load([summary(9, H0 - 3 * 24 * H, [series("old", latencies(5))], "p-old")]);
      now = H0 + 3 * H + 6 * 60_000;
      await sink.load([summary(10, H0 + 3 * H + 60_000, [series("a", latencies(3))], "p-late")]);
      const hours = (await sink.connection.runAndReadAll("SELECT DISTINCT hour FROM mesh_traffic_hour ORDER BY hour")).getRowObjectsJS().map((r) => (r.hour as Date).getTime());
      expect(hours).toEqual([H0 + H, H0 + 2 * H]);
      const last = reports.at(-1)!;
      expect(last.hours).toBe(2);
      expect(last.failure).toBe("duckdb");
    } finally {
      await sink.close();
    }
  });
});
