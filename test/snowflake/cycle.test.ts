// A load cycle on Snowflake: one transaction whatever the spool holds (it used to commit every 1 MiB of
// replayed spool on its own, with a stale-hour scan after each), one row per (minute, series), one
// compaction; ledger keys compared by the warehouse (a producer id starting with U+FEFF, which the
// stand-in's DuckDB client drops when it hands strings back); and a summary the warehouse refuses for
// good goes to the quarantine while the rest of its batch loads.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { startCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import { SnowflakeSink } from "../../collector/sink/snowflake.ts";
import { Spool } from "../../collector/spool.ts";
import { FACT_TABLE, LEDGER_TABLE, createTableSql } from "../../shared/schema.ts";
import { encode, latencies, postAccepted, replayLoader, series, summary, totals } from "../collector/helpers.ts";
import { standForSuite } from "./helpers.ts";

const factTotals = async (query: (sql: string) => Promise<Record<string, unknown>[]>) =>
  Object.fromEntries(
    (await query(`SELECT destination_service AS s, SUM(requests) AS n, SUM(latency_sum_us) AS l FROM ${FACT_TABLE.name} GROUP BY 1 ORDER BY 1`)).map((r) => [
      r.s,
      { requests: Number(r.n), latencySumUs: Number(r.l) },
    ]),
  );

describe("Snowflake load cycle", () => {
  const s = standForSuite({ migrate: true });

  it("loads more than 1 MiB of spool left by an earlier process in one transaction, one row per (minute, series), with one stale-hour scan", async () => {
    // 60 sidecars × 6 windows of 10 s (the minutes of the current hour, so no hour closes meanwhile) ×
    // 60 series each: more spool than the 1 MiB the replay used to commit at a time, over 2 minutes.
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const values = latencies(40);
    const input = Array.from({ length: 60 * 6 }, (_, i) => {
      const sidecar = i % 60;
      const window = Math.floor(i / 60);
      return summary(
        window + 1,
        hour + 10_000 * (window + 1),
        Array.from({ length: 60 }, (_, k) => series(`svc-${k}-${sidecar % 3}`, values)),
        `sidecar-${sidecar}`,
      );
    });
    const dir = mkdtempSync(join(tmpdir(), "meshlook-sfcycle-"));
    const spool = await Spool.open(join(dir, "spool"), { segmentBytes: 1 << 20 });
    for (const x of input) await spool.append(encode(x), 0);
    await spool.close();
    const reopened = await Spool.open(join(dir, "spool"), { segmentBytes: 1 << 20 });
    const sealed = await reopened.seal();
    expect(sealed.reduce((n, id) => n + reopened.sizeOf(id), 0)).toBeGreaterThan(1 << 20);

    // The ground truth, independent of the rollup: windows ending at 10–50 s fall in the hour's first
    // minute, the one ending at 60 s in the second; series differ by destination_service only.
    const keys = new Set(input.map((x) => `${Math.floor((x.windowEndMs - 1) / 60_000)}`).flatMap((m) => Array.from({ length: 60 * 3 }, (_, k) => `${m}/${k}`)));
    const sink = new SnowflakeSink(s.settings());
    const loader = replayLoader(reopened, sink, { maxBatchBytes: 256 << 20 });
    const from = s.sf.statements.length;
    try {
      expect(await loader.loadNow()).toBe(false);
      const sent = s.sf.statements.slice(from).map((st) => st.sql);
      expect(sent.filter((q) => /^BEGIN/.test(q))).toHaveLength(1);
      expect(sent.filter((q) => /^UPDATE mesh_load_lock/.test(q))).toHaveLength(1);
      expect(sent.filter((q) => /^SELECT m\.hour/.test(q))).toHaveLength(1);
      expect(await factTotals(s.sf.query)).toEqual(totals(input));
      const [{ n }] = await s.sf.query(`SELECT COUNT(*) AS n FROM ${FACT_TABLE.name}`);
      expect(Number(n)).toBe(keys.size);
      expect(reopened.segmentCount).toBe(0);
    } finally {
      await sink.close();
    }
  });

  it("compares ledger keys in the warehouse: a producer id starting with U+FEFF loads once, and its retry is a duplicate", async () => {
    await s.sf.query(`DELETE FROM ${FACT_TABLE.name}`);
    const sink = new SnowflakeSink(s.settings());
    try {
      const bom = summary(1, 60_000, [series("bom-a", latencies(10))], "\uFEFFsidecar");
      expect(await sink.load([bom])).toMatchObject({ loaded: 1, duplicates: 0 });
      const other = summary(1, 60_000, [series("bom-b", latencies(10))], "sidecar");
      expect(await sink.load([bom, other])).toMatchObject({ loaded: 1, duplicates: 1 });
      expect(await factTotals(s.sf.query)).toEqual(totals([bom, other]));
    } finally {
      await sink.close();
    }
  });

  it("quarantines a summary the warehouse refuses for good and loads the rest of its batch", async () => {
    await s.sf.query(`DELETE FROM ${FACT_TABLE.name}`);
    const config = loadConfig({
      ...s.env(),
      MESHLOOK_DATA_DIR: mkdtempSync(join(tmpdir(), "meshlook-sfq-")),
      MESHLOOK_INGEST_TOKENS: "t",
      MESHLOOK_LOAD_INTERVAL_S: "3600",
      MESHLOOK_RETENTION_MINUTE_DAYS: "0",
    });
    const c = await startCollector(config, pino({ level: "silent" }), { listen: false });
    // Stands for a value Snowflake will not store: the stand-in's ledger refuses producer ids starting
    // with "poison" (a DuckDB CHECK, answered as Snowflake's data error 100038 / SQLSTATE 22018).
    const ledgerDdl = createTableSql(LEDGER_TABLE, "duckdb").replace(/,\s*PRIMARY KEY\s*\([^)]*\)/i, "");
    try {
      await c.loader.loadNow(); // opens the sink: the tables exist
      await s.sf.query(`DROP TABLE ${LEDGER_TABLE.name}`);
      await s.sf.query(ledgerDdl.replace(/\n\)$/, ",\n  CHECK (producer_id NOT LIKE 'poison%')\n)"));
      const good = [1, 2, 3, 4, 5].map((k) => summary(k, 60_000 * k + 10_000, [series(`q${k % 2}`, latencies(20))], `sidecar-q${k}`));
      const bad = summary(9, 120_000, [series("q0", latencies(7))], "poison-1");
      await postAccepted(c, [good[0], good[1], bad, good[2], good[3], good[4]]);
      await c.loader.loadNow();
      expect(await factTotals(s.sf.query)).toEqual(totals(good));
      expect(c.quarantine.list().map((e) => [e.producerId, e.seq, e.reason])).toEqual([["poison-1", 9, "value"]]);
      expect(c.spool.segmentCount).toBe(0);
    } finally {
      await c.close();
      await s.sf.query(`DROP TABLE ${LEDGER_TABLE.name}`);
      await s.sf.query(ledgerDdl);
    }
  });
});
