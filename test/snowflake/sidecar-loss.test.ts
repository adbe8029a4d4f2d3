// mesh_sidecar_loss through the Snowflake sink on the stand-in: each summary's reported loss is written
// once, in the load transaction, however often the batch is retried; the same rows as the DuckDB sink.
import { describe, expect, it } from "vitest";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { SnowflakeSink } from "../../collector/sink/snowflake.ts";
import type { DecodedSummary } from "../../collector/summary.ts";
import { HOUR_TABLE, LOCK_TABLE, LOSS_TABLE, MIGRATIONS, OUTLIER_TABLE, SCHEMA_VERSION_TABLE, createTableSql } from "../../shared/schema.ts";
import { standForSuite, traffic } from "./helpers.ts";

const LOSS_ROWS = `SELECT producer_id, seq, minute, namespace, workload, dropped_requests, dropped_windows, overflow_keys
  FROM ${LOSS_TABLE.name} ORDER BY producer_id, seq`;

/** Every third summary reports dropped windows, every fifth overflowed keys; returns them and the sums. */
function withLoss(summaries: DecodedSummary[]) {
  const sums = { summaries: 0, requests: 0, windows: 0, keys: 0 };
  const out = summaries.map((s, i) => {
    const loss = {
      droppedRequests: i % 3 === 0 ? 100 + i : 0,
      droppedWindows: i % 3 === 0 ? 1 + (i % 2) : 0,
      overflowKeys: i % 5 === 0 ? 7 * i + 1 : 0,
    };
    if (loss.droppedWindows + loss.overflowKeys > 0) sums.summaries++;
    sums.requests += loss.droppedRequests;
    sums.windows += loss.droppedWindows;
    sums.keys += loss.overflowKeys;
    return { ...s, ...loss };
  });
  return { summaries: out, sums };
}

describe("Snowflake sink: mesh_sidecar_loss", () => {
  const s = standForSuite();

  it("counts each summary's loss once across overlapping loads and a retry after a lost COMMIT, as DuckDB does", async () => {
    const { summaries, sums } = withLoss(traffic(21, 3, 6).summaries);
    const first = summaries.slice(0, 10);
    const second = summaries.slice(8);
    const sink = new SnowflakeSink(s.settings(), undefined, { maxAttempts: 4, backoffMs: 10 });
    await sink.open();
    await sink.load(first);
    s.sf.inject({ kind: "drop-after", match: /^COMMIT/ });
    await sink.load(second);
    expect(s.sf.statements.some((st) => st.retry && st.sql === "COMMIT")).toBe(true);
    expect(await sink.load(summaries)).toEqual({ loaded: 0, duplicates: summaries.length, rows: 0 });
    await sink.close();

    const [got] = await s.sf.query(`SELECT COUNT(*) AS n, SUM(dropped_requests) AS r, SUM(dropped_windows) AS w, SUM(overflow_keys) AS k FROM ${LOSS_TABLE.name}`);
    expect([got.n, got.r, got.w, got.k].map(Number)).toEqual([sums.summaries, sums.requests, sums.windows, sums.keys]);

    const duck = new DuckDBSink(":memory:");
    await duck.open();
    await duck.load(first);
    await duck.load(second);
    const duckRows = (await duck.connection.runAndReadAll(LOSS_ROWS)).getRowObjectsJS();
    await duck.close();
    const sfRows = await s.sf.query(LOSS_ROWS);
    expect(sfRows.map((r) => [r.producer_id, Number(r.seq), Number(r.dropped_requests), Number(r.dropped_windows), Number(r.overflow_keys), r.workload])).toEqual(
      duckRows.map((r) => [r.producer_id, Number(r.seq), Number(r.dropped_requests), Number(r.dropped_windows), Number(r.overflow_keys), r.workload]),
    );
    expect(sfRows.map((r) => String(r.minute))).toEqual(duckRows.map((r) => String(r.minute)));

    // Values are bound: the loss INSERT carries placeholders only.
    const inserts = s.sf.statements.filter((st) => st.sql.startsWith(`INSERT INTO ${LOSS_TABLE.name}`));
    expect(inserts.length).toBeGreaterThan(0);
    for (const st of inserts) expect(st.sql).not.toMatch(/sidecar-21/);
  });
});

describe("Snowflake sink: migration 2 on a warehouse created before it", () => {
  const s = standForSuite();

  it("adds mesh_sidecar_loss once, keeps the loaded data, and loads loss rows afterwards", async () => {
    // The warehouse as a collector of the previous release left it: migration 1 applied, one summary.
    await s.sf.query(createTableSql(SCHEMA_VERSION_TABLE, "duckdb"));
    for (const sql of MIGRATIONS[0].statements("duckdb")) await s.sf.query(sql);
    await s.sf.query(`INSERT INTO ${SCHEMA_VERSION_TABLE.name} VALUES (1, 'v1', TIMESTAMP '2026-01-01 00:00:00')`);
    await s.sf.query("INSERT INTO mesh_load_ledger VALUES ('old', 1, TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01', 1, 5, TIMESTAMP '2026-01-01')");
    const from = s.sf.statements.length;
    const [summary] = traffic(22, 1, 1).summaries;
    for (let i = 0; i < 2; i++) {
      const sink = new SnowflakeSink(s.settings(), undefined, { maxAttempts: 2, backoffMs: 10 });
      await sink.open();
      if (i === 0) await sink.load([{ ...summary, droppedRequests: 12, droppedWindows: 1 }]);
      await sink.close();
    }
    // Across both starts, the only tables created besides the (idempotent) version table are the new ones,
    // each once: the loss table (2), the hourly rollup (3), the writer lock (4) and the outlier findings (5).
    const created = s.sf.statements
      .slice(from)
      .filter((st) => /^CREATE TABLE/.test(st.sql))
      .map((st) => st.sql.split(/\s+/, 6)[5]);
    expect(created.filter((t) => t !== SCHEMA_VERSION_TABLE.name)).toEqual([LOSS_TABLE.name, HOUR_TABLE.name, LOCK_TABLE.name, OUTLIER_TABLE.name]);
    expect((await s.sf.query(`SELECT version FROM ${SCHEMA_VERSION_TABLE.name} ORDER BY version`)).map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await s.sf.query("SELECT producer_id FROM mesh_load_ledger WHERE seq = 1 ORDER BY producer_id")).toEqual([{ producer_id: "old" }, { producer_id: summary.producerId }]);
    const [loss] = await s.sf.query(`SELECT COUNT(*) AS n, SUM(dropped_requests) AS r FROM ${LOSS_TABLE.name}`);
    expect([Number(loss.n), Number(loss.r)]).toEqual([1, 12]);
  });
});
