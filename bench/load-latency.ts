// How a large Snowflake load affects the collector's other requests. A collector (Snowflake sink, loading
// into the test stand-in, run in a child process, over the real driver) holds BENCH_SUMMARIES spooled
// summaries of BENCH_SERIES series each; a probe on another thread GETs /healthz over HTTP, one request
// at a time, and the latencies it sees are reported for three stretches of the collector's thread:
//   idle      — nothing else running (the floor);
//   one block — the same batch's rollup and fact-row building done in one synchronous block, as the sink
//               did before its loads yielded to the event loop (baseline);
//   load      — the real load of that batch: decode from the spool, ledger check, rollup, inserts, commit.
// Run: `npx tsx bench/load-latency.ts`. Prints p50/p99/max probe latency per stretch and the ratios of
// the one-block baseline's p99 and max to the real load's. The block grows with the batch: a 900 s load
// interval makes batches ~90× those of a 10 s one.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import pino from "pino";
import { startCollector } from "../collector/collector.ts";
import { loadConfig } from "../collector/config.ts";
import { rollup } from "../collector/rollup.ts";
import { SUMMARY_CONTENT_TYPE } from "../collector/server.ts";
import { decodeSummary, encodeSummary } from "../shared/node.ts";
import { series, summary } from "../test/collector/helpers.ts";
import { stand } from "../test/snowflake/helpers.ts";

const SUMMARIES = Number(process.env.BENCH_SUMMARIES ?? 2000);
const SERIES = Number(process.env.BENCH_SERIES ?? 60);

const pct = (sorted: number[], q: number) => sorted[Math.max(1, Math.ceil(q * sorted.length)) - 1];
const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

// The probe runs on a worker thread, so like a sidecar or a kubelet it keeps sending while the
// collector's thread is busy, and a request that arrives during a block waits for it.
const PROBE = `
const { parentPort, workerData } = require("node:worker_threads");
const latencies = [];
let running = true;
parentPort.on("message", () => (running = false));
(async () => {
  while (running) {
    const t0 = performance.now();
    const res = await fetch(workerData.url + "/healthz");
    await res.arrayBuffer();
    latencies.push(performance.now() - t0);
    await new Promise((r) => setTimeout(r, 2));
  }
  parentPort.postMessage(latencies);
})();
`;

/** Probes /healthz from another thread until `work` settles; returns the probe latencies (ms). */
async function probeDuring(url: string, work: () => Promise<unknown>): Promise<number[]> {
  const worker = new Worker(PROBE, { eval: true, workerData: { url } });
  const done = new Promise<number[]>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  await sleep(100); // the probe is running before the work starts
  await work();
  await sleep(20); // and sees the collector answer again afterwards
  worker.postMessage("stop");
  const latencies = await done;
  await worker.terminate();
  return latencies;
}

function report(name: string, latencies: number[]): { p99: number; max: number } {
  const s = [...latencies].sort((a, b) => a - b);
  console.log(
    `${name.padEnd(10)} probes ${String(s.length).padStart(5)}   p50 ${fmt(pct(s, 0.5)).padStart(9)}   p99 ${fmt(pct(s, 0.99)).padStart(9)}   max ${fmt(s[s.length - 1]).padStart(9)}`,
  );
  return { p99: pct(s, 0.99), max: s[s.length - 1] };
}

/**
 * The Snowflake stand-in in a process of its own (it translates and runs SQL on DuckDB, as Snowflake
 * would do elsewhere), so the figures count only the collector's work on its event loop. Line protocol
 * on stdin/stdout: it prints its collector environment as JSON, answers "rows" with the fact row count and
 * the requests they hold,
 * and exits on "stop".
 */
async function serveStandin(): Promise<void> {
  const sf = await stand();
  process.stdout.write(JSON.stringify(sf.env()) + "\n");
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "rows") {
      const [r] = await sf.sf.query("SELECT COUNT(*) AS n, SUM(requests) AS requests FROM mesh_traffic_minute");
      process.stdout.write(JSON.stringify({ rows: Number(r.n), requests: Number(r.requests) }) + "\n");
    } else break;
  }
  await sf.sf.stop();
  process.exit(0);
}

