// `npm run bench`: every figure meshlook claims, each next to a baseline measured in the same run, in one
// table; written with the machine and commit to bench/out/RESULTS.md (ignored by git, so a run leaves the
// tree clean; the published table is bench/RESULTS.md, updated by copying a run's file over it). Every
// other script under bench/ (the component benchmarks: filter, host floor, ingest, …) runs too; their
// full output goes to the details.
//   npm run bench                        # everything (a few minutes on 2 cores)
//   npm run bench -- --out FILE          # write the results there instead
//   npm run bench -- --quick             # smaller runs, a smoke test; writes no file
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { parseCommandLine } from "../scripts/args.ts";
import { formatTable, markdownTable, type Align } from "../sim/report.ts";
import { measureFilterCost } from "./lib/filter-cost.ts";
import { measureFreshness } from "./lib/freshness.ts";
import { measureIngest } from "./lib/ingest.ts";
import { measureLoadCycle } from "./lib/load-cycle.ts";
import { measureScale, perMinutePerThousand } from "./lib/scale.ts";
import { mean, median, spread } from "./lib/stats.ts";
import { measureWarehouseLoad, type LoadRun } from "./lib/warehouse-load.ts";
import { measureWire } from "./lib/wire.ts";

const ROOT = join(import.meta.dirname, "..");
const USAGE = `usage: npm run bench -- [--quick] [--out FILE]
  --quick  smaller runs, a smoke test; writes no file
  --out    where the results go (default bench/out/RESULTS.md, ignored by git; bench/RESULTS.md is the published copy)`;
const { values } = parseCommandLine(USAGE, { quick: { type: "boolean" }, out: { type: "string", default: join(ROOT, "bench", "out", "RESULTS.md") } });
const quick = values.quick === true;
const out = resolve(values.out!);

interface Row {
  figure: string;
  ours: string;
  baseline: string;
  baselineIs: string;
  ratio: string;
}

const rows: Row[] = [];
const details: string[] = [];
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "-");
const ratio = (ours: number, baseline: number) => {
  if (baseline === 0 || ours < 0) return "-";
  const r = ours / baseline;
  return r < 0.1 ? `${fmt(r, 4)}× (1/${fmt(1 / r)})` : `${fmt(r, 2)}×`;
};
const pct = (x: number) => `${fmt(100 * x, 2)} %`;

/** Runs one benchmark; a failure becomes a row saying so instead of ending the whole run. */
async function section(name: string, body: () => Promise<void>) {
  const t0 = performance.now();
  process.stderr.write(`bench: ${name} …`);
  try {
    await body();
    process.stderr.write(` ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  } catch (err) {
    process.stderr.write(` FAILED\n`);
    const message = (err as Error).message.split("\n")[0];
    rows.push({ figure: name, ours: "failed", baseline: "-", baselineIs: message.slice(0, 120), ratio: "-" });
    details.push(`### ${name}: failed\n\n\`\`\`\n${(err as Error).stack ?? message}\n\`\`\``);
  }
}

async function script(file: string, env: Record<string, string> = {}) {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", join(ROOT, file)], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    maxBuffer: 16 << 20,
  });
  details.push(`### \`${file}\`\n\n\`\`\`\n${stdout.trimEnd()}\n\`\`\``);
}

const startedAt = new Date();
/** From the filter-cost run, for the wire-bytes comparison. */
let accessLogLineBytes = NaN;
const load0 = loadavg()[0];

