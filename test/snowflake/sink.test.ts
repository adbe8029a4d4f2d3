// The Snowflake sink against the stand-in: same totals and percentiles as the DuckDB sink, idempotent
// retries (including a response lost after COMMIT), chunked array binds, hostile values round-tripping,
// and every statement sent parsing as Snowflake SQL.
import { describe, expect, it } from "vitest";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { SnowflakeSink, SnowflakeSinkError, type SnowflakeSinkOptions } from "../../collector/sink/snowflake.ts";
import { FACT_TABLE } from "../../shared/schema.ts";
import { HOSTILE_VALUES, TOTALS_SQL, exactQuantile, readerConnection, standForSuite, traffic, type Stand } from "./helpers.ts";

const quiet = { maxAttempts: 4, backoffMs: 10 };

async function totalsVia(s: Stand): Promise<Record<string, unknown>[]> {
  const reader = await readerConnection(s);
  try {
    return await reader.query(TOTALS_SQL);
  } finally {
    await reader.close();
  }
}

describe("Snowflake sink on the stand-in", () => {
  const s = standForSuite();

  it("loads the same totals and percentiles as the DuckDB sink, and both match the exact input", async () => {
    const t = traffic(1, 6, 9);
    const sink = new SnowflakeSink(s.settings(), undefined, quiet);
    await sink.open();
    // Split into two loads, with one summary repeated across them and one inside a batch.
    const first = t.summaries.slice(0, 30);
    const second = [...t.summaries.slice(29), t.summaries[40]];
    const r1 = await sink.load(first);
    const r2 = await sink.load(second);
    expect(r1.loaded + r2.loaded).toBe(t.summaries.length);
    expect(r1.duplicates + r2.duplicates).toBe(2);
    await sink.close();

    const duck = new DuckDBSink(":memory:");
    await duck.open();
    await duck.load(first);
    await duck.load(second);
    const duckRows = (await duck.connection.runAndReadAll(TOTALS_SQL)).getRowObjectsJS();
    await duck.close();

    const sfRows = await totalsVia(s);
    expect(sfRows.length).toBe(duckRows.length);
    sfRows.forEach((row, i) => {
      const d = duckRows[i];
      expect(row.SOURCE_WORKLOAD).toBe(d.source_workload);
      expect(row.DESTINATION_SERVICE).toBe(d.destination_service);
      expect(row.RESPONSE_CODE).toBe(Number(d.response_code));
      for (const m of ["requests", "errors", "request_bytes", "latency_sum_us", "latency_min_us", "latency_max_us"]) {
        expect(row[m.toUpperCase()], m).toBe(Number(d[m]));
      }
      expect(row.P50).toBe(d.p50);
      expect(row.P99).toBe(d.p99);
    });

    // Independent truth: the input itself.
    const all = await s.sf.query(`SELECT SUM(requests) AS requests, SUM(errors) AS errors, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99 FROM ${FACT_TABLE.name}`);
    expect(Number(all[0].requests)).toBe(t.requests);
    expect(Number(all[0].errors)).toBe(t.errors);
    const exact = exactQuantile(t.latencies, 0.99);
    expect(Math.abs((all[0].p99 as number) - exact) / exact).toBeLessThan(0.0055);
    const ledger = await s.sf.query("SELECT COUNT(*) AS n, COUNT(DISTINCT producer_id || '/' || seq) AS d FROM mesh_load_ledger");
    expect(Number(ledger[0].n)).toBe(t.summaries.length);
    expect(Number(ledger[0].d)).toBe(t.summaries.length);
  });

  it("round-trips quotes, $$, semicolons and SQL keywords in dimension values", async () => {
    const got = await s.sf.query(`SELECT DISTINCT source_workload AS v FROM ${FACT_TABLE.name} UNION SELECT DISTINCT destination_service FROM ${FACT_TABLE.name}`);
    const values = new Set(got.map((r) => r.v));
    for (const h of HOSTILE_VALUES) expect(values.has(h), h).toBe(true);
    // Bound, never spliced: no statement text carries a value.
    for (const st of s.sf.statements) for (const h of HOSTILE_VALUES.slice(0, 5)) expect(st.sql.includes(h)).toBe(false);
  });
});

