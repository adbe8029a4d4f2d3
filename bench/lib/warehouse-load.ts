// Warehouse load throughput of the DuckDB sink (ledger lookup, minute rollup, fact and ledger rows, one
// transaction per batch), against the floor of bulk-appending the same fact rows from Node into a table of
// the same shape with DuckDB's appender (no dedup, no rollup, no ledger).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { FACT_TABLE } from "../../shared/schema.ts";
import { latencies, series, summary } from "../../test/collector/helpers.ts";

export interface LoadFigures {
  rows: number;
  summaries: number;
  sinkRowsPerS: number;
  /** Series of the input summaries loaded per second (each row merges several). */
  sinkSeriesPerS: number;
  appenderRowsPerS: number;
}

export async function measureWarehouseLoad(options: { summaries?: number; series?: number; batch?: number } = {}): Promise<LoadFigures> {
  const count = options.summaries ?? 400;
  const perSummary = options.series ?? 100;
  const batch = options.batch ?? 100;
  const dir = mkdtempSync(join(tmpdir(), "meshlook-bench-load-"));
  const sink = new DuckDBSink(join(dir, "bench.duckdb"));
  try {
    await sink.open();
    // Each summary: one of 20 sidecars' 10 s window, `perSummary` series of its own with 50 latencies each;
    // six windows a minute, so the rollup merges up to six summaries into each row.
    // The windows lie in the current hour, as live traffic does: the sink compacts an hour into
    // mesh_traffic_hour only once it has closed (docs/schema.md), which these loads then never pay for.
    const values = latencies(50);
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const summaries = Array.from({ length: count }, (_, i) =>
      summary(
        1 + Math.floor(i / 20),
        hour + (1 + Math.floor(i / 20)) * 10_000,
        Array.from({ length: perSummary }, (_, k) => series(`svc-${k}-${i % 20}.shop.svc.cluster.local`, values)),
        `pod-${i % 20}`,
      ),
    );
    let rows = 0;
    const t0 = performance.now();
    for (let i = 0; i < summaries.length; i += batch) rows += (await sink.load(summaries.slice(i, i + batch))).rows;
    const sinkS = (performance.now() - t0) / 1000;

    const c = sink.connection;
    const facts = (await c.runAndReadAll(`SELECT * FROM ${FACT_TABLE.name}`)).getRows();
    await c.run(`CREATE TABLE raw_copy AS SELECT * FROM ${FACT_TABLE.name} LIMIT 0`);
    const t1 = performance.now();
    const appender = await c.createAppender("raw_copy");
    for (const row of facts) {
      for (const v of row) appender.appendValue(v);
      appender.endRow();
    }
    appender.flushSync();
    appender.closeSync();
    const appendS = (performance.now() - t1) / 1000;
    return { rows, summaries: count, sinkRowsPerS: rows / sinkS, sinkSeriesPerS: (count * perSummary) / sinkS, appenderRowsPerS: facts.length / appendS };
  } finally {
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
