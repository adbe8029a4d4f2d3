// Keeps the read API's pre-aggregates of the minute rows current after every committed load:
// mesh_board_hour (shared/schema.ts BOARD_HOUR_TABLE), one row per (hour, series), with the first and last
// minute and a binary latency sketch (sketches.ts), and mesh_board_minute (BOARD_MINUTE_TABLE), counters and
// a binary sketch per (minute, reporter, destination namespace and service, response code), the grain of the
// dashboard's per-minute charts. Dashboards then read ~60× (per hour) or ~100× (per minute, at 10k series)
// fewer rows and merge sketches without parsing JSON, and stay exact: the read path uses a table's rows of
// an hour only when they absorbed exactly the minute rows the minute table holds for that hour (query.ts
// usableHoursStatement); otherwise it reads the minute rows, so a pre-aggregate that is behind, or rebuilt,
// or pruned never changes an answer.
//
// Runs in the loader's chain after each cycle (collector.ts afterLoad), so never beside a load, and writes
// both tables in one transaction:
//  - incrementally: minute rows loaded since the last run (loaded_at above the watermark) are merged into
//    their hours' rows, and appended to mesh_board_minute as rows of their own — work follows what was
//    loaded, not the size of the hour;
//  - then, when a table's total disagrees with the minute table's (the first run after start or after
//    migration 8, rows loaded by a replica whose clock is behind this one's, deleted minute rows), hours
//    whose counts disagree are rebuilt from their minute rows, newest first, in whichever table disagrees,
//    and hours whose minute rows are all gone are dropped. Rebuilding costs the whole hour's minute rows
//    (~600k at 10k series), and the next load waits for this stage, so a run stops rebuilding once it has
//    used its time budget (after the hour in progress, at least one hour a run so a backlog always drains)
//    and leaves the rest to later runs; reads meanwhile take those hours' minute rows, their counts
//    disagreeing. The oldest hour, whose minutes retention deletes a cycle at a time, is not rebuilt in
//    mesh_board_hour while it holds fewer rows than it absorbed: reads take its minute rows until it is gone;
//    mesh_board_minute drops its rows before the oldest minute left and so stays exact per minute.
// Memory: one hour's series at a time (the series cardinality cap bounds it).
import { DuckDBListVector, DuckDBTimestampValue, type DuckDBAppender, type DuckDBBlobValue, type DuckDBConnection } from "@duckdb/node-api";
import type { Logger } from "pino";
import type { Gauge } from "prom-client";
import { BOARD_HOUR_TABLE, BOARD_MINUTE_DIMENSIONS, BOARD_MINUTE_TABLE, DIMENSIONS, FACT_TABLE } from "../../shared/schema.ts";
import { Yielder } from "../yielder.ts";
import type { SketchJson } from "../../shared/quantile.ts";
import { SketchAccumulator } from "./sketches.ts";
import type { ReadSource } from "./warehouse.ts";

const HOUR_US = 3_600_000_000n;
const ts = (us: bigint) => new DuckDBTimestampValue(us);

interface Cell {
  dims: (string | number)[];
  requests: bigint;
  errors: bigint;
  requestBytes: bigint;
  responseBytes: bigint;
  latencySum: bigint;
  latencyMin: bigint;
  latencyMax: bigint;
  first: bigint;
  last: bigint;
  rows: bigint;
  sketch: SketchAccumulator;
}

export interface BoardRollupReport {
  /** Hours whose rows absorbed newly loaded minute rows. */
  merged: number;
  /** Hours rebuilt from all their minute rows. */
  rebuilt: number;
  /** Stale hours left for later runs. */
  waiting: number;
  seconds: number;
}

export interface BoardRollupOptions {
  /** Seconds a run may spend before it stops rebuilding hours (it always rebuilds at least one). */
  budgetSeconds?: number;
  /** Set after each run to the hours it left waiting to be rebuilt. */
  waitingGauge?: Gauge;
}

/** Half the default load interval: a backlog of stale hours delays a load by about one cycle at most. */
export const DEFAULT_BUDGET_SECONDS = 5;

