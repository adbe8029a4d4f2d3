// The collector in-process over Fastify inject(): every ingest outcome with its status and reason, and
// that refusals leave good summaries untouched.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { getHeapStatistics } from "node:v8";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it, vi } from "vitest";
import { startCollector, type RunningCollector } from "../../collector/collector.ts";
import { defaultConfig, type CollectorConfig } from "../../collector/config.ts";
import { SUMMARY_CONTENT_TYPE } from "../../collector/server.ts";
import { createDuckDBSink, type DuckDBSink } from "../../collector/sink/duckdb.ts";
import { Spool } from "../../collector/spool.ts";
import { MinuteRollup } from "../../collector/rollup.ts";
import { encode, invalidBodies, latencies, metricValues, postAccepted, replayLoader, series, sketchOf, summary, totals } from "./helpers.ts";
import { injectRetryingShed } from "../shared/shed-retry.ts";

const dirs: string[] = [];
const running: RunningCollector[] = [];
afterAll(async () => {
  for (const c of running) await c.close().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function collector(overrides: Partial<CollectorConfig> = {}, pressureSampleIntervalMs?: number) {
  const dataDir = mkdtempSync(join(tmpdir(), "meshlook-ingest-"));
  dirs.push(dataDir);
  const config: CollectorConfig = {
    ...defaultConfig(),
    dataDir,
    spoolDir: join(dataDir, "spool"),
    duckdbPath: join(dataDir, "meshlook.duckdb"),
    ingestTokens: ["token-old", "token-new"],
    loadIntervalS: 3600, // loads happen when the test says so
    // The summaries' windows are in 1970: retention would refuse them as too old to load exactly once.
    retention: { ...defaultConfig().retention, minuteDays: 0 },
    ...overrides,
  };
  const c = await startCollector(config, pino({ level: "silent" }), { listen: false, pressureSampleIntervalMs });
  running.push(c);
  await c.loader.loadNow(); // after the startup load; the next one comes when the test asks
  return c;
}

const request = (body: Uint8Array | string, headers: Record<string, string> = {}) => ({
  method: "POST" as const,
  url: "/v1/summaries",
  payload: Buffer.from(body),
  headers: { "content-type": SUMMARY_CONTENT_TYPE, authorization: "Bearer token-new", ...headers },
});
const post = (c: RunningCollector, body: Uint8Array | string, headers: Record<string, string> = {}) => c.app.inject(request(body, headers));

async function warehouseTotals(c: RunningCollector) {
  const conn = (c.sink as DuckDBSink).connection;
  const rows = (
    await conn.runAndReadAll("SELECT destination_service AS s, SUM(requests) AS n, SUM(latency_sum_us) AS l FROM mesh_traffic_minute GROUP BY 1 ORDER BY 1")
  ).getRowObjectsJS();
  return Object.fromEntries(rows.map((r) => [r.s, { requests: Number(r.n), latencySumUs: Number(r.l) }]));
}

describe("ingest", () => {
  it("answers every refusal with its status and reason, and loads the good summaries exactly once", async () => {
    const c = await collector({ maxBodyBytes: 64 * 1024 });
    const before = await metricValues(c);
    expect([before.get("meshlook_summaries_accepted_total"), before.get("meshlook_rows_loaded_total")]).toEqual([0, 0]);
    const good1 = summary(1, 60_000, [series("a", latencies(300)), series("b", latencies(50))]);
    const good2 = summary(2, 70_000, [series("a", latencies(200))]);
    const body1 = encode(good1);
    const refusals: [Promise<{ statusCode: number; json(): unknown; headers: Record<string, unknown> }>, number, string][] = [
      [post(c, body1, { authorization: "" }), 401, "unauthorized"],
      [post(c, body1, { authorization: "Bearer token-retired" }), 401, "unauthorized"],
      [post(c, body1, { authorization: "token-new" }), 401, "unauthorized"],
      [post(c, body1, { "content-type": "application/json" }), 415, "unsupported_media_type"],
      [post(c, body1, { "content-type": "application/octet-stream" }), 415, "unsupported_media_type"],
      [post(c, Buffer.alloc(65 * 1024, 1)), 413, "body_too_large"],
    ];
    const okResponses = await Promise.all([post(c, body1), ...refusals.map((r) => r[0]), post(c, encode(good2))]);
    expect([okResponses[0].statusCode, okResponses.at(-1)!.statusCode]).toEqual([200, 200]);
    for (let i = 0; i < refusals.length; i++) {
      const res = okResponses[i + 1];
      expect([res.statusCode, (res.json() as { error: string }).error]).toEqual([refusals[i][1], refusals[i][2]]);
      expect((res.json() as { message: string }).message.length).toBeGreaterThan(0);
    }
    for (const [body, reason] of invalidBodies(body1)) {
      const res = await post(c, body);
      expect([res.statusCode, res.json().error]).toEqual([400, reason]);
    }
    const again = await post(c, body1);
    expect([again.statusCode, again.json()]).toEqual([200, { status: "duplicate" }]);

    await c.loader.loadNow();
    expect(await warehouseTotals(c)).toEqual(totals([good1, good2]));

    const m = await metricValues(c);
    expect(m.get("meshlook_summaries_accepted_total")).toBe(2);
    expect(m.get("meshlook_series_updates_total")).toBe(3);
    expect(m.get("meshlook_summaries_rejected_total{reason=unauthorized}")).toBe(3);
    expect(m.get("meshlook_summaries_rejected_total{reason=unsupported_media_type}")).toBe(2);
    expect(m.get("meshlook_summaries_rejected_total{reason=body_too_large}")).toBe(1);
    expect(m.get("meshlook_dedup_hits_total{stage=ingest}")).toBe(1);
    expect(m.get("meshlook_summaries_loaded_total")).toBe(2);
    expect(m.get("meshlook_rows_loaded_total")).toBe(3);
    expect(m.get("meshlook_spool_bytes")).toBe(0);

    // After the load the collector no longer holds the key: the ledger catches the retry instead.
    expect((await post(c, body1)).statusCode).toBe(200);
    await c.loader.loadNow();
    expect(await warehouseTotals(c)).toEqual(totals([good1, good2]));
    expect((await metricValues(c)).get("meshlook_dedup_hits_total{stage=load}")).toBe(1);
  });

  it("loads the same rows from its in-memory rollup as from replaying the spool on disk", async () => {
    const input = Array.from({ length: 30 }, (_, i) =>
      summary(i + 1, 60_000 * (1 + (i % 3)), [series(`s${i % 4}`, latencies(20)), series(`s${i % 5}`, latencies(5))], `pod-${i % 3}`),
    );
    const live = await collector();
    // All at once: they wait for the spool's fsyncs together, each decoded into columns of its own until folded.
    expect((await Promise.all(input.map((s) => post(live, encode(s))))).map((r) => r.statusCode)).toEqual(input.map(() => 200));
    await live.loader.loadNow(); // segments written by this process: loaded from the fold

    const replayDir = mkdtempSync(join(tmpdir(), "meshlook-ingest-"));
    dirs.push(replayDir);
    const spool = await Spool.open(join(replayDir, "spool"), { segmentBytes: 1 << 20 });
    for (const s of input) await spool.append(encode(s), 0);
    await spool.close();
    const replayed = await collector({ dataDir: replayDir, spoolDir: join(replayDir, "spool"), duckdbPath: join(replayDir, "m.duckdb") });
    await replayed.loader.loadNow(); // segments left by "another process": read back and decoded
    for (const [c, path] of [
      [live, "folded"],
      [replayed, "replay"],
    ] as const)
      expect((await metricValues(c)).get(`meshlook_load_cycles_total{path=${path}}`)).toBe(1);

    const facts = async (c: RunningCollector) =>
      (await (c.sink as DuckDBSink).connection.runAndReadAll("SELECT * EXCLUDE (loaded_at) FROM mesh_traffic_minute ORDER BY ALL")).getRowObjectsJS();
    const rows = await facts(live);
    expect(rows.length).toBeGreaterThan(10);
    expect(await facts(replayed)).toEqual(rows);

    // Segments of a few summaries each, all loaded in one cycle: their folds are merged into one.
    const segmented = await collector({ spoolSegmentBytes: 1024 });
    const loadBatch = segmented.sink.loadBatch.bind(segmented.sink);
    const folded: boolean[] = [];
    // A fold refuses to roll up a subset of its summaries (batch.ts foldBatch); a batch read back from disk does not.
    segmented.sink.loadBatch = (b) => (folded.push(b.parts(b.entries.map((_, i) => i > 0)) === null), loadBatch(b));
    for (const s of input) expect((await post(segmented, encode(s))).statusCode).toBe(200);
    expect(segmented.spool.segmentCount).toBeGreaterThan(3);
    expect(await segmented.loader.loadNow()).toBe(false);
    expect(folded).toEqual([true]);
    expect(await facts(segmented)).toEqual(rows);
    expect(await warehouseTotals(segmented)).toEqual(totals(input));
  });

  it("a cycle over several segments' folds that fails after writing its rows loads each summary once on the next cycle", async () => {
    // Series shared between segments (merged into rows of the first fold) and series of one segment only
    // (added to it as new rows), over three minutes, from three sidecars.
    const input = Array.from({ length: 24 }, (_, i) =>
      summary(i + 1, 60_000 * (1 + (i % 3)), [series("shared", latencies(20 + i)), series(`own-${Math.floor(i / 6)}`, latencies(7 + (i % 4)))], `pod-${i % 3}`),
    );
    const c = await collector({ spoolSegmentBytes: 1024 });
    const loadBatch = c.sink.loadBatch.bind(c.sink);
    const calls: { folded: boolean; rows: number }[] = [];
    // The first load writes every row of its batch, then the warehouse goes away before the ledger rows
    // and the commit; the next goes through.
    c.sink.loadBatch = (b) => {
      const call = { folded: b.parts(b.entries.map((_, i) => i > 0)) === null, rows: 0 };
      calls.push(call);
      return loadBatch({
        entries: b.entries,
        parts(fresh) {
          const inner = b.parts(fresh);
          if (!inner) return null;
          return (async function* () {
            for await (const p of inner) {
              call.rows += p.size;
              yield p;
            }
            if (calls.length === 1) throw new Error("IO Error: warehouse gone");
          })();
        },
      });
    };
    await postAccepted(c, input, "token-new");
    expect(c.spool.segmentCount).toBeGreaterThan(3);

    expect(await c.loader.loadNow()).toBe(false);
    expect(c.spool.segmentCount).toBeGreaterThan(3);
    expect(await warehouseTotals(c)).toEqual({});
    expect(await c.loader.loadNow()).toBe(false);
    expect(c.spool.segmentCount).toBe(0);
    // The failed cycle merged the folds and wrote their rows; the folds were gone after it, so the retry
    // read the segments back from disk and wrote the same rows.
    expect(calls.map((x) => x.folded)).toEqual([true, false]);
    expect(calls[0].rows).toBeGreaterThan(0);
    expect(calls[1].rows).toBe(calls[0].rows);
    expect(await warehouseTotals(c)).toEqual(totals(input));
    const m = await metricValues(c);
    expect([m.get("meshlook_summaries_loaded_total"), m.get("meshlook_load_failures_total{reason=duckdb}")]).toEqual([input.length, 1]);
    // Only committed cycles count: the failed folded one does not.
    expect([m.get("meshlook_load_cycles_total{path=folded}"), m.get("meshlook_load_cycles_total{path=replay}")]).toEqual([undefined, 1]);
    const ledger = await (c.sink as DuckDBSink).connection.runAndReadAll("SELECT COUNT(*) AS n, COUNT(DISTINCT (producer_id, seq)) AS k FROM mesh_load_ledger");
    expect(ledger.getRowObjectsJS()[0]).toEqual({ n: BigInt(input.length), k: BigInt(input.length) });
  });

  it("folds summaries posted together exactly as sent, each from decoder columns of its own", async () => {
    const c = await collector();
    // The test's own record of every latency it sends, per (minute, service): the truth the rows must match.
    const sent = new Map<string, number[]>();
    // Sizes from 1 to 150 series, so sets grow past their first size while others wait for the fsync; a
    // service appears in several summaries of a minute, so rows made by one summary are added to by others.
    const input = Array.from({ length: 48 }, (_, i) => {
      const endMs = 60_000 * (1 + (i % 3));
      const list = Array.from({ length: 1 + ((i * 37) % 150) }, (_, j) => {
        const service = `svc-${(i * 11 + j) % 160}`;
        const values = latencies(1 + ((i + j) % 9)).map((v) => v + i);
        const key = `${endMs - 60_000} ${service}`;
        sent.set(key, [...(sent.get(key) ?? []), ...values]);
        return series(service, values);
      });
      return summary(i + 1, endMs, list, `pod-${i % 5}`);
    });
    const bodies = input.map(encode);
    // Refusals and retries in between, decoded while the good ones are in flight.
    const noise = bodies.flatMap((b, i) => (i % 4 === 0 ? [b.subarray(0, b.length - 3), b] : []));
    const answers = await Promise.all([...bodies, ...noise].map((b) => injectRetryingShed(c.app, request(b))));
    // A shed body sent again may arrive after its copy: which of the two is the duplicate is not fixed.
    const outcomes = answers.map((r) => r.json().status ?? r.json().error);
    expect(outcomes.filter((o) => o === "accepted")).toHaveLength(bodies.length);
    expect(outcomes.filter((o) => o === "duplicate")).toHaveLength(noise.length / 2);
    expect(outcomes.filter((o) => o === "truncated")).toHaveLength(noise.length / 2);
    await c.loader.loadNow();

    const conn = (c.sink as DuckDBSink).connection;
    const rows = (
      await conn.runAndReadAll(
        "SELECT epoch_ms(minute) AS m, destination_service AS s, requests, latency_sum_us AS sum, latency_min_us AS lo, latency_max_us AS hi, latency_sketch AS sk FROM mesh_traffic_minute",
      )
    ).getRowObjectsJS();
    const loaded = Object.fromEntries(
      rows.map((r) => [`${r.m} ${r.s}`, { requests: Number(r.requests), sum: Number(r.sum), lo: Number(r.lo), hi: Number(r.hi), sketch: JSON.parse(String(r.sk)) }]),
    );
    const expected = Object.fromEntries(
      [...sent].map(([key, v]) => [key, { requests: v.length, sum: v.reduce((a, b) => a + b, 0), lo: Math.min(...v), hi: Math.max(...v), sketch: sketchOf(v, 6) }]),
    );
    expect(loaded).toEqual(expected);
  });

  it("acknowledges a summary whose fold fails after it is durable, and loads its segment once, from disk, a re-send included", async () => {
    const c = await collector();
    const first = summary(1, 60_000, [series("a", latencies(30)), series("b", latencies(3))]);
    const second = summary(2, 60_000, [series("a", latencies(7))]);
    const third = summary(3, 60_000, [series("b", latencies(11))]);
    const before = await metricValues(c);
    expect((await injectRetryingShed(c.app, request(encode(first)))).statusCode).toBe(200);
    // A fold that fails part-way through, having changed rows already (here: the summary added twice).
    const add = MinuteRollup.prototype.add;
    const failing = vi.spyOn(MinuteRollup.prototype, "add").mockImplementationOnce(function (this: MinuteRollup, s) {
      add.call(this, s);
      add.call(this, s);
      throw new Error("fold failed");
    });
    const res = await injectRetryingShed(c.app, request(encode(second)));
    failing.mockRestore();
    expect([res.statusCode, res.json()]).toEqual([200, { status: "accepted" }]);
    // A sender that re-sends anyway (its acknowledgement lost), and a summary after it into the same segment,
    // which loads from disk: not rolled up in memory for nothing.
    const adds = vi.spyOn(MinuteRollup.prototype, "add");
    expect((await injectRetryingShed(c.app, request(encode(second)))).json()).toEqual({ status: "duplicate" });
    expect((await injectRetryingShed(c.app, request(encode(third)))).json()).toEqual({ status: "accepted" });
    expect(adds).not.toHaveBeenCalled();
    adds.mockRestore();
    await c.loader.loadNow();
    expect(await warehouseTotals(c)).toEqual(totals([first, second, third]));
    const after = await metricValues(c);
    const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    expect([delta("meshlook_summaries_accepted_total"), delta("meshlook_summaries_loaded_total")]).toEqual([3, 3]);
    expect(delta("meshlook_load_cycles_total{path=replay}")).toBe(1);
    expect(delta("meshlook_load_cycles_total{path=folded}")).toBe(0);
  });

  it("replays a large spool in one transaction of bounded parts, exactly once even when the warehouse fails mid-load", async () => {
    const values = latencies(30);
    // 12 summaries of one minute over 3 series: one cycle, 3 rows when the rows fit one part.
    const input = Array.from({ length: 12 }, (_, i) => summary(i + 1, 60_000, [series(`s${i % 3}`, values)], `pod-${i % 2}`));
    const replay = async (partBytes: number | undefined, failAtPart?: number) => {
      const dir = mkdtempSync(join(tmpdir(), "meshlook-ingest-"));
      dirs.push(dir);
      const spool = await Spool.open(join(dir, "spool"), { segmentBytes: 1 << 20 });
      for (const s of input) await spool.append(encode(s), 0);
      await spool.close();
      const sink = createDuckDBSink({ ...defaultConfig(), duckdbPath: join(dir, "m.duckdb") }, pino({ level: "silent" })) as DuckDBSink;
      const loader = replayLoader(await Spool.open(join(dir, "spool"), { segmentBytes: 1 << 20 }), sink, { replayPartBytes: partBytes });
      await loader.openSink();
      const loadBatch = sink.loadBatch.bind(sink);
      const parts: number[][] = [];
      // Counts the parts each load writes; the warehouse can go away while one is being written.
      sink.loadBatch = (b) =>
        loadBatch({
          entries: b.entries,
          parts(fresh) {
            const counts: number[] = [];
            parts.push(counts);
            const inner = b.parts(fresh)!;
            return (async function* () {
              for await (const p of inner) {
                if (parts.length === 1 && counts.length + 1 === failAtPart) throw new Error("IO Error: warehouse gone");
                counts.push(p.size);
                yield p;
              }
            })();
          },
        });
      const conn = sink.connection;
      const count = async (table: string) => Number((await conn.runAndReadAll(`SELECT COUNT(*) AS n FROM ${table}`)).getRowObjectsJS()[0].n);
      await loader.loadNow();
      const afterFirst = { facts: await count("mesh_traffic_minute"), ledger: await count("mesh_load_ledger") };
      await loader.loadNow();
      const got = (
        await conn.runAndReadAll("SELECT destination_service AS s, SUM(requests) AS n, SUM(latency_sum_us) AS l FROM mesh_traffic_minute GROUP BY 1 ORDER BY 1")
      ).getRowObjectsJS();
      const out = {
        afterFirst,
        parts,
        totals: Object.fromEntries(got.map((r) => [r.s, { requests: Number(r.n), latencySumUs: Number(r.l) }])),
        facts: await count("mesh_traffic_minute"),
        ledger: await count("mesh_load_ledger"),
      };
      await sink.close();
      return out;
    };
    // Default budget: one load, one part, one row per (minute, series).
    const whole = await replay(undefined);
    expect(whole.parts).toEqual([[3]]);
    expect(whole).toMatchObject({ facts: 3, ledger: 12, totals: totals(input) });
    // A budget of about one row: a part per new row, still one transaction; failing in the third part
    // leaves nothing of the batch, and the next cycle loads all of it once.
    const split = await replay(1, 3);
    expect(split.afterFirst).toEqual({ facts: 0, ledger: 0 });
    expect(split.parts[0]).toEqual([1, 1]);
    expect(split.parts.length).toBe(2);
    expect(split.parts[1].reduce((a, b) => a + b, 0)).toBe(12);
    expect(split).toMatchObject({ ledger: 12, totals: totals(input) });
  });

  it("replays a spool larger than the replay budget in several cycles, each summary once, even when a cycle may take the whole spool", async () => {
    // The replay's ledger-key pass holds every summary of its batch at once: with Snowflake's batch (the
    // whole sealed spool) a large spool left by a crashed replica used to be read back in one go.
    const values = latencies(30);
    const input = Array.from({ length: 60 }, (_, i) => summary(i + 1, 60_000 * (1 + (i % 4)), [series(`s${i % 5}`, values), series(`t${i % 3}`, values)], `pod-${i % 4}`));
    const dir = mkdtempSync(join(tmpdir(), "meshlook-ingest-"));
    dirs.push(dir);
    const spool = await Spool.open(join(dir, "spool"), { segmentBytes: 1024 });
    for (const s of input) await spool.append(encode(s), 0);
    await spool.close();
    const reopened = await Spool.open(join(dir, "spool"), { segmentBytes: 1024 });
    const sealed = await reopened.seal();
    const segmentBytes = sealed.map((id) => reopened.sizeOf(id));
    const records = await Promise.all(sealed.map(async (id) => (await reopened.read(id)).records.length));
    expect(sealed.length).toBeGreaterThan(4);
    const sink = createDuckDBSink({ ...defaultConfig(), duckdbPath: join(dir, "m.duckdb") }, pino({ level: "silent" })) as DuckDBSink;
    const budget = segmentBytes[0] + segmentBytes[1];
    const loader = replayLoader(reopened, sink, { maxBatchBytes: 1 << 30, replayBatchBytes: budget });
    const ledgerRows = async () => Number((await sink.connection.runAndReadAll("SELECT COUNT(*) AS n FROM mesh_load_ledger")).getRowObjectsJS()[0].n);
    try {
      expect(await loader.loadNow()).toBe(true);
      expect(reopened.segmentCount).toBe(sealed.length - 2);
      // The summaries of the first two segments, no more (a record holds one summary).
      expect(await ledgerRows()).toBe(records[0] + records[1]);
      let cycles = 1;
      while (await loader.loadNow()) cycles++;
      expect(cycles).toBeGreaterThan(2);
      expect(reopened.segmentCount).toBe(0);
      expect(await ledgerRows()).toBe(input.length);
      const got = (
        await sink.connection.runAndReadAll("SELECT destination_service AS s, SUM(requests) AS n, SUM(latency_sum_us) AS l FROM mesh_traffic_minute GROUP BY 1 ORDER BY 1")
      ).getRowObjectsJS();
      expect(Object.fromEntries(got.map((r) => [r.s, { requests: Number(r.n), latencySumUs: Number(r.l) }]))).toEqual(totals(input));
    } finally {
      await sink.close();
    }
  });

  it("replays a damaged spool: loads the good records around the damage and reports it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "meshlook-ingest-"));
    dirs.push(dir);
    const input = [1, 2, 3].map((seq) => summary(seq, 60_000, [series("a", latencies(10))]));
    const spool = await Spool.open(join(dir, "spool"), { segmentBytes: 1 << 20 });
    for (const s of input) await spool.append(encode(s), 0);
    await spool.close();
    const [segment] = readdirSync(join(dir, "spool"));
    const file = join(dir, "spool", segment);
    const bytes = readFileSync(file);
    bytes[bytes.length - (21 + encode(input[2]).length) - 10] ^= 0xff; // the last bytes of the second record
    writeFileSync(file, bytes);

    const c = await collector({ dataDir: dir, spoolDir: join(dir, "spool"), duckdbPath: join(dir, "m.duckdb") });
    expect(await warehouseTotals(c)).toEqual(totals([input[0], input[2]]));
    expect((await metricValues(c)).get("meshlook_spool_corruptions_total{reason=crc mismatch}")).toBe(1);
  });

  it("answers 503 spool_full with Retry-After while the spool is over its limit, and recovers after a load", async () => {
    const c = await collector({ spoolMaxBytes: 1, loadIntervalS: 7 });
    expect((await post(c, encode(summary(1, 60_000, [series("a", [10])])))).statusCode).toBe(200);
    const full = await post(c, encode(summary(2, 60_000, [series("a", [10])])));
    expect([full.statusCode, full.json().error, full.headers["retry-after"]]).toEqual([503, "spool_full", "7"]);
    await c.loader.loadNow();
    expect((await post(c, encode(summary(2, 60_000, [series("a", [10])])))).statusCode).toBe(200);
  });

  it("sheds ingest with 503 overloaded when the event loop is saturated, but keeps health and metrics up", async () => {
    const c = await collector({ maxEventLoopDelayMs: 20 }, 200);
    const body = encode(summary(1, 60_000, [series("a", [10])]));
    let shed: Awaited<ReturnType<typeof post>> | undefined;
    for (let attempt = 0; attempt < 5 && !shed; attempt++) {
      const until = performance.now() + 600;
      while (performance.now() < until); // saturate the event loop
      await new Promise((r) => setTimeout(r, 0)); // let the pressure sampler see it
      const res = await post(c, body);
      if (res.statusCode === 503) shed = res;
    }
    expect(shed).toBeDefined();
    expect([shed!.json().error, shed!.headers["retry-after"]]).toEqual(["overloaded", "2"]);
    expect((await c.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    expect((await metricValues(c)).get("meshlook_summaries_rejected_total{reason=overloaded}")).toBeGreaterThanOrEqual(1);
    let ok = 0;
    while (ok !== 200) {
      await new Promise((r) => setTimeout(r, 50));
      ok = (await post(c, body)).statusCode;
    }
  });

  it("sheds ingest with 503 overloaded and Retry-After when the V8 heap in use is over MESHLOOK_MAX_HEAP_USED_BYTES", async () => {
    // Any heap is over 1 byte; the event-loop check is set out of the way so the heap is what trips.
    const c = await collector({ maxHeapUsedBytes: 1, maxEventLoopDelayMs: 60_000 }, 20);
    const body = encode(summary(1, 60_000, [series("a", [10])]));
    let res = await post(c, body);
    // On a busy machine a stalled sample reads as an infinite event-loop delay, checked before the heap.
    for (let i = 0; i < 50 && !/heapUsedBytes/.test(res.body); i++) {
      await new Promise((r) => setTimeout(r, 20));
      res = await post(c, body);
    }
    expect([res.statusCode, res.json().error, res.headers["retry-after"]]).toEqual([503, "overloaded", "2"]);
    expect(res.json().message).toMatch(/heapUsedBytes = \d+/);
    expect((await c.app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    expect((await metricValues(c)).get("meshlook_summaries_rejected_total{reason=overloaded}")).toBeGreaterThanOrEqual(1);
  });

  it("checks the heap by default, below V8's heap limit", () => {
    const { maxHeapUsedBytes } = defaultConfig();
    expect(maxHeapUsedBytes).toBeGreaterThan(0);
    expect(maxHeapUsedBytes).toBeLessThan(getHeapStatistics().heap_size_limit);
  });

  it("bounds the memory held for unloaded summaries by MESHLOOK_MAX_HELD_BYTES; beyond it they load from disk, exactly once", async () => {
    // Long producer ids make the keys and ledger entries, not only the rollups, weigh.
    const input = Array.from({ length: 60 }, (_, i) => summary(i + 1, 60_000 + (i % 3) * 60_000, [series(`svc${i % 4}`, latencies(5))], `p-${"x".repeat(2000)}`));
    const bodies = input.map(encode);
    const held = async (c: RunningCollector) => (await metricValues(c)).get("meshlook_ingest_held_bytes") ?? 0;
    // Unbounded (the default budget), the same input holds far more than the bound used below.
    const free = await collector();
    for (const b of bodies) expect((await post(free, b)).statusCode).toBe(200);
    const limit = 24 * 1024;
    expect(await held(free)).toBeGreaterThan(2 * limit);

    const c = await collector({ maxHeldBytes: limit });
    let peak = 0;
    for (const b of bodies) {
      expect((await post(c, b)).statusCode).toBe(200);
      peak = Math.max(peak, await held(c));
    }
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(limit);
    // Retries of summaries no longer tracked are spooled again; the warehouse ledger drops them.
    for (const b of bodies.slice(-5)) expect((await post(c, b)).statusCode).toBe(200);
    await c.loader.loadNow();
    expect(await held(c)).toBe(0);
    expect(await warehouseTotals(c)).toEqual(totals(input));
    const [ledger] = (await (c.sink as DuckDBSink).connection.runAndReadAll("SELECT COUNT(*) AS n FROM mesh_load_ledger")).getRowObjectsJS();
    expect(Number(ledger.n)).toBe(input.length);
  });

  it("does not roll up again a segment whose rollup went over MESHLOOK_MAX_HELD_BYTES, which loads from disk, exactly once", async () => {
    const input = Array.from({ length: 20 }, (_, i) => summary(i + 1, 60_000, [series(`svc${i % 4}`, latencies(5))], `p-${"x".repeat(2000)}`));
    const held = async (c: RunningCollector) => (await metricValues(c)).get("meshlook_ingest_held_bytes") ?? 0;
    const c = await collector({ maxHeldBytes: 12 * 1024 });
    const adds = vi.spyOn(MinuteRollup.prototype, "add");
    let addsAtDrop: number | undefined;
    let last = await held(c);
    for (const s of input) {
      expect((await post(c, encode(s))).statusCode).toBe(200);
      const now = await held(c);
      // Held bytes only fall (before a load) when the segment's rollup is given back.
      if (now < last) addsAtDrop ??= adds.mock.calls.length;
      last = now;
    }
    const addsAfter = adds.mock.calls.length;
    adds.mockRestore();
    expect(addsAtDrop).toBeGreaterThan(0);
    expect(addsAfter).toBe(addsAtDrop);
    const before = await metricValues(c);
    await c.loader.loadNow();
    const after = await metricValues(c);
    expect((after.get("meshlook_load_cycles_total{path=replay}") ?? 0) - (before.get("meshlook_load_cycles_total{path=replay}") ?? 0)).toBe(1);
    expect(await warehouseTotals(c)).toEqual(totals(input));
  });

  it("accepts without a token only when authentication is explicitly disabled", async () => {
    const c = await collector({ authDisabled: true, ingestTokens: [] });
    expect(c.auth).toEqual({ mode: "disabled" });
    const res = await post(c, encode(summary(1, 60_000, [series("a", [10])])), { authorization: "" });
    expect(res.statusCode).toBe(200);
  });

  it("counts acknowledgements per token by a keyed digest prefix, and /metrics carries no token and no identity", async () => {
    const c = await collector();
    const identity = ["spiffe://cluster.local/ns/shop/sa/checkout-7f3a", "checkout-7f3a-workload", "payments-9c1e.shop.svc.cluster.local"];
    const withIdentity = (seq: number) => {
      const s = summary(seq, 60_000, [series(identity[2], [10, 20])]);
      s.series[0].dimensions = { ...s.series[0].dimensions, source_principal: identity[0], source_workload: identity[1], destination_principal: identity[0] };
      return encode(s);
    };
    for (const seq of [1, 2, 3]) expect((await post(c, withIdentity(seq), { authorization: "Bearer token-old" })).statusCode).toBe(200);
    expect((await post(c, withIdentity(3), { authorization: "Bearer token-old" })).json()).toEqual({ status: "duplicate" });
    expect((await post(c, withIdentity(4))).statusCode).toBe(200);
    expect((await post(c, withIdentity(5), { authorization: "Bearer token-retired" })).statusCode).toBe(401);
    await c.loader.loadNow();

    // Labels come from a digest keyed per process (the log maps each to its token's origin): 8 hex
    // digits, never the unsalted SHA-256 prefix a guessed token could be checked against offline.
    const unsalted = (t: string) => createHash("sha256").update(t).digest("hex").slice(0, 8);
    const m = await metricValues(c);
    const byToken = [...m].filter(([k]) => k.startsWith("meshlook_ingest_accepted_by_token_total"));
    expect(byToken.map(([, v]) => v).sort()).toEqual([1, 4]);
    for (const [k] of byToken) {
      expect(k).toMatch(/\{token=[0-9a-f]{8}\}$/);
      for (const t of ["token-old", "token-new"]) expect(k).not.toContain(unsalted(t));
    }
    const text = (await c.app.inject({ method: "GET", url: "/metrics" })).body;
    for (const secretOrIdentity of ["token-old", "token-new", "token-retired", ...identity, "checkout", "payments", "spiffe"]) {
      expect(text).not.toContain(secretOrIdentity);
    }
  });

  it("labels a failed DuckDB load, keeps the summaries, and loads them once the warehouse is back", async () => {
    const c = await collector();
    const s1 = summary(1, 60_000, [series("a", latencies(30))]);
    expect((await post(c, encode(s1))).statusCode).toBe(200);
    await c.sink.close();
    expect(await c.loader.loadNow()).toBe(false);
    const m = await metricValues(c);
    expect([m.get("meshlook_load_failures_total{reason=duckdb}"), m.get("meshlook_load_failures_total{reason=other}")]).toEqual([1, 0]);
    await c.sink.open();
    await c.loader.loadNow();
    expect(await warehouseTotals(c)).toEqual(totals([s1]));
  });

  it("reports readiness from the spool and the warehouse", async () => {
    const c = await collector();
    expect((await c.app.inject({ method: "GET", url: "/healthz" })).json()).toEqual({ status: "ok" });
    expect((await c.app.inject({ method: "GET", url: "/readyz" })).json()).toEqual({ status: "ready" });
    await c.sink.close();
    const res = await c.app.inject({ method: "GET", url: "/readyz" });
    expect([res.statusCode, res.json().error]).toEqual([503, "warehouse_unreachable"]);
    const nf = await c.app.inject({ method: "GET", url: "/nope" });
    expect([nf.statusCode, nf.json().error]).toEqual([404, "not_found"]);
  });

  it("counts the drops the filters report on /metrics, once per summary", async () => {
    const c = await collector();
    const lossy = { ...summary(1, 60_000, [series("a", [10])]), droppedWindows: 3, droppedRequests: 1234, overflowKeys: 17 };
    const next = { ...summary(2, 70_000, [series("a", [10])]), droppedWindows: 1, droppedRequests: 6, overflowKeys: 0 };
    expect((await post(c, encode(lossy))).statusCode).toBe(200);
    expect((await post(c, encode(lossy))).json()).toEqual({ status: "duplicate" }); // a retry reports nothing new
    expect((await post(c, encode(next))).statusCode).toBe(200);
    expect((await post(c, Buffer.from("not a summary"))).statusCode).toBe(400);
    const m = await metricValues(c);
    expect([m.get("meshlook_filter_dropped_windows_total"), m.get("meshlook_filter_dropped_requests_total"), m.get("meshlook_filter_overflow_keys_total")]).toEqual([4, 1240, 17]);
  });

  it("is not ready while the spool is over its limit, until a load frees it", async () => {
    const c = await collector({ spoolMaxBytes: 1 });
    expect((await c.app.inject({ method: "GET", url: "/readyz" })).statusCode).toBe(200);
    expect((await post(c, encode(summary(1, 60_000, [series("a", [10])])))).statusCode).toBe(200);
    const res = await c.app.inject({ method: "GET", url: "/readyz" });
    expect([res.statusCode, res.json().error]).toEqual([503, "spool_full"]);
    await c.loader.loadNow();
    expect((await c.app.inject({ method: "GET", url: "/readyz" })).json()).toEqual({ status: "ready" });
  });

  it("is not ready after a spool write hit a full disk, until a write succeeds", async () => {
    const c = await collector();
    // The disk fills up under the spool: its next write fails with ENOSPC (an empty probe file still fits).
    const probe = await open(join(c.spool.dir, "handle-probe"), "w");
    const handleProto = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const enospc = vi.spyOn(handleProto, "writev").mockRejectedValueOnce(Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }));
    try {
      const refused = await post(c, encode(summary(1, 60_000, [series("a", [10])])));
      expect([refused.statusCode, refused.json().error]).toEqual([503, "spool_unavailable"]);
      const res = await c.app.inject({ method: "GET", url: "/readyz" });
      expect([res.statusCode, res.json().error]).toEqual([503, "spool_disk_full"]);
    } finally {
      enospc.mockRestore();
    }
    // Space again: the retry is stored and readiness comes back.
    expect((await post(c, encode(summary(1, 60_000, [series("a", [10])])))).statusCode).toBe(200);
    expect((await c.app.inject({ method: "GET", url: "/readyz" })).json()).toEqual({ status: "ready" });
  });
});
