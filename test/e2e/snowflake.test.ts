// End to end into Snowflake: the same seeded traffic (mixed mesh, HTTP and gRPC, errors, plaintext and
// proxyless callers) runs twice through the release filter in simulated sidecars, once into a collector
// process with the DuckDB sink and once into a collector process with the Snowflake sink loading the
// stand-in over snowflake-sdk. Both warehouses are then read with the same SQL — the Snowflake side through
// the driver, so the JavaScript MESH_QUANTILE UDF runs as Snowflake would run it — and must agree with each
// other row for row and with the traffic generator's ground truth.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import snowflake from "snowflake-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPipeline, type PipelineResult } from "../../sim/pipeline.ts";
import { DIMENSIONS, GroundTruth, TrafficGenerator, mixed, seriesKey, type SeriesDims, type Stats } from "../../sim/traffic/index.ts";
import { Warehouse, exactFields, truthMeasures, type Measures } from "../../sim/warehouse.ts";
import { FACT_TABLE, LEDGER_TABLE } from "../../shared/schema.ts";
import { expectSnowflakeSyntax, readerConnection, type Stand } from "../snowflake/helpers.ts";
import { startRemoteStand, type RemoteStand } from "./snowflake-helpers.ts";

const SEED = 6006;
const REQUESTS = 12_000;
/** 80 simulated seconds: two minutes, eight 10 s flushes. */
const REQUESTS_PER_SECOND = 150;
const QUANTILES = [0.5, 0.9, 0.99];
/** Wall ms per simulated second of the Snowflake run: the 1 s load interval then sees the flushes apart. */
const PACE_MS = 80;

type Rows = Record<string, unknown>[];
type Query = (sql: string) => Promise<Rows>;

/** One SQL text for both warehouses; aliases are read case-insensitively (Snowflake upper-cases them). */
const quantileColumns = QUANTILES.map((q, i) => `MESH_QUANTILE(ARRAY_AGG(latency_sketch), ${q}) AS q${i}`).join(", ");
const SERIES_SQL = `SELECT minute AS minute_ts, ${DIMENSIONS.join(", ")},
  SUM(requests) AS requests, SUM(errors) AS errors, SUM(request_bytes) AS request_bytes, SUM(response_bytes) AS response_bytes,
  SUM(latency_sum_us) AS latency_sum_us, MIN(latency_min_us) AS latency_min_us, MAX(latency_max_us) AS latency_max_us,
  ${quantileColumns}
FROM ${FACT_TABLE.name} GROUP BY minute, ${DIMENSIONS.join(", ")}`;
const SERVICE_SQL = `SELECT reporter, destination_service, SUM(requests) AS requests, ${quantileColumns}
FROM ${FACT_TABLE.name} GROUP BY reporter, destination_service`;
const LEDGER_SQL = `SELECT producer_id, seq, requests FROM ${LEDGER_TABLE.name}`;

/** Column value by alias, whatever case the warehouse returned it in. */
const col = (row: Record<string, unknown>, name: string): unknown => row[name] ?? row[name.toUpperCase()];

/** Unix ms of a TIMESTAMP as either client returns it (DuckDB: micros; snowflake-sdk: a Date). */
function epochMs(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (v && typeof v === "object" && "micros" in v) return Number((v as { micros: bigint }).micros / 1000n);
  throw new Error(`not a timestamp: ${String(v)}`);
}

function measuresOf(row: Record<string, unknown>): Measures {
  const n = (name: string) => Number(col(row, name));
  return {
    requests: n("requests"),
    errors: n("errors"),
    requestBytes: n("request_bytes"),
    responseBytes: n("response_bytes"),
    latencySumUs: n("latency_sum_us"),
    latencyMinUs: n("latency_min_us"),
    latencyMaxUs: n("latency_max_us"),
    quantilesUs: QUANTILES.map((_, i) => n(`q${i}`)),
  };
}

const minuteSeriesKey = (minuteMs: number, key: string) => `${new Date(minuteMs).toISOString()}\u0002${key}`;

/** Measures per (minute, series), keyed like the ground truth's rows. */
async function minuteSeries(query: Query): Promise<Map<string, Measures>> {
  const out = new Map<string, Measures>();
  for (const row of await query(SERIES_SQL)) {
    const dims = Object.fromEntries(DIMENSIONS.map((d) => [d, d === "response_code" ? Number(col(row, d)) : String(col(row, d))]));
    out.set(minuteSeriesKey(epochMs(col(row, "minute_ts")), seriesKey(dims as SeriesDims)), measuresOf(row));
  }
  return out;
}

