// The collector configured with MESHLOOK_SINK=snowflake (environment variables only, as in a
// deployment): summaries posted in the wire format are spooled, loaded into the stand-in, readable with
// exact totals — hostile dimension values intact — and a retried post is counted once.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { startCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import { SUMMARY_CONTENT_TYPE } from "../../collector/server.ts";
import { encodeSummary } from "../../shared/node.ts";
import { FACT_TABLE } from "../../shared/schema.ts";
import { metricValues, postAccepted } from "../collector/helpers.ts";
import { HOSTILE_VALUES, standForSuite, traffic } from "./helpers.ts";

describe("collector with the Snowflake sink", () => {
  const s = standForSuite();

  it("ingests, spools and loads into Snowflake, counting a retried summary once", async () => {
    const config = loadConfig({
      ...s.env(),
      MESHLOOK_DATA_DIR: mkdtempSync(join(tmpdir(), "meshlook-sfc-")),
      MESHLOOK_INGEST_TOKENS: "t0ken",
      MESHLOOK_LOAD_INTERVAL_S: "3600", // loads happen when the test says so
    });
    expect(config.sink).toBe("snowflake");
    const c = await startCollector(config, pino({ level: "silent" }), { listen: false });
    try {
      expect(c.sink.kind).toBe("snowflake");
      const t = traffic(31, 3, 4);
      const post = (body: Uint8Array) =>
        c.app.inject({ method: "POST", url: "/v1/summaries", payload: Buffer.from(body), headers: { "content-type": SUMMARY_CONTENT_TYPE, authorization: "Bearer t0ken" } });
      for (const summary of t.summaries) expect((await post(encodeSummary(summary))).statusCode).toBeLessThan(300);
      // A sidecar retry of an acknowledged summary, after the first copy was loaded.
      await c.loader.loadNow();
      expect((await post(encodeSummary(t.summaries[0]))).statusCode).toBeLessThan(300);
      await c.loader.loadNow();
      expect((await c.app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);

      const [row] = await s.sf.query(`SELECT SUM(requests) AS requests, SUM(errors) AS errors FROM ${FACT_TABLE.name}`);
      expect(Number(row.requests)).toBe(t.requests);
      expect(Number(row.errors)).toBe(t.errors);
      const stored = new Set((await s.sf.query(`SELECT DISTINCT source_workload AS v FROM ${FACT_TABLE.name}`)).map((r) => r.v));
      const sent = new Set(t.summaries.flatMap((x) => x.series.map((se) => se.dimensions.source_workload)));
      expect(stored).toEqual(sent);
      expect([...sent].some((v) => HOSTILE_VALUES.includes(String(v)))).toBe(true);
    } finally {
      await c.close();
    }
  });

  it("counts sink retries and failed loads by the sink's reason on /metrics", async () => {
    const config = loadConfig({ ...s.env(), MESHLOOK_DATA_DIR: mkdtempSync(join(tmpdir(), "meshlook-sfc-")), MESHLOOK_INGEST_TOKENS: "t0ken", MESHLOOK_LOAD_INTERVAL_S: "3600" });
    const c = await startCollector(config, pino({ level: "silent" }), { listen: false });
    try {
      await c.loader.loadNow();
      const t = traffic(32, 2, 2);
      await postAccepted(c, t.summaries, "t0ken");
      const before = await requestsLoaded();
      // A permanent error: the load fails, the spool keeps the summaries.
      s.sf.inject({ kind: "error", match: /^INSERT INTO mesh_traffic_minute/, code: "003001", sqlState: "42501", message: "Insufficient privileges to operate on table" });
      await c.loader.loadNow();
      expect(await requestsLoaded()).toBe(before);
      // A transient one, retried inside the next load, which then succeeds.
      s.sf.inject({ kind: "error", match: /^INSERT INTO mesh_traffic_minute/, code: "000625", sqlState: "57014", message: "Statement reached its statement or warehouse timeout" });
      await c.loader.loadNow();
      expect(await requestsLoaded()).toBe(before + t.requests);
      const m = await metricValues(c);
      expect(m.get("meshlook_load_failures_total{reason=sql}")).toBe(1);
      expect(m.get("meshlook_load_retries_total{reason=transient}")).toBe(1);
      // Every other reason is exported, at 0.
      const counted = [...m].filter(([k]) => /^meshlook_load_(failures|retries)_total/.test(k));
      expect(counted.filter(([, v]) => v > 0)).toHaveLength(2);
      expect(counted.map(([k]) => k).sort()).toEqual(
        [
          ...["auth", "config", "conflict", "other", "sql", "transient"].map((r) => `meshlook_load_failures_total{reason=${r}}`),
          "meshlook_load_retries_total{reason=conflict}",
          "meshlook_load_retries_total{reason=transient}",
        ].sort(),
      );
    } finally {
      await c.close();
    }
  });

  it("loads a cycle over several segments' folds exactly once, through a failed cycle and a retried transaction", async () => {
    const config = loadConfig({ ...s.env(), MESHLOOK_DATA_DIR: mkdtempSync(join(tmpdir(), "meshlook-sfc-")), MESHLOOK_INGEST_TOKENS: "t0ken", MESHLOOK_LOAD_INTERVAL_S: "3600" });
    config.spoolSegmentBytes = 1024; // a few summaries a segment, so one cycle merges several folds
    const c = await startCollector(config, pino({ level: "silent" }), { listen: false });
    try {
      await c.loader.loadNow();
      const loadBatch = c.sink.loadBatch.bind(c.sink);
      const folded: boolean[] = [];
      // A fold refuses to roll up a subset of its summaries (batch.ts foldBatch); a batch read back from disk does not.
      c.sink.loadBatch = (b) => (folded.push(b.parts(b.entries.map((_, i) => i > 0)) === null), loadBatch(b));
      const sent = { requests: 0, errors: 0 };
      const postAll = async (t: ReturnType<typeof traffic>) => {
        await postAccepted(c, t.summaries, "t0ken");
        expect(c.spool.segmentCount).toBeGreaterThan(3);
        sent.requests += t.requests;
        sent.errors += t.errors;
      };
      const loaded = async () => {
        const [row] = await s.sf.query(`SELECT COALESCE(SUM(requests), 0) AS requests, COALESCE(SUM(errors), 0) AS errors FROM ${FACT_TABLE.name}`);
        return { requests: Number(row.requests), errors: Number(row.errors) };
      };
      const before = await loaded();

      // The merged fold's rows are inserted, then the transaction fails for good: the next cycle reads the
      // segments back from disk.
      await postAll(traffic(33, 4, 6));
      s.sf.inject({ kind: "error", match: /^INSERT INTO mesh_traffic_minute/, code: "003001", sqlState: "42501", message: "Insufficient privileges to operate on table" });
      await c.loader.loadNow();
      expect(await loaded()).toEqual(before);
      await c.loader.loadNow();
      expect(folded).toEqual([true, false]);
      expect(await loaded()).toEqual({ requests: before.requests + sent.requests, errors: before.errors + sent.errors });

      // A transient failure retried inside the load: the retry inserts the same merged fold again.
      await postAll(traffic(34, 4, 6));
      s.sf.inject({ kind: "error", match: /^INSERT INTO mesh_traffic_minute/, code: "000625", sqlState: "57014", message: "Statement reached its statement or warehouse timeout" });
      await c.loader.loadNow();
      expect(folded).toEqual([true, false, true]);
      expect((await metricValues(c)).get("meshlook_load_retries_total{reason=transient}")).toBe(1);
      expect(await loaded()).toEqual({ requests: before.requests + sent.requests, errors: before.errors + sent.errors });
      expect(c.spool.segmentCount).toBe(0);
    } finally {
      await c.close();
    }
  });

  const requestsLoaded = async () => Number((await s.sf.query(`SELECT COALESCE(SUM(requests), 0) AS n FROM ${FACT_TABLE.name}`))[0].n);
});
