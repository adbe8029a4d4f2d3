// The hourly rollup on the DuckDB sink: loads across three hours, a clock the test moves, and the
// hourly rows checked against the minute table and against the input's own arithmetic.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import pino from "pino";
import { defaultConfig } from "../../collector/config.ts";
import { createDuckDBSink, DuckDBSink } from "../../collector/sink/duckdb.ts";
import type { CompactionReport } from "../../collector/sink/hourly.ts";
import type { DecodedSummary } from "../../collector/summary.ts";
import { exactQuantile } from "../../sim/traffic/truth.ts";
import { bucketOf, latencies, series, summary } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "meshlook-hourly-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const H = 3_600_000;
const H0 = Date.UTC(2026, 0, 5, 10);
const QS = [0.5, 0.9, 0.99, 0.999];

async function rows(sink: DuckDBSink, sql: string) {
  return (await sink.connection.runAndReadAll(sql)).getRowObjectsJS();
}

/** Per (hour, service): counters and percentiles from the minute table and from the hourly table. */
const perHour = (table: "mesh_traffic_minute" | "mesh_traffic_hour") => {
  const hour = table === "mesh_traffic_minute" ? "DATE_TRUNC('hour', minute)" : "hour";
  return `SELECT ${hour} AS hour, destination_service AS service, SUM(requests) AS requests, SUM(errors) AS errors,
    SUM(request_bytes) AS request_bytes, SUM(response_bytes) AS response_bytes, SUM(latency_sum_us) AS latency_sum_us,
    MIN(latency_min_us) AS latency_min_us, MAX(latency_max_us) AS latency_max_us,
    ${QS.map((q, i) => `MESH_QUANTILE(ARRAY_AGG(latency_sketch), ${q}) AS q${i}`).join(", ")}
    FROM ${table} GROUP BY ALL ORDER BY hour, service`;
};

/**
 * The truth for one hour and service, from the raw latencies: the nearest-rank value's bucket estimate
 * 2·base^(i+1)/(1+base) at the coarsest scale in play (docs/schema.md), computed without the shared
 * sketch code (the rank by the ground truth's exact rationals).
 */
function truth(values: number[], scale: number): number[] {
  const sorted = [...values].sort((a, b) => a - b);
  return QS.map((q) => {
    const v = exactQuantile(sorted, q);
    if (v === 0) return 0;
    const base = 2 ** (2 ** -scale);
    return (2 * 2 ** ((bucketOf(v, scale) + 1) / 2 ** scale)) / (1 + base);
  });
}

