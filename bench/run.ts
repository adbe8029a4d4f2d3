// `npm run bench`: every figure meshlook claims, each next to a baseline measured in the same run, and for
// each target of issue #19 the target and whether this run met it (and by how much), in one table; written
// with the machine and commit to bench/out/RESULTS.md (ignored by git, so a run leaves the tree clean; the
// published table is bench/RESULTS.md, updated by copying a run's file over it). Every other script under
// bench/ (the component benchmarks: codec, host floor, dashboard, …) runs too; their full output goes to
// the details.
//   npm run bench                        # everything, sized to run as one (20–30 minutes on 2 quiet cores)
//   npm run bench -- --full              # the long components at their own full sizes (about an hour, estimated)
//   npm run bench -- --out FILE          # write the results there instead
//   npm run bench -- --quick             # smaller runs of everything, a smoke test; writes no file
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { parseCommandLine } from "../scripts/args.ts";
import { formatTable, markdownTable, type Align } from "../sim/report.ts";
import { loadModule, NOOP_WASM } from "../test/filter/fixtures.ts";
import { measureFilterCost } from "./lib/filter-cost.ts";
import { attackStages, measureAttackMemory, measureSeriesMixes, MESHLOOK_UNFLUSHED } from "./lib/filter-scale.ts";
import { measureFreshness } from "./lib/freshness.ts";
import { measureIngest } from "./lib/ingest.ts";
import { measureLoadCycle } from "./lib/load-cycle.ts";
import { cpuWithChildrenSeconds } from "./lib/proc.ts";
import { atLeast, atMost, FIGURE_ONLY, judged } from "./lib/targets.ts";
import { measureScale, perMinutePerThousand } from "./lib/scale.ts";
import { mean, median } from "./lib/stats.ts";
import { measureWarehouseLoad, type LoadRun } from "./lib/warehouse-load.ts";
import { measureWire } from "./lib/wire.ts";

const ROOT = join(import.meta.dirname, "..");

/**
 * What each section runs by default: sized so that the whole table is one run of 20–30 minutes on 2 quiet
 * cores (each section's wall and CPU time is in the details).
 */
const ONE_RUN: Sizes = {
  filterCost: { requests: 10_000, rounds: 7 },
  seriesMixes: { requests: 20_000, rounds: 7 },
  attack: { windows: 6, callers: 100_000 },
  wireS: 60,
  ingest: { summaries: 2000, rounds: 5, warmup: 2000 },
  warehouse: { summaries: 400, rounds: 5 },
  // 10,000 sidecars' 900 s cycle is 900,000 summaries: its one minute of traffic stands for it here.
  loadCycle: [
    { sidecars: [100, 1000], intervalS: 900 },
    { sidecars: [10_000], intervalS: 60 },
  ],
  scale: { sidecars: [100, 1000], minutes: undefined },
  freshnessProbes: 3,
  others: {
    "dashboard.ts": { args: ["--series", "1000"] },
    "filter.ts": { args: ["wire", "collisions"] },
    "outliers.ts": { args: ["--quick"] },
  },
};

const SIZES: Record<"quick" | "run" | "full", Sizes> = {
  /** A smoke test of every section. */
  quick: {
    filterCost: { requests: 3000, rounds: 3 },
    seriesMixes: { requests: 5000, rounds: 3 },
    attack: { windows: 2, callers: 20_000 },
    wireS: 30,
    ingest: { summaries: 300, rounds: 3, warmup: 300 },
    warehouse: { summaries: 100, rounds: 2 },
    loadCycle: [{ sidecars: [20], intervalS: 60 }],
    scale: { sidecars: [20], minutes: 1 },
    freshnessProbes: 1,
    others: {
      "dashboard.ts": { args: ["--series", "100"] },
      "filter.ts": { args: ["wire", "collisions"], env: { BENCH_ROUNDS: "3" } },
      "host-floor.ts": { env: { HOST_FLOOR_RUNS: "3", HOST_FLOOR_STREAMS: "10000" } },
      "load-latency.ts": { env: { BENCH_SUMMARIES: "200" } },
      "outliers.ts": { args: ["--quick", "--cost-only"] },
      "remote-write.ts": { env: { BENCH_SERIES: "1000", PROMETHEUS_BIN: "none" } },
    },
  },
  run: ONE_RUN,
  /** The long components at the sizes they run at alone. */
  full: {
    ...ONE_RUN,
    loadCycle: [{ sidecars: [100, 1000, 10_000], intervalS: 900 }],
    scale: { sidecars: [100, 1000, 10_000], minutes: undefined },
    others: { "filter.ts": ONE_RUN.others["filter.ts"] },
  },
};

