// What a mesh of N sidecars costs the collector: CPU-seconds per simulated minute and peak RSS for
// ingest + load, at N = 100, 1,000 and 10,000, into DuckDB (one collector) and into Snowflake (the
// stand-in, one warehouse shared by two collector replicas).
//
// Each sidecar runs VMS filter VMs (Envoy's default two workers); each VM flushes one summary every
// FLUSH_S seconds, at a phase of its own (VMs start at different times) plus up to JITTER_MS of callout
// delay. The summaries are built by the real encoder (shared/wire.ts SummaryEncoder, the filter's source)
// with BENCH_SERIES series each (default 8, as bench/load-cycle.ts), producer ids in the filter's form, and
// are POSTed over HTTP with a real ingest token to collector processes (collector/main.ts) at the time they
// would arrive. Simulated time may run faster than real time by a compression factor (at most 10, so the
// collector's load interval, an integer number of seconds, still fires as often per simulated minute as
// configured): the mesh's rate, not its wall-clock duration, is what the host must keep up with, and
// CPU per simulated minute is the figure. A sidecar's summaries all go to one replica (its Envoy keeps
// its connections to the collector Service open).
//
// CPU is read from /proc for every collector process (all threads), from the first POST until every
// summary is loaded; peak RSS is VmHWM, next to the RSS of the same process idle before the first POST.
// The baseline is the CPU of decoding the same summaries alone in this process. At the end the
// collectors stop and the warehouse totals (requests, errors, latency sum, ledger rows) must equal what
// was sent, or the run fails.
//   npx tsx bench/scale.ts                                       # N = 100, 1000, 10000
//   BENCH_SIDECARS=20 BENCH_MINUTES=1 npx tsx bench/scale.ts     # a quick smoke run
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { DUCKDB_DEFAULT_LOAD_INTERVAL_S, type SinkKind } from "../collector/config.ts";
import { decodeSummary, encodeSummary } from "../shared/node.ts";
import { FACT_TABLE, LEDGER_TABLE } from "../shared/schema.ts";
import { startCollectorProcess, type CollectorProcess } from "../sim/collector-process.ts";
import { summary } from "../test/collector/helpers.ts";
import { queryDuckDB } from "../test/faults/rig.ts";
import { mulberry32 } from "../test/shared/random.ts";
import { cpuSeconds, peakRssMiB, rssMiB, usageSeconds } from "./lib/proc.ts";
import { perMinutePerThousand } from "./lib/scale.ts";
import { sidecarPod, sidecarSeries } from "./lib/sidecar-summary.ts";

const SIDECARS = (process.env.BENCH_SIDECARS ?? "100,1000,10000").split(",").map(Number);
const SERIES = Number(process.env.BENCH_SERIES ?? 8);
/** Simulated minutes per N; unset: 3, fewer for large N (at most about 36,000 summaries per run, at least half a minute). */
const MINUTES = process.env.BENCH_MINUTES === undefined ? undefined : Number(process.env.BENCH_MINUTES);
/** Real summaries per second the compression aims at (the host is 2 shared cores). */
const RATE = Number(process.env.BENCH_RATE ?? 2000);
/** Snowflake load interval, simulated seconds: 60, not the collector's 900 s default (the README says why). */
const SNOWFLAKE_LOAD_S = Number(process.env.BENCH_SNOWFLAKE_LOAD_INTERVAL_S ?? 60);
/** HTTP connections from the mesh to each collector. */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const VMS = 2;
const HOUR_MS = 3_600_000;
const FLUSH_S = 10;
const JITTER_MS = 500;
const TOKEN = "bench-scale-ingest-token-0123456789";
const SUMMARY_HEADERS = { "content-type": "application/x-meshlook-summary", authorization: `Bearer ${TOKEN}` };
/**
 * Summaries from sidecars of their own, posted and loaded before the measured run, so that it sees a
 * collector whose ingest and load paths are compiled, as a long-running one is (a fresh process spends
 * its first seconds in V8's compiler). They are in the warehouse totals too.
 */
const WARMUP_SIDECARS = 100;
const WARMUP_WINDOWS = 10;
/** Seconds the warmed-up collectors are watched idle. */
const IDLE_S = 3;
/** Posts in flight before the mesh waits for acknowledgements (a backlog, never reached at a sustainable rate). */
const MAX_IN_FLIGHT = 2000;