await section("filter cost", async () => {
  const signed = (ns: number) => (ns >= 0 ? `+${fmt(ns)}` : `−${fmt(-ns)}`);
  // Every request on a new connection is the worst case for the filter's per-connection fact cache;
  // keep-alive (HTTP/1.1) and HTTP/2 meshes put many requests on one connection.
  for (const perConnection of [1, 10]) {
    const c = await measureFilterCost(quick ? 3000 : 10_000, quick ? 3 : 7, perConnection);
    const streams = perConnection === 1 ? "bookinfo, a new connection per request" : `bookinfo, ${perConnection} requests per connection`;
    rows.push({
      figure: `filter CPU ns/request (${streams})`,
      ours: `${fmt(c.meshlookNs)} (${signed(c.meshlookNs - c.noopNs)} added, rounds ${spread(c.addedRounds)})`,
      baseline: fmt(c.noopNs),
      baselineIs: "do-nothing proxy-runtime filter",
      ratio: ratio(c.meshlookNs, c.noopNs),
    });
    rows.push({
      figure: `filter CPU ns/request added over the no-op (${streams})`,
      ours: signed(c.meshlookNs - c.noopNs),
      baseline: signed(c.accessLogNs - c.noopNs),
      baselineIs: "access-log filter: one JSON line per request to the host",
      ratio: ratio(c.meshlookNs - c.noopNs, c.accessLogNs - c.noopNs),
    });
    details.push(
      `### filter cost (${streams})\n\n${c.streams} streams × ${c.rounds} rounds, median CPU time per stream: no-op ${fmt(c.noopNs)} ns, meshlook ${fmt(c.meshlookNs)} ns, ` +
        `access log ${fmt(c.accessLogNs)} ns per stream. Sample access-log line (${fmt(c.accessLogLineBytes)} bytes on average):\n\n\`\`\`json\n${c.accessLogSample}\n\`\`\``,
    );
    if (perConnection === 1) accessLogLineBytes = c.accessLogLineBytes;
  }
});

await section("wire bytes and quantile error", async () => {
  const w = await measureWire({ rps: 1000, durationS: quick ? 30 : 60 });
  const perRequest = w.meshlookBytes / w.observations;
  rows.push({
    figure: "wire bytes/request",
    ours: fmt(perRequest, 3),
    baseline: fmt(accessLogLineBytes),
    baselineIs: "JSON access-log line with the same fields",
    ratio: ratio(perRequest, accessLogLineBytes),
  });
  rows.push({
    figure: "wire bytes/request",
    ours: fmt(perRequest, 3),
    baseline: `${fmt(w.prometheusBytes / w.observations)} (gzip ${fmt(w.prometheusGzipBytes / w.observations, 1)})`,
    baselineIs: `Istio stats as Prometheus text, Envoy default buckets, scraped every ${w.flushIntervalS} s`,
    ratio: ratio(perRequest, w.prometheusBytes / w.observations),
  });
  for (const e of w.quantileError) {
    rows.push({
      figure: `p${e.q * 100} relative error, worst series`,
      ours: pct(e.meshlookMax),
      baseline: pct(e.envoyMax),
      baselineIs: "Envoy default buckets + histogram_quantile",
      ratio: ratio(e.meshlookMax, e.envoyMax),
    });
  }
  details.push(
    `### wire bytes and quantile error\n\nbookinfo at 1000 req/s for ${quick ? 30 : 60} s simulated, 2 VMs per sidecar: ${fmt(w.requests)} requests, ` +
      `${fmt(w.observations)} sidecar observations; ${w.summaries} summaries, ${fmt(w.meshlookBytes)} bytes. Prometheus: ${w.scrapes} scrapes, ` +
      `${fmt(w.prometheusBytes)} bytes (${fmt(w.prometheusGzipBytes)} gzip). Quantile errors over ${w.seriesCompared} series with ≥ 500 requests ` +
      `(mean meshlook / Envoy buckets): ${w.quantileError.map((e) => `p${e.q * 100} ${pct(e.meshlookMean)} / ${pct(e.envoyMean)}`).join(", ")}. ` +
      `The access-log line size is the mean over the bookinfo streams of the filter-cost run.`,
  );
});

await section("collector ingest", async () => {
  const i = await measureIngest(quick ? 300 : 2000, quick ? 3 : 5);
  const range = (text: string) =>
    text
      .split("–")
      .map((x) => fmt(Number(x)))
      .join("–");
  rows.push({
    figure: "collector ingest series-updates/s per core (median, min–max of rounds)",
    ours: `${fmt(i.seriesUpdatesPerCpuS)} (${range(i.seriesUpdatesSpread)})`,
    baseline: `${fmt(i.decodeOnlyPerCpuS)} (${range(i.decodeOnlySpread)})`,
    baselineIs: "decoding the same summaries only (same run)",
    ratio: ratio(i.seriesUpdatesPerCpuS, i.decodeOnlyPerCpuS),
  });
  details.push(`### \`bench/ingest.ts\`\n\n\`\`\`\n${i.output.trimEnd()}\n\`\`\``);
});