interface Sizes {
  filterCost: { requests: number; rounds: number };
  seriesMixes: { requests: number; rounds: number };
  attack: { windows: number; callers: number };
  wireS: number;
  ingest: { summaries: number; rounds: number; warmup: number };
  warehouse: { summaries: number; rounds: number };
  loadCycle: { sidecars: number[]; intervalS: number }[];
  scale: { sidecars: number[]; minutes: number | undefined };
  freshnessProbes: number;
  /** Arguments and environment for the other scripts under bench/, by file name (unlisted: none). */
  others: Record<string, { args?: string[]; env?: Record<string, string> }>;
}

const USAGE = `usage: npm run bench -- [--quick | --full] [--out FILE]
  --quick  smaller runs of everything, a smoke test; writes no file
  --full   the scale, load-cycle, dashboard, outlier and remote-write benchmarks at their own full sizes
  --out    where the results go (default bench/out/RESULTS.md, ignored by git; bench/RESULTS.md is the published copy)`;
const { values } = parseCommandLine(USAGE, {
  quick: { type: "boolean" },
  full: { type: "boolean" },
  out: { type: "string", default: join(ROOT, "bench", "out", "RESULTS.md") },
});
const quick = values.quick === true;
if (quick && values.full === true) throw new Error("--quick and --full exclude each other");
const size = SIZES[quick ? "quick" : values.full === true ? "full" : "run"];
const out = resolve(values.out!);

interface Row {
  figure: string;
  ours: string;
  baseline: string;
  baselineIs: string;
  ratio: string;
  /** Issue #19's target for this figure and this run's verdict on it; "-" where #19 sets none. */
  target?: string;
  verdict?: string;
}

const rows: Row[] = [];
const details: string[] = [];
/** Wall time and CPU time (this process and the benchmarks it ran) of each section, for the details and for sizing the run. */
const timings: string[] = [];
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "-");
const ratio = (ours: number, baseline: number) => {
  if (baseline === 0 || ours < 0) return "-";
  const r = ours / baseline;
  return r < 0.1 ? `${fmt(r, 4)}× (1/${fmt(1 / r)})` : `${fmt(r, 2)}×`;
};
const pct = (x: number) => `${fmt(100 * x, 2)} %`;
const signed = (n: number) => (n >= 0 ? `+${fmt(n)}` : `−${fmt(-n)}`);
/** "min..max" of per-round differences. */
const signedSpread = (xs: readonly number[]) => `${signed(Math.min(...xs))}..${signed(Math.max(...xs))}`;

/** Runs one benchmark; a failure becomes a row saying so instead of ending the whole run. */
async function section(name: string, body: () => Promise<void>) {
  const t0 = performance.now();
  const cpu0 = cpuWithChildrenSeconds();
  process.stderr.write(`bench: ${name} …`);
  const took = () => {
    const wallS = (performance.now() - t0) / 1000;
    const cpuS = cpuWithChildrenSeconds() - cpu0;
    timings.push(`${name} ${wallS.toFixed(0)} s (${cpuS.toFixed(0)} CPU-s)`);
    return `${wallS.toFixed(1)} s, ${cpuS.toFixed(1)} CPU-s`;
  };
  try {
    await body();
    process.stderr.write(` ${took()}\n`);
  } catch (err) {
    // The whole error here too: --quick writes no details, and a smoke test that fails must say why.
    process.stderr.write(` FAILED after ${took()}\n${(err as Error).stack ?? err}\n`);
    const message = (err as Error).message.split("\n")[0];
    rows.push({ figure: name, ours: "failed", baseline: "-", baselineIs: message.slice(0, 120), ratio: "-", target: "-", verdict: "failed" });
    details.push(`### ${name}: failed\n\n\`\`\`\n${(err as Error).stack ?? message}\n\`\`\``);
  }
}