/** One filter VM of the simulated mesh: what it reports every window, and when. */
interface Vm {
  sidecar: number;
  producerId: string;
  series: ReturnType<typeof sidecarSeries>;
  requests: number;
  errors: number;
  latencySumUs: number;
  phaseMs: number;
}

interface Totals {
  summaries: number;
  requests: number;
  errors: number;
  latencySumUs: number;
}

export interface ScaleRun {
  sink: SinkKind;
  sidecars: number;
  collectors: number;
  minutes: number;
  compression: number;
  /** Load interval in simulated seconds. */
  loadIntervalS: number;
  summaries: number;
  summaryBytes: number;
  /** CPU of the collector processes (all threads, summed over replicas), first POST until all loaded. */
  cpuS: number;
  /** Decoding the same summaries alone, in this process: the floor of the collector's work. */
  decodeCpuS: number;
  /** The stand-in's CPU over the same span (the warehouse's work, not the collector's). */
  warehouseCpuS?: number;
  /** CPU of the same collector processes idle (after the warm-up), per real minute. */
  idleCpuSPerMin: number;
  /** Largest VmHWM of the collector processes, and their RSS idle before the first POST. */
  peakRssMiB: number;
  idleRssMiB: number;
  wallS: number;
  /** Latest a POST left after its scheduled time, real seconds. */
  lagS: number;
  /** POSTs answered other than 2xx (or cut), each retried. */
  retries: number;
}

const compressionFor = (n: number) => [10, 5, 2, 1].find((c) => (c * n * VMS) / FLUSH_S <= RATE) ?? 1;
const minutesFor = (n: number) => MINUTES ?? Math.min(3, Math.max(0.5, Math.floor((2 * 36_000) / ((n * VMS * 60) / FLUSH_S)) / 2));

/** The mesh: N sidecars × VMS VMs, each with its series, totals per window and flush phase. */
function buildMesh(n: number, rand: () => number, first = 0): Vm[] {
  const vms: Vm[] = [];
  const startNs = BigInt(Date.now()) * 1_000_000n;
  for (let sidecar = first; sidecar < first + n; sidecar++) {
    for (let v = 0; v < VMS; v++) {
      // Two workers of one Envoy see different requests to the same destinations: same keys, own values.
      const series = sidecarSeries(sidecar, SERIES, rand);
      const nonce = Math.floor(rand() * 2 ** 48).toString(16);
      vms.push({
        sidecar,
        producerId: `${sidecarPod(sidecar)}/${startNs + BigInt(v)}/${v + 1}/${nonce}`,
        series,
        requests: series.reduce((a, s) => a + s.requests, 0),
        errors: series.reduce((a, s) => a + s.errors, 0),
        latencySumUs: series.reduce((a, s) => a + s.latencySumUs, 0),
        phaseMs: rand() * FLUSH_S * 1000,
      });
    }
  }
  return vms;
}

/** Until every summary a collector acknowledged is in the warehouse (one /metrics read per check: it is in the measured CPU). */
async function loaded(c: CollectorProcess): Promise<void> {
  for (;;) {
    const text = await (await fetch(`${c.url}/metrics`)).text();
    const metric = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    if (metric("meshlook_summaries_loaded_total") >= metric("meshlook_summaries_accepted_total") && metric("meshlook_spool_bytes") === 0) return;
    await sleep(250);
  }
}

/** A child process of this script and a line reader over its stdout (the stand-in). */
function standinProcess() {
  const p = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--standin"], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: p.stdout! })[Symbol.asyncIterator]();
  return {
    pid: p.pid!,
    async ask<T>(line?: string): Promise<T> {
      if (line !== undefined) p.stdin!.write(`${line}\n`);
      const { value, done } = await lines.next();
      if (done) throw new Error("the stand-in process ended early");
      return JSON.parse(value) as T;
    },
    end: () => {
      p.stdin!.end();
      return new Promise<void>((resolve) => p.once("exit", () => resolve()));
    },
  };
}

/** The stand-in's process: prints the collector environment, then answers each SQL line with its rows. */
async function serveStandin(): Promise<void> {
  const { stand } = await import("../test/snowflake/helpers.ts");
  const s = await stand();
  process.stdout.write(`${JSON.stringify(s.env())}\n`);
  for await (const sql of createInterface({ input: process.stdin })) {
    process.stdout.write(`${JSON.stringify(await s.sf.query(sql), (_k, v) => (typeof v === "bigint" ? Number(v) : v))}\n`);
  }
  await s.sf.stop();
  process.exit(0);
}