/** Requests and quantiles per reporter and destination service over the whole run. */
async function perService(query: Query): Promise<Map<string, number[]>> {
  const rows = await query(SERVICE_SQL);
  return new Map(rows.map((r) => [`${col(r, "reporter")} ${col(r, "destination_service")}`, [Number(col(r, "requests")), ...QUANTILES.map((_, i) => Number(col(r, `q${i}`)))]]));
}

/** `producer#seq` of every ledger row (duplicates kept), and the requests the ledger accounts for. */
async function ledgerOf(query: Query): Promise<{ keys: string[]; requests: number }> {
  const rows = await query(LEDGER_SQL);
  return {
    keys: rows.map((r) => `${col(r, "producer_id")}#${Number(col(r, "seq"))}`).sort(),
    requests: rows.reduce((sum, r) => sum + Number(col(r, "requests")), 0),
  };
}

/** Differences between a warehouse's (minute, series) measures and the ground truth: exact fields exactly, quantiles within 1 %. */
function diffFromTruth(got: Map<string, Measures>, truth: GroundTruth): string[] {
  const diffs: string[] = [];
  const want = new Map(truth.rows().map((r) => [minuteSeriesKey(r.minuteMs, r.key), r.stats]));
  for (const [key, stats] of want) {
    const m = got.get(key);
    const exact = exactFields(truthMeasures(stats));
    if (!m) diffs.push(`missing: ${key}`);
    else if (exactFields(m).some((v, i) => v !== exact[i])) diffs.push(`${key}: ${exactFields(m)} vs truth ${exact}`);
    else {
      for (const [i, q] of QUANTILES.entries()) {
        if (!within1pct(m.quantilesUs[i], stats.quantile(q))) diffs.push(`${key} q${q}: ${m.quantilesUs[i]} vs ${stats.quantile(q)}`);
      }
    }
  }
  for (const key of got.keys()) if (!want.has(key)) diffs.push(`not in ground truth: ${key}`);
  return diffs;
}

/** Keys whose measures differ between two warehouses' answers, or that only one of them has. */
function differences(a: Map<string, unknown>, b: Map<string, unknown>): string[] {
  const out: string[] = [];
  for (const [key, v] of a) if (JSON.stringify(v) !== JSON.stringify(b.get(key))) out.push(`${key}: ${JSON.stringify(v)} vs ${JSON.stringify(b.get(key))}`);
  for (const key of b.keys()) if (!a.has(key)) out.push(`only in the second: ${key}`);
  return out;
}

const within1pct = (got: number, want: number) => (want === 0 ? got === 0 : Math.abs(got - want) / want <= 0.01);

interface Run {
  truth: GroundTruth;
  result: PipelineResult;
}

/**
 * Unpaced, the whole run takes a few seconds of wall time, a few load intervals. Holding the runner
 * for a moment after each simulated second (the collectors are other processes, their timers keep going)
 * spreads the summaries over several loads, as in a running mesh.
 */
const pause = new Int32Array(new SharedArrayBuffer(4));
const paceStep = () => void Atomics.wait(pause, 0, 0, PACE_MS);

async function run(dataDir: string, options: { collectorSettings?: Record<string, string>; paced?: boolean } = {}): Promise<Run> {
  const model = mixed();
  const truth = new GroundTruth();
  const result = await runPipeline({
    model,
    generator: new TrafficGenerator(model, { seed: SEED, requestsPerSecond: REQUESTS_PER_SECOND }),
    truth,
    dataDir,
    collectorSettings: options.collectorSettings,
    requests: REQUESTS,
    onStep: options.paced ? paceStep : undefined,
  });
  return { truth, result };
}

let dir: string;
let s: RemoteStand;
let duck: Run;
let snow: Run;
let warehouse: Warehouse;
let reader: Awaited<ReturnType<typeof readerConnection>>;
const duckQuery: Query = async (sql) => {
  const reader = await warehouse.connection.runAndReadAll(sql);
  const names = reader.columnNames();
  return reader.getRows().map((r) => Object.fromEntries(names.map((n, i) => [n, r[i]])));
};
const snowQuery: Query = (sql) => reader.query(sql);

beforeAll(async () => {
  // The reader connection logs every step at INFO otherwise.
  snowflake.configure({ logLevel: "WARN" });
  dir = mkdtempSync(join(tmpdir(), "meshlook-e2e-sf-"));
  s = await startRemoteStand();
  duck = await run(join(dir, "duckdb"));
  // A 1 s load interval instead of the recommended 900 s: several loads while traffic runs, the rest on stop.
  snow = await run(join(dir, "snowflake"), { collectorSettings: { ...s.env, MESHLOOK_LOAD_INTERVAL_S: "1" }, paced: true });
  warehouse = await Warehouse.open(duck.result.duckdbPath);
  // readerConnection registers READER on an in-process stand-in; the remote one has it from the start.
  reader = await readerConnection({ sf: { account: s.account, url: s.url, setUser: () => undefined } } as unknown as Stand);
}, 300_000);

