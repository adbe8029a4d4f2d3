// Test support for the Snowflake sink: key pairs, a stand-in with a loader user, sink settings pointing
// at it, seeded summaries with their exact ground truth, and the Snowflake syntax check.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import snowflake from "snowflake-sdk";
import { afterAll, beforeAll, expect } from "vitest";
import type { SnowflakeSettings } from "../../collector/config.ts";
import type { DecodedSeries, DecodedSummary } from "../../collector/summary.ts";
import { DIMENSIONS, STRING_DIMENSIONS, type Dimension } from "../../shared/schema.ts";
import { SnowflakeSink } from "../../collector/sink/snowflake.ts";
import { exactQuantile as exactSortedQuantile } from "../../sim/traffic/truth.ts";
import { mulberry32 } from "../shared/random.ts";
import { startStandin, type CapturedStatement, type Standin, type StandinOptions } from "./standin/server.ts";
import { snowflakeSyntaxError } from "./standin/translate.ts";

export { startStandin };

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

export function rsaKeyPair(passphrase?: string): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: passphrase ? { type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase } : { type: "pkcs8", format: "pem" },
  });
  return { privateKey, publicKey };
}

export interface Stand {
  sf: Standin;
  dir: string;
  key: KeyPair;
  keyFile: string;
  /** Sink settings for the stand-in's LOADER user with key-pair auth; override any field. */
  settings(over?: Partial<SnowflakeSettings>): SnowflakeSettings;
  /** The same as collector environment variables, for a collector process loading into the stand-in. */
  env(): Record<string, string>;
}

/** A stand-in whose user LOADER has one registered key, and that key written to a file. */
export async function stand(options: StandinOptions = {}): Promise<Stand> {
  const key = rsaKeyPair();
  const sf = await startStandin({ ...options, users: { LOADER: { publicKeys: [key.publicKey] }, ...options.users } });
  const dir = mkdtempSync(join(tmpdir(), "meshlook-sf-"));
  const keyFile = join(dir, "rsa_key.p8");
  writeFileSync(keyFile, key.privateKey, { mode: 0o600 });
  const settings = (over: Partial<SnowflakeSettings> = {}): SnowflakeSettings => ({
    account: sf.account.toLowerCase(),
    user: "loader",
    role: "MESHLOOK_LOADER",
    warehouse: "MESHLOOK_WH",
    database: "MESHLOOK",
    schema: "TRAFFIC",
    authenticator: "SNOWFLAKE_JWT",
    privateKeyFile: keyFile,
    accessUrl: sf.url,
    ...over,
  });
  return {
    sf,
    dir,
    key,
    keyFile,
    settings,
    env() {
      const st = settings();
      return {
        MESHLOOK_SINK: "snowflake",
        MESHLOOK_SNOWFLAKE_ACCOUNT: st.account!,
        MESHLOOK_SNOWFLAKE_USER: st.user!,
        MESHLOOK_SNOWFLAKE_ROLE: st.role!,
        MESHLOOK_SNOWFLAKE_WAREHOUSE: st.warehouse!,
        MESHLOOK_SNOWFLAKE_DATABASE: st.database!,
        MESHLOOK_SNOWFLAKE_SCHEMA: st.schema!,
        MESHLOOK_SNOWFLAKE_AUTHENTICATOR: st.authenticator,
        MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: st.privateKeyFile!,
        MESHLOOK_SNOWFLAKE_ACCESS_URL: st.accessUrl!,
      };
    },
  };
}

/**
 * One stand-in for a describe block: started (and, with `migrate`, brought to the current schema by a
 * sink) before its tests, and after them checked — every statement it received must parse as Snowflake
 * SQL — and stopped. The returned object is filled in before the first test runs.
 */
export function standForSuite(options: StandinOptions & { migrate?: boolean } = {}): Stand {
  const s = {} as Stand;
  beforeAll(async () => {
    Object.assign(s, await stand(options));
    if (options.migrate) {
      const sink = new SnowflakeSink(s.settings());
      await sink.open();
      await sink.close();
    }
  });
  afterAll(async () => {
    expectSnowflakeSyntax(s.sf.statements);
    await s.sf.stop();
  });
  return s;
}

/** Fails the test if any statement the stand-in received does not parse as Snowflake SQL. */
export function expectSnowflakeSyntax(statements: readonly CapturedStatement[]): void {
  expect(statements.length).toBeGreaterThan(0);
  const bad = statements.map((s) => ({ sql: s.sql, error: snowflakeSyntaxError(s.sql) })).filter((s) => s.error !== undefined);
  expect(bad).toEqual([]);
}

/** Sketch of whole-microsecond values at `scale`, per docs/schema.md (bucket i holds (base^i, base^(i+1)]). */
export function sketchOf(values: readonly number[], scale = 6): { s: number; z: number; o: number; c: number[] } {
  let z = 0;
  const counts = new Map<number, number>();
  for (const v of values) {
    if (v === 0) z++;
    else {
      const i = Math.ceil(Math.log2(v) * 2 ** scale) - 1;
      counts.set(i, (counts.get(i) ?? 0) + 1);
    }
  }
  if (counts.size === 0) return { s: scale, z, o: 0, c: [] };
  const lo = Math.min(...counts.keys());
  const hi = Math.max(...counts.keys());
  const c = Array.from({ length: hi - lo + 1 }, (_, k) => counts.get(lo + k) ?? 0);
  return { s: scale, z, o: lo, c };
}