async function main() {
  // Per summary: SERIES services with a few latencies each; 10 sidecars, 6 windows a minute.
  const bodies = Array.from({ length: SUMMARIES }, (_, i) => {
    const ss = Array.from({ length: SERIES }, (_, k) => series(`svc-${k}.shop.svc.cluster.local`, [300 + k, 2_000 + ((i * 37 + k) % 5_000), 40_000 + i]));
    return Buffer.from(encodeSummary(summary(Math.floor(i / 10) + 1, 60_000 + Math.floor(i / 60) * 60_000, ss, `pod-${i % 10}`)));
  });
  const standin = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "--standin"], { stdio: ["pipe", "pipe", "inherit"] });
  const answers = createInterface({ input: standin.stdout! })[Symbol.asyncIterator]();
  const ask = async <T>(m?: string): Promise<T> => {
    if (m) standin.stdin!.write(m + "\n");
    const { value, done } = await answers.next();
    if (done) throw new Error("the stand-in process ended");
    return JSON.parse(value) as T;
  };
  const env = await ask<Record<string, string>>();
  const dataDir = mkdtempSync(join(tmpdir(), "meshlook-bench-loadlat-"));
  const config = loadConfig({
    ...env,
    MESHLOOK_DATA_DIR: dataDir,
    MESHLOOK_INGEST_TOKENS: "bench",
    MESHLOOK_HOST: "127.0.0.1",
    MESHLOOK_PORT: "0",
    MESHLOOK_LOAD_INTERVAL_S: "3600",
    MESHLOOK_MAX_EVENT_LOOP_DELAY_MS: "60000",
    // The windows lie in 1970: with retention on, ingest would refuse them as too old to load exactly once.
    MESHLOOK_RETENTION_MINUTE_DAYS: "0",
  });
  const c = await startCollector(config, pino({ level: "warn" }, pino.destination(2)), {});
  try {
    await c.loader.loadNow();
    await sleep(1_500); // building the bodies blocked the loop; let the pressure sampler see it run again
    for (const payload of bodies) {
      const res = await c.app.inject({ method: "POST", url: "/v1/summaries", payload, headers: { "content-type": SUMMARY_CONTENT_TYPE, authorization: "Bearer bench" } });
      if (res.statusCode !== 200) throw new Error(`ingest answered ${res.statusCode}: ${res.body}`);
    }
    const decoded = bodies.map((b) => {
      const d = decodeSummary(b);
      if (!d.ok) throw new Error(d.message);
      return d.summary;
    });

    console.log(`load latency: ${SUMMARIES} summaries × ${SERIES} series spooled; /healthz probed over HTTP during each stretch`);
    report("idle", await probeDuring(c.url, () => sleep(500)));
    let rows = 0;
    let requests = 0;
    const blocked = report(
      "one block",
      await probeDuring(c.url, async () => {
        const t0 = performance.now();
        const r = rollup(decoded);
        for (const row of r) JSON.stringify(row.sketch);
        rows = r.length;
        requests = r.reduce((sum, row) => sum + row.requests, 0);
        console.log(`           (the synchronous rollup + row building of the batch ran ${fmt(performance.now() - t0)} in one block, ${rows} rows)`);
      }),
    );
    const t0 = performance.now();
    const worst = report("load", await probeDuring(c.url, () => c.loader.loadNow()));
    const loaded = await ask<{ rows: number; requests: number }>("rows");
    console.log(`           (the load took ${fmt(performance.now() - t0)}, wrote ${loaded.rows} rows)`);
    // One load cycle, one transaction: the rows of one rollup of the whole batch, holding the same requests.
    if (loaded.rows !== rows || loaded.requests !== requests) {
      throw new Error(`load wrote ${loaded.rows} rows with ${loaded.requests} requests, the rollup holds ${rows} with ${requests}`);
    }
    console.log(`/healthz one-block baseline ÷ real load: p99 ${(blocked.p99 / worst.p99).toFixed(1)}×, max ${(blocked.max / worst.max).toFixed(1)}×`);
  } finally {
    await c.close();
    standin.stdin!.end("stop\n");
  }
}

if (process.argv.includes("--standin")) await serveStandin();
else await main();
