// A summary the warehouse refuses for good must not hold back anything else: it goes to the quarantine
// (on disk, counted on /metrics, listed, reloadable after a fix) while the rest of its batch loads; a
// transient failure still retries the whole batch. Also: ledger keys the DuckDB client would hand back
// altered (a leading U+FEFF) still match, so a retried summary is a duplicate, not a constraint error.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { startCollector } from "../../collector/collector.ts";
import { Quarantine } from "../../collector/quarantine.ts";
import { SUMMARY_CONTENT_TYPE } from "../../collector/server.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import type { Sink } from "../../collector/sink/types.ts";
import { createTableSql, LEDGER_TABLE } from "../../shared/schema.ts";
import { encode, latencies, metricValues, postAccepted, series, summary, testCollectorConfig, totals } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "meshlook-quarantine-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (name: string) => testCollectorConfig(dir, name);

/** A ledger that refuses producer ids starting with "poison": a constraint the warehouse enforces. */
async function poisonedWarehouse(path: string, refuse: boolean): Promise<void> {
  const sink = new DuckDBSink(path);
  await sink.open();
  const c = sink.connection;
  await c.run(`DROP TABLE ${LEDGER_TABLE.name}`);
  const ddl = createTableSql(LEDGER_TABLE, "duckdb");
  await c.run(refuse ? ddl.replace(/\n\)$/, ",\n  CHECK (producer_id NOT LIKE 'poison%')\n)") : ddl);
  await sink.close();
}

const summed = async (sink: Sink) =>
  Object.fromEntries(
    (
      await (sink as DuckDBSink).connection.runAndReadAll(
        "SELECT destination_service AS s, SUM(requests) AS n, SUM(latency_sum_us) AS l FROM mesh_traffic_minute GROUP BY 1 ORDER BY 1",
      )
    )
      .getRowObjectsJS()
      .map((r) => [r.s, { requests: Number(r.n), latencySumUs: Number(r.l) }]),
  );

describe("DuckDB ledger keys", () => {
  it("counts a retried summary whose producer id starts with U+FEFF as a duplicate", async () => {
    const sink = new DuckDBSink(":memory:");
    await sink.open();
    try {
      const bom = summary(1, 60_000, [series("a", latencies(10))], "\uFEFFsidecar");
      expect(await sink.load([bom])).toMatchObject({ loaded: 1, duplicates: 0 });
      const other = summary(1, 60_000, [series("b", latencies(10))], "sidecar");
      expect(await sink.load([bom, other])).toMatchObject({ loaded: 1, duplicates: 1 });
      expect(await sink.loadRollup!([], [{ caller: "", producerId: "\uFEFFsidecar", seq: 1, windowStartMs: 0, windowEndMs: 1, series: 0, requests: 0 }], [])).toBeNull();
      expect(await summed(sink)).toEqual(totals([bom, other]));
    } finally {
      await sink.close();
    }
  });
});

