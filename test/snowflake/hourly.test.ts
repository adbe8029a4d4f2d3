// The hourly rollup through the Snowflake sink on the stand-in: two sinks (two sessions, as two collector
// replicas) load and compact the same hours; the hourly rows must equal what the minute table says, once,
// and every statement must parse as Snowflake SQL (checked after the suite by standForSuite).
import { describe, expect, it } from "vitest";
import { SnowflakeSink } from "../../collector/sink/snowflake.ts";
import type { DecodedSummary } from "../../collector/summary.ts";
import { DIMENSIONS, FACT_TABLE, HOUR_TABLE } from "../../shared/schema.ts";
import { standForSuite, traffic } from "./helpers.ts";

const H = 3_600_000;
const dims = DIMENSIONS.join(", ");

/** Per (hour, series): counters, extremes and percentiles, from either table, in a stable order. */
const perHourSeries = (table: string, hour: string, before: string) => `SELECT ${hour} AS hour, ${dims},
  SUM(requests) AS requests, SUM(errors) AS errors, SUM(request_bytes) AS request_bytes, SUM(response_bytes) AS response_bytes,
  SUM(latency_sum_us) AS latency_sum_us, MIN(latency_min_us) AS latency_min_us, MAX(latency_max_us) AS latency_max_us,
  MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.5) AS p50, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99,
  MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.999) AS p999
  FROM ${table} WHERE ${hour} < TIMESTAMP '${before}' GROUP BY ${hour}, ${dims} ORDER BY ALL`;

describe("Snowflake sink: hourly rollup", () => {
  const s = standForSuite({ migrate: true });

  it("two replicas compact the same closed hours into one exact set of rows; a late summary recompacts its hour; a rerun changes nothing", async () => {
    // Seeded traffic spread over three hours (by sequence number), from the minute of the helper on.
    const t = traffic(31, 4, 9);
    const shifted = t.summaries.map((x): DecodedSummary => ({ ...x, windowStartMs: x.windowStartMs + (x.seq % 3) * H, windowEndMs: x.windowEndMs + (x.seq % 3) * H }));
    const firstHour = Math.floor(shifted[0].windowStartMs / H) * H;
    let now = firstHour + 3 * H + 6 * 60_000;
    const options = { backoffMs: 10, maxAttempts: 8, hourly: { now: () => now } };
    const a = new SnowflakeSink(s.settings(), undefined, options);
    const b = new SnowflakeSink(s.settings(), undefined, options);
    await Promise.all([a.open(), b.open()]);

    // Each replica loads half the summaries (overlapping at the middle) and compacts at the end of its load.
    const half = Math.floor(shifted.length / 2);
    await Promise.all([a.load(shifted.slice(0, half + 3)), b.load(shifted.slice(half - 3))]);
    // Both compacted, possibly the same hours; whatever ran last rebuilt from every committed minute.
    await Promise.all([a.compact(), b.compact()]);

    const before = new Date(firstHour + 3 * H).toISOString().slice(0, 19).replace("T", " ");
    const fromMinutes = () => s.sf.query(perHourSeries(FACT_TABLE.name, "DATE_TRUNC('hour', minute)", before));
    const fromHours = () => s.sf.query(perHourSeries(HOUR_TABLE.name, "hour", before));
    const expectExact = async () => {
      expect(await fromHours()).toEqual(await fromMinutes());
      // One row per (hour, series): no replica's rows doubled another's.
      const [dup] = await s.sf.query(`SELECT COUNT(*) AS n FROM (SELECT hour, ${dims} FROM ${HOUR_TABLE.name} GROUP BY ALL HAVING COUNT(*) > 1)`);
      expect(Number(dup.n)).toBe(0);
    };
    await expectExact();
    const [tot] = await s.sf.query(`SELECT SUM(requests) AS n, COUNT(DISTINCT hour) AS hours FROM ${HOUR_TABLE.name}`);
    expect([Number(tot.n), Number(tot.hours)]).toEqual([t.requests, 3]);

    const snapshot = `SELECT * FROM ${HOUR_TABLE.name} ORDER BY ALL`;
    const settled = await s.sf.query(snapshot);
    now += 10 * 60_000;
    expect(await a.compact()).toEqual([]);
    expect(await b.compact()).toEqual([]);
    expect(await s.sf.query(snapshot)).toEqual(settled);

    // A late summary for the middle hour, through replica b: its load recompacts that hour only.
    const [late] = traffic(32, 1, 1).summaries.map((x) => ({
      ...x,
      producerId: "late-sidecar",
      windowStartMs: firstHour + H + 20 * 60_000,
      windowEndMs: firstHour + H + 20 * 60_000 + 10_000,
    }));
    await b.load([late]);
    await expectExact();
    const changed = (await s.sf.query(snapshot)).filter(
      (r) => !settled.some((o) => JSON.stringify(o, (_, v) => (typeof v === "bigint" ? String(v) : v)) === JSON.stringify(r, (_, v) => (typeof v === "bigint" ? String(v) : v))),
    );
    expect(new Set(changed.map((r) => (r.hour as Date).getTime()))).toEqual(new Set([firstHour + H]));
    const [after] = await s.sf.query(`SELECT SUM(requests) AS n FROM ${HOUR_TABLE.name}`);
    expect(Number(after.n)).toBe(t.requests + late.series.reduce((n, x) => n + x.requests, 0));

    // The hourly statements bind their values: none carries a timestamp literal.
    for (const st of s.sf.statements.filter((x) => x.sql.includes(HOUR_TABLE.name) && /^(DELETE|INSERT)/.test(x.sql))) expect(st.sql).not.toMatch(/'\d{4}-/);
    await Promise.all([a.close(), b.close()]);
  });

  it("a failed compaction neither fails nor undoes the load; the next load compacts the hour", async () => {
    const [x, y] = traffic(33, 1, 2).summaries;
    const hour = Date.UTC(2026, 2, 1, 8);
    const at = (sm: DecodedSummary, minute: number): DecodedSummary => ({ ...sm, windowStartMs: hour + minute * 60_000, windowEndMs: hour + minute * 60_000 + 10_000 });
    const sink = new SnowflakeSink(s.settings(), undefined, { backoffMs: 10, hourly: { now: () => hour + 2 * H } });
    await sink.open();
    const stamp = new Date(hour).toISOString().slice(0, 19).replace("T", " ");
    const hourly = async () => Number((await s.sf.query(`SELECT COALESCE(SUM(requests), 0) AS n FROM ${HOUR_TABLE.name} WHERE hour = TIMESTAMP '${stamp}'`))[0].n);
    s.sf.inject({ kind: "error", match: /^INSERT INTO mesh_traffic_hour/, code: "000625", sqlState: "57014", message: "Statement reached its statement or warehouse timeout" });
    expect(await sink.load([at(x, 10)])).toMatchObject({ loaded: 1, duplicates: 0 });
    const requests = (sm: DecodedSummary) => sm.series.reduce((n, k) => n + k.requests, 0);
    const [minute] = await s.sf.query(`SELECT SUM(requests) AS n FROM ${FACT_TABLE.name} WHERE DATE_TRUNC('hour', minute) = TIMESTAMP '${stamp}'`);
    expect(Number(minute.n)).toBe(requests(x));
    expect(await hourly()).toBe(0); // rolled back with its transaction
    await sink.load([at(y, 20)]);
    expect(await hourly()).toBe(requests(x) + requests(y));
    await sink.close();
  });
});