/** Every row the rebuild or the merge reads, in one column order: dimensions, measures, sketch. */
const READ_COLUMNS = [
  ...DIMENSIONS,
  "requests",
  "errors",
  "request_bytes",
  "response_bytes",
  "latency_sum_us",
  "latency_min_us",
  "latency_max_us",
  "epoch_us(first_minute)",
  "epoch_us(last_minute)",
  "minute_rows",
  "sketch",
];
/** How both pre-aggregates fold minute rows' extremes and count them. */
const EXTREMES: Record<string, string> = { latency_min_us: "MIN(latency_min_us)", latency_max_us: "MAX(latency_max_us)", minute_rows: "COUNT(*)" };
/** A SELECT of `columns` from the minute rows: each by its rule in `rules`, else kept as is when one of `dims` (grouped by), else summed. */
const aggregateSql = (columns: readonly string[], rules: Record<string, string>, dims: readonly string[]) =>
  `SELECT ${columns.map((c) => rules[c] ?? (dims.includes(c) ? c : `SUM(${c})::BIGINT`)).join(", ")} FROM ${FACT_TABLE.name}`;
/**
 * READ_COLUMNS from minute rows, one row per series: grouped in DuckDB, so a series' dimension values (most
 * of a row's bytes) cross into this process once, not once per minute, and its minute rows' (minute, JSON
 * sketch) pairs as one list, so each JSON sketch is parsed once for both pre-aggregates. Append a WHERE, then
 * FROM_MINUTES_GROUP.
 */
const MINUTES_AGGREGATE: Record<string, string> = {
  ...EXTREMES,
  "epoch_us(first_minute)": "MIN(epoch_us(minute))",
  "epoch_us(last_minute)": "MAX(epoch_us(minute))",
  // "<epoch µs> <JSON>": one string per minute row, which crosses into this process cheaper than a struct.
  sketch: "LIST(epoch_us(minute)::VARCHAR || ' ' || COALESCE(latency_sketch, 'null'))",
};
const FROM_MINUTES = aggregateSql(READ_COLUMNS, MINUTES_AGGREGATE, DIMENSIONS);
const FROM_MINUTES_GROUP = ` GROUP BY ${DIMENSIONS.join(", ")}`;

const MINUTE_AGGREGATE: Record<string, string> = {
  ...EXTREMES,
  minute: "epoch_us(minute)",
  mtls_requests: "SUM(CASE WHEN connection_security_policy = 'mutual_tls' THEN requests ELSE 0 END)::BIGINT",
};
/** mesh_board_minute's columns but the sketch: those are merged from FROM_MINUTES's lists. */
const MINUTE_COUNTER_COLUMNS = BOARD_MINUTE_TABLE.columns.filter((c) => c.name !== "sketch");
/**
 * mesh_board_minute's counters from the minute rows, one row per minute and key (the sketch, DuckDB having
 * no exact sketch merge, is merged here from FROM_MINUTES's lists). Append a WHERE, then MINUTES_GROUP.
 */
const MINUTE_COUNTERS = aggregateSql(
  MINUTE_COUNTER_COLUMNS.map((c) => c.name),
  MINUTE_AGGREGATE,
  BOARD_MINUTE_DIMENSIONS,
);
const MINUTES_GROUP = ` GROUP BY minute, ${BOARD_MINUTE_DIMENSIONS.join(", ")}`;
/** Where mesh_board_minute's dimensions lie among a series' (DIMENSIONS order). */
const MINUTE_DIMENSION_AT = BOARD_MINUTE_DIMENSIONS.map((d) => (DIMENSIONS as readonly string[]).indexOf(d));
/** A mesh_board_minute key (JSON: a value may hold any character); the minute in epoch µs, as text. */
const minuteKey = (minute: string, dims: readonly (string | number)[]) => JSON.stringify([minute, ...dims]);
/** Rows of one hour, or of a run of hours; binds its start and end. Append LOADED to take only those one merge absorbs. */
const IN_HOUR = " WHERE minute >= make_timestamp(?::BIGINT) AND minute < make_timestamp(?::BIGINT)";
/** Binds the watermark and the newest loaded_at a run merges up to. */
const LOADED = " AND loaded_at > make_timestamp(?::BIGINT) AND loaded_at <= make_timestamp(?::BIGINT)";

/** What a fold writes of an hour. */
interface FoldTarget {
  /**
   * mesh_board_hour's rows of the hour: "merge" adds the minute rows to what those rows absorbed, "replace"
   * rebuilds them from the minute rows alone; absent: left as they are.
   */
  hour?: "merge" | "replace";
  /** Whether the minute rows' groups are appended to mesh_board_minute (what they replace, the caller deletes). */
  minutes: boolean;
}

