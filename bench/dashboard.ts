// Dashboard load time at a real mesh's scale: one day of traffic at 1,000 and 10,000 series in the embedded
// DuckDB warehouse, and the time each board of /ui takes to get every answer it needs from the read API (the
// very requests ui/boards.js makes, in parallel as the browser sends them, plus the page's filter pickers),
// cold (first load after a warehouse load) and warm (answered from the collector's cache until the next load).
//
// The day is built by replication: simulated traffic (the LookML check's mixed mesh) gives a few minutes of
// real rows and sketches; those minutes are repeated over 24 hours, and the series are copied under new
// workload names until the target count is reached, written hour by hour as loads write them. The first hour
// of the first copy is compacted by the sink's own SQL (collector/sink/hourly.ts) and pre-aggregated by the
// read API's own stage (collector/read/board-rollup.ts); those rows are copied the same way, so they match the
// minute rows exactly as live runs would.
// Baselines, same process: a plain scan of the day's minute rows, and at ~1k series the golden-signals board
// with the pre-aggregate emptied (every question on minute rows and JSON sketches). Then the post-load cost:
// one minute of every series loaded through the real sink, the pre-aggregate's merge after it, and one run
// rebuilding a stale hour of the pre-aggregate (a run rebuilds more only within its time budget).
//   npx tsx bench/dashboard.ts [--series 1000,10000] [--merge-only]
import Fastify from "fastify";
import { cpus, loadavg } from "node:os";
import { readRoutes } from "../collector/read/routes.ts";
import { ReadWarehouse } from "../collector/read/warehouse.ts";
import { HOURLY_SQL } from "../collector/sink/hourly.ts";
import { BoardRollup } from "../collector/read/board-rollup.ts";
import { DEFAULT_SCALE, SeriesStats } from "../shared/node.ts";
import { BOARD_HOUR_TABLE, BOARD_MINUTE_TABLE, DIMENSIONS, FACT_TABLE, HOUR_TABLE, type Table } from "../shared/schema.ts";
import type { SeriesDims } from "../sim/traffic/series.ts";
import { formatTable } from "../sim/report.ts";
import { usageSeconds } from "./lib/proc.ts";
import { mean, median, spread } from "./lib/stats.ts";
import { loadWarehouse, minuteSummary, type Warehouse } from "../test/looker/warehouse.ts";
import { boardRequests } from "../ui/boards.js";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const arg = process.argv.indexOf("--series");
const SERIES = arg > 0 ? process.argv[arg + 1].split(",").map(Number) : [1000, 10_000];
/** Only the post-load cost (no board timings, no rebuild): for comparing the stage's versions. */
const MERGE_ONLY = process.argv.includes("--merge-only");
/** Eight: with an hour compacted after every 4 merges, two of the timed rounds compact, as one load in 4 does. */
const MERGE_ROUNDS = 8;

const secs = (ms: number) => (ms / 1000).toFixed(2);
const iso = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");

/**
 * Replaces the warehouse's tables with one day of `target` series built from its own few minutes, written
 * hour by hour as loads write them (so the minute table's row groups follow time, as in production).
 */