const TOTALS_SQL = [
  `SELECT (SELECT SUM(requests) FROM ${FACT_TABLE.name}) AS requests, (SELECT SUM(errors) FROM ${FACT_TABLE.name}) AS errors,`,
  `(SELECT SUM(latency_sum_us) FROM ${FACT_TABLE.name}) AS latency_sum_us, (SELECT COUNT(*) FROM ${LEDGER_TABLE.name}) AS summaries`,
].join(" ");

function checkExact(sink: SinkKind, n: number, sent: Totals, row: Record<string, unknown>): void {
  const got: Totals = {
    summaries: Number(row.summaries ?? row.SUMMARIES),
    requests: Number(row.requests ?? row.REQUESTS),
    errors: Number(row.errors ?? row.ERRORS),
    latencySumUs: Number(row.latency_sum_us ?? row.LATENCY_SUM_US),
  };
  if (JSON.stringify(got) !== JSON.stringify(sent)) throw new Error(`${sink}, ${n} sidecars: the warehouse holds ${JSON.stringify(got)}, the mesh sent ${JSON.stringify(sent)}`);
}

/** One POST of the mesh: when (simulated ms from the start), by which VM, and its body. */
interface Post {
  atMs: number;
  vm: Vm;
  body: Uint8Array;
}

/**
 * Every window of every VM, in the order they are posted: FLUSH_S apart from the VM's phase, jittered.
 * Encoded ahead: the encoder (the filter's, here in JavaScript) costs several times what decoding does,
 * and on a small host it would compete with the collector for the cores during the measured run.
 */
function traffic(vms: Vm[], windows: number, seed: number, t0: number): Post[] {
  const jitter = mulberry32(seed + 1);
  return vms
    .flatMap((vm) =>
      Array.from({ length: windows }, (_, w) => ({
        atMs: vm.phaseMs + (w + 1) * FLUSH_S * 1000 + jitter() * JITTER_MS,
        vm,
        body: encodeSummary(summary(w + 1, t0 + vm.phaseMs + (w + 1) * FLUSH_S * 1000, vm.series, vm.producerId)),
      })),
    )
    .sort((x, y) => x.atMs - y.atMs);
}

/** Posts the mesh's summaries to the collectors, a sidecar always to the same one, and counts what it sent. */
class MeshPoster {
  /** Everything sent and acknowledged so far, warm-up included: what the warehouse must hold. */
  readonly sent: Totals = { summaries: 0, requests: 0, errors: 0, latencySumUs: 0 };
  private readonly failures: string[] = [];

  constructor(private readonly pools: Pool[]) {}

  /** Each post at its simulated time divided by `compression`, after the call; resolves once all are acknowledged. */
  async send(posts: readonly Post[], compression: number) {
    const figures = { retries: 0, lagMs: 0 };
    const pending = new Set<Promise<void>>();
    const started = performance.now();
    for (const { atMs, vm, body } of posts) {
      const dueMs = atMs / compression;
      const nowMs = performance.now() - started;
      if (dueMs > nowMs) await sleep(dueMs - nowMs);
      else figures.lagMs = Math.max(figures.lagMs, nowMs - dueMs);
      while (pending.size >= MAX_IN_FLIGHT) await Promise.race(pending);
      const p: Promise<void> = this.post(this.pools[vm.sidecar % this.pools.length], body, compression, () => figures.retries++).then(() => {
        pending.delete(p);
        this.sent.summaries++;
        this.sent.requests += vm.requests;
        this.sent.errors += vm.errors;
        this.sent.latencySumUs += vm.latencySumUs;
      });
      pending.add(p);
    }
    await Promise.all(pending);
    return figures;
  }

  private async post(pool: Pool, b: Uint8Array, compression: number, retried: () => void): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await pool.request({ path: "/v1/summaries", method: "POST", headers: SUMMARY_HEADERS, body: b });
        const text = await res.body.text();
        if (res.statusCode >= 200 && res.statusCode < 300) return;
        this.failures.splice(0, this.failures.length - 2, `${res.statusCode} ${text.slice(0, 200)}`);
      } catch (err) {
        this.failures.splice(0, this.failures.length - 2, (err as Error).message);
      }
      // A filter resends at its next flush; here after one compressed second.
      if (attempt >= 30) throw new Error(`a summary was refused 30 times: ${this.failures.join("; ")}`);
      retried();
      await sleep(1000 / compression);
    }
  }
}

