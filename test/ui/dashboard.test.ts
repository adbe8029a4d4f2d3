// The dashboard in a real browser: a bookinfo mesh runs through the release filter into a collector process;
// the collector is then started again on that data with reader tokens (as `npm run demo -- --keep` does),
// and headless Chromium loads /ui. Tiles must render with data and without errors, the numbers shown for a
// service must equal the traffic generator's ground truth, filters and drill-down must change what is shown,
// and a namespace-scoped token must never show another namespace. Screenshots go to test/artifacts/.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollectorProcess, type CollectorProcess } from "../../sim/collector-process.ts";
import { DEFAULT_SCALE, SeriesStats, encodeSummary, seriesOf } from "../../shared/node.ts";
import { DIMENSIONS } from "../../shared/schema.ts";
import { runPipeline } from "../../sim/pipeline.ts";
import { GroundTruth, TrafficGenerator, bookinfo } from "../../sim/traffic/index.ts";
import { launch, settle, watch, type Page } from "./browser.ts";

const ARTIFACTS = join(import.meta.dirname, "..", "artifacts");
const OPERATOR = "dashboard-operator-token-0123456789";
const RATINGS = "dashboard-ratings-team-token-0123456789";
const INGEST = "ingest-token-not-for-reading-0123";
const DURATION_S = 240;
const REVIEWS = "reviews.bookinfo.svc.cluster.local";
const PRODUCTPAGE_SA = "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage";

let dir: string;
let truth: GroundTruth;
let collector: CollectorProcess;
let session: Awaited<ReturnType<typeof launch>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meshlook-ui-"));
  mkdirSync(ARTIFACTS, { recursive: true });
  // Recent minutes, so the dashboard's default range (the last hour) covers them.
  const startTimeMs = Math.floor((Date.now() - (DURATION_S + 60) * 1000) / 60_000) * 60_000;
  const model = bookinfo({ durationS: DURATION_S });
  truth = new GroundTruth();
  const generator = new TrafficGenerator(model, { seed: 16, requestsPerSecond: 100, startTimeMs, requestsPerConnection: 10 });
  await runPipeline({ model, generator, truth, dataDir: dir, durationS: DURATION_S });
  const tokens = join(dir, "reader-tokens.conf");
  writeFileSync(tokens, `${OPERATOR} %\n${RATINGS} bookinfo-ratings\n`);
  collector = await startCollectorProcess({ dataDir: dir, token: INGEST, settings: { MESHLOOK_READER_TOKENS_FILE: tokens } });
  session = await launch();
}, 300_000);

