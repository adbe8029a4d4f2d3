// Keeps the read API's pre-aggregates of the minute rows current after every committed load:
// mesh_board_hour (shared/schema.ts BOARD_HOUR_TABLE), rows per (hour, series), with the first and last
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
//  - incrementally: minute rows loaded since the last run (loaded_at above the watermark) are grouped per
//    series and appended to both tables as rows of their own — work follows what was loaded, not the size
//    of the hour, and nothing is read back (reading back and rewriting an hour's rows, twenty dimension
//    strings each, cost about 5 times the load's CPU at 10k series: docs/read-api.md, "Cost per load");
//  - then, hours whose pre-aggregate disagrees with their minute rows (count, requests or first minute, as
//    the read path judges them: query.ts hourTotalsSql) are rebuilt from their minute rows, newest first, in
//    whichever table disagrees, and hours whose minute rows are all gone are dropped. Every hour is checked
//    when a table's total disagrees with the minute table's (the first run after start or after migration 8,
//    rows loaded by a replica whose clock is behind this one's, deleted minute rows); otherwise the hours just
//    merged into and one more in turn, which finds what the totals miss within one round of the hours held.
//    Rebuilding costs the whole hour's minute rows (~600k at 10k series), and the next load waits for this
//    stage, so a run stops rebuilding once it has used its time budget (after the hour in progress, at least
//    one hour a run so a backlog always drains) and leaves the rest to later runs; reads meanwhile take those
//    hours' minute rows, their totals disagreeing. The oldest hour, whose minutes retention deletes a cycle
//    at a time, is not rebuilt in mesh_board_hour while it holds fewer rows than it absorbed: reads take its
//    minute rows until it is gone; mesh_board_minute drops its rows before the oldest minute left and so
//    stays exact per minute;
//  - last, mesh_board_hour's hours whose rows come from more than `compactAfter` merges, or that have closed,
//    are compacted to one row per series, which bounds what reads sum and merge. Compaction only regroups
//    rows, so it never changes an answer nor whether an hour's totals agree, and a run that fails before it
//    commits nothing; what it leaves undone (a process stopped) the next run finds in the table.
// Series cross into this process as an id and their sketches only: their dimensions stay in DuckDB, grouped
// into a temporary table the rows are written back from. Memory: one hour's series at a time (the series
// cardinality cap bounds it).
import { DuckDBTimestampValue, type DuckDBAppender, type DuckDBBlobValue, type DuckDBConnection, type DuckDBListVector, type DuckDBVector } from "@duckdb/node-api";
import type { Logger } from "pino";
import type { Gauge } from "prom-client";
import { BOARD_HOUR_TABLE, BOARD_MINUTE_DIMENSIONS, BOARD_MINUTE_TABLE, DIMENSIONS, FACT_TABLE } from "../../shared/schema.ts";
import { Yielder } from "../yielder.ts";
import type { SketchJson } from "../../shared/quantile.ts";
import { hourTotalsSql, sameRows } from "./query.ts";
import { SketchAccumulator } from "./sketches.ts";
import type { ReadSource } from "./warehouse.ts";

const HOUR_US = 3_600_000_000n;
const ts = (us: bigint) => new DuckDBTimestampValue(us);

export interface BoardRollupReport {
  /** Hours whose rows absorbed newly loaded minute rows. */
  merged: number;
  /** Hours rebuilt from all their minute rows. */
  rebuilt: number;
  /** Hours whose appended mesh_board_hour rows were compacted to one per series. */
  compacted: number;
  /** Stale hours left for later runs. */
  waiting: number;
  seconds: number;
}

export interface BoardRollupOptions {
  /** Seconds a run may spend before it stops rebuilding hours (it always rebuilds at least one). */
  budgetSeconds?: number;
  /** Set after each run to the hours it left waiting to be rebuilt. */
  waitingGauge?: Gauge;
  /** The most merges an open hour's mesh_board_hour rows may come from (its compacted rows counting as one); DEFAULT_COMPACT_AFTER. */
  compactAfter?: number;
}

/** Half the default load interval: a backlog of stale hours delays a load by about one cycle at most. */
export const DEFAULT_BUDGET_SECONDS = 5;

/**
 * An open hour is compacted once its rows come from more merges than this (its compacted rows counting as one),
 * so it holds at most this many rows per series: a day's question reads at most 3 hours' worth more than 24
 * (+13 %), and in a steady mesh a compaction, which reads the hour's rows back, comes once every 4 loads.
 */