await section("warehouse load", async () => {
  const l = await measureWarehouseLoad(quick ? { summaries: 100, rounds: 2 } : {});
  const rate = (run: LoadRun) => `${fmt(median(run.rowsPerS))} (${fmt(Math.min(...run.rowsPerS))}–${fmt(Math.max(...run.rowsPerS))})`;
  const cpu = (run: LoadRun) => `${fmt(median(run.cpuMs))} ms (${fmt(Math.min(...run.cpuMs))}–${fmt(Math.max(...run.cpuMs))})`;
  const bare = "bare appender: the same rows by column type, same table, one transaction per cycle (no ledger, rollup, row building)";
  rows.push(
    {
      figure: "warehouse load rows/s (DuckDB, load cycle; median, min–max of rounds)",
      ours: rate(l.cycle),
      baseline: rate(l.appender),
      baselineIs: bare,
      ratio: ratio(median(l.cycleRatio), 1),
    },
    {
      figure: "warehouse load rows/s (DuckDB, replay: rollup in the load; median, min–max of rounds)",
      ours: rate(l.replay),
      baseline: rate(l.appender),
      baselineIs: bare,
      ratio: ratio(median(l.replayRatio), 1),
    },
  );
  details.push(
    `### warehouse load\n\n${l.summaries} summaries, ${fmt(l.rows)} fact rows, ${l.cycles} cycles of ${l.summaries / l.cycles} summaries (one transaction each), ` +
      `${l.rounds} rounds, each on fresh database files; ratios are the medians of the rounds' ratios (all three loads of a round ` +
      `run back to back). A load cycle loads folded summaries (ledger check, fact + ledger rows, compaction check), as the loader does ` +
      `with what this process acknowledged; a replay load (Sink.load) rolls the decoded summaries up inside the load. CPU time of ` +
      `the process (DuckDB's threads included) per round: load cycle ${cpu(l.cycle)}, replay ${cpu(l.replay)}, bare appender ${cpu(l.appender)}; ` +
      `by CPU time the load cycle runs at ${ratio(median(l.cycleCpuRatio), 1)} the bare appender, the replay load at ${ratio(median(l.replayCpuRatio), 1)}.`,
  );
});

await section("load cycle", async () => {
  // One cycle per sidecar count on each sink; --quick: a few sidecars, one minute of traffic.
  const intervalS = quick ? 60 : 900;
  const { cycles, output } = await measureLoadCycle({ sidecars: quick ? [20] : [100, 1000, 10_000], intervalS });
  for (const c of cycles) {
    const n = c.sidecars.toLocaleString("en-US");
    rows.push({
      figure: `Snowflake credits/day, a load cycle every ${intervalS} s (${n} sidecars)`,
      ours: fmt(c.creditsPerDay, 2),
      baseline: "24",
      baselineIs: "X-Small warehouse that never suspends",
      ratio: ratio(c.creditsPerDay, 24),
    });
    rows.push({
      figure: `load-side CPU-s per 1,000 sidecars per cycle, Snowflake (${n} sidecars)`,
      ours: fmt(c.snowflake.cpuS / (c.sidecars / 1000), 2),
      baseline: fmt(c.duckdb.cpuS / (c.sidecars / 1000), 2),
      baselineIs: "the same cycle loaded into DuckDB (same run)",
      ratio: ratio(c.snowflake.cpuS, c.duckdb.cpuS),
    });
  }
  details.push(`### \`bench/load-cycle.ts\`\n\n${output}`);
});

