// Warehouse load throughput of the DuckDB sink against the floor of bulk-appending the same fact rows from
// Node with DuckDB's appender, measured in the same rounds, interleaved, each on a fresh database file:
//
// - a load cycle (the loader's usual path, Loader.cycle on folded segments): ledger check, fact and ledger
//   rows in one transaction per cycle, then the compaction check. The rollup was done as the summaries
//   were acknowledged (ingest folds them; bench/ingest.ts counts that), so it is not timed here; nor are
//   the retention pass and the spool files' removal after the load, or the merge of a cycle's folds
//   when it takes more than one segment (a DuckDB cycle usually takes the one sealed at its start).
// - a replay load (Sink.load, standing for summaries read back from the spool after a restart or a failed
//   load, or reloaded from the quarantine): the same, with the minute rollup inside the load; reading and
//   decoding the spool are not timed.
// - the baseline: the same rows, as the fact table holds them, appended by column type into a table of
//   the same definition, one transaction per cycle as the sink commits (the same WAL writes and fsyncs):
//   no ledger, no rollup, no row building.
import { DuckDBInstance, DuckDBTimestampValue, type DuckDBValue } from "@duckdb/node-api";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { foldBatch } from "../../collector/batch.ts";
import { ledgerEntry } from "../../collector/ledger.ts";
import { MinuteRollup } from "../../collector/rollup.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { decodeSummary, type DecodedSummary } from "../../collector/summary.ts";
import { encodeSummary } from "../../shared/node.ts";
import { FACT_TABLE, createTableSql } from "../../shared/schema.ts";
import { latencies, series, summary } from "../../test/collector/helpers.ts";

/** One way of loading the rows: rows/s and CPU-ms of the whole process (DuckDB's threads included) per round. */
export interface LoadRun {
  rowsPerS: number[];
  cpuMs: number[];
}

export interface LoadFigures {
  rows: number;
  summaries: number;
  cycles: number;
  rounds: number;
  cycle: LoadRun;
  replay: LoadRun;
  appender: LoadRun;
  /** Per round, cycle ÷ appender and replay ÷ appender rows/s: the medians are the figures' ratios. */
  cycleRatio: number[];
  replayRatio: number[];
  /** Per round, the same ratios by CPU time (appender CPU-ms ÷ the load's), steadier on a busy machine. */
  cycleCpuRatio: number[];
  replayCpuRatio: number[];
}

/**
 * The bench's summaries, through the real encoder and decoder (what the loader gets): each one of 20
 * sidecars' 10 s window, `perSummary` series of its own with 50 latencies each; six windows a minute,
 * so the rollup merges up to six summaries into each row. The windows lie in the current hour, as live
 * traffic does: the sink compacts an hour into mesh_traffic_hour only once it has closed (docs/schema.md),
 * which these loads then never pay for.
 */
function benchSummaries(count: number, perSummary: number): DecodedSummary[] {
  const values = latencies(50);
  const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  return Array.from({ length: count }, (_, i) => {
    const s = summary(
      1 + Math.floor(i / 20),
      hour + (1 + Math.floor(i / 20)) * 10_000,
      Array.from({ length: perSummary }, (_, k) => series(`svc-${k}-${i % 20}.shop.svc.cluster.local`, values)),
      `pod-${i % 20}`,
    );
    const d = decodeSummary(encodeSummary(s));
    if (!d.ok) throw new Error(`bench summary does not decode: ${d.reason}`);
    return d.summary;
  });
}

async function timed<T>(body: () => Promise<T>): Promise<{ out: T; s: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const out = await body();
  const s = (performance.now() - t0) / 1000;
  const used = process.cpuUsage(cpu);
  return { out, s, cpuMs: (used.user + used.system) / 1000 };
}