export const DEFAULT_COMPACT_AFTER = 4;

/** mesh_board_hour's columns that fold a series' rows into one: all but the hour, the sketch and appended_at. */
const SERIES_COLUMNS = BOARD_HOUR_TABLE.columns.map((c) => c.name).filter((n) => !["hour", "sketch", "appended_at"].includes(n));
/** How both pre-aggregates fold minute rows' extremes and count them. */
const EXTREMES: Record<string, string> = { latency_min_us: "MIN(latency_min_us)", latency_max_us: "MAX(latency_max_us)", minute_rows: "COUNT(*)" };
/** A SELECT of `columns` from `table`: each by its rule in `rules`, else kept as is when one of `dims` (grouped by), else summed. */
const aggregateSql = (columns: readonly string[], rules: Record<string, string>, dims: readonly string[], table = FACT_TABLE.name) =>
  `SELECT ${columns.map((c) => `${rules[c] ?? (dims.includes(c) ? c : `SUM(${c})::BIGINT`)} AS ${c}`).join(", ")} FROM ${table}`;
const SERIES_GROUP = ` GROUP BY ${DIMENSIONS.join(", ")}`;
/**
 * SERIES_COLUMNS from minute rows, one row per series, and `sketches`: its minute rows' (minute, JSON sketch)
 * pairs as one list, so each JSON sketch is parsed once for both pre-aggregates. Append a WHERE, then SERIES_GROUP.
 */
const SERIES_FROM_MINUTES = aggregateSql(
  [...SERIES_COLUMNS, "sketches"],
  {
    ...EXTREMES,
    first_minute: "MIN(minute)",
    last_minute: "MAX(minute)",
    // "<epoch µs> <JSON>": one string per minute row, which crosses into this process cheaper than a struct.
    sketches: "LIST(epoch_us(minute)::VARCHAR || ' ' || COALESCE(latency_sketch, 'null'))",
  },
  DIMENSIONS,
);
/** SERIES_COLUMNS from one hour's mesh_board_hour rows, one row per series, and their binary sketches as `sketches`; binds the hour. */
const SERIES_FROM_BOARD =
  aggregateSql(
    [...SERIES_COLUMNS, "sketches"],
    { ...EXTREMES, first_minute: "MIN(first_minute)", last_minute: "MAX(last_minute)", minute_rows: "SUM(minute_rows)::BIGINT", sketches: "LIST(sketch)" },
    DIMENSIONS,
    BOARD_HOUR_TABLE.name,
  ) + ` WHERE hour = make_timestamp(?::BIGINT)${SERIES_GROUP}`;
/**
 * The series a fold or compaction writes (temporary, one at a time): SERIES_COLUMNS and `sketches` numbered by
 * `series_id`, so that only the id and the sketches cross into this process, never a series' twenty dimension
 * strings, and the rows are written back by INSERT … SELECT from here.
 */
const SERIES_TABLE = "board_series";
/** The series' merged binary sketches by `series_id` (temporary, beside SERIES_TABLE). */
const SKETCH_TABLE = "board_series_sketch";

const MINUTE_AGGREGATE: Record<string, string> = {
  ...EXTREMES,
  minute: "epoch_us(minute)",
  mtls_requests: "SUM(CASE WHEN connection_security_policy = 'mutual_tls' THEN requests ELSE 0 END)::BIGINT",
};
/** mesh_board_minute's columns but the sketch: those are merged from SERIES_FROM_MINUTES's lists. */
const MINUTE_COUNTER_COLUMNS = BOARD_MINUTE_TABLE.columns.filter((c) => c.name !== "sketch");
/**
 * mesh_board_minute's counters from the minute rows, one row per minute and key (the sketch, DuckDB having
 * no exact sketch merge, is merged here from SERIES_FROM_MINUTES's lists). Append a WHERE, then MINUTES_GROUP.
 */