describe("hourly rollup (DuckDB sink)", () => {
  it("compacts closed hours exactly, bounded per load, recompacts an hour a late summary reaches, and is idempotent", async () => {
    let now = H0 + 20 * 60_000;
    const sink = new DuckDBSink(join(dir, "hourly.duckdb"), undefined, { now: () => now, maxHoursPerLoad: 2 });
    await sink.open();
    const values = new Map<string, number[]>(); // `${hour}|${service}` → latencies
    let seq = 0;
    const add = (hour: number, minute: number, service: string, vals: number[], scale = 6, producer = "p1") => {
      const s = summary(++seq, H0 + hour * H + minute * 60_000 + 10_000, [series(service, vals, scale)], producer);
      const k = `${hour}|${service}`;
      values.set(k, [...(values.get(k) ?? []), ...vals]);
      return s;
    };
    // Three hours, two services, two producers, minutes with several rows; one producer at scale 4.
    const batch: DecodedSummary[] = [];
    for (let h = 0; h < 3; h++) {
      for (const m of [0, 7, 7, 59]) {
        batch.push(add(h, m, "a", latencies(40)));
        batch.push(add(h, m, "b", latencies(15), h === 1 ? 4 : 6, "p2"));
      }
    }
    await sink.load(batch);
    // No hour is closed yet at H0 + 20 min.
    expect(await rows(sink, "SELECT COUNT(*) AS n FROM mesh_traffic_hour")).toEqual([{ n: 0n }]);

    // The clock passes the end of hour 2 plus the grace; a load of open-hour traffic triggers compaction,
    // two hours per load, oldest first.
    now = H0 + 3 * H + 5 * 60_000;
    await sink.load([add(3, 1, "a", latencies(10))]);
    const hoursIn = async () => (await rows(sink, "SELECT DISTINCT hour FROM mesh_traffic_hour ORDER BY hour")).map((r) => (r.hour as Date).getTime());
    expect(await hoursIn()).toEqual([H0, H0 + H]);
    expect((await sink.compact()).map((d) => d.getTime())).toEqual([H0 + 2 * H]);
    expect(await hoursIn()).toEqual([H0, H0 + H, H0 + 2 * H]);

    const check = async () => {
      const fromMinutes = (await rows(sink, perHour("mesh_traffic_minute"))).filter((r) => (r.hour as Date).getTime() < H0 + 3 * H);
      const fromHours = await rows(sink, perHour("mesh_traffic_hour"));
      expect(fromHours).toEqual(fromMinutes);
      for (const r of fromHours) {
        const h = ((r.hour as Date).getTime() - H0) / H;
        const vals = values.get(`${h}|${r.service}`)!;
        expect(r.requests).toBe(BigInt(vals.length));
        expect(r.latency_sum_us).toBe(BigInt(vals.reduce((x, y) => x + y, 0)));
        expect(QS.map((_, i) => r[`q${i}`])).toEqual(truth(vals, r.service === "b" && h === 1 ? 4 : 6));
      }
      // Across all compacted hours the merged hourly sketches answer as the minute sketches do.
      const span = `WHERE %s < TIMESTAMP '${new Date(H0 + 3 * H).toISOString().slice(0, 19).replace("T", " ")}'`;
      const q99 = (table: string, col: string) => `SELECT MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p FROM ${table} ${span.replace("%s", col)}`;
      expect(await rows(sink, q99("mesh_traffic_hour", "hour"))).toEqual(await rows(sink, q99("mesh_traffic_minute", "minute")));
    };
    await check();
    const snapshot = "SELECT * FROM mesh_traffic_hour ORDER BY ALL";
    const before = await rows(sink, snapshot);
    // Hour 0 has 2 minute rows per series and minute; every hourly row counts the rows it came from.
    expect(await rows(sink, "SELECT SUM(minute_rows) AS n FROM mesh_traffic_hour")).toEqual(
      await rows(sink, `SELECT COUNT(*) AS n FROM mesh_traffic_minute WHERE minute < TIMESTAMP '${new Date(H0 + 3 * H).toISOString().slice(0, 19).replace("T", " ")}'`),
    );

    // Running it again changes nothing.
    now += 10 * 60_000;
    expect(await sink.compact()).toEqual([]);
    expect(await rows(sink, snapshot)).toEqual(before);

    // A late summary for hour 1 (already compacted) makes hour 1, and only it, stale.
    await sink.load([add(1, 30, "a", latencies(25)), add(1, 31, "c", latencies(5))]);
    await check();
    const after = await rows(sink, snapshot);
    const untouched = (rs: Record<string, unknown>[]) => rs.filter((r) => (r.hour as Date).getTime() !== H0 + H);
    expect(untouched(after)).toEqual(untouched(before));
    const recompacted = after.filter((r) => (r.hour as Date).getTime() === H0 + H);
    expect(recompacted.map((r) => r.destination_service).sort()).toEqual(["a", "b", "c"]);
    for (const r of recompacted) expect((r.compacted_at as Date).getTime()).toBe(now);
    expect(await sink.compact()).toEqual([]);

    // Loads of open-hour traffic skip the stale-hour scan while no hour closed: a minute row written
    // behind the sink's back into hour 0 stays out of the rollup until the next hour closes.
    const hourRows = "SELECT SUM(minute_rows) AS n FROM mesh_traffic_hour";
    const [{ n: settledRows }] = await rows(sink, hourRows);
    await sink.connection.run(
      `INSERT INTO mesh_traffic_minute SELECT * FROM mesh_traffic_minute WHERE minute = TIMESTAMP '${new Date(H0).toISOString().slice(0, 19).replace("T", " ")}' LIMIT 1`,
    );
    await sink.load([add(3, 40, "a", latencies(3))]);
    expect(await rows(sink, hourRows)).toEqual([{ n: settledRows }]);
    now = H0 + 4 * H + 5 * 60_000;
    await sink.load([add(4, 1, "a", latencies(3))]);
    expect(await rows(sink, hourRows)).toEqual([{ n: (settledRows as bigint) + 1n + 2n }]); // hour 0's extra row, hour 3's two rows
    await sink.close();
  });

  it("closes an hour MESHLOOK_HOURLY_GRACE_S after its end, and compacts nothing with MESHLOOK_HOURLY_MAX_HOURS_PER_LOAD=0", async () => {
    let now = H0 + H + 10 * 60_000;
    const reports: CompactionReport[] = [];
    const open = async (name: string, hourlyGraceS: number, hourlyMaxHoursPerLoad = 24) => {
      const config = { ...defaultConfig(), duckdbPath: join(dir, name), hourlyGraceS, hourlyMaxHoursPerLoad };
      const sink = createDuckDBSink(config, pino({ level: "silent" }), { hourly: { now: () => now, onCompaction: (r) => reports.push(r) } }) as DuckDBSink;
      await sink.open();
      return sink;
    };
    let seq = 0;
    const minuteOf = (hour: number, minute: number) => summary(++seq, H0 + hour * H + minute * 60_000 + 10_000, [series("a", latencies(5))]);
    const hoursIn = async (sink: DuckDBSink) => (await rows(sink, "SELECT DISTINCT hour FROM mesh_traffic_hour ORDER BY hour")).map((r) => ((r.hour as Date).getTime() - H0) / H);
    const compacted = () => reports.reduce((n, r) => n + r.hours, 0);

    // 10 minutes past the end of hour 0: closed with the default 5-minute grace, open with a 20-minute one.
    const short = await open("grace-300.duckdb", 300);
    const long = await open("grace-1200.duckdb", 1200);
    await short.load([minuteOf(0, 30), minuteOf(1, 5)]);
    expect(await hoursIn(short)).toEqual([0]);
    expect(compacted()).toBe(1);
    await long.load([minuteOf(0, 30), minuteOf(1, 5)]);
    expect(await hoursIn(long)).toEqual([]);
    expect(compacted()).toBe(1);
    now = H0 + H + 20 * 60_000;
    await long.load([minuteOf(1, 6)]);
    expect(await hoursIn(long)).toEqual([0]);
    expect(compacted()).toBe(2);
    expect(reports.every((r) => r.failure === undefined && r.waiting === 0)).toBe(true);

    // Turned off: loads of closed hours leave the rollup empty and run no compaction at all.
    const off = await open("off.duckdb", 300, 0);
    const before = reports.length;
    await off.load([minuteOf(0, 30)]);
    now += 3 * H;
    await off.load([minuteOf(1, 5)]);
    expect(await hoursIn(off)).toEqual([]);
    expect(await rows(off, "SELECT COUNT(*) AS n FROM mesh_traffic_minute")).toEqual([{ n: 2n }]);
    expect(reports.length).toBe(before);
    for (const s of [short, long, off]) await s.close();
  });
});
