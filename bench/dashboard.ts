// Dashboard load time at a real mesh's scale: one day of traffic at 1,000 and 10,000 series in the embedded
// DuckDB warehouse, and the time each board of /ui takes to get every answer it needs from the read API (the
// very requests ui/boards.js makes, in parallel as the browser sends them), cold (first load after a
// warehouse load) and warm (answered from the collector's cache until the next load).
//
// The day is built by replication: simulated traffic (the LookML check's mixed mesh) gives a few minutes of
// real rows and sketches; those minutes are repeated over 24 hours, and the series are copied under new
// workload names until the target count is reached. Hourly rows are compacted from the first copy with the
// sink's own compaction SQL (collector/sink/hourly.ts) and copied the same way, so they match the minute rows
// exactly as a live compaction would.
// Baseline, same process: the p99 tile computed as the LookML measure does it, MESH_QUANTILE over every
// minute row of the day (1k series only; at 10k it takes minutes, which is the point).
//   npx tsx bench/dashboard.ts [--series 1000,10000]
import Fastify from "fastify";
import { cpus, loadavg } from "node:os";
import { readRoutes } from "../collector/read/routes.ts";
import { ReadWarehouse } from "../collector/read/warehouse.ts";
import { HOURLY_SQL } from "../collector/sink/hourly.ts";
import { DIMENSIONS, FACT_TABLE, HOUR_TABLE } from "../shared/schema.ts";
import { formatTable } from "../sim/report.ts";
import { loadWarehouse, type Warehouse } from "../test/looker/warehouse.ts";
import { boardRequests } from "../ui/boards.js";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const arg = process.argv.indexOf("--series");
const SERIES = arg > 0 ? process.argv[arg + 1].split(",").map(Number) : [1000, 10_000];

const secs = (ms: number) => (ms / 1000).toFixed(2);
const iso = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");

/** Replaces the warehouse's tables with one day of `target` series built from its own few minutes. */
async function buildDay(w: Warehouse, target: number): Promise<{ dayStart: number; series: number; minuteRows: number; hourRows: number }> {
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
  // Copy 0: the template's minutes repeated over the day.
  await c.run(
    `INSERT INTO ${FACT_TABLE.name} SELECT CAST(? AS TIMESTAMP) + to_minutes(d) AS minute, ${others.join(", ")} FROM template ` +
      `JOIN range(0, 1440) AS r(d) ON d % ${minutes} = (epoch_ms(template.minute) - ${first}) // ${MINUTE}`,
    [iso(dayStart)],
  );
  // Every hour holds the same repeated minutes (60 is a multiple of the template's span), so the first
  // hour is compacted by the sink's own SQL and its rows stand for the other 23, shifted.
  if (60 % minutes !== 0) throw new Error(`template spans ${minutes} minutes; needs a divisor of 60`);
  await c.run(HOURLY_SQL.insertHour, [iso(Date.now()), iso(dayStart), iso(dayStart + HOUR)]);
  const hourCols = HOUR_TABLE.columns.map((col) => col.name);
  await c.run(
    `INSERT INTO ${HOUR_TABLE.name} SELECT ${hourCols.map((n) => (n === "hour" ? "hour + to_hours(h) AS hour" : n)).join(", ")} ` + `FROM ${HOUR_TABLE.name}, range(1, 24) AS r(h)`,
  );
  // Copies 1…n-1: the same rows under other workload names, hence other series.
  const renamed = (cols: string[]) => cols.map((n) => (n === "destination_workload" || n === "source_workload" ? `${n} || '-c' || k AS ${n}` : n)).join(", ");
  const factCols = FACT_TABLE.columns.map((col) => col.name);
  if (copies > 1) {
    await c.run(`INSERT INTO ${HOUR_TABLE.name} SELECT ${renamed(hourCols)} FROM ${HOUR_TABLE.name}, range(1, ${copies}) AS r(k)`);
    await c.run(`INSERT INTO ${FACT_TABLE.name} SELECT ${renamed(factCols)} FROM ${FACT_TABLE.name}, range(1, ${copies}) AS r(k)`);
  }
  await c.run("CHECKPOINT");
  const [n] = await q(
    `SELECT (SELECT COUNT(*) FROM ${FACT_TABLE.name}) AS minute_rows, (SELECT COUNT(*) FROM ${HOUR_TABLE.name}) AS hour_rows, ` +
      `(SELECT COUNT(*) FROM (SELECT DISTINCT ${DIMENSIONS.join(", ")} FROM ${HOUR_TABLE.name})) AS series`,
  );
  return { dayStart, series: Number(n.series), minuteRows: Number(n.minute_rows), hourRows: Number(n.hour_rows) };
}

async function timeBoards(w: Warehouse, nowMs: number, range: string): Promise<Record<string, { cold: number; coldCpu: number; warm: number; hourly: number }>> {
  const out: Record<string, { cold: number; coldCpu: number; warm: number; hourly: number }> = {};
  for (const board of ["golden", "identity", "graph"]) {
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

const rows: string[][] = [];
let baseline = "";
for (const target of SERIES) {
  const w = await loadWarehouse({ requests: 3_000, requestsPerSecond: 50, seed: "dashboard-bench" });
  try {
    const t0 = performance.now();
    const day = await buildDay(w, target);
    console.log(
      `${target} series: built ${day.series} series, ${day.minuteRows.toLocaleString()} minute rows, ${day.hourRows.toLocaleString()} hour rows in ${secs(performance.now() - t0)} s`,
    );
    const nowMs = day.dayStart + DAY;
    for (const range of ["24h", "1h"]) {
      const t = await timeBoards(w, nowMs, range);
      for (const [board, f] of Object.entries(t)) {
        rows.push([String(day.series), day.minuteRows.toLocaleString(), range, board, secs(f.cold), secs(f.coldCpu), secs(f.warm), String(f.hourly)]);
      }
    }
    if (target <= 1000) {
      const t1 = performance.now();
      await w.sink.connection.runAndReadAll(
        `SELECT MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) FROM ${FACT_TABLE.name} WHERE reporter = 'destination' AND minute >= CAST(? AS TIMESTAMP) AND minute < CAST(? AS TIMESTAMP)`,
        [iso(day.dayStart), iso(nowMs)],
      );
      const golden = rows.find((r) => r[0] === String(day.series) && r[2] === "24h" && r[3] === "golden")!;
      const ms = performance.now() - t1;
      baseline =
        `baseline (same process, ${day.series} series, one day): the p99 tile alone as the LookML measure computes it over minute rows, ${secs(ms)} s; ` +
        `the whole golden-signals board cold ${golden[4]} s (ratio board/baseline-tile ${(Number(golden[4]) / (ms / 1000)).toFixed(2)}×)`;
    }
  } finally {
    await w.close();
  }
}
console.log(
  formatTable(["series", "minute rows", "range", "board", "cold s", "cold CPU s", "warm s", "hours from rollup"], rows, [
    "right",
    "right",
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
if (baseline) console.log(baseline);