describe("quarantine", () => {
  it("keeps a refused summary aside, loads the rest of its batch, and reloads it exactly once after a fix", async () => {
    const cfg = config("poison");
    await poisonedWarehouse(cfg.duckdbPath, true);
    const c = await startCollector(cfg, pino({ level: process.env.DEBUG_Q ? "debug" : "silent" }), { listen: false });
    const good = [1, 2, 3, 4, 5].map((k) => summary(k, 60_000 * k + 10_000, [series(`s${k % 2}`, latencies(20))], `sidecar-${k}`));
    const bad = summary(9, 120_000, [series("s0", latencies(7))], "poison-1");
    const later = summary(6, 400_000, [series("s1", latencies(5))], "sidecar-6");
    try {
      await c.loader.loadNow(); // the start-up cycle, so every summary below goes into one batch
      await postAccepted(c, [good[0], good[1], bad, good[2], good[3], good[4]]);
      await c.loader.loadNow();
      expect(await summed(c.sink)).toEqual(totals(good));
      expect(c.spool.segmentCount).toBe(0); // nothing left to retry every cycle
      const listed = c.quarantine.list();
      expect(listed.map((n) => [n.producerId, n.seq, n.reason])).toEqual([["poison-1", 9, "constraint"]]);
      const m = await metricValues(c);
      expect(m.get("meshlook_summaries_quarantined_total{reason=constraint}")).toBe(1);
      expect(m.get("meshlook_quarantine_entries")).toBe(1);
      // Later loads are not held back.
      await c.app.inject({
        method: "POST",
        url: "/v1/summaries",
        payload: Buffer.from(encode(later)),
        headers: { "content-type": SUMMARY_CONTENT_TYPE, authorization: "Bearer t" },
      });
      await c.loader.loadNow();
      expect(await summed(c.sink)).toEqual(totals([...good, later]));
    } finally {
      await c.close();
    }

    // The operator fixes the warehouse, queues the entry (as `npm run quarantine -- reload` does) and
    // restarts; the next load cycle loads it, once.
    const ledgerRows = await (async () => {
      const sink = new DuckDBSink(cfg.duckdbPath);
      await sink.open();
      const rows = (await sink.connection.runAndReadAll(`SELECT * FROM ${LEDGER_TABLE.name}`)).getRows();
      await sink.close();
      return rows;
    })();
    await poisonedWarehouse(cfg.duckdbPath, false);
    {
      const sink = new DuckDBSink(cfg.duckdbPath);
      await sink.open();
      const a = await sink.connection.createAppender(LEDGER_TABLE.name);
      for (const r of ledgerRows) {
        for (const v of r) a.appendValue(v);
        a.endRow();
      }
      a.flushSync();
      a.closeSync();
      await sink.close();
    }
    const q = new Quarantine(join(cfg.dataDir, "quarantine"));
    expect(() => q.queueReload(["no-such-id"])).toThrow(/no-such-id/);
    expect(q.queueReload()).toHaveLength(1);
    const c2 = await startCollector(cfg, pino({ level: "silent" }), { listen: false });
    try {
      await c2.loader.loadNow();
      expect(c2.quarantine.list()).toEqual([]);
      expect(c2.quarantine.queued()).toEqual([]);
      expect(await summed(c2.sink)).toEqual(totals([...good, later, bad]));
      expect((await metricValues(c2)).get("meshlook_quarantine_entries")).toBe(0);
    } finally {
      await c2.close();
    }
  });

  it("retries the whole batch after a transient failure and quarantines nothing", async () => {
    const cfg = config("transient");
    let failures = 1;
    class Flaky extends DuckDBSink {
      override async load(xs: Parameters<Sink["load"]>[0]) {
        if (failures-- > 0) throw new Error("IO Error: Could not write file: No space left on device");
        return super.load(xs);
      }
      override async loadRollup() {
        return null; // every batch takes the replay path, where a refusal would be isolated
      }
    }
    const sink = new Flaky(cfg.duckdbPath);
    const c = await startCollector(cfg, pino({ level: "silent" }), { listen: false, sink });
    const sent = [1, 2, 3].map((k) => summary(k, 60_000 * k + 10_000, [series("x", latencies(10))], `t-${k}`));
    try {
      await c.loader.loadNow();
      for (const s of sent)
        await c.app.inject({ method: "POST", url: "/v1/summaries", payload: Buffer.from(encode(s)), headers: { "content-type": SUMMARY_CONTENT_TYPE, authorization: "Bearer t" } });
      await c.loader.loadNow();
      expect(c.quarantine.list()).toEqual([]);
      expect(c.spool.segmentCount).toBeGreaterThan(0);
      await c.loader.loadNow();
      expect(await summed(sink)).toEqual(totals(sent));
      expect(c.spool.segmentCount).toBe(0);
    } finally {
      await c.close();
    }
  });
});