/** A mesh of `n` sidecars and its traffic, built once for both sinks. */
interface Mesh {
  sidecars: number;
  minutes: number;
  posts: Post[];
  bytes: number;
  decodeCpuS: number;
}

/** One run: the warm-up, then the mesh's traffic into `sink` at its compressed rate, until loaded, then checked. */
async function runOne(sink: SinkKind, mesh: Mesh, warmup: readonly Post[]): Promise<ScaleRun> {
  const n = mesh.sidecars;
  const t = performance.now();
  const progress = (what: string) => process.stderr.write(`scale: ${n} sidecars, ${sink}: ${what} (${((performance.now() - t) / 1000).toFixed(1)} s)\n`);
  const compression = compressionFor(n);
  const loadIntervalS = sink === "duckdb" ? DUCKDB_DEFAULT_LOAD_INTERVAL_S : SNOWFLAKE_LOAD_S;
  const dirs: string[] = [];
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), "meshlook-bench-scale-"));
    dirs.push(d);
    return d;
  };
  const standin = sink === "snowflake" ? standinProcess() : undefined;
  const settings = {
    MESHLOOK_LOAD_INTERVAL_S: String(Math.max(1, Math.round(loadIntervalS / compression))),
    ...(standin ? await standin.ask<Record<string, string>>() : {}),
  };
  const collectors = await Promise.all(Array.from({ length: standin ? 2 : 1 }, () => startCollectorProcess({ dataDir: tempDir(), token: TOKEN, settings })));
  const pools = collectors.map((c) => new Pool(c.url, { connections: CONNECTIONS }));
  try {
    progress("collectors up");
    const idleRssMiB = Math.max(...collectors.map((c) => rssMiB(c.child.pid!)));
    const poster = new MeshPoster(pools);
    await poster.send(warmup, 10);
    await Promise.all(collectors.map(loaded));
    progress("warmed up");
    // What the collectors spend with no traffic (load ticks, metrics, timers), per real minute.
    const idle0 = collectors.map((c) => cpuSeconds(c.child.pid!));
    await sleep(IDLE_S * 1000);
    const idleCpuSPerMin = (collectors.reduce((a, c, k) => a + cpuSeconds(c.child.pid!) - idle0[k], 0) * 60) / IDLE_S;

    const cpu0 = collectors.map((c) => cpuSeconds(c.child.pid!));
    const warehouseCpu0 = standin ? cpuSeconds(standin.pid) : 0;
    const started = performance.now();
    const run = await poster.send(mesh.posts, compression);
    progress("all acknowledged");
    await Promise.all(collectors.map(loaded));
    progress("all loaded");
    const wallS = (performance.now() - started) / 1000;
    const cpuS = collectors.reduce((a, c, k) => a + cpuSeconds(c.child.pid!) - cpu0[k], 0);
    const warehouseCpuS = standin ? cpuSeconds(standin.pid) - warehouseCpu0 : undefined;
    const peak = Math.max(...collectors.map((c) => peakRssMiB(c.child.pid!)));
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(collectors.map((c) => c.stop()));
    const [row] = standin ? await standin.ask<Record<string, unknown>[]>(TOTALS_SQL) : await queryDuckDB(collectors[0].duckdbPath, TOTALS_SQL);
    checkExact(sink, n, poster.sent, row);
    return {
      sink,
      sidecars: n,
      collectors: collectors.length,
      minutes: mesh.minutes,
      compression,
      loadIntervalS: Number(settings.MESHLOOK_LOAD_INTERVAL_S) * compression,
      summaries: mesh.posts.length,
      summaryBytes: mesh.bytes,
      cpuS,
      decodeCpuS: mesh.decodeCpuS,
      warehouseCpuS,
      idleCpuSPerMin,
      peakRssMiB: peak,
      idleRssMiB,
      wallS,
      lagS: run.lagMs / 1000,
      retries: run.retries,
    };
  } finally {
    await Promise.all(collectors.map((c) => c.stop().catch(() => undefined)));
    await standin?.end();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

const f = (x: number, d = 0) => x.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });

