// One hostile or compromised sidecar against a collector in process (real spool, DuckDB warehouse): each
// attack from the security review (docs/security.md) is run and must leave every other sidecar's data
// loading, and the attacker's claims about other workloads refused.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { startCollector, type RunningCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import type { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { encodeSummary } from "../../shared/node.ts";
import { FACT_TABLE } from "../../shared/schema.ts";
import { metricValues } from "../collector/helpers.ts";
import { inbound, overflowSummary, principalOf, producerOf, summaryOf, windowEndNear, xfccFor } from "./attack-cases.ts";

const dirs: string[] = [];
const running: RunningCollector[] = [];
afterAll(async () => {
  for (const c of running) await c.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const TOKEN = "attack-test-token-0123456789";
const SUMMARY_TYPE = "application/x-meshlook-summary";

/** A collector in process with `env` on top of a fresh data dir; `logs` collects its log lines. */
async function collector(env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-attack-"));
  dirs.push(dir);
  const logs: { level: number; msg: string }[] = [];
  const sinkStream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split("\n").filter(Boolean)) logs.push(JSON.parse(line));
      done();
    },
  });
  const config = loadConfig({ MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: TOKEN, MESHLOOK_LOAD_INTERVAL_S: "3600", ...env });
  const c = await startCollector(config, pino({ level: "info" }, sinkStream), { listen: false });
  running.push(c);
  const post = (body: Uint8Array, headers: Record<string, string> = {}) =>
    c.app.inject({ method: "POST", url: "/v1/summaries", headers: { "content-type": SUMMARY_TYPE, authorization: `Bearer ${TOKEN}`, ...headers }, payload: Buffer.from(body) });
  const sql = async (q: string) => (await (c.sink as DuckDBSink).connection.runAndReadAll(q)).getRowObjectsJS();
  return { c, dir, logs, post, sql };
}

const now = () => windowEndNear(Date.now());

describe("counter overflow", () => {
  it("refuses a summary claiming more than 2^40 requests with a 400 naming the reason", async () => {
    // Encoded first: see "goes to the quarantine" below on why not while the collector runs.
    const evil = overflowSummary(producerOf("evil-0", "shop"), 1, now(), "requests");
    const { post, c } = await collector();
    const res = await post(evil);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: "too_many_requests" });
    expect((await metricValues(c)).get("meshlook_summaries_rejected_total{reason=too_many_requests}")).toBe(1);
  });

  it("saturates a measure summed past BIGINT, so the load (and everyone else's data) goes through", async () => {
    const end = now();
    // 1,100 identical series of 2^53 - 1 request bytes: the sum exceeds int64, which failed every load.
    // Encoded first: see "goes to the quarantine" below on why not while the collector runs.
    const evil = overflowSummary(producerOf("evil-0", "shop"), 1, end, "requestBytes");
    const honest = encodeSummary(summaryOf(producerOf("reviews-1", "shop"), 1, end, [inbound("shop", "unknown", "reviews", [1200, 3400, 5600])]));
    const { post, c, sql } = await collector();
    expect((await post(evil)).statusCode).toBe(200);
    expect((await post(honest)).statusCode).toBe(200);
    await c.loader.loadNow();
    const rows = await sql(
      `SELECT destination_workload AS w, SUM(requests)::DOUBLE AS requests, MAX(request_bytes)::DOUBLE AS bytes FROM ${FACT_TABLE.name} GROUP BY ALL ORDER BY w`,
    );
    expect(rows).toEqual([
      { w: "overflow", requests: 1100, bytes: Number.MAX_SAFE_INTEGER },
      { w: "reviews", requests: 3, bytes: 300 },
    ]);
  });

  it("saturates the hourly compaction's sums instead of overflowing BIGINT", async () => {
    const { c, sql } = await collector();
    const sink = c.sink as DuckDBSink;
    await c.loader.loadNow(); // opens the warehouse
    const hour = Date.UTC(2026, 0, 5, 10);
    // 1,100 saturated minute rows of one series in one hour (many loads' worth): their SUM exceeds int64.
    const end = hour + 60_000;
    for (let load = 0; load < 11; load++) await sink.load([summaryOfMany(end, load)]);
    await sink.compact(hour + 3 * 3_600_000);
    const [h] = await sql(`SELECT request_bytes::DOUBLE AS b, requests::DOUBLE AS r FROM mesh_traffic_hour`);
    expect(h).toEqual({ b: Number.MAX_SAFE_INTEGER, r: 1100 * 11 });
  });
});

