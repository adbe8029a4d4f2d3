// Ingest throughput of the collector process: realistic summaries (distinct producer/seq, many series,
// full latency sketches, built with the collector tests' builders) POSTed over HTTP by autocannon, with
// the spool on (every acknowledgement waits for fsync) and the DuckDB loader running every 2 s.
// Run: `npx tsx bench/ingest.ts`. Prints summaries/s, series-updates per collector CPU-second (until
// everything is loaded, so loading is paid for), p99 acknowledgement latency, and three baselines: the
// collector's /healthz rate, and in this process the shared decoder alone and decode + rollup fold (what
// ingest does per summary besides HTTP, spool and load). Also the collector's CPU split between its event
// loop and its other threads, and its peak RSS, for sizing Kubernetes requests.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import autocannon from "autocannon";
import { MinuteRollup } from "../collector/rollup.ts";
import { decodeSummary, encodeSummary, type DecodedSummary } from "../shared/node.ts";
import { series, summary } from "../test/collector/helpers.ts";

const SUMMARIES = Number(process.env.BENCH_SUMMARIES ?? 4000);
// Summaries posted (and loaded) before the measured run, so it sees a collector whose ingest path is
// compiled and whose heap has settled, as a long-running one is; BENCH_WARMUP=0 measures from a cold start.
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2000);
const SERIES = Number(process.env.BENCH_SERIES ?? 100);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const TOKEN = "bench-token";
// Extra node flags for the collector process, e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof".
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? "").split(" ").filter((a) => a !== "");

/** A sidecar's 10-second summary: SERIES series across services and codes, each from 60 requests. */
function buildSummary(i: number): DecodedSummary {
  const out = summary(Math.floor(i / 200) + 1, 1_700_000_010_000 + i * 50, [], `pod-${i % 200}`);
  for (let k = 0; k < SERIES; k++) {
    const latencies = Array.from({ length: 60 }, (_, r) => Math.floor(800 * Math.exp(((r * 37 + k * 11 + i) % 97) / 20)));
    const s = series(`svc-${k % 40}.shop.svc.cluster.local`, latencies);
    s.dimensions = {
      ...s.dimensions,
      reporter: "destination",
      response_code: [200, 200, 200, 404, 503][k % 5],
      source_workload: `client-${Math.floor(k / 40)}`,
      source_principal: `spiffe://cluster.local/ns/shop/sa/client-${Math.floor(k / 40)}`,
      grpc_status: "-",
      response_flags: "-",
    };
    out.series.push(s);
  }
  return out;
}

