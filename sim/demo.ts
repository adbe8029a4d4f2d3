/**
 * `meshlook demo` (`npm run demo`): the whole meshlook path on one machine, no cluster. Starts the collector (its own
 * process, `collector/main.ts`) on a fresh DuckDB file, runs a bookinfo-like mesh through the real
 * `dist/meshlook.wasm` in simulated Envoy sidecars (several VMs each) on an accelerated clock, lets the
 * filters flush their last windows, stops the collector gracefully (its final load), then reads the
 * warehouse back with SQL and checks it against the traffic generator's ground truth. With --keep it then
 * starts the collector again on that data and leaves it running, printing the dashboard URL and a reader token.
 *
 *   npm run demo -- --duration 600 --rps 200 --seed 42 --workers 2 --keep
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import cliProgress from "cli-progress";
import { parseReaderTokens } from "../collector/read/access.ts";
import { startCollectorProcess } from "./collector-process.ts";
import { numberOption, parseCommandLine } from "../scripts/args.ts";
import type { MeshProgress } from "./mesh.ts";
import { RELEASE_WASM, runPipeline } from "./pipeline.ts";
import { DEFAULT_SCALE } from "../shared/node.ts";
import { sketchErrorBound } from "../shared/quantile.ts";
import { bytes, formatTable, int, ms, percent } from "./report.ts";
import { GroundTruth, TrafficGenerator, bookinfo } from "./traffic/index.ts";
import { Warehouse, compareSeries, exactFields } from "./warehouse.ts";

/** The filter's default flush interval (docs/filter-config.md); the drain waits out one more window. */
const FLUSH_INTERVAL_S = 10;
const QUANTILES = [0.5, 0.9, 0.99];

const USAGE = `usage: meshlook demo [--duration S] [--rps N] [--seed N] [--workers N] [--data-dir DIR] [--keep [--port N]]
  --duration  simulated seconds of traffic (default 600: ten minutes, so charts per minute show shape)
  --rps       requests per simulated second across the mesh (default 200)
  --seed      traffic seed; the same seed gives the same requests (default 42)
  --workers   Envoy worker threads, i.e. filter VMs, per sidecar (default 2)
  --data-dir  where the collector keeps its spool and DuckDB file (default ./data/demo-<time>)
  --keep      afterwards, leave the collector running on the demo's data and print the dashboard URL
  --port      port of the collector left running by --keep (default 8080; 0 = any free port)
  --anomaly   instead: 3 h of a mesh with planted incidents, then outlier detection, printing the
              findings with their Looker explore URLs (MESHLOOK_LOOKER_URL sets the Looker host)`;

function options() {
  const { values } = parseCommandLine(USAGE, {
    duration: { type: "string", default: "600" },
    rps: { type: "string", default: "200" },
    seed: { type: "string", default: "42" },
    workers: { type: "string", default: "2" },
    "data-dir": { type: "string" },
    keep: { type: "boolean", default: false },
    port: { type: "string", default: "8080" },
    anomaly: { type: "boolean" },
  });
  const number = (name: "duration" | "rps" | "seed" | "workers" | "port", min: number, max: number) => numberOption(USAGE, name, values[name]!, min, max);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  return {
    durationS: number("duration", 0, 86_400),
    rps: number("rps", 0, 1_000_000),
    seed: Math.trunc(number("seed", -1, 2 ** 31)),
    workers: Math.trunc(number("workers", 0, 64)),
    dataDir: values["data-dir"] ?? join("data", `demo-${stamp}`),
    keep: values.keep === true,
    port: Math.trunc(number("port", -1, 65535)),
    anomaly: values.anomaly === true,
  };
}

