// What one load cycle costs, per sink, at 100, 1,000 and 10,000 sidecars: the statements, round trips,
// rows and bytes the Snowflake sink sends (counted by the stand-in, which sees every HTTP request the
// driver makes), the warehouse-seconds and credits per day that follow, and the load side's CPU-seconds
// and peak RSS for DuckDB and for Snowflake (the stand-in runs in a process of its own, so it is not
// counted).
//
// Each sidecar sends one summary per 10 s window with BENCH_SERIES series (default 8: its own workload
// to a spread of destinations and response codes), built by the real encoder; a cycle covers
// BENCH_INTERVAL_S seconds (default 900, the Snowflake default load interval). The load side of a cycle
// is what the collector does with those summaries: decode and fold them as they are acknowledged
// (collector/ingest.ts), then one Sink.loadBatch of the fold and one compaction (collector/loader.ts).
// Every (N, sink) runs in a fresh process, so peak RSS is that run's.
//   npx tsx bench/load-cycle.ts                # N = 100, 1000, 10000
//   BENCH_SIDECARS=20 BENCH_INTERVAL_S=60 npx tsx bench/load-cycle.ts   # a quick smoke run
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { foldBatch } from "../collector/batch.ts";
import { loadConfig } from "../collector/config.ts";
import { ledgerEntry, type LedgerEntry } from "../collector/ledger.ts";
import { MinuteRollup } from "../collector/rollup.ts";
import { DuckDBSink } from "../collector/sink/duckdb.ts";
import { SnowflakeSink } from "../collector/sink/snowflake.ts";
import type { Sink } from "../collector/sink/types.ts";
import { decodeSummary, encodeSummary } from "../shared/node.ts";
import { summary } from "../test/collector/helpers.ts";
import { mulberry32 } from "../test/shared/random.ts";
import { sidecarPod, sidecarSeries } from "./lib/sidecar-summary.ts";

const SIDECARS = (process.env.BENCH_SIDECARS ?? "100,1000,10000").split(",").map(Number);
const INTERVAL_S = Number(process.env.BENCH_INTERVAL_S ?? 900);
const SERIES = Number(process.env.BENCH_SERIES ?? 8);
const WINDOW_S = 10;
/** AUTO_SUSPEND of the loader's warehouse (docs/snowflake.md): it runs this long after a load. */
const AUTO_SUSPEND_S = 60;
/**
 * Warehouse time per statement that needs the warehouse (DML and queries; BEGIN, COMMIT, ALTER SESSION,
 * SHOW and logins run in the cloud-services layer). Not measurable on the stand-in: an assumption, stated
 * with every figure it produces.
 */
const WAREHOUSE_S_PER_STATEMENT = 0.25;

interface RunFigures {
  sink: "duckdb" | "snowflake";
  sidecars: number;
  summaries: number;
  summaryBytes: number;
  rows: number;
  loaded: number;
  /** CPU of the load side (decode + fold + load + compaction), all threads of the process. */
  cpuS: number;
  wallS: number;
  peakRssMiB: number;
}

interface TripFigures {
  roundTrips: number;
  byPath: Record<string, number>;
  statements: number;
  warehouseStatements: number;
  transactions: number;
  factRows: number;
  requestWireBytes: number;
  requestBytes: number;
  responseBytes: number;
  largestStatementBytes: number;
}

/** One sidecar's summary for window `w` of the cycle, with its own workload and `SERIES` series. */
const sidecarSummary = (sidecar: number, w: number, endMs: number, rand: () => number) => summary(w + 1, endMs, sidecarSeries(sidecar, SERIES, rand), sidecarPod(sidecar));