// utime + stime of a /proc stat line, in seconds (clock ticks, USER_HZ = 100).
const statCpuS = (stat: string) => {
  const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const cpuSeconds = (pid: number) => statCpuS(readFileSync(`/proc/${pid}/stat`, "utf8"));

/**
 * CPU seconds of the main (event-loop) thread and of all other threads: V8's helpers (parallel and
 * concurrent GC, optimizing compiler), libuv's pool (spool writev + fdatasync) and DuckDB's threads.
 * Node names them all "node", so they are not told apart here.
 */
function threadCpuSeconds(pid: number): { main: number; others: number } {
  let others = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (tid === String(pid)) continue;
    try {
      others += statCpuS(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"));
    } catch {
      // the thread ended between readdir and read; its time is in the process total
    }
  }
  return { main: statCpuS(readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8")), others };
}

/** Peak resident set size of a process (VmHWM), in MiB. */
const peakRssMiB = (pid: number) => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

async function main() {
  const all = Array.from({ length: WARMUP + SUMMARIES }, (_, i) => Buffer.from(encodeSummary(buildSummary(i))));
  const warmup = all.slice(0, WARMUP);
  const bodies = all.slice(WARMUP);
  // Baselines, in this process over the same bodies (after the same warm-up): the shared decoder alone,
  // and decode + the rollup fold the collector does once a summary is durable (a segment's fold is loaded
  // without decoding again).
  const decodeAll = (list: Buffer[]) => {
    for (const b of list) if (!decodeSummary(b).ok) throw new Error("bench summary does not decode");
  };
  const foldAll = (list: Buffer[]) => {
    const fold = new MinuteRollup();
    for (const b of list) {
      const d = decodeSummary(b);
      if (d.ok) fold.add(d.summary);
    }
  };
  const perCpuS = (work: (list: Buffer[]) => void) => {
    work(warmup);
    const t0 = process.cpuUsage();
    work(bodies);
    const t = process.cpuUsage(t0);
    return (SUMMARIES * SERIES) / ((t.user + t.system) / 1e6);
  };
  const decodeSeriesPerCpuS = perCpuS(decodeAll);
  const foldSeriesPerCpuS = perCpuS(foldAll);
  const dir = mkdtempSync(join(tmpdir(), "meshlook-bench-"));
  const child = spawn(process.execPath, [...NODE_ARGS, "--import", "tsx", "collector/main.ts"], {
    cwd: new URL("..", import.meta.url).pathname,
    env: {
      ...process.env,
      MESHLOOK_HOST: "127.0.0.1",
      MESHLOOK_PORT: "0",
      MESHLOOK_DATA_DIR: dir,
      MESHLOOK_INGEST_TOKENS: TOKEN,
      MESHLOOK_LOG_LEVEL: "warn",
      MESHLOOK_LOAD_INTERVAL_S: "2",
      MESHLOOK_MAX_EVENT_LOOP_DELAY_MS: "60000",
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  // The startup line, skipping whatever node flags (e.g. --trace-gc) print before it.
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((r) =>
    lines.on("line", (l) => {
      const m = /listening on (http:\/\/\S+);/.exec(l);
      if (m) r(m[1]);
    }),
  );

  const baseline = await autocannon({ url: `${url}/healthz`, connections: CONNECTIONS, amount: SUMMARIES * 2 });

  const post = (list: Buffer[]) => {
    let next = 0;
    return autocannon({
      url,
      connections: CONNECTIONS,
      amount: list.length,
      requests: [
        {
          method: "POST",
          path: "/v1/summaries",
          headers: { "content-type": "application/x-meshlook-summary", authorization: `Bearer ${TOKEN}` },
          setupRequest: (req) => ({ ...req, body: list[next++ % list.length] }),
        },
      ],
    });
  };
  const metric = async (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(await (await fetch(`${url}/metrics`)).text())![1]);
  const allLoaded = async () => {
    const accepted = await metric("meshlook_summaries_accepted_total");
    while ((await metric("meshlook_summaries_loaded_total")) < accepted) await new Promise((r) => setTimeout(r, 100));
    return accepted;
  };
  if (WARMUP > 0) {
    const warm = await post(warmup);
    if (warm["2xx"] !== WARMUP) throw new Error(`warm-up: ${warm["2xx"]} of ${WARMUP} summaries accepted`);
    await allLoaded();
  }

  const cpu0 = cpuSeconds(child.pid!);
  const threads0 = threadCpuSeconds(child.pid!);
  const started = performance.now();
  const ingest = await post(bodies);
  const wallS = (performance.now() - started) / 1000;
  const ackCpuS = cpuSeconds(child.pid!) - cpu0;
  const accepted = (await allLoaded()) - WARMUP;
  const loadedWallS = (performance.now() - started) / 1000;
  const cpuS = cpuSeconds(child.pid!) - cpu0;
  const threads1 = threadCpuSeconds(child.pid!);
  const rssMiB = peakRssMiB(child.pid!);
  child.kill("SIGTERM");
  await new Promise((r) => child.on("exit", r));
  rmSync(dir, { recursive: true, force: true });

  const ok = ingest["2xx"];
  const bodyKb = bodies.reduce((n, b) => n + b.length, 0) / bodies.length / 1024;
  console.log(
    `ingest bench: ${SUMMARIES} summaries × ${SERIES} series (${bodyKb.toFixed(1)} KiB each), ${CONNECTIONS} connections, spool fsync on, DuckDB loads every 2 s, after a warm-up of ${WARMUP} summaries`,
  );
  console.log(
    `  accepted (2xx / collector count): ${ok} / ${accepted}, non-2xx ${ingest.non2xx}, errors ${ingest.errors}, status codes ${JSON.stringify(Object.fromEntries(Object.entries(ingest.statusCodeStats).map(([k, v]) => [k, v.count])))}`,
  );
  console.log(`  summaries/s:                 ${(ok / wallS).toFixed(0)}`);
  console.log(`  series-updates/s (wall):     ${((ok * SERIES) / wallS).toFixed(0)}`);
  console.log(
    `  collector CPU:               ${ackCpuS.toFixed(2)} s while acknowledging (${wallS.toFixed(2)} s wall), ${cpuS.toFixed(2)} s until all loaded (${loadedWallS.toFixed(2)} s wall)`,
  );
  console.log(
    `  collector CPU by thread:     event loop ${(threads1.main - threads0.main).toFixed(2)} s, other threads ${(threads1.others - threads0.others).toFixed(2)} s (GC and JIT helpers, fs pool, DuckDB)`,
  );
  console.log(`  collector peak RSS:          ${rssMiB.toFixed(0)} MiB (VmHWM, whole run)`);
  console.log(`  series-updates per CPU-s:    ${((ok * SERIES) / cpuS).toFixed(0)} ingest + load   (target ≥ 200000 per core)`);
  console.log(`  ack latency ms p50/p99/max:  ${ingest.latency.p50} / ${ingest.latency.p99} / ${ingest.latency.max}`);
  console.log(`  baseline GET /healthz req/s: ${baseline.requests.average.toFixed(0)}; ingest/baseline request rate ${(ok / wallS / baseline.requests.average).toFixed(3)}`);
  console.log(
    `  baseline decode only:        ${decodeSeriesPerCpuS.toFixed(0)} series per CPU-s; collector/decode-only ratio ${((ok * SERIES) / cpuS / decodeSeriesPerCpuS).toFixed(3)}`,
  );
  const restUs = (cpuS / ok - SERIES / foldSeriesPerCpuS) * 1e6;
  console.log(
    `  baseline decode + fold:      ${foldSeriesPerCpuS.toFixed(0)} series per CPU-s; collector/decode+fold ratio ${((ok * SERIES) / cpuS / foldSeriesPerCpuS).toFixed(3)}; the rest (HTTP, spool, load) ≈ ${restUs.toFixed(0)} µs CPU per summary`,
  );
}

await main();