async function buildDay(w: Warehouse, target: number): Promise<{ dayStart: number; series: number; minuteRows: number; hourRows: number; rollup: BoardRollup }> {
  const c = w.sink.connection;
  const q = async (sql: string, params: (string | number)[] = []) => (await c.runAndReadAll(sql, params)).getRowObjectsJS();
  const [t] = await q(`SELECT epoch_ms(MIN(minute)) AS first, epoch_ms(MAX(minute)) AS last, COUNT(DISTINCT (${DIMENSIONS.join(", ")})) AS series FROM ${FACT_TABLE.name}`);
  const first = Number(t.first);
  const minutes = (Number(t.last) - first) / MINUTE + 1;
  const copies = Math.max(1, Math.round(target / Number(t.series)));
  const dayStart = Math.floor(first / DAY) * DAY;
  const others = FACT_TABLE.columns.map((col) => col.name).filter((n) => n !== "minute");
  await c.run(`CREATE TEMP TABLE template AS SELECT * FROM ${FACT_TABLE.name}`);
  await c.run(`DELETE FROM ${HOUR_TABLE.name}`);
  await c.run(`DELETE FROM ${FACT_TABLE.name}`);
  // Copies 1…n-1 are the same rows under other workload names, hence other series.
  const renamed = (cols: string[], copy: string) =>
    cols.map((n) => (n === "destination_workload" || n === "source_workload" ? `CASE WHEN ${copy} = 0 THEN ${n} ELSE ${n} || '-c' || ${copy} END AS ${n}` : n)).join(", ");
  // The template's minutes repeated over an hour, `copy` 0 or all of them.
  const insertHour = (h: number, copiesSql: string) =>
    c.run(
      `INSERT INTO ${FACT_TABLE.name} SELECT CAST(? AS TIMESTAMP) + to_minutes(d) AS minute, ${renamed(others, "k")} FROM template ` +
        `JOIN range(0, 60) AS r(d) ON d % ${minutes} = (epoch_ms(template.minute) - ${first}) // ${MINUTE}, ${copiesSql} ORDER BY minute`,
      [iso(dayStart + h * HOUR)],
    );
  // Every hour holds the same repeated minutes (60 is a multiple of the template's span), so the first
  // hour of copy 0 is compacted by the sink's own SQL and pre-aggregated by the read API's own stage, and
  // those rows stand for the other hours and copies, shifted and renamed.
  if (60 % minutes !== 0) throw new Error(`template spans ${minutes} minutes; needs a divisor of 60`);
  await insertHour(0, "(SELECT 0 AS k)");
  await c.run(HOURLY_SQL.insertHour, [iso(Date.now()), iso(dayStart), iso(dayStart + HOUR)]);
  const rollup = new BoardRollup(w.sink);
  await rollup.run();
  // Rows of hour 0 copied under copies' names (`copies` copies) and to later hours (`hours` hours).
  const shift = (table: Table, shifted: string[], copies: number, hours: number) => {
    const cols = table.columns.map((col) => col.name);
    const exprs = renamed(cols, "k")
      .split(", ")
      .map((e, i) => (shifted.includes(cols[i]) ? `${cols[i]} + to_hours(h) AS ${cols[i]}` : e));
    return c.run(
      `INSERT INTO ${table.name} SELECT ${exprs.join(", ")} FROM (SELECT * FROM ${table.name}) AS x, range(0, ${copies}) AS rk(k), range(0, ${hours}) AS rh(h) WHERE k > 0 OR h > 0`,
    );
  };
  await shift(HOUR_TABLE, ["hour"], copies, 1);
  await shift(BOARD_HOUR_TABLE, ["hour", "first_minute", "last_minute"], copies, 1);
  if (copies > 1) await insertHour(0, `range(1, ${copies}) AS rk(k)`);
  // mesh_board_minute merges the copies (they share its keys), so it cannot be copied from copy 0: the
  // stage's own rebuild makes hour 0 of it from all of hour 0's minute rows (the hour table already matches
  // them), and that stands for the other hours, shifted.
  const filled = await new BoardRollup(w.sink).run();
  if (filled.rebuilt !== (copies > 1 ? 1 : 0) || filled.waiting !== 0) throw new Error(`expected hour 0's per-minute rows rebuilt, got ${JSON.stringify(filled)}`);
  await shift(HOUR_TABLE, ["hour"], 1, 24);
  await shift(BOARD_HOUR_TABLE, ["hour", "first_minute", "last_minute"], 1, 24);
  await shift(BOARD_MINUTE_TABLE, ["minute"], 1, 24);
  for (let h = 1; h < 24; h++) await insertHour(h, `range(0, ${copies}) AS rk(k)`);
  await c.run("CHECKPOINT");
  const [n] = await q(
    `SELECT (SELECT COUNT(*) FROM ${FACT_TABLE.name}) AS minute_rows, (SELECT COUNT(*) FROM ${BOARD_HOUR_TABLE.name}) AS hour_rows, ` +
      `(SELECT COUNT(*) FROM (SELECT DISTINCT ${DIMENSIONS.join(", ")} FROM ${BOARD_HOUR_TABLE.name})) AS series`,
  );
  return { dayStart, series: Number(n.series), minuteRows: Number(n.minute_rows), hourRows: Number(n.hour_rows), rollup };
}

