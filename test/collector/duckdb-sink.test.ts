import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { MIGRATIONS, tablesAfterMigrations } from "../../shared/schema.ts";
import { latencies, series, summary } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "meshlook-duckdb-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function rows(sink: DuckDBSink, sql: string) {
  return (await sink.connection.runAndReadAll(sql)).getRowObjectsJS();
}

describe("DuckDB sink", () => {
  it("migrates once, records versions, and creates exactly the columns of shared/schema.ts", async () => {
    const path = join(dir, "migrate.duckdb");
    for (let i = 0; i < 2; i++) {
      const sink = new DuckDBSink(path);
      await sink.open();
      expect(await rows(sink, "SELECT version FROM meshlook_schema_version ORDER BY version")).toEqual(MIGRATIONS.map((m) => ({ version: m.version })));
      for (const [table, cols] of tablesAfterMigrations()) {
        const got = await rows(sink, `SELECT column_name FROM information_schema.columns WHERE table_name = '${table}' ORDER BY ordinal_position`);
        expect(got.map((r) => r.column_name)).toEqual(cols);
      }
      await sink.close();
    }
  });

  it("loads rollup rows with exact totals, skips ledgered and in-batch duplicates, answers MESH_QUANTILE within 1%", async () => {
    const sink = new DuckDBSink(join(dir, "load.duckdb"));
    await sink.open();
    const a1 = latencies(400);
    const a2 = latencies(600);
    const b = latencies(100);
    const s1 = summary(1, 60_000, [series("a", a1), series("b", b)]);
    const s2 = summary(2, 120_000, [series("a", a2)]);
    expect(await sink.load([s1, s1])).toEqual({ loaded: 1, duplicates: 1, rows: 2 });
    expect(await sink.load([s1, s2])).toEqual({ loaded: 1, duplicates: 1, rows: 1 });
    expect(await sink.load([s2])).toEqual({ loaded: 0, duplicates: 1, rows: 0 });
    // A late summary for the already-loaded first minute adds to it.
    const late = latencies(30);
    expect(await sink.load([summary(3, 55_000, [series("b", late)])])).toEqual({ loaded: 1, duplicates: 0, rows: 1 });
    expect(await rows(sink, "SELECT SUM(requests) AS n FROM mesh_traffic_minute WHERE destination_service = 'b' AND minute = TIMESTAMP '1970-01-01 00:00:00'")).toEqual([
      { n: BigInt(b.length + late.length) },
    ]);

    const [tot] = await rows(
      sink,
      `SELECT SUM(requests) AS n, SUM(latency_sum_us) AS sum, MIN(latency_min_us) AS mn, MAX(latency_max_us) AS mx,
              MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.5) AS p50
       FROM mesh_traffic_minute WHERE destination_service = 'a'`,
    );
    const all = [...a1, ...a2].sort((x, y) => x - y);
    expect(tot.n).toBe(BigInt(all.length));
    expect(tot.sum).toBe(BigInt(all.reduce((x, y) => x + y, 0)));
    expect([tot.mn, tot.mx]).toEqual([BigInt(all[0]), BigInt(all[all.length - 1])]);
    for (const [q, got] of [
      [0.99, tot.p99],
      [0.5, tot.p50],
    ] as const) {
      const exact = all[Math.ceil(q * all.length) - 1];
      expect(Math.abs((got as number) - exact) / exact).toBeLessThan(0.01);
    }
    expect(await rows(sink, "SELECT producer_id, seq, series, requests FROM mesh_load_ledger ORDER BY seq")).toEqual([
      { producer_id: "p1", seq: 1n, series: 2, requests: 500n },
      { producer_id: "p1", seq: 2n, series: 1, requests: 600n },
      { producer_id: "p1", seq: 3n, series: 1, requests: 30n },
    ]);
    expect(await rows(sink, "SELECT strftime(minute, '%H:%M') AS m, COUNT(*) AS c FROM mesh_traffic_minute GROUP BY 1 ORDER BY 1")).toEqual([
      { m: "00:00", c: 3n },
      { m: "00:01", c: 1n },
    ]);
    await sink.close();
  });

  it("rolls back the whole batch when a row cannot be written", async () => {
    const sink = new DuckDBSink(join(dir, "rollback.duckdb"));
    await sink.open();
    const bad = summary(7, 60_000, [series("a", [5, 6])]);
    bad.series[0].requests = 1.5; // not an integer: the fact append throws after the ledger lookup
    await expect(sink.load([summary(6, 60_000, [series("a", [1])]), bad])).rejects.toThrow();
    expect(await rows(sink, "SELECT (SELECT COUNT(*) FROM mesh_traffic_minute) AS f, (SELECT COUNT(*) FROM mesh_load_ledger) AS l")).toEqual([{ f: 0n, l: 0n }]);
    expect(await sink.load([summary(6, 60_000, [series("a", [1])])])).toEqual({ loaded: 1, duplicates: 0, rows: 1 });
    await sink.close();
  });
});