async function script(file: string, args: string[] = [], env: Record<string, string> = {}) {
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", join(ROOT, file), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    maxBuffer: 16 << 20,
  });
  const how = [...Object.entries(env).map(([k, v]) => `${k}=${v}`), "npx tsx", file, ...args].join(" ");
  details.push(`### \`${file}\`\n\n\`${how}\`\n\n\`\`\`\n${stdout.trimEnd()}\n\`\`\``);
}

const startedAt = new Date();
// Read before the run: a commit made while it runs (it takes half an hour) must not be credited with its figures.
const commit = (() => {
  try {
    const sha = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, encoding: "utf8" }).trim() !== "";
    return dirty ? `${sha} (with uncommitted changes)` : sha;
  } catch {
    return "unknown";
  }
})();
/** From the filter-cost run, for the wire-bytes comparison. */
let accessLogLineBytes = NaN;
const load0 = loadavg()[0];

await section("filter cost", async () => {
  // Every request on a new connection is the worst case for the filter's per-connection fact cache;
  // keep-alive (HTTP/1.1) and HTTP/2 meshes put many requests on one connection. #19: at most 1 µs over
  // the do-nothing filter on a new connection per request, nothing over it on keep-alive.
  for (const [perConnection, limitNs] of [
    [1, 1000],
    [10, 0],
  ]) {
    const c = await measureFilterCost(size.filterCost.requests, size.filterCost.rounds, perConnection);
    const streams = perConnection === 1 ? "bookinfo, a new connection per request" : `bookinfo, ${perConnection} requests per connection`;
    const added = median(c.addedRounds);
    rows.push({
      figure: `filter CPU ns/request added over the no-op (${streams}; median, min..max of rounds)`,
      ours: `${signed(added)} (${signedSpread(c.addedRounds)})`,
      baseline: fmt(c.noopNs),
      baselineIs: "do-nothing proxy-runtime filter (meshlook itself: " + fmt(c.meshlookNs) + ")",
      ratio: ratio(c.meshlookNs, c.noopNs),
      ...judged(atMost(added, limitNs, (n) => `${fmt(n)} ns`)),
    });
    rows.push({
      figure: `filter CPU ns/request added over the no-op (${streams}; difference of the medians)`,
      ours: signed(c.meshlookNs - c.noopNs),
      baseline: signed(c.accessLogNs - c.noopNs),
      baselineIs: "access-log filter: one JSON line per request to the host",
      ratio: ratio(c.meshlookNs - c.noopNs, c.accessLogNs - c.noopNs),
    });
    details.push(
      `### filter cost (${streams})\n\n${c.streams} streams × ${c.rounds} rounds, median CPU time per stream: no-op ${fmt(c.noopNs)} ns, meshlook ${fmt(c.meshlookNs)} ns, ` +
        `access log ${fmt(c.accessLogNs)} ns per stream; meshlook − no-op per round: ${c.addedRounds.map((x) => signed(x)).join(", ")} ns. ` +
        `Sample access-log line (${fmt(c.accessLogLineBytes)} bytes on average):\n\n\`\`\`json\n${c.accessLogSample}\n\`\`\``,
    );
    if (perConnection === 1) accessLogLineBytes = c.accessLogLineBytes;
  }
});

