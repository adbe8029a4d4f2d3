// End to end: 100 000 requests of the mixed mesh (59 principals, HTTP and gRPC, errors, plaintext and
// proxyless callers) through the release filter in simulated sidecars (2 VMs each), POSTed over HTTP to a
// collector process, spooled, rolled up and loaded into DuckDB; then read back with SQL. The series cap is
// low enough that busy sidecars fold requests into the overflow series. The warehouse is compared with the
// traffic generator's ground truth, which never touches the filter's or the collector's code.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPipeline, type PipelineResult } from "../../sim/pipeline.ts";
import { DIMENSIONS, GroundTruth, TrafficGenerator, mixed, type Stats } from "../../sim/traffic/index.ts";
import { Warehouse, exactFields, type Measures } from "../../sim/warehouse.ts";

const REQUESTS = 100_000;
const MAX_SERIES = 24;
const QUANTILES = [0.5, 0.9, 0.99, 0.999];
const OVERFLOW = "__overflow__";
const REPORTERS = ["source", "destination"] as const;

let dir: string;
let truth: GroundTruth;
let result: PipelineResult;
let warehouse: Warehouse;
let series: Map<string, Measures>;
let expected: Map<string, Stats>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meshlook-e2e-"));
  const model = mixed();
  const generator = new TrafficGenerator(model, { seed: 5150, requestsPerSecond: 2000 });
  truth = new GroundTruth();
  result = await runPipeline({
    model,
    generator,
    truth,
    filterConfig: { max_series: MAX_SERIES },
    dataDir: dir,
    requests: REQUESTS,
  });
  warehouse = await Warehouse.open(result.duckdbPath);
  series = await warehouse.series(QUANTILES);
  expected = truth.aggregate((row) => row.key);
}, 240_000);

afterAll(() => {
  warehouse?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const isOverflow = (key: string) => key.split("\u0001")[1] === OVERFLOW;
const reporterOf = (key: string) => key.split("\u0001")[0];
const within1pct = (got: number, want: number) => (want === 0 ? got === 0 : Math.abs(got - want) / want <= 0.01);

describe("filter → collector → DuckDB, against the ground truth", () => {
  it("ran every request through the filters without a trap", () => {
    expect(result.progress.requests).toBe(REQUESTS);
    expect(result.progress.trapped).toBe(0);
    expect(result.progress.skipped).toBe(0);
    expect(truth.observations).toBe(result.progress.streams);
  });

  it("acknowledged every summary the filters sent, and loaded each exactly once", async () => {
    expect(result.sent.size).toBeGreaterThan(200);
    expect([...result.acknowledged].sort()).toEqual([...result.sent].sort());
    const ledger = await warehouse.rows("SELECT producer_id || '#' || seq FROM mesh_load_ledger");
    const keys = ledger.map((r) => String(r[0]));
    expect(keys.length).toBe(new Set(keys).size);
    expect(keys.sort()).toEqual([...result.sent].sort());
    const totals = await warehouse.ledger();
    expect(totals.requests).toBe(truth.observations);
  });

  it("folds requests into the overflow series where the cap is exceeded, every reported dimension but the reporter set to the sentinel", async () => {
    const overflow = [...series.keys()].filter(isOverflow);
    expect(overflow.length).toBeGreaterThan(0);
    const rows = await warehouse.rows(`SELECT ${DIMENSIONS.filter((d) => d !== "reporter").join(", ")} FROM mesh_traffic_minute WHERE source_principal = '${OVERFLOW}'`);
    for (const row of rows) {
      for (const [i, d] of DIMENSIONS.filter((d) => d !== "reporter").entries()) {
        // end_user_principal is off in this run: the filter does not report it, so it reads `unknown`.
        expect(row[i], d).toBe(d === "response_code" ? 0 : d === "end_user_principal" ? "unknown" : OVERFLOW);
      }
    }
  });

  it("keeps totals per reporter exact, overflow included", () => {
    for (const reporter of REPORTERS) {
      const want = exactFields(truth.totals({ reporter }));
      const got = [0, 0, 0, 0, 0, Infinity, -Infinity];
      for (const [key, m] of series) {
        if (reporterOf(key) !== reporter) continue;
        exactFields(m).forEach((v, i) => (got[i] = i === 5 ? Math.min(got[i], v) : i === 6 ? Math.max(got[i], v) : got[i] + v));
      }
      expect(got, reporter).toEqual(want);
    }
  });

  it("reports every series exactly, except for what it provably folded into the overflow series of its reporter", () => {
    // Per series the warehouse holds the truth minus the requests folded into overflow; the shortfall,
    // summed per reporter, must be exactly what the overflow series holds — counters and bytes alike.
    const shortfall = new Map<string, number[]>(REPORTERS.map((r) => [r, [0, 0, 0, 0, 0]]));
    let exact = 0;
    for (const [key, stats] of expected) {
      const want = exactFields(stats).slice(0, 5);
      const got = series.has(key) ? exactFields(series.get(key)!).slice(0, 5) : [0, 0, 0, 0, 0];
      got.forEach((v, i) => expect(v, key).toBeLessThanOrEqual(want[i]));
      if (got.every((v, i) => v === want[i])) exact++;
      const s = shortfall.get(reporterOf(key))!;
      want.forEach((v, i) => (s[i] += v - got[i]));
    }
    for (const key of series.keys()) if (!isOverflow(key)) expect(expected.has(key), key).toBe(true);
    for (const reporter of REPORTERS) {
      const folded = [...series].filter(([k]) => isOverflow(k) && reporterOf(k) === reporter).map(([, m]) => exactFields(m).slice(0, 5));
      const sum = folded.reduce((a, b) => a.map((v, i) => v + b[i]), [0, 0, 0, 0, 0]);
      expect(sum, reporter).toEqual(shortfall.get(reporter));
    }
    // The cap bites on busy sidecars only: most series arrive untouched.
    expect(exact / expected.size).toBeGreaterThan(0.5);
    expect(exact).toBeLessThan(expected.size);
  });

  it("answers p50/p90/p99/p99.9 through MESH_QUANTILE within 1 % of the exact quantiles", async () => {
    let checked = 0;
    for (const [key, stats] of expected) {
      const got = series.get(key);
      if (!got || exactFields(got)[0] !== stats.requests) continue; // partly folded: its sketch holds a subset
      QUANTILES.forEach((q, i) => expect(within1pct(got.quantilesUs[i], stats.quantile(q)), `${key} q${q}: ${got.quantilesUs[i]} vs ${stats.quantile(q)}`).toBe(true));
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
    // Per reporter, the overflow series included, every request's latency is in the merged sketches.
    const sql = `SELECT reporter${QUANTILES.map((q) => `, MESH_QUANTILE(ARRAY_AGG(latency_sketch), ${q})`).join("")} FROM mesh_traffic_minute GROUP BY 1`;
    for (const row of await warehouse.rows(sql)) {
      const exact = truth.totals({ reporter: row[0] as "source" | "destination" });
      QUANTILES.forEach((q, i) => expect(within1pct(Number(row[i + 1]), exact.quantile(q)), `${row[0]} q${q}`).toBe(true));
    }
  });
});
