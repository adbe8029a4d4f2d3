// Retention on the DuckDB sink: minute rows older than the minute retention go (a bounded number of days
// per pass), hourly rows stay and still answer exactly for every hour, the minute explore's default range
// (7 days) is untouched, ledger rows go after their retention — and a summary too old for its ledger row
// to be trusted is refused by the loader instead of loading twice.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { startCollector } from "../../collector/collector.ts";
import { defaultConfig } from "../../collector/config.ts";
import { DAY_MS, DEFAULT_RETENTION, checkRetention, type RetentionPolicy } from "../../collector/retention.ts";
import { SUMMARY_CONTENT_TYPE } from "../../collector/server.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import type { DecodedSummary } from "../../collector/summary.ts";
import { encode, latencies, metricValues, postAccepted, series, summary, totals } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "meshlook-retention-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NOW = Date.UTC(2026, 5, 20, 12, 30);
/** A collector with the default retention, loading when the test asks. */
const retentionOn = (name: string) => ({
  ...defaultConfig(),
  dataDir: join(dir, name),
  spoolDir: join(dir, name, "spool"),
  duckdbPath: join(dir, name, "m.duckdb"),
  ingestTokens: ["t"],
  loadIntervalS: 3600,
});
const read = async (sink: DuckDBSink, sql: string) => (await sink.connection.runAndReadAll(sql)).getRowObjectsJS();
const sums = async (sink: DuckDBSink, table: string, where = "TRUE") =>
  Object.fromEntries(
    (await read(sink, `SELECT destination_service AS s, SUM(requests) AS n, SUM(latency_sum_us) AS l FROM ${table} WHERE ${where} GROUP BY 1 ORDER BY 1`)).map((r) => [
      r.s,
      { requests: Number(r.n), latencySumUs: Number(r.l) },
    ]),
  );