const MINUTE_COUNTERS = aggregateSql(
  MINUTE_COUNTER_COLUMNS.map((c) => c.name),
  MINUTE_AGGREGATE,
  BOARD_MINUTE_DIMENSIONS,
);
const MINUTES_GROUP = ` GROUP BY minute, ${BOARD_MINUTE_DIMENSIONS.join(", ")}`;
/** A mesh_board_minute key (JSON: a value may hold any character); the minute in epoch µs, as text. */
const minuteKey = (minute: string, dims: readonly (string | number)[]) => JSON.stringify([minute, ...dims]);
/** Rows of one hour, or of a run of hours; binds its start and end. Append LOADED to take only those one merge absorbs. */
const IN_HOUR = " WHERE minute >= make_timestamp(?::BIGINT) AND minute < make_timestamp(?::BIGINT)";
/** Binds the watermark and the newest loaded_at a run merges up to. */
const LOADED = " AND loaded_at > make_timestamp(?::BIGINT) AND loaded_at <= make_timestamp(?::BIGINT)";

/** What a fold writes of an hour. */
interface FoldTarget {
  /**
   * mesh_board_hour's rows of the hour: "append" adds a row per series of the minute rows (stamped with
   * appended_at), "replace" rebuilds them from the minute rows alone; absent: left as they are.
   */
  hour?: { mode: "append"; at: bigint } | { mode: "replace" };
  /** Whether the minute rows' groups are appended to mesh_board_minute (what they replace, the caller deletes). */
  minutes: boolean;
}