/** The child process of one (N, sink): builds, folds and loads one cycle, reports its figures as JSON. */
async function runOne(sinkKind: "duckdb" | "snowflake", sidecars: number, env: Record<string, string>): Promise<void> {
  // Windows end at most 30 min into an hour that is not closed yet for the sink's clock: the cycle pays
  // its stale-hour scan, not an hour's rebuild (which a 900 s interval pays once in four cycles).
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const end = hour + 30 * 60_000;
  const hourly = { now: () => end + 60_000 };
  const dir = mkdtempSync(join(tmpdir(), "meshlook-bench-cycle-"));
  const sink: Sink = sinkKind === "duckdb" ? new DuckDBSink(join(dir, "bench.duckdb"), undefined, hourly) : new SnowflakeSink(loadConfig(env).snowflake, undefined, { hourly });
  await sink.open();
  const commands = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
  process.stdout.write("opened\n");
  await commands.next(); // go

  const rand = mulberry32(sidecars);
  const windows = INTERVAL_S / WINDOW_S;
  let encodeCpu = 0;
  let summaryBytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  // Ingest's share of the load side: decode each body and fold it (collector/ingest.ts Ingestor.fold).
  const fold = new MinuteRollup();
  const entries: LedgerEntry[] = [];
  for (let w = 0; w < windows; w++) {
    // A window's bodies are encoded together, so the encoder's CPU (the sidecars' work, not the load
    // side's) is measured with two clock reads per window rather than two per summary.
    const endMs = end - (windows - 1 - w) * WINDOW_S * 1000;
    const e0 = process.cpuUsage();
    const bodies = Array.from({ length: sidecars }, (_, i) => encodeSummary(sidecarSummary(i, w, endMs, rand)));
    const e = process.cpuUsage(e0);
    encodeCpu += (e.user + e.system) / 1e6;
    for (const body of bodies) {
      summaryBytes += body.length;
      const d = decodeSummary(body);
      if (!d.ok) throw new Error(d.message);
      fold.add(d.summary);
      entries.push(ledgerEntry(d.summary));
    }
  }
  const res = await sink.loadBatch(foldBatch(fold, entries));
  await sink.compactLoaded();
  const cpu = process.cpuUsage(cpu0);
  const wallS = (performance.now() - t0) / 1000;
  if (!res || res.loaded !== entries.length) throw new Error(`loaded ${res?.loaded} of ${entries.length}`);
  const figures: RunFigures = {
    sink: sinkKind,
    sidecars,
    summaries: entries.length,
    summaryBytes,
    rows: res.rows,
    loaded: res.loaded,
    cpuS: (cpu.user + cpu.system) / 1e6 - encodeCpu,
    wallS,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
  await commands.next(); // stop: the session ends after the stand-in has counted the cycle
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
}

/** The stand-in's process: prints the collector environment, then answers "mark" and "trips". */
async function serveStandin(): Promise<void> {
  // Imported here only: the stand-in (SQL translator, DuckDB) must not weigh on the load side's RSS.
  const { stand } = await import("../test/snowflake/helpers.ts");
  const s = await stand();
  process.stdout.write(`${JSON.stringify(s.env())}\n`);
  let trips = 0;
  let statements = 0;
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "mark") {
      trips = s.sf.roundTrips.length;
      statements = s.sf.statements.length;
      process.stdout.write("{}\n");
    } else if (line === "trips") {
      const rt = s.sf.roundTrips.slice(trips);
      const st = s.sf.statements.slice(statements);
      const byPath: Record<string, number> = {};
      for (const r of rt) byPath[r.path] = (byPath[r.path] ?? 0) + 1;
      const cloudServices = /^(BEGIN|COMMIT|ROLLBACK|ALTER SESSION|SHOW|USE)\b/i;
      const figures: TripFigures = {
        roundTrips: rt.length,
        byPath,
        statements: st.length,
        warehouseStatements: st.filter((x) => !cloudServices.test(x.sql)).length,
        transactions: st.filter((x) => /^BEGIN/i.test(x.sql)).length,
        factRows: st.filter((x) => /^INSERT INTO mesh_traffic_minute/.test(x.sql)).reduce((n, x) => n + x.bindRows, 0),
        requestWireBytes: rt.reduce((n, r) => n + r.wireBytes, 0),
        requestBytes: rt.reduce((n, r) => n + r.bytes, 0),
        responseBytes: rt.reduce((n, r) => n + r.responseBytes, 0),
        largestStatementBytes: Math.max(0, ...st.map((x) => x.bytes)),
      };
      process.stdout.write(`${JSON.stringify(figures)}\n`);
    } else break;
  }
  await s.sf.stop();
  process.exit(0);
}