await section("filter at 100, 2,000 and overflowing series", async () => {
  const [meshlook, noop] = [await loadModule(), await loadModule(NOOP_WASM)];
  const { requests, rounds } = size.seriesMixes;
  const mixes = await measureSeriesMixes(
    [
      { wasm: noop, rootId: "noop", config: {} },
      { wasm: meshlook, rootId: "meshlook", config: MESHLOOK_UNFLUSHED },
    ],
    requests,
    rounds,
  );
  const lines: string[] = [];
  for (const m of mixes) {
    const [noopNs, meshNs] = m.ns.map(median);
    const added = m.ns[1].map((t, r) => t - m.ns[0][r]);
    rows.push({
      figure: `filter CPU ns/request added over the no-op (${m.label}; median, min..max of rounds)`,
      ours: `${signed(median(added))} (${signedSpread(added)})`,
      baseline: fmt(noopNs),
      baselineIs: `do-nothing proxy-runtime filter (meshlook itself: ${fmt(meshNs)})`,
      ratio: ratio(meshNs, noopNs),
      ...FIGURE_ONLY,
    });
    rows.push({
      figure: `filter linear memory KiB per VM (${m.label}, after the rounds)`,
      ours: fmt(m.afterBytes[1] / 1024),
      baseline: fmt(m.configuredBytes[1] / 1024),
      baselineIs: "the same VM right after configure, before traffic",
      ratio: ratio(m.afterBytes[1], m.configuredBytes[1]),
      ...judged(atMost(m.afterBytes[1] / 1024, 4096, (n) => `${fmt(n)} KiB`)),
    });
    lines.push(
      `| ${m.label} | ${m.ns[0].map(fmt).join(", ")} | ${m.ns[1].map(fmt).join(", ")} | ${fmt(m.configuredBytes[0] / 1024)} → ${fmt(m.afterBytes[0] / 1024)} | ${fmt(m.configuredBytes[1] / 1024)} → ${fmt(m.afterBytes[1] / 1024)} |`,
    );
  }
  details.push(
    `### filter at 100, 2,000 and overflowing series\n\n${fmt(requests)} synthetic streams per round (each caller on a connection of its own), ${rounds} rounds after a warm-up, ` +
      `the two filters interleaved in every round; CPU ns per stream of each round, and each VM's linear memory (KiB) right after configure → after the rounds:\n\n` +
      `| callers | no-op ns | meshlook ns | no-op KiB | meshlook KiB |\n|---|---|---|---:|---:|\n${lines.join("\n")}`,
  );
});

await section("filter memory under a cardinality attack", async () => {
  const m = await measureAttackMemory(await loadModule(), size.attack.windows, size.attack.callers);
  const kib = (b: number) => b / 1024;
  const windows = `after each of ${m.windows.length} flushed windows of ${fmt(m.callersPerWindow)} new callers`;
  for (const [key, collector] of [
    ["upBytes", "collector acknowledging"],
    ["refusingBytes", "collector refusing (503), outbox full"],
  ] as const) {
    const most = Math.max(...[m.atCap, m.flushed, ...m.windows].map((s) => s[key]));
    // Flat: no window takes the VM above what it held at the cap.
    const grown = Math.max(...m.windows.map((s) => s[key])) - Math.max(m.atCap[key], m.flushed[key]);
    rows.push({
      figure: `filter linear memory KiB per VM, largest at the 2,000-series cap and ${windows} (${collector})`,
      ours: `${fmt(kib(most))} (cap ${fmt(kib(m.atCap[key]))}, flushed ${fmt(kib(m.flushed[key]))}, windows ${m.windows.map((w) => fmt(kib(w[key]))).join(", ")})`,
      baseline: fmt(kib(m.configured[key])),
      baselineIs: "the same VM right after configure (default configuration), before traffic",
      ratio: ratio(most, m.configured[key]),
      ...judged(
        atMost(kib(most), 4096, (n) => `${fmt(n)} KiB`),
        atMost(kib(grown), 0, (n) => `${fmt(n)} KiB`, "growth over the cap "),
      ),
    });
  }
  details.push(
    `### filter memory under a cardinality attack\n\nLinear memory of one VM, KiB (default configuration; 10 s windows, each flushed: the encoder's and outbox's buffers count). ` +
      `A plugin update at the cap holds two root contexts for a moment (Envoy starts the new one before the replaced one stops), outside the target.\n\n` +
      `| stage | collector up | refusing (503) |\n|---|---:|---:|\n${attackStages(m)
        .map((s) => `| ${s.label} | ${fmt(kib(s.upBytes))} | ${fmt(kib(s.refusingBytes))} |`)
        .join("\n")}`,
  );
});

await section("wire bytes and quantile error", async () => {
  const w = await measureWire({ rps: 1000, durationS: size.wireS });
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
    `### wire bytes and quantile error\n\nbookinfo at 1000 req/s for ${size.wireS} s simulated, 2 VMs per sidecar: ${fmt(w.requests)} requests, ` +
      `${fmt(w.observations)} sidecar observations; ${w.summaries} summaries, ${fmt(w.meshlookBytes)} bytes. Prometheus: ${w.scrapes} scrapes, ` +
      `${fmt(w.prometheusBytes)} bytes (${fmt(w.prometheusGzipBytes)} gzip). Quantile errors over ${w.seriesCompared} series with ≥ 500 requests ` +
      `(mean meshlook / Envoy buckets): ${w.quantileError.map((e) => `p${e.q * 100} ${pct(e.meshlookMean)} / ${pct(e.envoyMean)}`).join(", ")}. ` +
      `The access-log line size is the mean over the bookinfo streams of the filter-cost run.`,
  );
});