export class BoardRollup {
  private conn?: DuckDBConnection;
  /** loaded_at (µs) of the newest minute rows merged; undefined until the first run. */
  private watermark?: bigint;
  /** Whether every hour needs checking against its minute rows (first run, or stale hours left over). */
  private checkAll = true;
  /** The hour (µs) checked last in turn, beside those merged into. */
  private probe?: bigint;

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
          await this.fold(c, hour, [since, until], { hour: { mode: "append", at: upTo }, minutes: true });
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
      // other than by retention show as totals that disagree (unless as many of each: below); then every
      // hour is checked. The oldest hour counts as agreeing while its pre-aggregate holds at least its
      // minute rows (retention under way). Both pre-aggregates are checked, each against the minute table.
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
      // Hours whose pre-aggregate disagrees with the minute table, judged as the read path judges them
      // (hourTotalsSql): all of them when checking everything, else those just merged into and one more
      // hour in turn. The totals above count rows only, so as many minute rows deleted as land below the
      // watermark leave them agreeing; the hour in turn finds such an hour within one round of the hours
      // held, where it would otherwise be read from its minute rows for good.
      const [[next]] = await one(
        `SELECT epoch_us(COALESCE((SELECT MIN(hour) FROM ${BOARD_HOUR_TABLE.name} WHERE hour > make_timestamp(?::BIGINT)), (SELECT MIN(hour) FROM ${BOARD_HOUR_TABLE.name})))`,
        [String(this.probe ?? -1n)],
      );
      this.probe = next === null ? undefined : (next as bigint);
      // Each span its own statement: a filter of two ranges is not pruned by the zone maps, and would scan
      // every minute row.
      const spans: [bigint, bigint][] = [];
      if (touched.length) spans.push([touched[0], touched[touched.length - 1] + HOUR_US]);
      if (this.probe !== undefined && !spans.some(([lo, hi]) => this.probe! >= lo && this.probe! < hi)) spans.push([this.probe, this.probe + HOUR_US]);
      const staleIn = async (span?: [bigint, bigint]) => {
        const within = (col: string) => (span ? ` WHERE ${col} >= make_timestamp(?::BIGINT) AND ${col} < make_timestamp(?::BIGINT)` : "");
        const params = span ? span.map(String) : [];
        return one(
          `SELECT epoch_us(COALESCE(m.hour, b.hour, bm.hour)) AS hour, m.n IS NULL AS gone, b.n > m.n AS pruned, ` +
            `NOT COALESCE(${sameRows("m", "b")}, m.n IS NULL AND b.n IS NULL) AS hour_stale, NOT COALESCE(${sameRows("m", "bm")}, m.n IS NULL AND bm.n IS NULL) AS minutes_stale FROM ` +
            `(${hourTotalsSql("minutes", within("minute"))}) AS m FULL JOIN (${hourTotalsSql("board_hour", within("hour"))}) AS b ON m.hour = b.hour FULL JOIN ` +
            `(${hourTotalsSql("board_minute", within("minute"))}) AS bm ON COALESCE(m.hour, b.hour) = bm.hour WHERE hour_stale OR minutes_stale`,
          [...params, ...params, ...params],
        );
      };
      const found = [];
      for (const span of this.checkAll ? [undefined] : spans) found.push(...(await staleIn(span)));
      const stale = found
        .sort(([a], [b]) => ((a as bigint) > (b as bigint) ? -1 : 1))
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
        await this.fold(c, s.hour, undefined, { hour: s.hourStale ? { mode: "replace" } : undefined, minutes: s.minutesStale });
        rebuilt++;
      }
      const waiting = stale.filter((s) => !s.gone).length - rebuilt;
      // Hours whose appended rows come from more merges than the bound, or that have closed (a later hour has
      // rows: minutes arrive about in order), are compacted to one row per series, so reads stay near one row
      // per (hour, series). Only hours that hold appended rows are grouped; a compacted hour holds none. A
      // later hour counts only up to the hour of the newest load: a sidecar whose clock runs ahead (ingest
      // bounds that only when MESHLOOK_MAX_WINDOW_AHEAD_S is set) would otherwise close the hour in
      // progress, and compact it at every merge.
      const due = await one(
        `SELECT epoch_us(hour) FROM ${BOARD_HOUR_TABLE.name} WHERE hour IN (SELECT hour FROM ${BOARD_HOUR_TABLE.name} WHERE appended_at IS NOT NULL) GROUP BY hour ` +
          `HAVING COUNT(DISTINCT appended_at) + MAX(CASE WHEN appended_at IS NULL THEN 1 ELSE 0 END) > ` +
          `CASE WHEN hour < (SELECT MAX(hour) FROM ${BOARD_HOUR_TABLE.name} WHERE hour <= date_trunc('hour', make_timestamp(?::BIGINT))) THEN 1 ELSE ?::BIGINT END ORDER BY 1`,
        [String(upTo ?? 0n), this.options.compactAfter ?? DEFAULT_COMPACT_AFTER],
      );
      for (const [h] of due) await this.compact(c, h as bigint);
      // A run that changed nothing (an idle cycle) leaves the read API's cached answers be; so does compaction,
      // which regroups rows without changing any answer.
      await this.source.writes.commit(
        () => c.run("COMMIT"),
        () => merged > 0 || rebuilt > 0 || removed > 0,
      );
      this.watermark = upTo ?? this.watermark;
      this.checkAll = waiting > 0;
      this.options.waitingGauge?.set(waiting);
      return { merged, rebuilt, compacted: due.length, waiting, seconds: (performance.now() - t0) / 1000 };
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
    const where = { sql: IN_HOUR + (loaded ? LOADED : ""), params: [String(hour), String(hour + HOUR_US), ...(loaded ?? [])] };
    await c.run(
      `CREATE OR REPLACE TEMP TABLE ${SERIES_TABLE} AS SELECT row_number() OVER () AS series_id, * FROM (${SERIES_FROM_MINUTES}${where.sql}${SERIES_GROUP})`,
      where.params,
    );
    const sketches = target.hour ? new Map<bigint, SketchAccumulator>() : undefined;
    const perMinute = target.minutes ? new Map<string, SketchAccumulator>() : undefined;
    // Of a series' dimensions, only mesh_board_minute's keys cross into this process, and only when it is written.
    const keys = perMinute ? BOARD_MINUTE_DIMENSIONS : [];
    await this.eachSeries(c, `SELECT series_id, ${[...keys, "sketches"].join(", ")} FROM ${SERIES_TABLE}`, yielder, (id, col, i) => {
      const acc = sketches && new SketchAccumulator();
      if (acc) sketches.set(id, acc);
      const keyDims = keys.map((_, k) => col[1 + k].getItem(i) as string | number);
      return (item) => {
        const minuteSketch = item as string;
        const space = minuteSketch.indexOf(" ");
        const parsed: SketchJson | null = JSON.parse(minuteSketch.slice(space + 1));
        acc?.addJson(parsed);
        if (perMinute) {
          const key = minuteKey(minuteSketch.slice(0, space), keyDims);
          let m = perMinute.get(key);
          if (!m) perMinute.set(key, (m = new SketchAccumulator()));
          m.addJson(parsed);
        }
      };
    });
    if (target.hour && sketches) await this.writeSeries(c, hour, sketches, "sketch", target.hour.mode === "append" ? target.hour.at : undefined, yielder);
    await c.run(`DROP TABLE ${SERIES_TABLE}`);
    if (perMinute) await this.appendMinutes(c, MINUTE_COUNTERS + where.sql + MINUTES_GROUP, where.params, perMinute, yielder);
  }

  /**
   * Compacts hour `hour`'s mesh_board_hour rows to one per series: counters and extremes folded by DuckDB,
   * sketches merged here, and only those of series with more than one row.
   */
  private async compact(c: DuckDBConnection, hour: bigint): Promise<void> {
    const yielder = new Yielder();
    await c.run(`CREATE OR REPLACE TEMP TABLE ${SERIES_TABLE} AS SELECT row_number() OVER () AS series_id, * FROM (${SERIES_FROM_BOARD})`, [String(hour)]);
    const sketches = new Map<bigint, SketchAccumulator>();
    await this.eachSeries(c, `SELECT series_id, sketches FROM ${SERIES_TABLE} WHERE len(sketches) > 1`, yielder, (id) => {
      const acc = new SketchAccumulator();
      sketches.set(id, acc);
      return (item) => acc.addBinary((item as DuckDBBlobValue | null)?.bytes ?? null);
    });
    await this.writeSeries(c, hour, sketches, "CASE WHEN len(sketches) = 1 THEN sketches[1] ELSE sketch END", undefined, yielder);
    await c.run(`DROP TABLE ${SERIES_TABLE}`);
  }

  /**
   * Streams `sql`'s rows (series_id first, the `sketches` list last), calling `row` per row, then the function
   * it returns per item of the row's list.
   */
  private async eachSeries(c: DuckDBConnection, sql: string, yielder: Yielder, row: (id: bigint, col: DuckDBVector[], i: number) => (item: unknown) => void): Promise<void> {
    const result = await c.stream(sql);
    for (let chunk = await result.fetchChunk(); chunk && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
      // Read value by value, not converted a chunk at a time: a chunk of a rebuild holds ~100k sketches,
      // whose conversion alone would hold the event loop for a large part of a second.
      const col = Array.from({ length: chunk.columnCount }, (_, k) => chunk.getColumnVector(k));
      const lists = col[col.length - 1] as DuckDBListVector;
      for (let i = 0; i < chunk.rowCount; i++) {
        const add = row(col[0].getItem(i) as bigint, col, i);
        const from = lists.getEntryOffset(i);
        for (let k = from, to = from + lists.getEntryLength(i); k < to; k++) {
          add(lists.childVector.getItem(k));
          if (yielder.rowDue()) await yielder.maybe();
        }
      }
    }
  }

  /**
   * Writes SERIES_TABLE's series as hour `hour`'s mesh_board_hour rows, each with its sketch (`sketchSql`, over
   * SERIES_TABLE's `sketches` and `sketch`, that of `sketches` by series_id): appended, stamped `appendedAt`,
   * or, when that is undefined, replacing the hour's rows.
   */
  private async writeSeries(
    c: DuckDBConnection,
    hour: bigint,
    sketches: Map<bigint, SketchAccumulator>,
    sketchSql: string,
    appendedAt: bigint | undefined,
    yielder: Yielder,
  ): Promise<void> {
    await c.run(`CREATE OR REPLACE TEMP TABLE ${SKETCH_TABLE} (series_id BIGINT, sketch BLOB)`);
    await appendAll(
      c,
      SKETCH_TABLE,
      sketches,
      yielder,
      (a, [id, acc]) => {
        a.appendBigInt(id);
        appendSketch(a, acc);
      },
      "temp",
    );
    if (appendedAt === undefined) await c.run(`DELETE FROM ${BOARD_HOUR_TABLE.name} WHERE hour = make_timestamp(?::BIGINT)`, [String(hour)]);
    await c.run(
      `INSERT INTO ${BOARD_HOUR_TABLE.name} SELECT make_timestamp(?::BIGINT), ${SERIES_COLUMNS.join(", ")}, ${sketchSql}, ${appendedAt === undefined ? "NULL" : "make_timestamp(?::BIGINT)"} ` +
        `FROM ${SERIES_TABLE} LEFT JOIN ${SKETCH_TABLE} USING (series_id)`,
      [String(hour), ...(appendedAt === undefined ? [] : [String(appendedAt)])],
    );
    await c.run(`DROP TABLE ${SKETCH_TABLE}`);
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

/** Appends a row to `table` (of `catalog`) per item, `fill` writing its values, giving the event loop turns between rows. */
async function appendAll<T>(c: DuckDBConnection, table: string, items: Iterable<T>, yielder: Yielder, fill: (a: DuckDBAppender, item: T) => void, catalog?: string): Promise<void> {
  const a = await c.createAppender(table, null, catalog);
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