type Timing = { cold: number; coldCpu: number; warm: number; hourly: number };

async function timeBoards(w: Warehouse, nowMs: number, range: string, boards = ["golden", "identity", "graph"]): Promise<Record<string, Timing>> {
  const out: Record<string, Timing> = {};
  for (const board of boards) {
    // A fresh read warehouse per board: nothing cached, as after a new load.
    const warehouse = new ReadWarehouse(w.sink);
    const app = Fastify();
    await app.register(readRoutes, { access: { mode: "open" }, warehouse, now: () => nowMs });
    const state = { board, range, reporter: "destination", namespace: "", service: "", caller: "" };
    const urls = [
      ...new Set(Object.values(boardRequests(state, nowMs) as Record<string, string>)),
      // The page also fills its namespace and service pickers.
      `/api/v1/values?dimension=destination_namespace&from=${new Date(nowMs - DAY).toISOString()}`,
      `/api/v1/values?dimension=destination_service&from=${new Date(nowMs - DAY).toISOString()}`,
      ...(board === "identity" ? [`/api/v1/values?dimension=source_namespace&from=${new Date(nowMs - DAY).toISOString()}`] : []),
    ];
    const load = async () => {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const answers = await Promise.all(urls.map((url) => app.inject(url)));
      for (const a of answers) if (a.statusCode !== 200) throw new Error(`${a.statusCode} ${a.body}`);
      const cpu = process.cpuUsage(cpu0);
      return { ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, hourly: Math.max(0, ...answers.map((a) => a.json().hourly_hours ?? 0)) };
    };
    const cold = await load();
    const warm = await load();
    out[board] = { cold: cold.ms, coldCpu: cold.cpuMs, warm: warm.ms, hourly: cold.hourly };
    await app.close();
    await warehouse.close();
  }
  return out;
}

/**
 * The extra cost a load pays for the pre-aggregates: one more minute of every series loaded through the
 * real sink (wire-decoded summaries, ledger, rollup), then the post-load stage appending it to its hour and,
 * every few loads, compacting the hour. Minute 0 of the next hour is loaded untimed, then MERGE_ROUNDS
 * minutes each timed, so every timed merge meets rows already there, as every minute after an hour's first
 * does; each round's merge is divided by its own load (the same-process baseline). The mean over the rounds
 * is the cost per load with compaction spread over the loads.
 */