await section("collector ingest", async () => {
  const i = await measureIngest(size.ingest.summaries, size.ingest.rounds, size.ingest.warmup);
  const range = (text: string, digits = 0) =>
    text
      .split("–")
      .map((x) => fmt(Number(x), digits))
      .join("–");
  rows.push({
    figure: "collector ingest series-updates per CPU-s, ingest + load (median, min–max of rounds)",
    ours: `${fmt(i.seriesUpdatesPerCpuS)} (${range(i.seriesUpdatesSpread)})`,
    baseline: `${fmt(i.decodeOnlyPerCpuS)} (${range(i.decodeOnlySpread)})`,
    baselineIs: "decoding the same summaries only (same run); ratio: median of the rounds' ratios",
    ratio: `${fmt(i.decodeOnlyRatio, 2)}× (${range(i.decodeOnlyRatioSpread, 2)})`,
    ...judged(
      atLeast(i.seriesUpdatesPerCpuS, 400_000, (n) => fmt(n)),
      atLeast(i.decodeOnlyRatio, 0.8, (n) => `${fmt(n, 2)}×`),
    ),
  });
  details.push(`### \`bench/ingest.ts\`\n\n\`\`\`\n${i.output.trimEnd()}\n\`\`\``);
});

await section("warehouse load", async () => {
  const l = await measureWarehouseLoad(size.warehouse);
  const rate = (run: LoadRun) => `${fmt(median(run.rowsPerS))} (${fmt(Math.min(...run.rowsPerS))}–${fmt(Math.max(...run.rowsPerS))})`;
  const cpu = (run: LoadRun) => `${fmt(median(run.cpuMs))} ms (${fmt(Math.min(...run.cpuMs))}–${fmt(Math.max(...run.cpuMs))})`;
  const roundRatios = (xs: number[], byCpu: number[]) => `${fmt(median(xs), 2)}× (${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)}); ${fmt(median(byCpu), 2)}× by CPU`;
  const bare = "bare appender: the same rows by column type, same table, one transaction per cycle (no ledger, rollup, row building)";
  rows.push(
    {
      figure: "warehouse load rows/s (DuckDB, load cycle; median, min–max of rounds)",
      ours: rate(l.cycle),
      baseline: rate(l.appender),
      baselineIs: bare,
      ratio: roundRatios(l.cycleRatio, l.cycleCpuRatio),
      ...judged(atLeast(median(l.cycleRatio), 0.8, (n) => `${fmt(n, 2)}×`)),
    },
    {
      figure: "warehouse load rows/s (DuckDB, replay: rollup in the load; median, min–max of rounds)",
      ours: rate(l.replay),
      baseline: rate(l.appender),
      baselineIs: bare,
      ratio: roundRatios(l.replayRatio, l.replayCpuRatio),
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
  // One cycle per sidecar count on each sink.
  for (const { sidecars, intervalS } of size.loadCycle) {
    const { cycles, output } = await measureLoadCycle({ sidecars, intervalS });
    details.push(`### \`bench/load-cycle.ts\` (${sidecars.join(", ")} sidecars, ${intervalS} s cycles)\n\n${output}`);
    for (const c of cycles) {
      const n = c.sidecars.toLocaleString("en-US");
      rows.push({
        figure: `Snowflake credits/day, a load cycle every ${intervalS} s (${n} sidecars)`,
        ours: fmt(c.creditsPerDay, 2),
        baseline: "24",
        baselineIs: "X-Small warehouse that never suspends (1 credit an hour; a price, not measured)",
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
  }
});

await section("scale", async () => {
  // A simulated mesh posting to collector processes at its arrival rate.
  const { runs, output } = await measureScale(size.scale);
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
      ...FIGURE_ONLY,
    });
    rows.push({
      figure: `collector CPU-s per simulated minute per 1,000 sidecars, ingest + load, Snowflake stand-in, 2 replicas (${mesh})`,
      ours: fmt(perK(snowflake), 2),
      baseline: fmt(perK(duckdb), 2),
      baselineIs: "the same mesh into DuckDB, one collector (same run)",
      ratio: ratio(snowflake.cpuS, duckdb.cpuS),
      ...FIGURE_ONLY,
    });
    for (const r of [duckdb, snowflake]) {
      rows.push({
        figure: `collector peak RSS MiB, ${r.sink === "duckdb" ? "DuckDB" : "Snowflake stand-in, largest of 2 replicas"} (${mesh})`,
        ours: fmt(r.peakRssMiB),
        baseline: fmt(r.idleRssMiB),
        baselineIs: "the same collector idle, before traffic",
        ratio: ratio(r.peakRssMiB, r.idleRssMiB),
        ...FIGURE_ONLY,
      });
    }
  }
  details.push(`### \`bench/scale.ts\`\n\n${output}`);
});

await section("freshness", async () => {
  const f = await measureFreshness(size.freshnessProbes);
  rows.push({
    figure: "freshness: request → queryable, s",
    ours: fmt(mean(f.queryableS), 1),
    baseline: fmt(mean(f.acknowledgedS), 1),
    baselineIs: "request → summary acknowledged (spooled); defaults: 10 s flush, 10 s load",
    ratio: ratio(mean(f.queryableS), mean(f.acknowledgedS)),
  });
  details.push(
    `### freshness\n\nReal time, default settings; each probe from a sidecar of its own, the sidecars started 1/${size.freshnessProbes} of the 10 s interval apart so that the probes meet the flush and load timers at different phases, all sent at once. Request → queryable: ${f.queryableS.map((s) => s.toFixed(1)).join(", ")} s; ` +
      `request → acknowledged: ${f.acknowledgedS.map((s) => s.toFixed(1)).join(", ")} s.`,
  );
});

// Every other benchmark script under bench/, at the size of this run, printed in full in the details.
const ranAbove = new Set(["run.ts", "ingest.ts", "load-cycle.ts", "scale.ts"]);
const others = readdirSync(join(ROOT, "bench"))
  .filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && !ranAbove.has(f))
  .sort();
for (const f of others) await section(`bench/${f}`, () => script(`bench/${f}`, size.others[f]?.args, size.others[f]?.env));

const headers = ["figure", "meshlook", "baseline", "baseline is", "ratio", "target (#19)", "verdict"];
const align: Align[] = ["left", "right", "right", "left", "right", "left", "left"];
const cells = rows.map((r) => [r.figure, r.ours, r.baseline, r.baselineIs, r.ratio, r.target ?? "-", r.verdict ?? "-"]);
console.log(`\n${formatTable(headers, cells, align)}\n`);

const machine = `${cpus().length} cores (${cpus()[0]?.model.trim() ?? "unknown CPU"}), Node ${process.version}, load average ${load0.toFixed(2)} at start, ${loadavg()[0].toFixed(2)} at the end`;
const results = `# Benchmark results

Written by \`npm run bench\` (\`bench/run.ts\`). Every figure has a baseline measured in the same run
(the Snowflake credits' baseline is a price: an X-Small that never suspends); ratio = meshlook ÷ baseline. Where issue #19 sets a target on a figure, the target column gives it and the
verdict says whether this run met it and by how much (MISSED by how much it fell short); "figure asked for,
no bound" marks figures #19 asks for without a bound.

- date: ${startedAt.toISOString()}
- machine: ${machine}
- commit: ${commit}

${markdownTable(headers, cells, align)}

Per request means per sidecar observation (a request seen by both sidecars of a hop counts twice). Quantile
errors are relative to the exact nearest-rank quantile of the same latencies (ground truth of the traffic
generator); "worst series" is the largest error over the series with at least 500 requests.

## Details

Wall time of each section, and the CPU time of this process and the benchmark processes it ran (${quick ? "--quick" : values.full === true ? "--full" : "default sizes"}): ${timings.join("; ")}.

${details.join("\n\n")}
`;
if (quick) {
  console.log(`--quick: smaller runs, no results file written (${machine}; commit ${commit})`);
} else {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, results);
  console.log(`written to ${relative(process.cwd(), out)} (${machine}; commit ${commit}); publish by copying it over bench/RESULTS.md`);
}
