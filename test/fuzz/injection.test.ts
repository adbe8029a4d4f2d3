// Dimension values built to break SQL built by string concatenation — quotes, backslashes, `$$`,
// semicolons, SQL keywords, comments, control characters, NUL and 4-byte UTF-8 — in every string
// dimension, through the ingest route into DuckDB and into the Snowflake stand-in: each value comes back
// byte for byte, and the warehouse holds exactly the tables and rows it should (no statement changed).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { startCollector, type RunningCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import type { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { encodeSummary } from "../../shared/node.ts";
import { FACT_TABLE, LEDGER_TABLE, STRING_DIMENSIONS } from "../../shared/schema.ts";
import { series, summary } from "../collector/helpers.ts";
import { injectRetryingShed } from "../shared/shed-retry.ts";
import { standForSuite } from "../snowflake/helpers.ts";
import { HOSTILE_PRINCIPALS } from "./filter-fuzz.ts";

const VALUES = [
  ...HOSTILE_PRINCIPALS,
  "'",
  "''",
  '"',
  "\\",
  "\\'",
  "$$",
  "$$;$$",
  "$1",
  ":1",
  "?",
  ";",
  "--",
  "/*",
  "*/",
  "%",
  "_",
  "NULL",
  "null",
  "'); DELETE FROM mesh_traffic_minute; --",
  "1; COMMIT; DROP TABLE mesh_load_ledger",
  "\u0000",
  "a\u0000b",
  "\u0008\u000b\u000c\u001f",
  "\u00a0\u2028\u2029\ufeff",
  "🧨🔥",
  "\u{1F600}\u{E0001}\u{10FFFF}",
];

/** Summaries that together put every value into every string dimension (`reporter` included). */
function hostileSummaries() {
  return STRING_DIMENSIONS.map((d, k) => {
    const rows = VALUES.map((v, i) => {
      const s = series("unknown", [1000 + i]); // every other dimension reads `unknown`
      s.dimensions[d] = v;
      return s;
    });
    return summary(k + 1, 1_767_225_600_000 + k * 10_000, rows, "injection");
  });
}

const bytesOf = (xs: Iterable<unknown>) => [...xs].map((v) => Buffer.from(String(v), "utf8").toString("hex")).sort();

async function ingest(c: RunningCollector) {
  const sent = hostileSummaries();
  for (const s of sent) {
    const res = await injectRetryingShed(c.app, {
      method: "POST",
      url: "/v1/summaries",
      payload: Buffer.from(encodeSummary(s)),
      headers: { "content-type": "application/x-meshlook-summary", authorization: "Bearer inj" },
    });
    expect(res.statusCode).toBe(200);
  }
  while (await c.loader.loadNow());
  return sent;
}

async function check(query: (sql: string) => Promise<Record<string, unknown>[]>, sent: ReturnType<typeof hostileSummaries>) {
  for (const d of STRING_DIMENSIONS) {
    const stored = (await query(`SELECT DISTINCT ${d} AS v FROM ${FACT_TABLE.name}`)).map((r) => r.v ?? r.V);
    const expected = new Set([...VALUES, "unknown"]); // `unknown` from the summaries that vary another dimension
    expect(bytesOf(stored), d).toEqual(bytesOf(expected));
  }
  const [facts] = await query(`SELECT COUNT(*) AS n, SUM(requests) AS r FROM ${FACT_TABLE.name}`);
  const [ledger] = await query(`SELECT COUNT(*) AS n FROM ${LEDGER_TABLE.name}`);
  const rows = sent.reduce((n, s) => n + s.series.length, 0);
  expect(Number(facts.n ?? facts.N)).toBe(rows);
  expect(Number(facts.r ?? facts.R)).toBe(rows);
  expect(Number(ledger.n ?? ledger.N)).toBe(sent.length);
}

const config = (env: Record<string, string>) =>
  loadConfig({
    MESHLOOK_DATA_DIR: mkdtempSync(join(tmpdir(), "meshlook-inj-")),
    MESHLOOK_INGEST_TOKENS: "inj",
    MESHLOOK_LOAD_INTERVAL_S: "3600",
    MESHLOOK_RETENTION_MINUTE_DAYS: "0",
    ...env,
  });

describe("hostile dimension values", () => {
  it("DuckDB stores them byte for byte and runs no statement they contain", async () => {
    const c = await startCollector(config({}), pino({ level: "silent" }), { listen: false });
    try {
      const sent = await ingest(c);
      const conn = (c.sink as DuckDBSink).connection;
      const query = async (sql: string) => (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
      await check(query, sent);
      const tables = (await query("SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1")).map((r) => r.t);
      expect(tables).toEqual(expect.arrayContaining([FACT_TABLE.name, LEDGER_TABLE.name]));
    } finally {
      await c.close();
    }
  });

  describe("Snowflake", () => {
    const s = standForSuite();
    it("the stand-in stores them byte for byte and runs no statement they contain", async () => {
      const c = await startCollector(config(s.env()), pino({ level: "silent" }), { listen: false });
      try {
        const sent = await ingest(c);
        await check((sql) => s.sf.query(sql), sent);
      } finally {
        await c.close();
      }
    });
  });
});