async function loadOverhead(
  w: Warehouse,
  rollup: BoardRollup,
  dayStart: number,
): Promise<{ loadS: number[]; rollupS: number[]; loadCpuS: number[]; rollupCpuS: number[]; checkpointCpuS: number[]; compacting: number[]; series: number }> {
  const rows = (
    await w.sink.connection.runAndReadAll(`SELECT DISTINCT ${DIMENSIONS.join(", ")} FROM ${BOARD_HOUR_TABLE.name} WHERE hour = CAST(? AS TIMESTAMP)`, [iso(dayStart)])
  ).getRowObjectsJS();
  const inputs = rows.map((r, i) => {
    const stats = new SeriesStats(DEFAULT_SCALE);
    for (let k = 0; k < 20; k++) stats.record(1000 + ((i * 7919 + k * 104729) % 250_000), 300, 1200, k === 0 && i % 10 === 0);
    return { dims: Object.fromEntries(DIMENSIONS.map((d) => [d, d === "response_code" ? Number(r[d]) : String(r[d])])) as unknown as SeriesDims, stats };
  });
  const out = {
    loadS: [] as number[],
    rollupS: [] as number[],
    loadCpuS: [] as number[],
    rollupCpuS: [] as number[],
    checkpointCpuS: [] as number[],
    compacting: [] as number[],
    series: inputs.length,
  };
  // DuckDB checkpoints on its own at the commit that takes the write-ahead log past 16 MB, which a load and a
  // merge at 10k series cross about every other round, landing a checkpoint of both in whichever commit
  // crossed it. Checkpointing before the load and before the merge, and timing the one after the merge
  // apart, compares what each writes rather than where the threshold fell.
  const checkpoint = async () => {
    const c = process.cpuUsage();
    await w.sink.connection.run("CHECKPOINT");
    return usageSeconds(process.cpuUsage(c));
  };
  for (let m = 0; m <= MERGE_ROUNDS; m++) {
    const minute = dayStart + DAY + m * MINUTE;
    const summaries = [];
    for (let i = 0; i * 1000 < inputs.length; i++) summaries.push(minuteSummary(`bench-${i}`, m + 1, minute, inputs.slice(i * 1000, (i + 1) * 1000)));
    await checkpoint();
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await w.sink.load(summaries);
    const loadS = (performance.now() - t0) / 1000;
    const loadCpuS = usageSeconds(process.cpuUsage(c0));
    await checkpoint();
    const t1 = performance.now();
    const c1 = process.cpuUsage();
    const report = await rollup.run();
    if (report.merged !== 1) throw new Error(`expected one hour merged, got ${JSON.stringify(report)}`);
    const rollupS = (performance.now() - t1) / 1000;
    const rollupCpuS = usageSeconds(process.cpuUsage(c1));
    const checkpointCpuS = await checkpoint();
    if (m === 0) continue;
    out.loadS.push(loadS);
    out.rollupS.push(rollupS);
    out.loadCpuS.push(loadCpuS);
    out.rollupCpuS.push(rollupCpuS);
    out.checkpointCpuS.push(checkpointCpuS);
    if (report.compacted > 0) out.compacting.push(out.rollupCpuS.length - 1);
  }
  return out;
}

/**
 * What a stale hour costs the post-load stage (first start after an upgrade, a replica's clock behind): one
 * whole hour's pre-aggregate rows deleted, then one run, which counts every hour and rebuilds that one from
 * its minute rows. A run goes on to further stale hours only while within its time budget (5 s), so a backlog
 * adds at most about the budget plus one such hour to a cycle.
 */
async function rebuildOverhead(w: Warehouse, rollup: BoardRollup, hourMs: number): Promise<number> {
  await w.sink.connection.run(`DELETE FROM ${BOARD_HOUR_TABLE.name} WHERE hour = CAST(? AS TIMESTAMP)`, [iso(hourMs)]);
  const t0 = performance.now();
  const report = await rollup.run();
  if (report.rebuilt !== 1 || report.waiting !== 0) throw new Error(`expected one hour rebuilt, got ${JSON.stringify(report)}`);
  return (performance.now() - t0) / 1000;
}

/** The old path for comparison: the same board with both pre-aggregates emptied (every question on minute rows). */
async function withoutPreaggregate<T>(w: Warehouse, body: () => Promise<T>): Promise<T> {
  const c = w.sink.connection;
  for (const t of [BOARD_HOUR_TABLE, BOARD_MINUTE_TABLE]) {
    await c.run(`CREATE TEMP TABLE saved_${t.name} AS SELECT * FROM ${t.name}`);
    await c.run(`DELETE FROM ${t.name}`);
  }
  try {
    return await body();
  } finally {
    for (const t of [BOARD_HOUR_TABLE, BOARD_MINUTE_TABLE]) {
      await c.run(`INSERT INTO ${t.name} SELECT * FROM saved_${t.name}`);
      await c.run(`DROP TABLE saved_${t.name}`);
    }
  }
}

