// A collector whose Snowflake account does not answer: it listens at once (liveness), acknowledges and
// spools summaries, reports warehouse_unreachable on /readyz, and when the account appears loads every
// summary exactly once. The account sits behind a TCP relay that first swallows connections (a route
// that never answers, the worst case: no refusal ever comes back) and later forwards them to a stand-in.
import { mkdtempSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { startCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import { SUMMARY_CONTENT_TYPE } from "../../collector/server.ts";
import { encodeSummary } from "../../shared/node.ts";
import { FACT_TABLE, LEDGER_TABLE } from "../../shared/schema.ts";
import { metricValues } from "../collector/helpers.ts";
import { stand, traffic, type Stand } from "./helpers.ts";
import { fetchRetryingShed } from "../shared/shed-retry.ts";

/** TCP relay: holds every connection open unanswered until `forwardTo` is set, then pipes new ones there. */
async function relay(): Promise<{ url: string; swallowed: () => number; forwardTo: (port: number) => void; close: () => Promise<void> }> {
  let target: number | undefined;
  let swallowed = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => undefined);
    if (target === undefined) {
      swallowed++;
      return;
    }
    const upstream = createConnection(target, "127.0.0.1");
    sockets.add(upstream);
    upstream.on("error", () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    swallowed: () => swallowed,
    forwardTo: (p) => (target = p),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe("collector with Snowflake unreachable", () => {
  let s: Stand | undefined;
  afterAll(async () => s?.sf.stop());

  it("listens at once, spools and acknowledges, reports warehouse_unreachable, then loads everything exactly once", async () => {
    s = await stand();
    const r = await relay();
    const config = loadConfig({
      ...s.env(),
      MESHLOOK_SNOWFLAKE_ACCESS_URL: r.url,
      MESHLOOK_SNOWFLAKE_CONNECT_TIMEOUT_S: "2",
      MESHLOOK_DATA_DIR: mkdtempSync(join(tmpdir(), "meshlook-sfu-")),
      MESHLOOK_INGEST_TOKENS: "t0ken",
      MESHLOOK_LOAD_INTERVAL_S: "3600",
      MESHLOOK_PORT: "0",
      MESHLOOK_HOST: "127.0.0.1",
    });
    const c = await startCollector(config, pino({ level: "silent" }));
    try {
      // Started while the first login is still unanswered: nothing waited for the warehouse.
      const m0 = await metricValues(c);
      expect(m0.get("meshlook_load_failures_total{reason=transient}")).toBe(0);
      expect((await fetch(`${c.url}/healthz`)).status).toBe(200);
      await expect.poll(() => r.swallowed()).toBeGreaterThan(0);

      const t = traffic(77, 3, 3);
      const post = (body: Uint8Array) =>
        fetch(`${c.url}/v1/summaries`, { method: "POST", body: Buffer.from(body), headers: { "content-type": SUMMARY_CONTENT_TYPE, authorization: "Bearer t0ken" } });
      for (const x of t.summaries) expect((await fetchRetryingShed(() => post(encodeSummary(x)))).status).toBe(200);
      const ready = await fetch(`${c.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { error: string }).error).toBe("warehouse_unreachable");

      // A cycle while the account still swallows connections: the connect gives up, nothing is lost.
      await c.loader.loadNow();
      expect(c.spool.segmentCount).toBeGreaterThan(0);

      // The account appears; a sidecar also retries one summary it already sent.
      r.forwardTo(Number(new URL(s.sf.url).port));
      expect((await post(encodeSummary(t.summaries[0]))).status).toBe(200);
      await expect.poll(async () => (await c.loader.loadNow(), await requests(s!)), { timeout: 30_000, interval: 100 }).toBe(t.requests);
      const [ledger] = await s.sf.query(`SELECT COUNT(*) AS n, COUNT(DISTINCT producer_id || ':' || seq) AS d FROM ${LEDGER_TABLE.name}`);
      expect(Number(ledger.n)).toBe(t.summaries.length);
      expect(Number(ledger.d)).toBe(t.summaries.length);
      expect((await fetch(`${c.url}/readyz`)).status).toBe(200);
    } finally {
      await c.close();
      await r.close();
    }
  }, 60_000);
});

const requests = async (s: Stand) => Number((await s.sf.query(`SELECT COALESCE(SUM(requests), 0) AS n FROM ${FACT_TABLE.name}`))[0].n);
