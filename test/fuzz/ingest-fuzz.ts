// Drives hostile bodies (wire-cases.ts) through the decoder and the collector's ingest route (in
// process, real spool and DuckDB warehouse) and checks the contract case by case: never a 5xx, never a
// throw, a 400 exactly when the decoder refuses, a JSON refusal that names a reason and echoes nothing
// of the body — and, at the end, every acknowledged summary is in the warehouse, counted once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { startCollector, type RunningCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import type { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { decodeSummary } from "../../shared/node.ts";
import { FACT_TABLE, LEDGER_TABLE } from "../../shared/schema.ts";
import { mulberry32 } from "../shared/random.ts";
import { wireCase } from "./wire-cases.ts";

const TOKEN = "fuzz-token";
const LOAD_EVERY = 20_000;
const CONCURRENCY = 16;

export interface IngestFuzzResult {
  cases: number;
  /** Final status of each case. */
  statuses: Record<number, number>;
  /** Times the collector shed a case for event-loop pressure (503 overloaded) and it was sent again. */
  overloadRetries: number;
  reasons: Record<string, number>;
  /** Distinct (producer, seq) acknowledged, and what the warehouse holds after the last load. */
  acknowledged: number;
  ledgerRows: number;
  acknowledgedRequests: number;
  loadedRequests: number;
  /** Contract violations, each with the case number and its body in hex (replay with the seed). */
  failures: string[];
}

const hex = (b: Uint8Array) => Buffer.from(b.subarray(0, 256)).toString("hex") + (b.length > 256 ? `… (${b.length} bytes)` : "");

/**
 * Runs `run(i)` for every case in groups of `concurrency`, as concurrent requests would arrive
 * (acknowledgements then share spool fsyncs), loading everything every `loadEvery` cases and at the
 * end; returns what the warehouse then holds: ledger rows and summed requests.
 */
export async function inGroups(
  collector: RunningCollector,
  cases: number,
  opts: { concurrency: number; loadEvery: number; onProgress?: (done: number) => void },
  run: (i: number) => Promise<void>,
): Promise<{ ledgerRows: number; loadedRequests: number }> {
  const drain = async () => {
    while (await collector.loader.loadNow());
  };
  for (let first = 0; first < cases; first += opts.concurrency) {
    const n = Math.min(opts.concurrency, cases - first);
    await Promise.all(Array.from({ length: n }, (_, k) => run(first + k)));
    const done = first + n;
    if (Math.floor(done / opts.loadEvery) > Math.floor(first / opts.loadEvery)) {
      await drain();
      opts.onProgress?.(done);
    }
  }
  await drain();
  const conn = (collector.sink as DuckDBSink).connection;
  const [ledger] = (await conn.runAndReadAll(`SELECT COUNT(*) AS n FROM ${LEDGER_TABLE.name}`)).getRowObjectsJS();
  const [facts] = (await conn.runAndReadAll(`SELECT COALESCE(SUM(requests), 0) AS n FROM ${FACT_TABLE.name}`)).getRowObjectsJS();
  return { ledgerRows: Number(ledger.n), loadedRequests: Number(facts.n) };
}

export async function fuzzIngest(cases: number, seed: number, onProgress?: (done: number) => void): Promise<IngestFuzzResult> {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-fuzz-"));
  // Fuzzed windows end anywhere in time: with retention on, the old ones would expire instead of load.
  const config = loadConfig({ MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: TOKEN, MESHLOOK_LOAD_INTERVAL_S: "3600", MESHLOOK_RETENTION_MINUTE_DAYS: "0" });
  const collector = await startCollector(config, pino({ level: "silent" }), { listen: false });
  const rnd = mulberry32(seed);
  const out: IngestFuzzResult = { cases, statuses: {}, overloadRetries: 0, reasons: {}, acknowledged: 0, ledgerRows: 0, acknowledgedRequests: 0, loadedRequests: 0, failures: [] };
  const acked = new Map<string, number>();
  const fail = (i: number, what: string, b: Uint8Array) => {
    if (out.failures.length < 20) out.failures.push(`case ${i}: ${what}; body ${hex(b)}`);
  };
  const check = async (i: number, b: Uint8Array) => {
    let decoded;
    try {
      decoded = decodeSummary(b);
    } catch (err) {
      return fail(i, `decoder threw ${(err as Error).message}`, b);
    }
    const send = () =>
      collector.app.inject({
        method: "POST",
        url: "/v1/summaries",
        headers: { "content-type": "application/x-meshlook-summary", authorization: `Bearer ${TOKEN}` },
        payload: Buffer.from(b),
      });
    let res = await send();
    // Load shedding is an answer to the machine, not to the body: retry after Retry-After, as a sidecar does.
    for (let tries = 0; res.statusCode === 503 && res.json().error === "overloaded" && tries < 30; tries++) {
      out.overloadRetries++;
      await new Promise((r) => setTimeout(r, Math.min(2, Number(res.headers["retry-after"])) * 1000));
      res = await send();
    }
    out.statuses[res.statusCode] = (out.statuses[res.statusCode] ?? 0) + 1;
    if (res.statusCode >= 500) return fail(i, `HTTP ${res.statusCode} ${res.body}`, b);
    if (res.statusCode === 200) {
      if (!decoded.ok) return fail(i, "acknowledged a body the decoder refuses", b);
      if (decoded.summary.series.reduce((n, x) => n + x.requests, 0) > 2 ** 40) return fail(i, "acknowledged a summary of more than 2^40 requests", b);
      // Between loads one body per (producer, seq) is spooled ("accepted"), later copies are
      // duplicates; after a load the first spooled copy is the one the ledger keeps.
      const s = decoded.summary;
      const key = `${s.producerId}\u0000${s.seq}`;
      if ((res.json() as { status: string }).status === "accepted" && !acked.has(key))
        acked.set(
          key,
          s.series.reduce((n, x) => n + x.requests, 0),
        );
      return;
    }
    const err = res.json() as { error?: string; message?: string };
    out.reasons[err.error ?? "?"] = (out.reasons[err.error ?? "?"] ?? 0) + 1;
    // Beyond the decoder, the collector bounds what one summary may claim (docs/security.md).
    const claimed = decoded.ok ? decoded.summary.series.reduce((n, x) => n + x.requests, 0) : 0;
    if (decoded.ok && claimed > 2 ** 40) {
      if (res.statusCode !== 400 || err.error !== "too_many_requests") fail(i, `status ${res.statusCode} ${err.error} for a summary of ${claimed} requests`, b);
    } else if (decoded.ok) fail(i, `refused (${res.statusCode}) a body the decoder accepts`, b);
    else if (res.statusCode !== 400 || err.error !== decoded.reason) fail(i, `status ${res.statusCode} ${err.error}, decoder says ${decoded.reason}`, b);
    if (!/^[a-z][a-z0-9_]*$/.test(err.error ?? "") || typeof err.message !== "string") fail(i, `refusal is not {error, message}: ${res.body}`, b);
  };
  try {
    const loaded = await inGroups(collector, cases, { concurrency: CONCURRENCY, loadEvery: LOAD_EVERY, onProgress }, (i) => check(i, wireCase(rnd)));
    out.acknowledged = acked.size;
    out.acknowledgedRequests = [...acked.values()].reduce((a, b) => a + b, 0);
    Object.assign(out, loaded);
  } finally {
    await collector.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