/** Dimension values a SQL-building bug would mangle; they must come back byte for byte. */
export const HOSTILE_VALUES = [
  "it's",
  'say "hi"',
  "$$ return 1; $$",
  "a; DROP TABLE mesh_load_ledger; --",
  "SELECT * FROM mesh_traffic_minute WHERE 1=1",
  "back\\slash",
  "ünïcødé ✓",
  "?",
  ":1",
];

export interface Traffic {
  summaries: DecodedSummary[];
  /** Every latency value, for exact percentiles. */
  latencies: number[];
  requests: number;
  errors: number;
}

// Two days back on a whole hour: closed hours, and inside every age limit ingest and the loader apply
// (a fixed date would pass the ledger horizon and be refused).
const BASE_MINUTE = Math.floor(Date.now() / 3_600_000 - 48) * 3_600_000;

/**
 * Summaries from `producers` sidecars, `perProducer` 10-second windows each, a few series per summary;
 * dimension values drawn from realistic names plus HOSTILE_VALUES.
 */
export function traffic(seed: number, producers: number, perProducer: number): Traffic {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)];
  const summaries: DecodedSummary[] = [];
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  for (let p = 0; p < producers; p++) {
    const producerId = `sidecar-${seed}-${p}`;
    for (let seq = 1; seq <= perProducer; seq++) {
      const windowStartMs = BASE_MINUTE + (seq - 1) * 10_000;
      const series: DecodedSeries[] = [];
      const nSeries = 1 + Math.floor(rnd() * 3);
      for (let k = 0; k < nSeries; k++) {
        const dimensions = {} as Record<Dimension, string | number>;
        for (const d of STRING_DIMENSIONS) dimensions[d] = pick(["unknown", `${d}-a`, `${d}-b`]);
        dimensions.source_workload = pick(["frontend", "checkout", ...HOSTILE_VALUES]);
        dimensions.destination_service = pick(["reviews.shop.svc.cluster.local", ...HOSTILE_VALUES]);
        dimensions.response_code = pick([200, 200, 200, 503, 0]);
        const n = 1 + Math.floor(rnd() * 20);
        const vals = Array.from({ length: n }, () => (rnd() < 0.02 ? 0 : Math.floor(200 + rnd() ** 3 * 500_000)));
        const errs = dimensions.response_code === 503 ? n : 0;
        latencies.push(...vals);
        requests += n;
        errors += errs;
        series.push({
          dimensions,
          requests: n,
          errors: errs,
          requestBytes: n * 300,
          responseBytes: n * 1200,
          latencySumUs: vals.reduce((a, b) => a + b, 0),
          latencyMinUs: Math.min(...vals),
          latencyMaxUs: Math.max(...vals),
          sketch: sketchOf(vals),
        });
      }
      // Built aside, then pushed: the decoder's form may carry more fields than the sink reads.
      const summary = {
        producerId,
        seq,
        windowStartMs,
        windowEndMs: windowStartMs + 10_000,
        flags: 0,
        droppedRequests: 0,
        droppedWindows: 0,
        overflowKeys: 0,
        reported: [...DIMENSIONS],
        series,
      };
      summaries.push(summary);
    }
  }
  return { summaries, latencies, requests, errors };
}

/** Exact nearest-rank quantile (docs/schema.md), by the traffic generator's ground truth. */
export function exactQuantile(values: readonly number[], q: number): number {
  return exactSortedQuantile(
    [...values].sort((a, b) => a - b),
    q,
  );
}

/** A driver connection to the stand-in, as Looker would query it (password user READER). */
export async function readerConnection(s: Stand): Promise<{ query(sql: string): Promise<Record<string, unknown>[]>; close(): Promise<void> }> {
  s.sf.setUser("READER", { password: "reader-password" });
  const conn = snowflake.createConnection({
    account: s.sf.account,
    username: "reader",
    password: "reader-password",
    authenticator: "SNOWFLAKE",
    accessUrl: s.sf.url,
    database: "MESHLOOK",
    schema: "TRAFFIC",
    warehouse: "LOOKER_WH",
  } as snowflake.ConnectionOptions);
  await new Promise<void>((resolve, reject) => {
    conn.connectAsync((err) => (err ? reject(err) : resolve())).catch(reject);
  });
  return {
    query: (sqlText) =>
      new Promise((resolve, reject) => conn.execute({ sqlText, complete: (err, _stmt, rows) => (err ? reject(err) : resolve((rows ?? []) as Record<string, unknown>[])) })),
    close: () => new Promise<void>((resolve) => conn.destroy(() => resolve())),
  };
}

/** Totals per (a few) dimensions, with a stable key order; the comparison both warehouses must agree on. */
export const TOTALS_SQL = `SELECT source_workload, destination_service, response_code,
  SUM(requests) AS requests, SUM(errors) AS errors, SUM(request_bytes) AS request_bytes,
  SUM(latency_sum_us) AS latency_sum_us, MIN(latency_min_us) AS latency_min_us, MAX(latency_max_us) AS latency_max_us,
  MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.5) AS p50, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99
FROM mesh_traffic_minute GROUP BY source_workload, destination_service, response_code
ORDER BY source_workload, destination_service, response_code`;

export { DIMENSIONS };