await section("scale", async () => {
  // A simulated mesh posting to collector processes at its arrival rate; --quick: a few sidecars, one minute.
  const { runs, output } = await measureScale(quick ? { sidecars: [20], minutes: 1 } : { sidecars: [100, 1000, 10_000] });
  for (const n of new Set(runs.map((r) => r.sidecars))) {
    const duckdb = runs.find((r) => r.sidecars === n && r.sink === "duckdb")!;
    const snowflake = runs.find((r) => r.sidecars === n && r.sink === "snowflake")!;
    const perK = (r: typeof duckdb, cpuS = r.cpuS) => perMinutePerThousand(cpuS, r);
    const mesh = `${n.toLocaleString("en-US")} sidecars`;
    rows.push({
      figure: `collector CPU-s per simulated minute per 1,000 sidecars, ingest + load, DuckDB (${mesh})`,
      ours: fmt(perK(duckdb), 2),
      baseline: fmt(perK(duckdb, duckdb.decodeCpuS), 2),
      baselineIs: "decoding the same summaries only (same run)",
      ratio: ratio(duckdb.cpuS, duckdb.decodeCpuS),
    });
    rows.push({
      figure: `collector CPU-s per simulated minute per 1,000 sidecars, ingest + load, Snowflake stand-in, 2 replicas (${mesh})`,
      ours: fmt(perK(snowflake), 2),
      baseline: fmt(perK(duckdb), 2),
      baselineIs: "the same mesh into DuckDB, one collector (same run)",
      ratio: ratio(snowflake.cpuS, duckdb.cpuS),
    });
    for (const r of [duckdb, snowflake]) {
      rows.push({
        figure: `collector peak RSS MiB, ${r.sink === "duckdb" ? "DuckDB" : "Snowflake stand-in, largest of 2 replicas"} (${mesh})`,
        ours: fmt(r.peakRssMiB),
        baseline: fmt(r.idleRssMiB),
        baselineIs: "the same collector idle, before traffic",
        ratio: ratio(r.peakRssMiB, r.idleRssMiB),
      });
    }
  }
  details.push(`### \`bench/scale.ts\`\n\n${output}`);
});

await section("freshness", async () => {
  const f = await measureFreshness(quick ? 1 : 3);
  rows.push({
    figure: "freshness: request → queryable, s",
    ours: fmt(mean(f.queryableS), 1),
    baseline: fmt(mean(f.acknowledgedS), 1),
    baselineIs: "request → summary acknowledged (spooled); defaults: 10 s flush, 10 s load",
    ratio: ratio(mean(f.queryableS), mean(f.acknowledgedS)),
  });
  details.push(
    `### freshness\n\nReal time, default settings. Request → queryable: ${f.queryableS.map((s) => s.toFixed(1)).join(", ")} s; ` +
      `request → acknowledged: ${f.acknowledgedS.map((s) => s.toFixed(1)).join(", ")} s.`,
  );
});

if (!quick) {
  // Every other benchmark script under bench/ (ingest.ts, load-cycle.ts and scale.ts ran above), printed in full in the details.
  const ranAbove = new Set(["run.ts", "ingest.ts", "load-cycle.ts", "scale.ts"]);
  const others = readdirSync(join(ROOT, "bench"))
    .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !ranAbove.has(f))
    .sort();
  for (const f of others) await section(`bench/${f}`, () => script(`bench/${f}`));
}

const headers = ["figure", "meshlook", "baseline", "baseline is", "ratio"];
const align: Align[] = ["left", "right", "right", "left", "right"];
const cells = rows.map((r) => [r.figure, r.ours, r.baseline, r.baselineIs, r.ratio]);
console.log(`\n${formatTable(headers, cells, align)}\n`);

const commit = (() => {
  try {
    const sha = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
    return dirty ? `${sha} (with uncommitted changes)` : sha;
  } catch {
    return "unknown";
  }
})();
const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), Node ${process.version}, load average ${load0.toFixed(2)} at start`;
const results = `# Benchmark results

Written by \`npm run bench\` (\`bench/run.ts\`). Every figure has a baseline measured in the same run;
ratio = meshlook ÷ baseline.

- date: ${startedAt.toISOString()}
- machine: ${machine}
- commit: ${commit}

${markdownTable(headers, cells, align)}

Per request means per sidecar observation (a request seen by both sidecars of a hop counts twice). Quantile
errors are relative to the exact nearest-rank quantile of the same latencies (ground truth of the traffic
generator); "worst series" is the largest error over the series with at least 500 requests.

## Details

${details.join("\n\n")}
`;
if (quick) {
  console.log(`--quick: smaller runs, no results file written (${machine}; commit ${commit})`);
} else {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, results);
  console.log(`written to ${relative(process.cwd(), out)} (${machine}; commit ${commit}); publish by copying it over bench/RESULTS.md`);
}