/** A decoded summary of 1,100 identical series (already saturating within the load's rollup). */
function summaryOfMany(end: number, seq: number) {
  const s = { ...inbound("shop", "unknown", "overflow", [0]), requestBytes: Number.MAX_SAFE_INTEGER };
  return summaryOf(
    producerOf("evil-0", "shop"),
    seq,
    end,
    Array.from({ length: 1100 }, () => s),
  );
}

describe("caller identity", () => {
  const reviews = principalOf("shop", "reviews");
  const end = now();
  const honest = (seq: number, principal = reviews) => encodeSummary(summaryOf(producerOf("reviews-1", "shop"), seq, end, [inbound("shop", principal, "reviews", [1200, 3400])]));

  it("refuses, with 403 and a count, a summary claiming another namespace's producer or workload", async () => {
    const { post, c } = await collector({ MESHLOOK_TRUST_XFCC: "true" });
    const as = (p: string, clientSent?: string) => ({ "x-forwarded-client-cert": xfccFor(p, clientSent) });
    expect((await post(honest(1), as(reviews))).statusCode).toBe(200);
    // The payments pod's producer id, sent from shop.
    const forged = encodeSummary(summaryOf(producerOf("payments-0", "payments"), 2, end, [inbound("payments", "unknown", "payments", [10])]));
    const res = await post(forged, as(reviews));
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: "identity_mismatch" });
    // A shop producer whose series speak for payments' workload.
    const planted = encodeSummary(summaryOf(producerOf("reviews-1", "shop"), 3, end, [inbound("payments", "unknown", "payments", [10])]));
    expect((await post(planted, as(reviews))).statusCode).toBe(403);
    // Another principal than the caller's in its own series.
    expect((await post(honest(4, principalOf("shop", "cart")), as(reviews))).statusCode).toBe(403);
    // An XFCC element the client wrote itself comes first and is ignored: the sidecar's own is the last.
    const spoofed = await post(forged, as(reviews, `By=x;URI=${principalOf("payments", "payments")}`));
    expect(spoofed.statusCode).toBe(403);
    // Nor does an unbalanced quote in the client's element hide the comma the sidecar wrote before its own.
    const unbalanced = await post(forged, as(reviews, `URI=${principalOf("payments", "payments")};Subject="`));
    expect(unbalanced.json()).toMatchObject({ error: "identity_mismatch" });
    // Without the sidecar's header there is no identity to bind to.
    expect((await post(honest(5))).json()).toMatchObject({ error: "no_caller_identity" });
    const m = await metricValues(c);
    expect(m.get("meshlook_summaries_rejected_total{reason=identity_mismatch}")).toBe(5);
    expect(m.get("meshlook_summaries_rejected_total{reason=no_caller_identity}")).toBe(1);
  });

  it("keys the load ledger by caller: a sibling's copy of a (producer, seq) neither stands in for the real summary nor is dropped as its duplicate", async () => {
    const { post, c, sql } = await collector({ MESHLOOK_TRUST_XFCC: "true" });
    const cart = { "x-forwarded-client-cert": xfccFor(principalOf("shop", "cart")) };
    const real = { "x-forwarded-client-cert": xfccFor(reviews) };
    // Series that name no principal pass the identity check for any caller in the namespace.
    const anon = (seq: number, n: number) =>
      encodeSummary(
        summaryOf(producerOf("reviews-1", "shop"), seq, end, [
          inbound(
            "shop",
            "unknown",
            "reviews",
            Array.from({ length: n }, () => 99),
          ),
        ]),
      );
    // Seq 7: the sibling gets in first, while nothing is loaded; seq 8: after the real one was loaded and
    // ingest no longer tracks it. Either way the real summary loads, and its retry is a duplicate.
    expect((await post(anon(7, 1), cart)).statusCode).toBe(200);
    expect((await post(anon(7, 2), real)).statusCode).toBe(200);
    expect((await post(anon(8, 4), real)).statusCode).toBe(200);
    await c.loader.loadNow();
    expect((await post(anon(8, 8), cart)).statusCode).toBe(200);
    expect((await post(anon(8, 4), real)).json()).toMatchObject({ status: "accepted" }); // spooled again: only the ledger knows it
    await c.loader.loadNow();
    const ledger = await sql("SELECT caller, seq, requests FROM mesh_load_ledger ORDER BY seq, caller");
    expect(ledger.map((r) => [r.caller, Number(r.seq), Number(r.requests)])).toEqual([
      [principalOf("shop", "cart"), 7, 1],
      [reviews, 7, 2],
      [principalOf("shop", "cart"), 8, 8],
      [reviews, 8, 4],
    ]);
    const [facts] = await sql(`SELECT SUM(requests) AS n FROM ${FACT_TABLE.name}`);
    expect(Number(facts.n)).toBe(1 + 2 + 8 + 4);
  });

  it("binds a namespace-scoped token to its namespaces where XFCC is not available", async () => {
    const { dir } = await collector();
    const file = join(dir, "tokens");
    writeFileSync(file, "shop-token-0123456789abcdef namespaces=shop\n");
    const { post } = await collector({ MESHLOOK_INGEST_TOKENS: "", MESHLOOK_INGEST_TOKENS_FILE: file });
    const auth = { authorization: "Bearer shop-token-0123456789abcdef" };
    expect((await post(honest(1), auth)).statusCode).toBe(200);
    const forged = encodeSummary(summaryOf(producerOf("payments-0", "payments"), 2, end, [inbound("payments", "unknown", "payments", [10])]));
    expect((await post(forged, auth)).statusCode).toBe(403);
  });

  it("counts a true retry once across a token rotation: the ledger records the token's scope or the SPIFFE ID, never the token", async () => {
    const { dir } = await collector();
    const file = join(dir, "tokens");
    // The rotation's overlap: old and new token, same scope.
    writeFileSync(file, "old-shop-token-0123456789 namespaces=shop\nnew-shop-token-0123456789 namespaces=shop\n");
    const before = { authorization: "Bearer old-shop-token-0123456789" };
    const after = { authorization: "Bearer new-shop-token-0123456789" };
    for (const xfcc of [false, true]) {
      const { post, c, sql } = await collector({ MESHLOOK_INGEST_TOKENS: "", MESHLOOK_INGEST_TOKENS_FILE: file, MESHLOOK_TRUST_XFCC: String(xfcc) });
      const peer: Record<string, string> = xfcc ? { "x-forwarded-client-cert": xfccFor(reviews) } : {};
      expect((await post(honest(1), { ...before, ...peer })).statusCode).toBe(200);
      // Before the load the retry meets the key ingest still holds; after it, only the ledger knows it.
      expect((await post(honest(1), { ...after, ...peer })).json()).toMatchObject({ status: "duplicate" });
      await c.loader.loadNow();
      expect((await post(honest(1), { ...after, ...peer })).json()).toMatchObject({ status: "accepted" });
      await c.loader.loadNow();
      const ledger = await sql("SELECT caller, seq FROM mesh_load_ledger");
      expect(ledger.map((r) => [r.caller, Number(r.seq)])).toEqual([[xfcc ? reviews : "ns:shop", 1]]);
      const [facts] = await sql(`SELECT SUM(requests) AS n FROM ${FACT_TABLE.name}`);
      expect(Number(facts.n)).toBe(2); // honest() carries two requests
    }
  });
});