afterAll(async () => {
  await session?.close();
  await collector?.stop().catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function open(token: string | undefined, state = ""): Promise<{ page: Page; problems: string[] }> {
  const page = await session.browser.newPage();
  const problems = watch(page);
  const hash = new URLSearchParams(state);
  if (token) hash.set("token", token);
  await page.goto(`${collector.url}/ui/#${hash}`);
  await page.waitForFunction(() => document.body.dataset.ready !== undefined, undefined, { timeout: 60_000 });
  return { page, problems };
}
const tiles = (page: Page) => page.$$eval("[data-tile]", (els) => Object.fromEntries(els.map((e) => [(e as HTMLElement).dataset.tile!, (e as HTMLElement).dataset.state!])));
const value = async (page: Page, tile: string) => Number(await page.$eval(`[data-tile="${tile}"] .value`, (e) => (e as HTMLElement).dataset.value));
const rowKeys = (page: Page, tile: string) => page.$$eval(`[data-tile="${tile}"] tbody tr`, (trs) => trs.map((t) => (t as HTMLElement).dataset.key ?? t.textContent!));
const served = (r: { dims: { reporter: string } }) => r.dims.reporter === "destination";

describe("the dashboard at /ui against a collector fed by the simulated mesh", () => {
  it("golden signals: every tile renders with data, no console errors or failed requests", async () => {
    const { page, problems } = await open(OPERATOR);
    const states = await tiles(page);
    expect(Object.keys(states).sort()).toEqual(
      [
        "callers",
        "error_rate",
        "failures",
        "latency_over_time",
        "p99_latency",
        "requests",
        "requests_lost_in_sidecars",
        "requests_per_second",
        "responses_by_class",
        "services",
        "traffic_over_time",
      ].sort(),
    );
    // Nothing was lost in this run (the collector stayed up), which the loss tile shows as an empty chart.
    for (const [t, s] of Object.entries(states)) expect(s, t).toBe(t === "requests_lost_in_sidecars" ? "empty" : "ok");
    expect(await page.$$eval("[data-tile] canvas", (c) => c.length)).toBeGreaterThanOrEqual(4);
    expect(await value(page, "requests")).toBe(truth.totals({ reporter: "destination" }).requests);
    await page.screenshot({ path: join(ARTIFACTS, "golden-signals.png"), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it("a chosen service shows the ground truth: requests and errors exactly, p99 within the sketch bound", async () => {
    const { page, problems } = await open(OPERATOR);
    await settle(page, () => page.selectOption("#service", REVIEWS));
    const exact = truth.aggregate((r) => (served(r) && r.dims.destination_service === REVIEWS ? "reviews" : "other")).get("reviews")!;
    expect(await value(page, "requests")).toBe(exact.requests);
    expect(await page.$eval('[data-tile="error_rate"] .detail', (e) => e.textContent)).toBe(`${exact.errors.toLocaleString("en-US")} errors`);
    expect(await value(page, "error_rate")).toBeCloseTo(exact.errors / exact.requests, 12);
    const p99 = await value(page, "p99_latency");
    const want = exact.quantile(0.99) / 1000;
    expect(Math.abs(p99 - want) / want).toBeLessThanOrEqual(0.0054);
    expect(await rowKeys(page, "services")).toEqual([REVIEWS]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("filters change what is shown: namespace and reporter", async () => {
    const { page, problems } = await open(OPERATOR);
    const all = await rowKeys(page, "services");
    expect(all.length).toBe(4);
    await settle(page, () => page.selectOption("#namespace", "bookinfo-ratings"));
    expect(await rowKeys(page, "services")).toEqual(["ratings.bookinfo-ratings.svc.cluster.local"]);
    const ratingsServer = await value(page, "requests");
    await settle(page, () => page.selectOption("#reporter", "source"));
    const ratingsClient = await value(page, "requests");
    const byReporter = truth.aggregate((r) => (r.dims.destination_namespace === "bookinfo-ratings" ? r.dims.reporter : "other"));
    expect([ratingsServer, ratingsClient]).toEqual([byReporter.get("destination")!.requests, byReporter.get("source")!.requests]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("drill-down: service → its callers → one caller's series over time", async () => {
    const { page, problems } = await open(OPERATOR);
    await settle(page, () => page.click(`[data-tile="services"] tr[data-key="${REVIEWS}"]`));
    expect(await page.$eval('[data-tile="callers"] h2', (e) => e.textContent)).toBe(`Callers of ${REVIEWS}`);
    const callers = truth.aggregate((r) => (served(r) && r.dims.destination_service === REVIEWS ? r.dims.source_principal : "-"));
    callers.delete("-");
    expect((await rowKeys(page, "callers")).sort()).toEqual([...callers.keys()].sort());
    await settle(page, () => page.click(`[data-tile="callers"] tr[data-key="${PRODUCTPAGE_SA}"]`));
    expect(await page.$eval('[data-tile="series"]', (e) => (e as HTMLElement).dataset.state)).toBe("ok");
    expect(await value(page, "requests")).toBe(callers.get(PRODUCTPAGE_SA)!.requests); // the caller filter narrows every tile
    expect(await page.$eval("#caller", (e) => e.textContent)).toContain(PRODUCTPAGE_SA);
    await page.screenshot({ path: join(ARTIFACTS, "drill-down.png"), fullPage: true });
    await settle(page, () => page.goBack()); // browser history walks the drill-down back
    expect(await page.$('[data-tile="series"]')).toBeNull();
    expect(problems).toEqual([]);
    await page.close();
  });

  it("identity access and service graph boards render with data", async () => {
    for (const [board, expected] of [
      [
        "identity",
        [
          "caller_identities",
          "identity_calls",
          "mtls_share",
          "mtls_share_by_callee",
          "mtls_share_over_time",
          "newest_callers",
          "plaintext_by_service",
          "plaintext_callers",
          "who_calls_whom",
        ],
      ],
      ["graph", ["edges", "service_graph"]],
    ] as const) {
      const { page, problems } = await open(OPERATOR, `board=${board}`);
      const states = await tiles(page);
      expect(Object.keys(states).sort()).toEqual([...expected]);
      for (const [t, s] of Object.entries(states)) expect(s, `${board} ${t}`).toBe("ok");
      await page.screenshot({ path: join(ARTIFACTS, `${board === "graph" ? "service-graph" : "identity-access"}.png`), fullPage: true });
      expect(problems).toEqual([]);
      if (board === "identity") {
        // legacy-batch calls details in plaintext: the one plaintext caller.
        expect(await value(page, "plaintext_callers")).toBe(1);
      } else {
        expect((await rowKeys(page, "edges")).length).toBe(5);
        // A click on an edge drills into the golden signals of the callee's namespace.
        await settle(page, () => page.click('[data-tile="edges"] tr[data-key="bookinfo/reviews -> bookinfo-ratings/ratings"]'));
        expect(await page.$eval("#namespace", (e) => (e as HTMLSelectElement).value)).toBe("bookinfo-ratings");
        expect(await rowKeys(page, "services")).toEqual(["ratings.bookinfo-ratings.svc.cluster.local"]);
      }
      await page.close();
    }
  });
});

describe("read access in the browser and at the API", () => {
  const OTHER_NAMESPACE_TEXT = ["productpage", "details.bookinfo", "reviews.bookinfo", "istio-ingressgateway"];

  it("a token scoped to one namespace never shows another namespace's traffic, on any board", async () => {
    for (const board of ["golden", "identity", "graph"]) {
      const { page, problems } = await open(RATINGS, `board=${board}`);
      const text = await page.$eval("main", (e) => e.textContent!);
      expect(text.length).toBeGreaterThan(100);
      expect(text).toContain(board === "graph" ? "bookinfo-ratings/ratings" : "ratings.bookinfo-ratings.svc.cluster.local");
      for (const t of OTHER_NAMESPACE_TEXT) expect(text, `${board} shows ${t}`).not.toContain(t);
      const options = await page.$$eval("#namespace option", (os) => os.map((o) => (o as HTMLOptionElement).value));
      expect(options).toEqual(["", "bookinfo-ratings"]);
      expect(problems).toEqual([]);
      await page.close();
    }
    const { page } = await open(RATINGS, "board=golden&namespace=bookinfo");
    expect(await page.$eval('[data-tile="requests"] .value', (e) => (e as HTMLElement).dataset.value)).toBe(""); // no data
    expect(await page.$eval('[data-tile="requests"]', (e) => (e as HTMLElement).dataset.state)).toBe("empty");
    await page.close();
    const res = await fetch(`${collector.url}/api/v1/traffic?group_by=destination_namespace`, { headers: { authorization: `Bearer ${RATINGS}` } });
    expect(res.status).toBe(200);
    expect((await res.json()).rows.map((r: { destination_namespace: string }) => r.destination_namespace)).toEqual(["bookinfo-ratings"]);
  });

  it("without a token, or with a wrong one, the page asks for one and the API answers 401 with no data", async () => {
    for (const token of [undefined, "wrong-token-0123456789abcdef"]) {
      const page = await session.browser.newPage();
      await page.goto(`${collector.url}/ui/${token ? `#token=${token}` : ""}`);
      await page.waitForFunction(() => document.body.dataset.ready !== undefined);
      expect(await page.isVisible("#login")).toBe(true);
      expect(await page.$$("[data-tile]")).toEqual([]);
      await page.close();
    }
    for (const headers of [{}, { authorization: "Bearer wrong-token-0123456789abcdef" }, { authorization: "Bearer ingest-token-not-for-reading-0123" }] as Record<
      string,
      string
    >[]) {
      const res = await fetch(`${collector.url}/api/v1/traffic`, { headers });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: "unauthorized", message: "missing or unknown reader token" });
    }
    // …and reader tokens do not ingest.
    const ingest = await fetch(`${collector.url}/v1/summaries`, {
      method: "POST",
      headers: { authorization: `Bearer ${OPERATOR}`, "content-type": "application/x-meshlook-summary" },
      body: "x",
    });
    expect(ingest.status).toBe(401);
  });

  it("signing in on the page with a token shows the boards", async () => {
    const page = await session.browser.newPage();
    const problems = watch(page);
    await page.goto(`${collector.url}/ui/`);
    await page.waitForSelector("#login:not([hidden])");
    problems.length = 0; // the 401 that asked for the token
    await settle(page, async () => {
      await page.fill("#token", OPERATOR);
      await page.click("#login button");
    });
    expect((await tiles(page)).requests).toBe("ok");
    expect(problems).toEqual([]);
    await page.close();
  });
  it("the identity board filters by caller namespace, as the LookML dashboard's Caller namespace filter", async () => {
    const { page, problems } = await open(OPERATOR, "board=identity");
    expect(await page.isVisible("#caller-namespace")).toBe(true);
    const options = (await page.$$eval("#caller-namespace option", (os) => os.map((o) => (o as HTMLOptionElement).value))).filter((v) => v !== "");
    const want = new Set(
      truth
        .rows()
        .filter(served)
        .map((r) => r.dims.source_namespace),
    );
    expect(new Set(options)).toEqual(want);
    const ns = "bookinfo";
    await settle(page, () => page.selectOption("#caller-namespace", ns));
    const shown = await page.$$eval('[data-tile="who_calls_whom"] tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent));
    expect(shown.length).toBeGreaterThan(0);
    expect(new Set(shown)).toEqual(new Set([ns]));
    const calls = truth.aggregate((r) => (served(r) && r.dims.source_namespace === ns ? "in" : "out")).get("in")!.requests;
    expect(await value(page, "identity_calls")).toBe(calls);
    expect(problems).toEqual([]);
    await page.close();
  });

  // Last: it adds traffic the ground truth of the tests above does not hold.
  it("refreshes by itself after the collector loads new data", async () => {
    const { page, problems } = await open(OPERATOR);
    const before = await value(page, "requests");
    const ready = await page.evaluate(() => document.body.dataset.ready!);
    // One more sidecar's summary for the current minute, posted as a sidecar posts it.
    const stats = new SeriesStats(DEFAULT_SCALE);
    const added = 37;
    for (let i = 0; i < added; i++) stats.record(2_000 + 100 * i, 300, 900, false);
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    const body = encodeSummary({
      producerId: "refresh-probe",
      seq: 1,
      windowStartMs: minute,
      windowEndMs: minute + 60_000,
      reported: [...DIMENSIONS],
      series: [seriesOf({ reporter: "destination", destination_service: REVIEWS, destination_namespace: "bookinfo", response_code: 200 }, stats)],
    });
    const res = await fetch(`${collector.url}/v1/summaries`, {
      method: "POST",
      headers: { authorization: `Bearer ${INGEST}`, "content-type": "application/x-meshlook-summary" },
      body: Buffer.from(body),
    });
    expect(res.status, await res.text()).toBe(200);
    // No action on the page: its freshness poll sees the load and reloads the board.
    await page.waitForFunction((prev) => document.body.dataset.ready !== prev, ready, { timeout: 120_000 });
    expect(await value(page, "requests")).toBe(before + added);
    expect(problems).toEqual([]);
    await page.close();
  });
});
