// The hourly rollup wired end to end in the collector: summaries POSTed over HTTP, spooled, loaded by the
// loader (through the sink's fold fast path or its plain load) and compacted by the sink, with no call
// from the test other than "load now".
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { startCollector } from "../../collector/collector.ts";
import type { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { latencies, metricValues, postAccepted, series, summary, testCollectorConfig, totals } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "meshlook-hourly-collector-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The summaries are from 1970 (long-closed hours by the wall clock): compaction must look back that far.
const config = (name: string, hourlyMaxHoursPerLoad = 24) => testCollectorConfig(dir, name, { hourlyMaxHoursPerLoad, hourlyLookbackH: 24 * 365 * 100 });

describe("collector with the DuckDB sink", () => {
  it("rolls the closed hours it loads up into mesh_traffic_hour, equal to the minutes it loaded", async () => {
    const c = await startCollector(config("all"), pino({ level: "silent" }), { listen: false });
    try {
      // Minutes of the first two hours of 1970: long closed by the wall clock the sink uses.
      const sent = [0, 1].flatMap((h) =>
        [5, 30, 59].map((m, i) => summary(h * 10 + i + 1, h * 3_600_000 + m * 60_000 + 10_000, [series("a", latencies(30)), series("b", latencies(20))])),
      );
      await postAccepted(c, sent);
      await c.loader.loadNow();
      const conn = (c.sink as DuckDBSink).connection;
      const read = async (sql: string) => (await conn.runAndReadAll(sql)).getRowObjectsJS();
      const hourly = await read(
        `SELECT destination_service AS s, SUM(requests) AS n, SUM(latency_sum_us) AS l, COUNT(DISTINCT hour) AS hours,
                MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99 FROM mesh_traffic_hour GROUP BY 1 ORDER BY 1`,
      );
      expect(Object.fromEntries(hourly.map((r) => [r.s, { requests: Number(r.n), latencySumUs: Number(r.l) }]))).toEqual(totals(sent));
      expect(hourly.map((r) => Number(r.hours))).toEqual([2, 2]);
      const minutes = await read("SELECT destination_service AS s, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99 FROM mesh_traffic_minute GROUP BY 1 ORDER BY 1");
      expect(hourly.map((r) => r.p99)).toEqual(minutes.map((r) => r.p99));
    } finally {
      await c.close();
    }
  });

  it("bounds the hours per load by MESHLOOK_HOURLY_MAX_HOURS_PER_LOAD and reports compactions, waiting hours and failures on /metrics", async () => {
    const c = await startCollector(config("metrics", 1), pino({ level: "silent" }), { listen: false });
    await c.loader.loadNow(); // the start-up cycle opens the warehouse (the collector listens first)
    let seq = 0;
    const post = async (hour: number) => {
      await postAccepted(c, [summary(++seq, hour * 3_600_000 + 20 * 60_000, [series("a", latencies(10))])]);
    };
    const conn = (c.sink as DuckDBSink).connection;
    const hoursIn = async () =>
      (await conn.runAndReadAll("SELECT DISTINCT hour FROM mesh_traffic_hour ORDER BY hour")).getRowObjectsJS().map((r) => (r.hour as Date).getTime() / 3_600_000);
    const metrics = async () => {
      const m = await metricValues(c);
      return {
        compacted: m.get("meshlook_hourly_hours_compacted_total"),
        waiting: m.get("meshlook_hourly_hours_waiting"),
        runs: m.get("meshlook_hourly_compaction_duration_seconds"),
        failed: m.get("meshlook_hourly_compaction_failures_total{reason=duckdb}"),
        loadFailed: m.get("meshlook_load_failures_total{reason=duckdb}"),
      };
    };
    try {
      expect(await metrics()).toEqual({ compacted: 0, waiting: 0, runs: 0, failed: 0, loadFailed: 0 });
      for (const h of [0, 1, 2]) await post(h);
      await c.loader.loadNow();
      expect(await hoursIn()).toEqual([0]);
      expect(await metrics()).toEqual({ compacted: 1, waiting: 2, runs: 1, failed: 0, loadFailed: 0 });

      // The rollup table gone: the load still commits, the compaction fails and is counted.
      await conn.run("ALTER TABLE mesh_traffic_hour RENAME TO mesh_traffic_hour_away");
      await post(3);
      await c.loader.loadNow();
      expect(Number((await conn.runAndReadAll("SELECT COUNT(*) FROM mesh_traffic_minute")).getRows()[0][0])).toBe(4);
      expect(await metrics()).toEqual({ compacted: 1, waiting: 2, runs: 2, failed: 1, loadFailed: 0 });

      await conn.run("ALTER TABLE mesh_traffic_hour_away RENAME TO mesh_traffic_hour");
      await post(4);
      await c.loader.loadNow();
      expect(await hoursIn()).toEqual([0, 1]);
      expect(await metrics()).toEqual({ compacted: 2, waiting: 3, runs: 3, failed: 1, loadFailed: 0 });
    } finally {
      await c.close();
    }
  });
});