export class BoardRollup {
  private conn?: DuckDBConnection;
  /** loaded_at (µs) of the newest minute rows merged; undefined until the first run. */
  private watermark?: bigint;
  /** Whether every hour needs its counts checked (first run, or stale hours left over). */
  private checkAll = true;

  constructor(
    private readonly source: ReadSource,
    private readonly log?: Logger,
    private readonly options: BoardRollupOptions = {},
  ) {}

  private async connection(): Promise<DuckDBConnection> {
    this.conn ??= await this.source.connectReader();
    return this.conn;
  }

  /** One run; logs and swallows its failure (the read path falls back to minute rows meanwhile). */
  async afterLoad(): Promise<BoardRollupReport | undefined> {
    try {
      return await this.run();
    } catch (err) {
      this.log?.error({ err }, "read pre-aggregates (mesh_board_hour, mesh_board_minute) failed; reads use minute rows until they catch up");
      return undefined;
    }
  }

  async run(): Promise<BoardRollupReport> {
    const t0 = performance.now();
    const budgetMs = (this.options.budgetSeconds ?? DEFAULT_BUDGET_SECONDS) * 1000;
    const c = await this.connection();
    const one = async (sql: string, params: (string | number)[] = []) => (await c.runAndReadAll(sql, params)).getRows();
    let removed = 0;
    const remove = async (sql: string, params: string[] = []) => {
      removed += (await c.run(sql, params)).rowsChanged;
    };
    await c.run("BEGIN TRANSACTION");
    try {
      // Above the watermark only: the minute table's row groups follow load order, so its zone maps skip
      // everything loaded before.
      const [[top]] = await one(
        `SELECT epoch_us(MAX(loaded_at)) FROM ${FACT_TABLE.name}${this.watermark === undefined ? "" : " WHERE loaded_at > make_timestamp(?::BIGINT)"}`,
        this.watermark === undefined ? [] : [String(this.watermark)],
      );
      const upTo = top === null ? this.watermark : (top as bigint);
      let merged = 0;
      const touched: bigint[] = [];
      if (this.watermark !== undefined && upTo !== undefined && upTo > this.watermark) {
        const since = String(this.watermark);
        const until = String(upTo);
        const hours = await one(
          `SELECT DISTINCT epoch_us(date_trunc('hour', minute)) FROM ${FACT_TABLE.name} WHERE loaded_at > make_timestamp(?::BIGINT) AND loaded_at <= make_timestamp(?::BIGINT) ORDER BY 1`,
          [since, until],
        );
        for (const [h] of hours) {
          const hour = h as bigint;
          await this.fold(c, hour, [since, until], { hour: "merge", minutes: true });
          touched.push(hour);
          merged++;
        }
      }
      // Retention deletes the oldest minutes a cycle's worth at a time, so once the mesh is older than the
      // minute retention every cycle leaves the oldest hour with fewer minute rows than its pre-aggregate
      // absorbed. Rebuilding it (and counting every hour to find it) each cycle would cost a whole hour of
      // sketches per cycle; instead that hour is left to the read path, which reads its minute rows (the
      // counts disagree), and its rows go when retention has taken the last of its minutes. Everything
      // older has no minute rows left.
      const [[oldestMinute, oldestHour]] = await one(`SELECT epoch_us(MIN(minute)), epoch_us(date_trunc('hour', MIN(minute))) FROM ${FACT_TABLE.name}`);
      const oldest = oldestHour === null ? undefined : (oldestHour as bigint);
      if (oldest === undefined) {
        await remove(`DELETE FROM ${BOARD_HOUR_TABLE.name}`);
        await remove(`DELETE FROM ${BOARD_MINUTE_TABLE.name}`);
      } else {
        await remove(`DELETE FROM ${BOARD_HOUR_TABLE.name} WHERE hour < make_timestamp(?::BIGINT)`, [String(oldest)]);
        // Retention deletes whole minutes, oldest first: what lies before the oldest minute left went with
        // it, so per minute the table stays exact and keeps answering for the oldest hour.
        await remove(`DELETE FROM ${BOARD_MINUTE_TABLE.name} WHERE minute < make_timestamp(?::BIGINT)`, [String(oldestMinute)]);
      }
      // Rows the watermark cannot see (loaded by a replica whose clock is behind) or minute rows deleted
      // other than by retention show as totals that disagree; then every hour is checked. The oldest hour
      // counts as agreeing while its pre-aggregate holds at least its minute rows (retention under way).
      // Both pre-aggregates are checked, each against the minute table.
      const cut = String((oldest ?? 0n) + HOUR_US);
      const [[agree]] = await one(
        `SELECT (SELECT COUNT(*) FROM ${FACT_TABLE.name}) - o.m = (SELECT COALESCE(SUM(minute_rows), 0) FROM ${BOARD_HOUR_TABLE.name}) - o.b AND o.m <= o.b ` +
          `AND (SELECT COUNT(*) FROM ${FACT_TABLE.name}) - o.m = (SELECT COALESCE(SUM(minute_rows), 0) FROM ${BOARD_MINUTE_TABLE.name}) - o.bm AND o.m <= o.bm ` +
          `FROM (SELECT (SELECT COUNT(*) FROM ${FACT_TABLE.name} WHERE minute < make_timestamp(?::BIGINT)) AS m, ` +
          `(SELECT COALESCE(SUM(minute_rows), 0) FROM ${BOARD_HOUR_TABLE.name} WHERE hour < make_timestamp(?::BIGINT)) AS b, ` +
          `(SELECT COALESCE(SUM(minute_rows), 0) FROM ${BOARD_MINUTE_TABLE.name} WHERE minute < make_timestamp(?::BIGINT)) AS bm) AS o`,
        [cut, cut, cut],
      );
      if (!agree) this.checkAll = true;
      // Hours whose pre-aggregate disagrees with the minute table: all of them when checking everything,
      // else only those just merged into, reading only their span of the minute table.
      const lo = touched.length ? String(touched[0]) : "0";
      const hi = touched.length ? String(touched[touched.length - 1] + HOUR_US) : "0";
      const span = this.checkAll ? "" : IN_HOUR;
      const hourSpan = this.checkAll ? "" : " WHERE hour >= make_timestamp(?::BIGINT) AND hour < make_timestamp(?::BIGINT)";
      const stale = (
        await one(
          `SELECT COALESCE(m.hour, b.hour, bm.hour) AS hour, m.n IS NULL AS gone, b.n > m.n AS pruned, ` +
            "m.n IS DISTINCT FROM b.n AS hour_stale, m.n IS DISTINCT FROM bm.n AS minutes_stale FROM " +
            `(SELECT epoch_us(date_trunc('hour', minute)) AS hour, COUNT(*) AS n FROM ${FACT_TABLE.name}${span} GROUP BY 1) AS m FULL JOIN ` +
            `(SELECT epoch_us(hour) AS hour, SUM(minute_rows) AS n FROM ${BOARD_HOUR_TABLE.name}${hourSpan} GROUP BY 1) AS b ON m.hour = b.hour FULL JOIN ` +
            `(SELECT epoch_us(date_trunc('hour', minute)) AS hour, SUM(minute_rows) AS n FROM ${BOARD_MINUTE_TABLE.name}${span} GROUP BY 1) AS bm ` +
            "ON COALESCE(m.hour, b.hour) = bm.hour WHERE m.n IS DISTINCT FROM b.n OR m.n IS DISTINCT FROM bm.n ORDER BY 1 DESC",
          this.checkAll ? [] : [lo, hi, lo, hi, lo, hi],
        )
      )
        .map(([h, gone, pruned, hourStale, minutesStale]) => ({
          hour: h as bigint,
          gone: gone as boolean,
          hourStale: (hourStale as boolean) && !(pruned === true && h === oldest),
          minutesStale: minutesStale as boolean,
        }))
        .filter((s) => s.gone || s.hourStale || s.minutesStale);
      let rebuilt = 0;
      for (const s of stale) {
        const bounds = [String(s.hour), String(s.hour + HOUR_US)];
        const dropMinutes = () => remove(`DELETE FROM ${BOARD_MINUTE_TABLE.name}${IN_HOUR}`, bounds);
        if (s.gone) {
          await dropMinutes();
          await remove(`DELETE FROM ${BOARD_HOUR_TABLE.name} WHERE hour = make_timestamp(?::BIGINT)`, [String(s.hour)]);
          continue;
        }
        if (rebuilt > 0 && performance.now() - t0 >= budgetMs) continue;
        if (s.minutesStale) await dropMinutes();
        await this.fold(c, s.hour, undefined, { hour: s.hourStale ? "replace" : undefined, minutes: s.minutesStale });
        rebuilt++;
      }
      const waiting = stale.filter((s) => !s.gone).length - rebuilt;
      // A run that changed nothing (an idle cycle) leaves the read API's cached answers be.
      await this.source.writes.commit(
        () => c.run("COMMIT"),
        () => merged > 0 || rebuilt > 0 || removed > 0,
      );
      this.watermark = upTo ?? this.watermark;
      this.checkAll = waiting > 0;
      this.options.waitingGauge?.set(waiting);
      return { merged, rebuilt, waiting, seconds: (performance.now() - t0) / 1000 };
    } catch (err) {
      await c.run("ROLLBACK").catch(() => undefined);
      throw err;
    }
  }