async function withSink<T>(body: (sink: DuckDBSink) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-bench-load-"));
  const sink = new DuckDBSink(join(dir, "bench.duckdb"));
  try {
    await sink.open();
    return await body(sink);
  } finally {
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The fact rows a load wrote, one array per cycle (each cycle stamps its own loaded_at). */
async function rowsByCycle(sink: DuckDBSink): Promise<DuckDBValue[][][]> {
  const loadedAt = FACT_TABLE.columns.findIndex((c) => c.name === "loaded_at");
  const rows = (await sink.connection.runAndReadAll(`SELECT * FROM ${FACT_TABLE.name} ORDER BY loaded_at`)).getRows();
  const cycles = new Map<bigint, DuckDBValue[][]>();
  for (const r of rows) {
    const at = (r[loadedAt] as DuckDBTimestampValue).micros;
    if (!cycles.has(at)) cycles.set(at, []);
    cycles.get(at)!.push(r);
  }
  return [...cycles.values()];
}

/** The baseline: `cycles` appended into a fresh fact table, one transaction each; returns the time taken. */
async function appendBare(cycles: DuckDBValue[][][]): Promise<{ s: number; cpuMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-bench-append-"));
  const instance = await DuckDBInstance.create(join(dir, "bench.duckdb"));
  const c = await instance.connect();
  try {
    await c.run(createTableSql(FACT_TABLE, "duckdb"));
    const types = FACT_TABLE.columns.map((col) => col.type);
    return await timed(async () => {
      for (const rows of cycles) {
        await c.run("BEGIN TRANSACTION");
        const a = await c.createAppender(FACT_TABLE.name);
        for (const row of rows) {
          for (const [i, v] of row.entries()) {
            if (types[i] === "timestamp") a.appendTimestamp(v as DuckDBTimestampValue);
            else if (types[i] === "int64") a.appendBigInt(v as bigint);
            else if (types[i] === "int32") a.appendInteger(v as number);
            else a.appendVarchar(v as string);
          }
          a.endRow();
        }
        a.flushSync();
        a.closeSync();
        await c.run("COMMIT");
      }
    });
  } finally {
    c.closeSync();
    instance.closeSync();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function measureWarehouseLoad(options: { summaries?: number; series?: number; batch?: number; rounds?: number } = {}): Promise<LoadFigures> {
  const count = options.summaries ?? 400;
  const batch = options.batch ?? 100;
  const rounds = options.rounds ?? 5;
  const summaries = benchSummaries(count, options.series ?? 100);
  const batches = Array.from({ length: Math.ceil(count / batch) }, (_, i) => summaries.slice(i * batch, (i + 1) * batch));
  const figures: LoadFigures = {
    rows: 0,
    summaries: count,
    cycles: batches.length,
    rounds,
    cycle: { rowsPerS: [], cpuMs: [] },
    replay: { rowsPerS: [], cpuMs: [] },
    appender: { rowsPerS: [], cpuMs: [] },
    cycleRatio: [],
    replayRatio: [],
    cycleCpuRatio: [],
    replayCpuRatio: [],
  };
  const record = (run: LoadRun, rows: number, t: { s: number; cpuMs: number }) => {
    run.rowsPerS.push(rows / t.s);
    run.cpuMs.push(t.cpuMs);
  };
  for (let round = 0; round < rounds; round++) {
    // Folded as the ingest path folds acknowledged summaries, before the cycle that loads them.
    const folds = batches.map((b) => {
      const rollup = new MinuteRollup();
      for (const s of b) rollup.add(s);
      return foldBatch(rollup, b.map(ledgerEntry));
    });
    const replayLoad = () =>
      withSink(async (sink) =>
        timed(async () => {
          let rows = 0;
          for (const b of batches) rows += (await sink.load(b)).rows;
          return rows;
        }),
      );
    // Every other round the replay load runs first, so neither order's warm-up favours one figure.
    const replayFirst = round % 2 === 1 ? await replayLoad() : undefined;
    const cycle = await withSink(async (sink) => {
      const t = await timed(async () => {
        let rows = 0;
        for (const f of folds) {
          rows += (await sink.loadBatch(f))!.rows;
          await sink.compactLoaded();
        }
        return rows;
      });
      return { ...t, written: await rowsByCycle(sink) };
    });
    const replay = replayFirst ?? (await replayLoad());
    if (replay.out !== cycle.out) throw new Error(`the replay load wrote ${replay.out} rows, the load cycle ${cycle.out}`);
    const bare = await appendBare(cycle.written);
    figures.rows = cycle.out;
    record(figures.cycle, cycle.out, cycle);
    record(figures.replay, replay.out, replay);
    record(figures.appender, cycle.out, bare);
    figures.cycleRatio.push(bare.s / cycle.s);
    figures.replayRatio.push(bare.s / replay.s);
    figures.cycleCpuRatio.push(bare.cpuMs / cycle.cpuMs);
    figures.replayCpuRatio.push(bare.cpuMs / replay.cpuMs);
  }
  return figures;
}