describe("retention", () => {
  it("prunes minutes, losses and ledger rows in bounded passes while the hourly rollup and recent minutes stay exact", async () => {
    const sink = new DuckDBSink(join(dir, "r.duckdb"), undefined, { now: () => NOW, lookbackMs: 30 * DAY_MS });
    await sink.open();
    try {
      const sent: DecodedSummary[] = [];
      for (let day = 0; day < 12; day++) {
        for (const h of [1, 13]) {
          const end = NOW - day * DAY_MS - h * 3_600_000;
          sent.push(summary(sent.length + 1, end, [series(day % 2 ? "a" : "b", latencies(10))], `p-${day % 3}`));
        }
      }
      await sink.load(sent);
      while ((await sink.compact(NOW)).length > 0);
      const policy: RetentionPolicy = { minuteDays: 8, hourDays: 400, ledgerDays: 9, maxDaysPerRun: 1 };
      const minuteCutoff = NOW - 8 * DAY_MS;

      const first = await sink.prune(policy, NOW);
      expect(first.find((r) => r.table === "mesh_traffic_minute")!.rows).toBeGreaterThan(0);
      // One day per table per pass: older minutes are still there after the first.
      expect(Number((await read(sink, `SELECT COUNT(*) AS n FROM mesh_traffic_minute WHERE minute < '${new Date(minuteCutoff).toISOString()}'`))[0].n)).toBeGreaterThan(0);
      for (let k = 0; k < 10; k++) await sink.prune(policy, NOW);
      const oldest = await read(sink, "SELECT MIN(minute) AS m FROM mesh_traffic_minute");
      expect((oldest[0].m as Date).getTime()).toBeGreaterThanOrEqual(minuteCutoff);

      // The hourly rollup still holds everything, exactly; the last 7 days of minutes are all there.
      expect(await sums(sink, "mesh_traffic_hour")).toEqual(totals(sent));
      const recent = sent.filter((s) => s.windowEndMs - 10_000 >= NOW - 7 * DAY_MS);
      expect(await sums(sink, "mesh_traffic_minute", `minute >= '${new Date(NOW - 7 * DAY_MS).toISOString()}'`)).toEqual(totals(recent));
      // Ledger rows live ledgerDays + 1 day after their window.
      const ledger = await read(sink, "SELECT MIN(window_end) AS w, COUNT(*) AS n FROM mesh_load_ledger");
      expect((ledger[0].w as Date).getTime()).toBeGreaterThanOrEqual(NOW - 10 * DAY_MS);
      expect(Number(ledger[0].n)).toBe(sent.filter((s) => s.windowEndMs >= NOW - 10 * DAY_MS).length);
    } finally {
      await sink.close();
    }
  });

  it("keeps the minutes of an hour that has no hourly rows yet", async () => {
    const sink = new DuckDBSink(join(dir, "uncompacted.duckdb"), undefined, { now: () => NOW, maxHoursPerLoad: 0 });
    await sink.open();
    try {
      const old = summary(1, NOW - 20 * DAY_MS, [series("a", latencies(5))]);
      await sink.load([old]);
      await sink.prune({ minuteDays: 8, hourDays: 400, ledgerDays: 35, maxDaysPerRun: 5 }, NOW);
      expect(await sums(sink, "mesh_traffic_minute")).toEqual(totals([old]));
    } finally {
      await sink.close();
    }
  });

  it("refuses to load a summary older than the ledger retention (its ledger row may be gone) and loads the rest", async () => {
    const c = await startCollector(retentionOn("c"), pino({ level: "silent" }), { listen: false });
    try {
      await c.loader.loadNow();
      const now = Date.now();
      const stale = summary(1, now - (defaultConfig().retention.ledgerDays + 2) * DAY_MS, [series("old", latencies(5))], "p-stale");
      const fresh = summary(2, now - 60_000, [series("new", latencies(5))], "p-fresh");
      // Ingest refuses such a window now; a spool written before it did may still hold one.
      await c.spool.append(Buffer.from(encode(stale)), now);
      await postAccepted(c, [fresh]);
      await c.loader.loadNow();
      expect(await sums(c.sink as DuckDBSink, "mesh_traffic_minute")).toEqual(totals([fresh]));
      expect((await metricValues(c)).get("meshlook_summaries_expired_total")).toBe(1);
      expect(c.spool.segmentCount).toBe(0);
    } finally {
      await c.close();
    }
  });

  it("ingest refuses (400 window_out_of_range, counted) a window it could not load exactly once, so nothing acknowledged is dropped", async () => {
    const c = await startCollector(retentionOn("ingest"), pino({ level: "silent" }), { listen: false });
    try {
      await c.loader.loadNow();
      const now = Date.now();
      const loaderHorizon = now - defaultConfig().retention.ledgerDays * DAY_MS;
      const post = (s: DecodedSummary) =>
        c.app.inject({ method: "POST", url: "/v1/summaries", payload: Buffer.from(encode(s)), headers: { "content-type": SUMMARY_CONTENT_TYPE, authorization: "Bearer t" } });
      // Past the loader's horizon; and inside it by an hour, too close for a load interval or a short outage.
      const refused = [
        summary(1, loaderHorizon - 60_000, [series("beyond", latencies(5))], "p-beyond"),
        summary(2, loaderHorizon + 3_600_000, [series("edge", latencies(5))], "p-edge"),
      ];
      for (const s of refused) {
        const res = await post(s);
        expect([res.statusCode, res.json().error]).toEqual([400, "window_out_of_range"]);
      }
      const late = summary(3, loaderHorizon + DAY_MS + 3_600_000, [series("late", latencies(5))], "p-late");
      await postAccepted(c, [late]);
      await c.loader.loadNow();
      expect(await sums(c.sink as DuckDBSink, "mesh_traffic_minute")).toEqual(totals([late]));
      const m = await metricValues(c);
      expect(m.get("meshlook_summaries_rejected_total{reason=window_out_of_range}")).toBe(2);
      expect(m.get("meshlook_summaries_expired_total")).toBe(0);
    } finally {
      await c.close();
    }
  });

  it("refuses a ledger retention of one day, which would leave ingest no window to accept", () => {
    expect(checkRetention({ ...DEFAULT_RETENTION, minuteDays: 1, ledgerDays: 1 })).toEqual([expect.stringMatching(/^MESHLOOK_RETENTION_LEDGER_DAYS: must be at least 2/)]);
    expect(checkRetention({ ...DEFAULT_RETENTION, minuteDays: 1, ledgerDays: 2 })).toEqual([]);
  });
});