function print(runs: ScaleRun[]): void {
  console.log(
    `scale: each sidecar ${VMS} VMs, one summary per VM every ${FLUSH_S} s (own phase, up to ${JITTER_MS} ms jitter), ${SERIES} series each, real encoder, ` +
      `POSTed over HTTP with an ingest token (${CONNECTIONS} connections per collector); simulated time compressed (≤ 10×, ~${RATE} summaries/s); ` +
      `CPU of the collector processes (all threads) from the first POST until all loaded; Snowflake = the stand-in with two collector replicas (its own CPU not counted); ` +
      `load average at start ${loadAtStart}, at end ${loadNote()}`,
  );
  console.log(
    "\n| sidecars | sink | collectors | simulated min (× real) | summaries | collector CPU-s per simulated min | per 1,000 sidecars | cores at real time | decode only, per 1,000 sidecars | peak RSS MiB (idle) | exact |",
  );
  console.log("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
  for (const r of runs) {
    console.log(
      `| ${f(r.sidecars)} | ${r.sink === "duckdb" ? `DuckDB, load every ${r.loadIntervalS} s` : `Snowflake stand-in, load every ${r.loadIntervalS} s`} | ${r.collectors} | ${r.minutes} (${r.compression}×) | ${f(r.summaries)} | ` +
        `${f(r.cpuS / r.minutes, 2)} | ${f(perMinutePerThousand(r.cpuS, r), 2)} | ${f(r.cpuS / (r.minutes * 60), 3)} | ${f(perMinutePerThousand(r.decodeCpuS, r), 2)} | ` +
        `${f(r.peakRssMiB)} (${f(r.idleRssMiB)}) | yes |`,
    );
  }
  console.log("\nper run:");
  for (const r of runs) {
    console.log(
      `  ${f(r.sidecars)} ${r.sink}: ${f(r.summaryBytes / 2 ** 20, 1)} MiB of summaries, wall ${f(r.wallS, 1)} s, collector CPU ${f(r.cpuS, 2)} s` +
        `${r.warehouseCpuS === undefined ? "" : `, stand-in CPU ${f(r.warehouseCpuS, 2)} s`}, decode only ${f(r.decodeCpuS, 2)} s, collectors idle ${f(r.idleCpuSPerMin, 2)} CPU-s per real minute, latest POST ${f(r.lagS, 2)} s behind schedule, ${r.retries} retries; warehouse totals equal the sent ones`,
    );
  }
}

const loadNote = () =>
  `${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")} (1, 5, 15 min) on ${cpus().length} cores`;
const loadAtStart = loadNote();

async function main(): Promise<void> {
  // Windows lie in the next hour, ahead of the wall clock (accepted: MESHLOOK_MAX_WINDOW_AHEAD_S is
  // unbounded by default), which stays open for the whole benchmark, so no hourly compaction runs in it;
  // a live collector pays one per closed hour, not measured here.
  const t0 = (Math.floor(Date.now() / HOUR_MS) + 1) * HOUR_MS + 15 * 60_000;
  const warmup = traffic(buildMesh(WARMUP_SIDECARS, mulberry32(0), 1_000_000), WARMUP_WINDOWS, 0, t0);
  const runs: ScaleRun[] = [];
  for (const n of SIDECARS) {
    const minutes = minutesFor(n);
    const posts = traffic(buildMesh(n, mulberry32(n)), (minutes * 60) / FLUSH_S, n, t0);
    // The baseline: the same bodies decoded alone, after the warm-up's (which compile the decoder).
    for (const p of warmup) decodeSummary(p.body);
    const d0 = process.cpuUsage();
    for (const p of posts) if (!decodeSummary(p.body).ok) throw new Error("a bench summary does not decode");
    const d = process.cpuUsage(d0);
    const mesh: Mesh = { sidecars: n, minutes, posts, bytes: posts.reduce((a, p) => a + p.body.length, 0), decodeCpuS: usageSeconds(d) };
    for (const sink of ["duckdb", "snowflake"] as const) {
      const run = await runOne(sink, mesh, warmup);
      // Each run as it ends: a long benchmark stopped part-way still leaves the runs it finished.
      console.log(`RUN ${JSON.stringify(run)}`);
      runs.push(run);
    }
  }
  print(runs);
}

if (process.argv.includes("--standin")) await serveStandin();
else await main();