afterAll(async () => {
  warehouse?.close();
  await reader?.close();
  await s?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("filter → collector → Snowflake sink → stand-in, against the DuckDB path and the ground truth", () => {
  it("ran the same traffic twice, every request through the filters, every summary acknowledged", () => {
    for (const { result, truth } of [duck, snow]) {
      expect(result.progress.requests).toBe(REQUESTS);
      expect(result.progress.trapped).toBe(0);
      expect(result.progress.skipped).toBe(0);
      expect(truth.observations).toBe(result.progress.streams);
      expect(result.sent.size).toBeGreaterThan(50);
      expect(result.acknowledged.size).toBe(result.sent.size);
    }
    const rows = (t: GroundTruth) => t.rows().map((r) => [r.minuteMs, r.key, ...exactFields(truthMeasures(r.stats))]);
    expect(rows(snow.truth)).toEqual(rows(duck.truth));
    expect(snow.result.sent.size).toBe(duck.result.sent.size);
  });

  it("loaded into Snowflake in several loads, so (minute, series) groups span fact rows of different loads", async () => {
    const claims = (await s.statements()).filter((st) => st.user === "LOADER" && /^\s*MERGE\s+INTO\s+mesh_load_ledger\b/i.test(st.sql));
    expect(claims.length).toBeGreaterThan(2);
    const [{ n }] = await s.query(`SELECT COUNT(*) AS n FROM ${FACT_TABLE.name}`);
    expect(Number(n)).toBeGreaterThan((await minuteSeries(snowQuery)).size);
  });

  it("holds every summary in the ledger once, in both warehouses", async () => {
    const [d, f] = [await ledgerOf(duckQuery), await ledgerOf(snowQuery)];
    expect(d.keys).toEqual([...duck.result.sent].sort());
    expect(f.keys).toEqual([...snow.result.sent].sort());
    expect(f.keys.length).toBe(d.keys.length);
    expect(f.requests).toBe(snow.truth.observations);
    expect(d.requests).toBe(duck.truth.observations);
  });

  it("has the same measures and percentiles per minute and series in both warehouses, equal to the ground truth", async () => {
    const d = await minuteSeries(duckQuery);
    const f = await minuteSeries(snowQuery);
    expect(f.size).toBeGreaterThan(200);
    expect(differences(f, d)).toEqual([]);
    expect(diffFromTruth(f, snow.truth)).toEqual([]);
    expect(diffFromTruth(d, duck.truth)).toEqual([]);
  });

  it("answers p50/p90/p99 per destination service identically in both warehouses, within 1 % of the exact quantiles", async () => {
    const d = await perService(duckQuery);
    const f = await perService(snowQuery);
    expect(differences(f, d)).toEqual([]);
    const exact = snow.truth.aggregate((r) => `${r.dims.reporter} ${r.dims.destination_service}`);
    expect([...f.keys()].sort()).toEqual([...exact.keys()].sort());
    for (const [key, [requests, ...quantiles]] of f) {
      const stats: Stats = exact.get(key)!;
      expect(requests, key).toBe(stats.requests);
      QUANTILES.forEach((q, i) => expect(within1pct(quantiles[i], stats.quantile(q)), `${key} q${q}: ${quantiles[i]} vs ${stats.quantile(q)}`).toBe(true));
    }
  });

  it("sent the stand-in only statements that parse as Snowflake SQL", async () => {
    expectSnowflakeSyntax(await s.statements());
  });

  it("would notice a summary loaded twice: the comparison is not blind to duplicated facts", async () => {
    // Replays one ledger row's facts a second time directly in the warehouse, as a double load would.
    const [victim] = await s.query(`SELECT reporter, destination_service FROM ${FACT_TABLE.name} LIMIT 1`);
    await s.query(
      `INSERT INTO ${FACT_TABLE.name} SELECT * FROM ${FACT_TABLE.name} WHERE reporter = '${victim.reporter}' AND destination_service = '${victim.destination_service}'`,
    );
    const diffs = diffFromTruth(await minuteSeries(snowQuery), snow.truth);
    expect(diffs.length).toBeGreaterThan(0);
    expect(diffs.every((line) => line.includes(String(victim.destination_service)))).toBe(true);
  });
});