  /**
   * Folds hour `hour`'s minute rows (those loaded in `loaded`, a (watermark, newest loaded_at] pair, or all of
   * them) into the pre-aggregates `target` names. Each minute row's JSON sketch is parsed once, and goes both
   * to its series' hour sketch and to its minute and key's sketch.
   */
  private async fold(c: DuckDBConnection, hour: bigint, loaded: [string, string] | undefined, target: FoldTarget): Promise<void> {
    // Ingest shares the event loop: an hour of a 10k-series mesh is ~10k rows to write and up to 600k sketches to merge.
    const yielder = new Yielder();
    const cells = target.hour ? new Map<string, Cell>() : undefined;
    const perMinute = target.minutes ? new Map<string, SketchAccumulator>() : undefined;
    const where = { sql: IN_HOUR + (loaded ? LOADED : ""), params: [String(hour), String(hour + HOUR_US), ...(loaded ?? [])] };
    if (target.hour === "merge") {
      await this.absorb(c, `SELECT ${READ_COLUMNS.join(", ")} FROM ${BOARD_HOUR_TABLE.name} WHERE hour = make_timestamp(?::BIGINT)`, [String(hour)], cells, undefined, yielder);
    }
    await this.absorb(c, FROM_MINUTES + where.sql + FROM_MINUTES_GROUP, where.params, cells, perMinute, yielder);
    if (cells) await this.writeHour(c, hour, cells, yielder);
    if (perMinute) await this.appendMinutes(c, MINUTE_COUNTERS + where.sql + MINUTES_GROUP, where.params, perMinute, yielder);
  }