describe("backdated windows", () => {
  it("refuses a window older than MESHLOOK_MAX_WINDOW_AGE_S (counted) and loads a late-but-honest one", async () => {
    const { post, c, sql } = await collector({ MESHLOOK_MAX_WINDOW_AGE_S: "3600", MESHLOOK_MAX_WINDOW_AHEAD_S: "300" });
    const at = (seq: number, end: number) => encodeSummary(summaryOf(producerOf("reviews-1", "shop"), seq, end, [inbound("shop", "unknown", "reviews", [500])]));
    const old = await post(at(1, now() - 3 * 3_600_000));
    expect(old.statusCode).toBe(400);
    expect(old.json()).toMatchObject({ error: "window_out_of_range" });
    expect((await post(at(2, now() + 3_600_000))).json()).toMatchObject({ error: "window_out_of_range" });
    // A sidecar partitioned for 40 minutes delivers its held window: still accepted and loaded.
    expect((await post(at(3, now() - 40 * 60_000))).statusCode).toBe(200);
    await c.loader.loadNow();
    expect(await sql(`SELECT SUM(requests)::DOUBLE AS n FROM ${FACT_TABLE.name}`)).toEqual([{ n: 1 }]);
    expect((await metricValues(c)).get("meshlook_summaries_rejected_total{reason=window_out_of_range}")).toBe(2);
  });
});