async function main() {
  const opts = options();
  if (!existsSync(RELEASE_WASM)) throw new Error(`${RELEASE_WASM} is missing: run \`npm run build\` (npm run demo does it)`);
  if (existsSync(join(opts.dataDir, "meshlook.duckdb"))) throw new Error(`${opts.dataDir} already holds a warehouse; pick a fresh --data-dir`);
  mkdirSync(opts.dataDir, { recursive: true });
  if (opts.anomaly) {
    const { runAnomalyDemo } = await import("./anomaly-demo.ts");
    return runAnomalyDemo({ ...opts, rps: Math.min(opts.rps, 60), lookerUrl: process.env.MESHLOOK_LOOKER_URL ?? "" });
  }

  // Simulated time starts at the minute boundary before the run, so the rows land in recent minutes.
  const startMs = Math.floor((Date.now() - opts.durationS * 1000) / 60_000) * 60_000;
  const model = bookinfo({ durationS: opts.durationS });
  // Keep-alive connections, as a mesh has them: the filter's per-connection facts are then cached.
  const generator = new TrafficGenerator(model, { seed: opts.seed, requestsPerSecond: opts.rps, startTimeMs: startMs, requestsPerConnection: 10 });
  const truth = new GroundTruth();

  const bar = new cliProgress.SingleBar(
    {
      format: "{bar} {percentage}% | {sim}/{total} s simulated | {requests} requests | summaries {acked} acknowledged / {callouts} sent",
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const total = opts.durationS + FLUSH_INTERVAL_S + 5;
  const show = (p: MeshProgress) => {
    const sim = Math.min(total, Math.round((p.nowMs - startMs) / 1000));
    bar.update(sim, { sim, requests: int(p.requests), acked: int(p.acknowledged), callouts: int(p.callouts) });
  };
  const result = await runPipeline({
    model,
    generator,
    truth,
    workers: opts.workers,
    dataDir: opts.dataDir,
    durationS: opts.durationS,
    onStart(collector, mesh) {
      const namespaces = new Set(model.workloads.map((w) => w.namespace));
      console.log(`collector   ${collector.url} (pid ${collector.child.pid}), warehouse ${relative(process.cwd(), collector.duckdbPath)}`);
      console.log(
        `mesh        ${model.name}: ${model.workloads.length} workloads in ${namespaces.size} namespaces, ` +
          `${mesh.sidecars.size} sidecars × ${opts.workers} filter VMs; error burst on reviews-v3, slow ratings, plaintext legacy-batch`,
      );
      console.log(`traffic     ${opts.durationS} s simulated at ${int(opts.rps)} req/s, seed ${opts.seed}, clock accelerated\n`);
      bar.start(total, 0, { sim: 0, requests: 0, acked: 0, callouts: 0 });
    },
    onStep: show,
  });
  bar.update(total);
  bar.stop();
  const p = result.progress;
  console.log(
    `\n${int(p.requests)} requests (${int(p.streams)} sidecar streams) in ${result.wallS.toFixed(1)} s wall; ` +
      `${int(result.sent.size)} summaries POSTed (${int(result.callouts)} calls), ${int(result.acknowledged.size)} acknowledged; ` +
      `${p.vmTraps} VM traps (canary, configure, streams, ticks, callouts, stop); collector stopped (final load done)`,
  );

  const warehouse = await Warehouse.open(result.duckdbPath);
  try {
    await report(warehouse, truth, result.acknowledged.size, result.duckdbPath, opts.keep);
  } finally {
    warehouse.close();
  }
  if (opts.keep) await keep(opts.dataDir, opts.port);
}

/** Starts the collector again on the demo's data (its own generated reader token) and waits for Ctrl-C. */
async function keep(dataDir: string, port: number) {
  const collector = await startCollectorProcess({
    dataDir,
    token: randomBytes(24).toString("base64url"),
    settings: { MESHLOOK_PORT: String(port) },
  });
  const [reader] = parseReaderTokens(readFileSync(join(dataDir, "reader-tokens"), "utf8"));
  console.log(`
The collector keeps running on the demo's data (pid ${collector.child.pid}); Ctrl-C stops it.
  dashboard      ${collector.url}/ui/#token=${reader.token}
  reader token   ${reader.token}   (scope: every namespace; ${join(dataDir, "reader-tokens")})
  read API       curl -H "Authorization: Bearer ${reader.token}" '${collector.url}/api/v1/traffic?group_by=destination_service'`);
  await new Promise<void>((resolve) => {
    const stop = () => void collector.stop().finally(resolve);
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    collector.child.once("exit", () => resolve());
  });
}

async function report(warehouse: Warehouse, truth: GroundTruth, acknowledged: number, duckdbPath: string, keep: boolean) {
  const edges = await warehouse.edges(QUANTILES);
  console.log("\nTraffic by source identity → destination service, read back from the warehouse (latency in ms):\n");
  console.log(
    formatTable(
      ["seen by", "source identity", "source workload", "destination service", "requests", "error %", "p50", "p90", "p99", "bytes"],
      edges.map((e) => [
        e.reporter,
        e.sourcePrincipal === "unknown" ? "unknown (no mTLS peer)" : e.sourcePrincipal,
        e.sourceWorkload,
        e.destinationService,
        int(e.requests),
        percent(e.errors, e.requests),
        ...e.quantilesUs.map(ms),
        bytes(e.requestBytes + e.responseBytes),
      ]),
      ["left", "left", "left", "left", "right", "right", "right", "right", "right", "right"],
    ),
  );

  const got = await warehouse.totals();
  const want = truth.totals();
  const comparison = compareSeries(await warehouse.series(), truth);
  const ledger = await warehouse.ledger();
  const labels = ["requests", "errors", "request bytes", "response bytes", "latency sum µs", "latency min µs", "latency max µs"];
  const g = exactFields(got);
  const w = exactFields(want);
  const totalsMatch = g.every((v, i) => v === w[i]);
  const exact = totalsMatch && comparison.mismatches.length === 0 && ledger.distinct === ledger.summaries && ledger.summaries === acknowledged;
  console.log("\nWarehouse vs the generator's ground truth:");
  console.log(
    formatTable(
      ["measure", "warehouse", "ground truth", ""],
      labels.map((l, i) => [l, int(g[i]), int(w[i]), g[i] === w[i] ? "=" : "DIFFERS"]),
      ["left", "right", "right", "left"],
    ),
  );
  console.log(
    `series: ${comparison.warehouseSeries} in the warehouse, ${comparison.truthSeries} in the ground truth, ` +
      `${comparison.mismatches.length} differ; load ledger: ${ledger.summaries} summaries from ${ledger.producers} filter VMs ` +
      `(${ledger.distinct} distinct, ${acknowledged} acknowledged)`,
  );
  for (const m of comparison.mismatches.slice(0, 10)) console.log(`  ${m}`);
  const loss = await warehouse.sidecarLoss();
  console.log(
    `sidecar loss (mesh_sidecar_loss): ${int(loss.requests)} requests in ${int(loss.windows)} dropped windows, ` +
      `~${int(loss.overflowKeys)} series keys folded into __overflow__`,
  );
  const exactByEdge = truth.aggregate((row) => `${row.dims.reporter}|${row.dims.source_principal}|${row.dims.destination_service}`);
  let worst = 0;
  for (const e of edges) {
    const stats = exactByEdge.get(`${e.reporter}|${e.sourcePrincipal}|${e.destinationService}`);
    if (!stats) continue;
    QUANTILES.forEach((q, i) => {
      const exact = stats.quantile(q);
      if (exact > 0) worst = Math.max(worst, Math.abs(e.quantilesUs[i] - exact) / exact);
    });
  }
  console.log(
    `percentiles: MESH_QUANTILE vs the exact p50/p90/p99 of every row above, worst relative error ${(100 * worst).toFixed(4)} % (bound ${(100 * sketchErrorBound(DEFAULT_SCALE)).toFixed(4)} %)`,
  );
  const ok = exact && worst <= 0.01;
  console.log(ok ? "RESULT: warehouse totals match the ground truth exactly; percentiles within 1 %." : "RESULT: MISMATCH between the warehouse and the ground truth.");

  const file = relative(process.cwd(), duckdbPath);
  console.log(`
Open the data:
  DuckDB file     ${file}
  query it        npx meshlook query ${file} "SELECT destination_service, SUM(requests) AS requests,
                    MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) / 1000 AS p99_ms
                    FROM mesh_traffic_minute WHERE reporter = 'destination' GROUP BY 1 ORDER BY 2 DESC"
                  (any DuckDB client works too; MESH_QUANTILE is registered per connection, see docs/collector.md)${
                    keep
                      ? `
                  once the collector below has stopped: while it runs it holds the file's lock, and the read API
                  and dashboard below answer the same questions`
                      : ""
                  }
  LookML project  looker/ (explores, dashboards; looker/README.md)`);
  if (!ok) process.exitCode = 1;
}

await main();