/** A child of this script and a line reader over its stdout. */
function child(args: string[]) {
  const p = spawn(process.execPath, ["--max-old-space-size=6144", "--import", "tsx", fileURLToPath(import.meta.url), ...args], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: p.stdout! })[Symbol.asyncIterator]();
  return {
    async ask<T>(m?: string): Promise<T> {
      if (m) p.stdin!.write(`${m}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error(`bench child ${args.join(" ")} ended early`);
      return (value === "opened" ? {} : JSON.parse(value)) as T;
    },
    end: () => {
      p.stdin!.end("stop\n");
      return new Promise<void>((resolve) => p.once("exit", () => resolve()));
    },
  };
}

export interface CycleFigures {
  sidecars: number;
  duckdb: RunFigures;
  snowflake: RunFigures;
  trips: TripFigures;
  /** Billed warehouse seconds per cycle and credits per day (X-Small, 1 credit/hour) at INTERVAL_S. */
  warehouseS: number;
  creditsPerDay: number;
}

/** Warehouse-seconds one cycle keeps an X-Small up, and the credits per day at one cycle per INTERVAL_S. */
export function warehouseCost(warehouseStatements: number, intervalS: number): { busyS: number; billedS: number; creditsPerDay: number } {
  const busyS = warehouseStatements * WAREHOUSE_S_PER_STATEMENT;
  // Billed per second with a 60 s minimum per resume; it stays up AUTO_SUSPEND after the load. Once a
  // cycle's busy time plus AUTO_SUSPEND reaches the interval it never suspends.
  const billedS = Math.min(intervalS, Math.max(60, busyS + AUTO_SUSPEND_S));
  return { busyS, billedS, creditsPerDay: ((86_400 / intervalS) * billedS) / 3600 };
}

async function main(): Promise<void> {
  const out: CycleFigures[] = [];
  for (const n of SIDECARS) {
    const runs: Partial<Record<"duckdb" | "snowflake", RunFigures>> = {};
    const sf = child(["--standin"]);
    const env = await sf.ask<Record<string, string>>();
    let trips: TripFigures | undefined;
    for (const kind of ["duckdb", "snowflake"] as const) {
      const run = child(["--run", kind, String(n), JSON.stringify(env)]);
      await run.ask(); // opened: logins and migrations are not part of a cycle
      if (kind === "snowflake") await sf.ask("mark");
      runs[kind] = await run.ask<RunFigures>("go");
      if (kind === "snowflake") trips = await sf.ask<TripFigures>("trips");
      await run.end();
    }
    await sf.end();
    const cost = warehouseCost(trips!.warehouseStatements, INTERVAL_S);
    out.push({ sidecars: n, duckdb: runs.duckdb!, snowflake: runs.snowflake!, trips: trips!, warehouseS: cost.billedS, creditsPerDay: cost.creditsPerDay });
  }
  print(out);
}

function print(out: CycleFigures[]): void {
  const f = (x: number, d = 0) => x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(
    `load cycle: ${INTERVAL_S} s of traffic per cycle, one summary per sidecar per ${WINDOW_S} s window, ${SERIES} series each; ` +
      `Snowflake figures counted by the stand-in; warehouse time assumed ${WAREHOUSE_S_PER_STATEMENT} s per warehouse statement, AUTO_SUSPEND ${AUTO_SUSPEND_S} s, X-Small`,
  );
  console.log(
    "| sidecars | summaries (MiB) | fact rows | transactions | statements (warehouse) | round trips | bytes sent | bytes received | largest statement | warehouse-s/cycle | credits/day |",
  );
  console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const o of out) {
    const t = o.trips;
    console.log(
      `| ${f(o.sidecars)} | ${f(o.snowflake.summaries)} (${f(o.snowflake.summaryBytes / 2 ** 20, 1)}) | ${f(t.factRows)} | ${t.transactions} | ${f(t.statements)} (${f(t.warehouseStatements)}) | ${f(t.roundTrips)} | ` +
        `${f(t.requestWireBytes / 2 ** 20, 1)} MiB | ${f(t.responseBytes / 2 ** 10, 0)} KiB | ${f(t.largestStatementBytes / 1000, 0)} kB | ${f(o.warehouseS)} | ${f(o.creditsPerDay, 2)} |`,
    );
  }
  console.log("\nload side per 1,000 sidecars (decode + fold + load + compaction; the stand-in's own work excluded):");
  console.log("| sidecars | sink | CPU-s per cycle | CPU-s per 1,000 sidecars | wall s | peak RSS MiB | rows |");
  console.log("|---:|---|---:|---:|---:|---:|---:|");
  for (const o of out) {
    for (const r of [o.duckdb, o.snowflake]) {
      console.log(
        `| ${f(o.sidecars)} | ${r.sink === "duckdb" ? "DuckDB" : "Snowflake (stand-in)"} | ${f(r.cpuS, 2)} | ${f(r.cpuS / (o.sidecars / 1000), 2)} | ${f(r.wallS, 1)} | ${f(r.peakRssMiB)} | ${f(r.rows)} |`,
      );
    }
  }
  console.log(`\nJSON ${JSON.stringify(out)}`);
}

const at = process.argv.indexOf("--run");
if (process.argv.includes("--standin")) await serveStandin();
else if (at >= 0) await runOne(process.argv[at + 1] as "duckdb" | "snowflake", Number(process.argv[at + 2]), JSON.parse(process.argv[at + 3]));
else await main();