  /**
   * Adds the rows `sql` gives (READ_COLUMNS order: mesh_board_hour rows, or FROM_MINUTES's series) to their
   * series' cells, and a FROM_MINUTES row's minute sketches to `perMinute` by minute and key.
   */
  private async absorb(
    c: DuckDBConnection,
    sql: string,
    params: string[],
    cells: Map<string, Cell> | undefined,
    perMinute: Map<string, SketchAccumulator> | undefined,
    yielder: Yielder,
  ): Promise<void> {
    const nd = DIMENSIONS.length;
    const result = await c.stream(sql, params);
    for (let chunk = await result.fetchChunk(); chunk && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
      // Read value by value, not converted a chunk at a time: a chunk of a rebuild holds ~100k sketches,
      // whose conversion alone would hold the event loop for a large part of a second.
      const col = Array.from({ length: chunk.columnCount }, (_, k) => chunk.getColumnVector(k));
      const sketches = col[nd + 10];
      for (let i = 0; i < chunk.rowCount; i++) {
        const dims = col.slice(0, nd).map((d) => d.getItem(i) as string | number);
        const cell = cells && this.cell(cells, dims, (k) => col[nd + k].getItem(i) as bigint);
        if (sketches instanceof DuckDBListVector) {
          const keyDims = perMinute && MINUTE_DIMENSION_AT.map((k) => dims[k]);
          const from = sketches.getEntryOffset(i);
          for (let k = from, to = from + sketches.getEntryLength(i); k < to; k++) {
            const item = sketches.childVector.getItem(k) as string;
            const space = item.indexOf(" ");
            const parsed: SketchJson | null = JSON.parse(item.slice(space + 1));
            cell?.sketch.addJson(parsed);
            if (perMinute && keyDims) {
              const key = minuteKey(item.slice(0, space), keyDims);
              let acc = perMinute.get(key);
              if (!acc) perMinute.set(key, (acc = new SketchAccumulator()));
              acc.addJson(parsed);
            }
            if (yielder.rowDue()) await yielder.maybe();
          }
        } else {
          const bin = sketches.getItem(i) as DuckDBBlobValue | null;
          if (bin) cell?.sketch.addBinary(bin.bytes);
        }
        if (yielder.rowDue()) await yielder.maybe();
      }
    }
  }