describe("ingest tokens", () => {
  it("an empty token file makes the collector unready, loudly, and a reload to zero does too", async () => {
    const base = await collector();
    const file = join(base.dir, "empty-tokens");
    writeFileSync(file, "# nothing yet\n");
    const { c, logs } = await collector({ MESHLOOK_INGEST_TOKENS: "", MESHLOOK_INGEST_TOKENS_FILE: file });
    const ready = await c.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toMatchObject({ error: "no_ingest_tokens" });
    expect(logs.some((l) => l.level >= 50 && /NO INGEST TOKENS/.test(l.msg))).toBe(true);
    expect((await metricValues(c)).get("meshlook_ingest_tokens")).toBe(0);
  });

  it("refuses a token line with whitespace, flags weak tokens, and labels tokens with a keyed digest", async () => {
    const base = await collector();
    const file = join(base.dir, "tokens");
    writeFileSync(file, "good-token-0123456789abcdef\nhas space inside\nshort\n");
    const { c, logs } = await collector({ MESHLOOK_INGEST_TOKENS: "", MESHLOOK_INGEST_TOKENS_FILE: file });
    expect(logs.some((l) => l.level >= 50 && /tokens:2: expected/.test(l.msg))).toBe(true);
    expect(logs.filter((l) => /WEAK INGEST TOKEN/.test(l.msg))).toHaveLength(1);
    const m = await metricValues(c);
    expect(m.get("meshlook_ingest_tokens")).toBe(2);
    expect(m.get("meshlook_ingest_weak_tokens")).toBe(1);
    const body = encodeSummary(summaryOf(producerOf("reviews-1", "shop"), 1, now(), [inbound("shop", "unknown", "reviews", [1])]));
    const res = await c.app.inject({
      method: "POST",
      url: "/v1/summaries",
      headers: { "content-type": SUMMARY_TYPE, authorization: "Bearer good-token-0123456789abcdef" },
      payload: Buffer.from(body),
    });
    expect(res.statusCode).toBe(200);
    const labels = [...(await metricValues(c)).keys()].filter((k) => k.startsWith("meshlook_ingest_accepted_by_token_total"));
    // The unsalted SHA-256 prefix of the token would let anyone confirm a guess offline.
    const { createHash } = await import("node:crypto");
    const unsalted = createHash("sha256").update("good-token-0123456789abcdef").digest("hex").slice(0, 8);
    expect(labels).toHaveLength(1);
    expect(labels[0]).not.toContain(unsalted);
  });

  it("refuses an environment token with whitespace inside, naming its index, and is unready when none is left", async () => {
    const { c, logs } = await collector({ MESHLOOK_INGEST_TOKENS: "has space-0123456789abcdef" });
    expect(logs.some((l) => l.level >= 50 && /MESHLOOK_INGEST_TOKENS\[0\]: contains whitespace/.test(l.msg))).toBe(true);
    expect(logs.some((l) => /space-0123456789abcdef/.test(JSON.stringify(l)))).toBe(false);
    expect((await metricValues(c)).get("meshlook_ingest_tokens")).toBe(0);
    expect((await c.app.inject({ method: "GET", url: "/readyz" })).json()).toMatchObject({ error: "no_ingest_tokens" });
  });

  it("MESHLOOK_AUTH_DISABLED leaves a lasting signal: a metric and a /readyz warning", async () => {
    const { c } = await collector({ MESHLOOK_INGEST_TOKENS: "", MESHLOOK_AUTH_DISABLED: "true" });
    await c.loader.loadNow(); // opens the warehouse, which readiness also needs
    expect((await metricValues(c)).get("meshlook_ingest_auth_disabled")).toBe(1);
    const ready = await c.app.inject({ method: "GET", url: "/readyz" });
    expect(ready.json().warnings?.[0]).toMatch(/authentication is disabled/);
  });
});

