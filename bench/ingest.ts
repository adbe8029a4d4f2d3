// Ingest throughput of the collector process: realistic summaries (distinct producer/seq, many series,
// full latency sketches) POSTed over HTTP by autocannon with the spool on (every acknowledgement waits
// for fsync) and the DuckDB loader running. Run: `npx tsx bench/ingest.ts` (also part of `npm run bench`).
// Prints summaries/s, series-updates/s per collector CPU-second, p99 acknowledgement latency, and the
// same process's /healthz rate as the HTTP baseline.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import autocannon from "autocannon";
import { DIMENSIONS } from "../shared/schema.ts";
import { SeriesStats, decodeSummary, encodeSummary, sketchToJson, type DecodedSeries, type SummaryInput } from "../shared/node.ts";

const SUMMARIES = Number(process.env.BENCH_SUMMARIES ?? 4000);
const SERIES = Number(process.env.BENCH_SERIES ?? 100);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const TOKEN = "bench-token";

/** A sidecar's 10-second summary: SERIES series across services and codes, each from ~60 recorded requests. */
function buildSummary(i: number): SummaryInput {
  const series = Array.from({ length: SERIES }, (_, k) => {
    const dimensions = Object.fromEntries(
      DIMENSIONS.map((d) => [
        d,
        d === "response_code" ? [200, 200, 200, 404, 503][k % 5]
          : d === "destination_service" ? `svc-${k % 40}.shop.svc.cluster.local`
          : d === "source_workload" ? `client-${Math.floor(k / 40)}`
          : d === "source_principal" ? `spiffe://cluster.local/ns/shop/sa/client-${Math.floor(k / 40)}`
          : d === "reporter" ? "destination"
          : d === "grpc_status" || d === "response_flags" ? "-"
          : "unknown",
      ]),
    ) as DecodedSeries["dimensions"];
    const stats = new SeriesStats(6);
    for (let r = 0; r < 60; r++) stats.record(Math.floor(800 * Math.exp(((r * 37 + k * 11 + i) % 97) / 20)), 420, 3100, k % 5 === 4);
    return { dimensions, ...jsonOf(stats) };
  });
  return { producerId: `pod-${i % 200}`, seq: Math.floor(i / 200) + 1, windowStartMs: 1_700_000_000_000 + i * 50, windowEndMs: 1_700_000_010_000 + i * 50, reported: [...DIMENSIONS], series };
}

const jsonOf = (s: SeriesStats) => ({
  requests: s.requests,
  errors: s.errors,
  requestBytes: s.requestBytes,
  responseBytes: s.responseBytes,
  latencySumUs: s.latencySumUs,
  latencyMinUs: s.latencyMinUs,
  latencyMaxUs: s.latencyMaxUs,
  sketch: sketchToJson(s.sketch),
});

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, clock ticks (USER_HZ = 100)
}

async function main() {
  const bodies = Array.from({ length: SUMMARIES }, (_, i) => Buffer.from(encodeSummary(buildSummary(i))));
  // Baseline, in this process: the shared decoder alone over the same bodies (the collector decodes each
  // summary twice: to validate it before the acknowledgement, and again from the spool at load time).
  const decode0 = process.cpuUsage();
  for (const b of bodies) if (!decodeSummary(b).ok) throw new Error("bench summary does not decode");
  const decodeCpu = process.cpuUsage(decode0);
  const decodeSeriesPerCpuS = (SUMMARIES * SERIES) / ((decodeCpu.user + decodeCpu.system) / 1e6);
  const dir = mkdtempSync(join(tmpdir(), "meshlook-bench-"));
  const child = spawn(process.execPath, ["--import", "tsx", "collector/main.ts"], {
    cwd: new URL("..", import.meta.url).pathname,
    env: { ...process.env, MESHLOOK_HOST: "127.0.0.1", MESHLOOK_PORT: "0", MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: TOKEN, MESHLOOK_LOG_LEVEL: "warn", MESHLOOK_MAX_EVENT_LOOP_DELAY_MS: "60000" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise<string>((r) => createInterface({ input: child.stdout! }).once("line", r));
  const url = /listening on (http:\/\/\S+);/.exec(line)![1];

  const baseline = await autocannon({ url: `${url}/healthz`, connections: CONNECTIONS, amount: SUMMARIES * 2 });

  let next = 0;
  const cpu0 = cpuSeconds(child.pid!);
  const started = performance.now();
  const ingest = await autocannon({
    url,
    connections: CONNECTIONS,
    amount: SUMMARIES,
    requests: [
      {
        method: "POST",
        path: "/v1/summaries",
        headers: { "content-type": "application/x-meshlook-summary", authorization: `Bearer ${TOKEN}` },
        setupRequest: (req) => ({ ...req, body: bodies[next++ % bodies.length] }),
      },
    ],
  });
  const wallS = (performance.now() - started) / 1000;
  const cpuS = cpuSeconds(child.pid!) - cpu0;
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const accepted = Number(/^meshlook_summaries_accepted_total (\S+)$/m.exec(metrics)![1]);
  child.kill("SIGTERM");
  await new Promise((r) => child.on("exit", r));
  rmSync(dir, { recursive: true, force: true });

  const ok = ingest["2xx"];
  const bodyKb = bodies.reduce((n, b) => n + b.length, 0) / bodies.length / 1024;
  console.log(`ingest bench: ${SUMMARIES} summaries × ${SERIES} series (${bodyKb.toFixed(1)} KiB each), ${CONNECTIONS} connections, spool fsync on, DuckDB loads every 10 s`);
  console.log(`  accepted (2xx / collector count): ${ok} / ${accepted}, non-2xx ${ingest.non2xx}, errors ${ingest.errors}, status codes ${JSON.stringify(Object.fromEntries(Object.entries(ingest.statusCodeStats).map(([k, v]) => [k, v.count])))}`);
  console.log(`  summaries/s:                 ${(ok / wallS).toFixed(0)}`);
  console.log(`  series-updates/s (wall):     ${((ok * SERIES) / wallS).toFixed(0)}`);
  console.log(`  collector CPU:               ${cpuS.toFixed(2)} s over ${wallS.toFixed(2)} s wall`);
  console.log(`  series-updates per CPU-s:    ${((ok * SERIES) / cpuS).toFixed(0)}   (target ≥ 200000 per core)`);
  console.log(`  ack latency ms p50/p99/max:  ${ingest.latency.p50} / ${ingest.latency.p99} / ${ingest.latency.max}`);
  console.log(`  baseline GET /healthz req/s: ${baseline.requests.average.toFixed(0)}; ingest/baseline request rate ${(ok / wallS / baseline.requests.average).toFixed(3)}`);
  console.log(`  baseline decode only:        ${decodeSeriesPerCpuS.toFixed(0)} series per CPU-s; collector/decode-only ratio ${((ok * SERIES) / cpuS / decodeSeriesPerCpuS).toFixed(3)}`);
}

await main();