describe("Snowflake sink load mechanics", () => {
  const s = standForSuite({ migrate: true });

  const requestsIn = async () => Number((await s.sf.query(`SELECT COALESCE(SUM(requests), 0) AS n FROM ${FACT_TABLE.name}`))[0].n);

  /** Opens a sink, runs `body` with it, then checks the facts grew by exactly the expected requests. */
  async function trial(options: SnowflakeSinkOptions, expected: number, body: (sink: SnowflakeSink) => Promise<void>): Promise<void> {
    const before = await requestsIn();
    const sink = new SnowflakeSink(s.settings(), undefined, { ...quiet, ...options });
    await sink.open();
    try {
      await body(sink);
    } finally {
      await sink.close();
    }
    expect((await requestsIn()) - before).toBe(expected);
  }

  it("chunks array binds below the statement limit", async () => {
    const t = traffic(2, 10, 6);
    const from = s.sf.statements.length;
    let rows = 0;
    await trial({ maxBindsPerStatement: 300 }, t.requests, async (sink) => {
      rows = (await sink.load(t.summaries)).rows;
    });
    const inserts = s.sf.statements.slice(from).filter((st) => /^INSERT INTO mesh_traffic_minute/.test(st.sql));
    expect(inserts.length).toBeGreaterThan(1);
    for (const st of inserts) expect(st.bindRows * FACT_TABLE.columns.length).toBeLessThanOrEqual(300);
    expect(inserts.reduce((n, st) => n + st.bindRows, 0)).toBe(rows);
  });

  it("stays below the driver's array-binding threshold and Snowflake's 1 MB statement size with the default limits", async () => {
    // One summary with more series than one INSERT may carry (⌊65280 / 30⌋ = 2176 rows, and fewer by bytes).
    const [base] = traffic(7, 1, 1).summaries;
    const series = Array.from({ length: 2300 }, (_, i) => ({ ...base.series[0], dimensions: { ...base.series[0].dimensions, source_workload: `w${i}` } }));
    const from = s.sf.statements.length;
    await trial({}, 2300 * base.series[0].requests, async (sink) => {
      expect((await sink.load([{ ...base, producerId: "wide-sidecar", series }])).rows).toBe(2300);
    });
    const sent = s.sf.statements.slice(from);
    expect(sent.some((st) => /^PUT\b/i.test(st.sql))).toBe(false);
    const inserts = sent.filter((st) => /^INSERT INTO mesh_traffic_minute/.test(st.sql));
    expect(inserts.length).toBeGreaterThan(1);
    expect(inserts.reduce((n, st) => n + st.bindRows, 0)).toBe(2300);
    for (const st of inserts) {
      expect(st.bindRows * FACT_TABLE.columns.length).toBeLessThanOrEqual(65280);
      expect(st.bytes).toBeLessThanOrEqual(1_000_000);
    }
  });

  it("counts a bound string's JSON escapes against the 1 MB statement size", async () => {
    // Ingest takes any valid UTF-8 as a dimension value; the driver sends each bound value as a JSON
    // string, where a quote takes 2 bytes and a control character 6 (\u0001).
    const [base] = traffic(9, 1, 1).summaries;
    const escaped = (i: number) => `${'"'.repeat(60)}${"\u0001".repeat(60)}${i}`;
    const series = Array.from({ length: 2300 }, (_, i) => ({ ...base.series[0], dimensions: { ...base.series[0].dimensions, source_workload: escaped(i) } }));
    const from = s.sf.statements.length;
    await trial({}, 2300 * base.series[0].requests, async (sink) => {
      expect((await sink.load([{ ...base, producerId: "escaping-sidecar", series }])).rows).toBe(2300);
    });
    const inserts = s.sf.statements.slice(from).filter((st) => /^INSERT INTO mesh_traffic_minute/.test(st.sql));
    expect(inserts.reduce((n, st) => n + st.bindRows, 0)).toBe(2300);
    for (const st of inserts) expect(st.bytes).toBeLessThanOrEqual(1_000_000);
  });

  it("rides out HTTP 503s: the driver retries the request under the same id", async () => {
    const t = traffic(8, 1, 2);
    await trial({}, t.requests, async (sink) => {
      s.sf.inject({ kind: "http", status: 503, match: /^MERGE INTO mesh_load_ledger/ });
      expect((await sink.load(t.summaries)).loaded).toBe(t.summaries.length);
    });
    const [refused, retried] = s.sf.statements.filter((st) => /^MERGE INTO mesh_load_ledger/.test(st.sql)).slice(-2);
    expect(retried.requestId).toBe(refused.requestId);
  });

  it("retries a transient failure inside the transaction without counting anything twice", async () => {
    const t = traffic(3, 3, 4);
    const retries: string[] = [];
    await trial({ onRetry: (e) => retries.push(`${e.reason}:${e.code}`) }, t.requests, async (sink) => {
      s.sf.inject({ kind: "error", match: /^INSERT INTO mesh_traffic_minute/, code: "000625", sqlState: "57014", message: "Statement reached its statement or warehouse timeout" });
      expect((await sink.load(t.summaries)).loaded).toBe(t.summaries.length);
    });
    expect(retries).toEqual(["transient:000625"]);
  });

  it("surfaces a permanent error, leaves nothing behind, and loads everything on the next try", async () => {
    const t = traffic(4, 2, 3);
    await trial({}, t.requests, async (sink) => {
      const before = await requestsIn();
      s.sf.inject({ kind: "error", match: /^INSERT INTO mesh_traffic_minute/, code: "003001", sqlState: "42501", message: "Insufficient privileges to operate on table" });
      const err = (await sink.load(t.summaries).catch((e) => e)) as SnowflakeSinkError;
      expect(err).toBeInstanceOf(SnowflakeSinkError);
      expect(err.reason).toBe("sql");
      expect(err.code).toBe("003001");
      expect(await requestsIn()).toBe(before);
      expect((await sink.load(t.summaries)).loaded).toBe(t.summaries.length);
    });
  });

  it("survives a response lost after COMMIT: the driver's retry is answered from the first execution", async () => {
    const t = traffic(5, 2, 3);
    await trial({}, t.requests, async (sink) => {
      s.sf.inject({ kind: "drop-after", match: /^COMMIT/ });
      expect((await sink.load(t.summaries)).loaded).toBe(t.summaries.length);
      expect(s.sf.statements.some((st) => st.retry && st.sql === "COMMIT")).toBe(true);
      // And the collector retrying the whole batch (it never learned the outcome) loads nothing twice.
      expect(await sink.load(t.summaries)).toEqual({ loaded: 0, duplicates: t.summaries.length, rows: 0 });
    });
  });

  it("renews an expired session token and keeps loading", async () => {
    const t = traffic(6, 1, 2);
    await trial({}, t.requests, async (sink) => {
      s.sf.expireSessionTokens();
      expect((await sink.load(t.summaries)).loaded).toBe(t.summaries.length);
      await sink.ping();
    });
  });
});
