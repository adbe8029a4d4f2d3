// Delivery of findings by a running collector: the loader's hook runs detection, the read route serves
// the findings behind an operator's reader token, /metrics carries a gauge per kind without identities, and the
// webhook gets each new finding once — after retrying a refusal — with Slack-readable text.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector, type RunningCollector } from "../../collector/collector.ts";
import { defaultConfig } from "../../collector/config.ts";
import { OUTLIERS_PATH } from "../../collector/outliers/routes.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { loadHourly, scenario, type Scenario } from "./scenario.ts";

let dir: string;
let sc: Scenario;
let c: RunningCollector;
let hook: Server;
const received: { status: number; body: Record<string, unknown> }[] = [];
let refuseNext = 1;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meshlook-outlier-delivery-"));
  sc = scenario(true, 3, 2 * 3600);
  const clock = { now: sc.startMs };
  const sink = new DuckDBSink(join(dir, "meshlook.duckdb"), undefined, { now: () => clock.now });
  await sink.open();
  await loadHourly(sink, sc.summaries, clock);
  await sink.close();

  hook = createServer((req, res) => {
    let text = "";
    req.on("data", (d) => (text += d));
    req.on("end", () => {
      const status = refuseNext-- > 0 ? 503 : 200;
      received.push({ status, body: JSON.parse(text) });
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  const env = {
    MESHLOOK_OUTLIER_BASELINE_HOURS: "1",
    MESHLOOK_OUTLIER_SETTLE_S: "0",
    MESHLOOK_OUTLIER_INTERVAL_S: "0",
    MESHLOOK_OUTLIER_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`,
    MESHLOOK_OUTLIER_WEBHOOK_FORMAT: "slack",
    MESHLOOK_OUTLIER_WEBHOOK_RETRY_DELAY_MS: "10",
  };
  const readerTokensFile = join(dir, "reader-tokens");
  writeFileSync(readerTokensFile, `${OPERATOR} %\n${SCOPED} shop\n`);
  c = await startCollector(
    { ...defaultConfig(), dataDir: dir, spoolDir: join(dir, "spool"), duckdbPath: join(dir, "meshlook.duckdb"), ingestTokens: ["tok"], readerTokensFile, loadIntervalS: 3600 },
    pino({ level: "silent" }),
    { listen: false, env },
  );
}, 120_000);

afterAll(async () => {
  await c?.close();
  await new Promise((r) => hook?.close(r));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const metric = async (name: string) => (await c.app.inject({ method: "GET", url: "/metrics" })).body.split("\n").filter((l) => l.startsWith(name));
const until = async (cond: () => boolean) => {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

const OPERATOR = "operator-reader-token-0123456789";
const SCOPED = "scoped-reader-token-0123456789";

describe("outlier delivery", () => {
  it("the loader runs detection after a load", async () => {
    const runs = async () => Number((await metric('meshlook_outlier_runs_total{result="ok"}'))[0].split(" ")[1]);
    await c.loader.loadNow(); // the start-up cycle (and its run) settles first
    const before = await runs();
    await c.loader.loadNow();
    expect(await runs()).toBe(before + 1);
  });

  it("serves the findings to operators' reader tokens only, and counts them per kind without identities", async () => {
    const snapshot = await c.outliers!.run(sc.endMs);
    expect(snapshot.findings.length).toBeGreaterThanOrEqual(sc.planted.length);
    expect((await c.app.inject({ method: "GET", url: OUTLIERS_PATH })).statusCode).toBe(401);
    expect((await c.app.inject({ method: "GET", url: OUTLIERS_PATH, headers: { authorization: "Bearer nope" } })).statusCode).toBe(401);
    // An ingest token reads nothing; a namespace-scoped reader would see other namespaces' identities.
    expect((await c.app.inject({ method: "GET", url: OUTLIERS_PATH, headers: { authorization: "Bearer tok" } })).statusCode).toBe(401);
    expect((await c.app.inject({ method: "GET", url: OUTLIERS_PATH, headers: { authorization: `Bearer ${SCOPED}` } })).statusCode).toBe(401);
    const res = await c.app.inject({ method: "GET", url: `${OUTLIERS_PATH}?kind=new_edge`, headers: { authorization: `Bearer ${OPERATOR}` } });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const newEdge = sc.planted.find((p) => p.kind === "new_edge")!;
    expect(body.findings.map((f: { sourcePrincipal: string; destinationService: string }) => [f.sourcePrincipal, f.destinationService])).toEqual([
      [newEdge.sourcePrincipal, newEdge.destinationService],
    ]);
    expect(body.recentEnd).toBe(new Date(sc.endMs).toISOString());
    expect((await c.app.inject({ method: "GET", url: `${OUTLIERS_PATH}?kind=bogus`, headers: { authorization: `Bearer ${OPERATOR}` } })).statusCode).toBe(400);

    const gauges = await metric("meshlook_outliers{");
    const count = (kind: string) => snapshot.findings.filter((f) => f.kind === kind).length;
    for (const kind of ["error_rate", "latency", "traffic_drop", "traffic_surge", "new_edge", "plaintext"]) {
      expect(gauges).toContain(`meshlook_outliers{kind="${kind}"} ${count(kind)}`);
    }
    expect((await c.app.inject({ method: "GET", url: "/metrics" })).body).not.toContain("spiffe://");
  });

  it("POSTs new findings once, retrying a refusal, with Slack text; an ongoing finding is not sent again", async () => {
    await until(() => received.some((r) => r.status === 200));
    expect(received.map((r) => r.status)).toEqual([503, 200]);
    const sent = received[1].body as { text: string; findings: { id: string; exploreUrl: string }[] };
    expect(sent.findings.map((f) => f.id).sort()).toEqual(
      c
        .outliers!.current()
        .findings.map((f) => f.id)
        .sort(),
    );
    expect(sent.text).toContain("new outlier finding");
    expect(sent.findings.every((f) => f.exploreUrl.startsWith("/explore/meshlook/mesh_traffic?"))).toBe(true);

    await c.outliers!.run(sc.endMs + 60_000);
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toHaveLength(2);
    // The delivery is recorded in the table, so a restarted collector would not send it again either.
    const rows = (await (c.sink as DuckDBSink).connection.runAndReadAll("SELECT COUNT(*) FROM mesh_outlier WHERE notified_at IS NULL AND status = 'open'")).getRows();
    expect(Number(rows[0][0])).toBe(0);
  });
});