describe("admission", () => {
  it("rate-limits per caller identity: one caller's flood does not throttle another", async () => {
    const { post } = await collector({ MESHLOOK_TRUST_XFCC: "true", MESHLOOK_RATE_LIMIT_PER_MIN: "5" });
    const send = (seq: number, sa: string) =>
      post(encodeSummary(summaryOf(producerOf(`${sa}-1`, "shop"), seq, now(), [inbound("shop", "unknown", sa, [1])])), {
        "x-forwarded-client-cert": xfccFor(principalOf("shop", sa)),
      });
    for (let i = 1; i <= 5; i++) expect((await send(i, "noisy")).statusCode).toBe(200);
    const limited = await send(6, "noisy");
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toMatchObject({ error: "rate_limited" });
    expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
    expect((await send(1, "quiet")).statusCode).toBe(200);
  });

  it("serves /metrics on MESHLOOK_METRICS_PORT only, when set", async () => {
    const dir = mkdtempSync(join(tmpdir(), "meshlook-attack-"));
    dirs.push(dir);
    const config = loadConfig({ MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: TOKEN, MESHLOOK_HOST: "127.0.0.1", MESHLOOK_PORT: "0", MESHLOOK_METRICS_PORT: "0" });
    const c = await startCollector(config, pino({ level: "silent" }));
    running.push(c);
    expect(c.metricsUrl).not.toBe(c.url);
    expect((await fetch(`${c.url}/metrics`)).status).toBe(404);
    expect(await (await fetch(`${c.metricsUrl}/metrics`)).text()).toContain("meshlook_summaries_accepted_total");
    expect((await fetch(`${c.metricsUrl}/v1/summaries`, { method: "POST" })).status).toBe(404);
  });
});

describe("what still fails in the warehouse", () => {
  it("a spooled summary the warehouse cannot take (2^53 requests x 1,100 overflow the ledger's BIGINT) goes to the quarantine; the rest loads", async () => {
    const end = now();
    // Encoded before the collector starts: seconds of encoding on a busy machine would block its event
    // loop for a whole pressure sample, which sheds the next request as overloaded.
    const evil = overflowSummary(producerOf("evil-0", "shop"), 1, end, "requests");
    const honestBody = encodeSummary(summaryOf(producerOf("reviews-1", "shop"), 1, end, [inbound("shop", "unknown", "reviews", [700, 900])]));
    const { c, post, sql } = await collector();
    // Spooled before the 2^40 bound existed (an upgrade replays it), so ingest never saw it.
    await c.spool.append(evil, Date.now());
    const honest = await post(honestBody);
    expect(honest.statusCode, honest.body).toBe(200);
    while (await c.loader.loadNow());
    expect(await sql(`SELECT destination_workload AS w, SUM(requests)::DOUBLE AS n FROM ${FACT_TABLE.name} GROUP BY ALL`)).toEqual([{ w: "reviews", n: 2 }]);
    expect((await metricValues(c)).get("meshlook_summaries_quarantined_total{reason=value}")).toBe(1);
  });
});