const rows: string[][] = [];
const notes: string[] = [];
for (const target of SERIES) {
  const w = await loadWarehouse({ requests: 3_000, requestsPerSecond: 50, seed: "dashboard-bench" });
  try {
    const t0 = performance.now();
    const day = await buildDay(w, target);
    console.log(
      `${target} series: built ${day.series} series, ${day.minuteRows.toLocaleString()} minute rows, ${day.hourRows.toLocaleString()} pre-aggregate rows in ${secs(performance.now() - t0)} s`,
    );
    const nowMs = day.dayStart + DAY;
    const row = (range: string, board: string, f: Timing, path = "pre-aggregate") =>
      rows.push([String(day.series), day.minuteRows.toLocaleString(), range, board, path, secs(f.cold), secs(f.coldCpu), secs(f.warm), String(f.hourly)]);
    for (const range of MERGE_ONLY ? [] : ["24h", "1h"]) for (const [board, f] of Object.entries(await timeBoards(w, nowMs, range))) row(range, board, f);
    // Baseline, same process: a plain scan of the day's minute rows (SUM of two counters), the least any
    // question over minute rows costs.
    const s0 = performance.now();
    await w.sink.connection.runAndReadAll(
      `SELECT SUM(requests), SUM(errors) FROM ${FACT_TABLE.name} WHERE reporter = 'destination' AND minute >= CAST(? AS TIMESTAMP) AND minute < CAST(? AS TIMESTAMP)`,
      [iso(day.dayStart), iso(nowMs)],
    );
    notes.push(`${day.series} series: plain scan of the day's minute rows (SUM of two counters) ${secs(performance.now() - s0)} s`);
    // Without the pre-aggregate (minute rows and JSON sketches) for one board at ~1k series; at 10k it takes minutes.
    if (target <= 1000 && !MERGE_ONLY) {
      const old = await withoutPreaggregate(w, () => timeBoards(w, nowMs, "24h", ["golden"]));
      row("24h", "golden", old.golden, "minute rows only");
    }
    const o = await loadOverhead(w, day.rollup, day.dayStart);
    const ratios = o.rollupS.map((r, i) => r / o.loadS[i]);
    const cpuRatios = o.rollupCpuS.map((r, i) => r / o.loadCpuS[i]);
    notes.push(
      `${o.series} series, median of ${MERGE_ROUNDS} rounds (min..max): one minute loaded through the sink ${median(o.loadS).toFixed(2)} s (${spread(o.loadS, 2)}), ` +
        `pre-aggregate merge after it ${median(o.rollupS).toFixed(2)} s (${spread(o.rollupS, 2)}), ratio ${median(ratios).toFixed(2)}× (${spread(ratios, 2)}); ` +
        `by CPU time ${median(o.loadCpuS).toFixed(2)} s and ${median(o.rollupCpuS).toFixed(2)} s, ratio ${median(cpuRatios).toFixed(2)}× (${spread(cpuRatios, 2)}); ` +
        `mean per load by CPU time ${mean(o.loadCpuS).toFixed(2)} s and ${mean(o.rollupCpuS).toFixed(2)} s, ratio ${(mean(o.rollupCpuS) / mean(o.loadCpuS)).toFixed(2)}×; ` +
        `checkpoint after the merge ${median(o.checkpointCpuS).toFixed(2)} s CPU (${spread(o.checkpointCpuS, 2)}), mean ${mean(o.checkpointCpuS).toFixed(2)} s; ` +
        `rounds that compacted: ${o.compacting.length ? o.compacting.map((i) => `${o.rollupCpuS[i].toFixed(2)} s CPU`).join(", ") : "none"}`,
    );
    if (MERGE_ONLY) {
      day.rollup.close();
      continue;
    }
    const rebuildS = await rebuildOverhead(w, day.rollup, day.dayStart + 12 * HOUR);
    notes.push(
      `${o.series} series: one stale hour rebuilt by the pre-aggregate's run ${secs(rebuildS * 1000)} s (ratio ${(rebuildS / median(o.loadS)).toFixed(2)}× the median minute load)`,
    );
    day.rollup.close();
  } finally {
    await w.close();
  }
}
console.log(
  formatTable(["series", "minute rows", "range", "board", "read from", "cold s", "cold CPU s", "warm s", "hours pre-aggregated"], rows, [
    "right",
    "right",
    "left",
    "left",
    "left",
    "right",
    "right",
    "right",
    "right",
  ]),
);
// The machine may be shared: CPU seconds (all threads of this process) say what a load costs when wall time
// is inflated by other work; the load average says how much other work there was.
console.log(
  `load average at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(" ")} on ${cpus().length} CPUs`,
);
for (const n of notes) console.log(n);