  /** Adds one row's measures (`v(k)`: READ_COLUMNS after the dimensions) to its series' cell; returns the cell. */
  private cell(cells: Map<string, Cell>, dims: (string | number)[], v: (k: number) => bigint): Cell {
    // JSON, not a separator: a value may hold any character (a NUL included), and a join would let two series share a key.
    const key = JSON.stringify(dims);
    let cell = cells.get(key);
    if (!cell) {
      cell = {
        dims,
        requests: 0n,
        errors: 0n,
        requestBytes: 0n,
        responseBytes: 0n,
        latencySum: 0n,
        latencyMin: v(5),
        latencyMax: v(6),
        first: v(7),
        last: v(8),
        rows: 0n,
        sketch: new SketchAccumulator(),
      };
      cells.set(key, cell);
    }
    cell.requests += v(0);
    cell.errors += v(1);
    cell.requestBytes += v(2);
    cell.responseBytes += v(3);
    cell.latencySum += v(4);
    if (v(5) < cell.latencyMin) cell.latencyMin = v(5);
    if (v(6) > cell.latencyMax) cell.latencyMax = v(6);
    if (v(7) < cell.first) cell.first = v(7);
    if (v(8) > cell.last) cell.last = v(8);
    cell.rows += v(9);
    return cell;
  }

  /** Replaces hour `hour`'s mesh_board_hour rows by `cells`. */
  private async writeHour(c: DuckDBConnection, hour: bigint, cells: Map<string, Cell>, yielder: Yielder): Promise<void> {
    await c.run(`DELETE FROM ${BOARD_HOUR_TABLE.name} WHERE hour = make_timestamp(?::BIGINT)`, [String(hour)]);
    await appendAll(c, BOARD_HOUR_TABLE.name, cells.values(), yielder, (a, cell) => {
      a.appendTimestamp(ts(hour));
      cell.dims.forEach((d, k) => (DIMENSIONS[k] === "response_code" ? a.appendInteger(Number(d)) : a.appendVarchar(String(d))));
      for (const n of [cell.requests, cell.errors, cell.requestBytes, cell.responseBytes, cell.latencySum, cell.latencyMin, cell.latencyMax]) a.appendBigInt(n);
      a.appendTimestamp(ts(cell.first));
      a.appendTimestamp(ts(cell.last));
      a.appendBigInt(cell.rows);
      appendSketch(a, cell.sketch);
    });
  }

  /**
   * Appends to mesh_board_minute the counter rows `sql` gives (MINUTE_COUNTERS), each with its minute and
   * key's merged sketch from `perMinute`. Incremental merges only append (a minute and key may hold several
   * rows; every read sums and merges them), so a merge never reads what is there.
   */
  private async appendMinutes(c: DuckDBConnection, sql: string, params: string[], perMinute: Map<string, SketchAccumulator>, yielder: Yielder): Promise<void> {
    // Read whole before writing: the connection serves one statement at a time.
    const rows = (await c.runAndReadAll(sql, params)).getRows();
    await appendAll(c, BOARD_MINUTE_TABLE.name, rows, yielder, (a, row) => {
      MINUTE_COUNTER_COLUMNS.forEach((col, k) => {
        const v = row[k];
        if (col.type === "timestamp") a.appendTimestamp(ts(v as bigint));
        else if (col.type === "string") a.appendVarchar(v as string);
        else if (col.type === "int32") a.appendInteger(v as number);
        else a.appendBigInt(v as bigint);
      });
      appendSketch(a, perMinute.get(minuteKey(String(row[0]), row.slice(1, 1 + BOARD_MINUTE_DIMENSIONS.length) as (string | number)[])));
    });
  }

  close(): void {
    this.conn?.closeSync();
    this.conn = undefined;
  }
}

/** Appends a row to `table` per item, `fill` writing its values, giving the event loop turns between rows. */
async function appendAll<T>(c: DuckDBConnection, table: string, items: Iterable<T>, yielder: Yielder, fill: (a: DuckDBAppender, item: T) => void): Promise<void> {
  const a = await c.createAppender(table);
  try {
    for (const item of items) {
      fill(a, item);
      a.endRow();
      if (yielder.rowDue()) await yielder.maybe();
    }
    a.flushSync();
  } finally {
    a.closeSync();
  }
}

/** A merged sketch's binary form, or NULL when it holds none. */
function appendSketch(a: DuckDBAppender, sketch: SketchAccumulator | undefined): void {
  const bin = sketch?.toBinary();
  if (bin) a.appendBlob(bin);
  else a.appendNull();
}
