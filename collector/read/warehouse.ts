// Runs the read API's statements on the collector's own DuckDB database (a connection of its own next to
// the loader's, so no second process fights for the file lock) and caches answers until the database
// changes: the sink counts its commits (collector/sink/generation.ts), and this process is its only writer.
import type { DuckDBBlobValue, DuckDBConnection, DuckDBListValue } from "@duckdb/node-api";
import { meshQuantile } from "../../shared/quantile.ts";
import { LEDGER_TABLE } from "../../shared/schema.ts";
import type { WriteGeneration } from "../sink/generation.ts";
import type { Scope } from "./access.ts";
import {
  MAX_MINUTE_SKETCHES,
  MINUTE_ROWS_ONLY,
  QUANTILES,
  QUANTILE_FIELDS,
  ReadError,
  countersStatement,
  groupColumns,
  minuteTableAnswers,
  sketchesStatement,
  usableHoursStatement,
  type Plan,
  type Statement,
  type TrafficQuery,
} from "./query.ts";
import { Yielder } from "../yielder.ts";
import { SketchAccumulator } from "./sketches.ts";

export type Row = Record<string, string | number | boolean | null>;

/** What the read API needs from the warehouse: fresh connections to the same database, and its commits counted. */
export interface ReadSource {
  connectReader(): Promise<DuckDBConnection>;
  /** Every commit that changes the database's rows, counted; the caches are keyed on it. */
  readonly writes: WriteGeneration;
}

const CACHE_ENTRIES = 500;

/** An hour of usableHoursStatement's answer. */
interface UsableHour {
  hour: number;
  whole: boolean;
  minutes: boolean;
}

const FRESHNESS_SQL = `SELECT epoch_ms(MAX(loaded_at)) AS l, epoch_ms(MAX(window_end)) AS m FROM ${LEDGER_TABLE.name}`;
/**
 * Reads the database and nothing of it: DuckDB takes a transaction's snapshot when a statement first reads
 * the database (MetaTransaction::GetTransaction starts the database's transaction on first access), not at
 * BEGIN, so this one fixes when the snapshot is taken.
 */
const TAKE_SNAPSHOT_SQL = `SELECT 1 FROM ${LEDGER_TABLE.name} LIMIT 0`;

/**
 * Promises by key, for one generation of the database at a time: a newer generation drops them all, and an
 * older one (a question that counted before a commit) is computed but not kept. Concurrent asks for the same
 * key share one computation; a failed one is not kept.
 */
class GenerationCache<T> {
  private entries = new Map<string, Promise<T>>();
  private generation = -1;

  get(generation: number | undefined, key: string, compute: () => Promise<T>): Promise<T> {
    if (generation === undefined || generation < this.generation) return compute();
    if (generation > this.generation) {
      this.entries.clear();
      this.generation = generation;
    }
    let hit = this.entries.get(key);
    if (!hit) {
      const made = compute();
      this.entries.set(key, made);
      made.catch(() => this.entries.get(key) === made && this.entries.delete(key));
      if (this.entries.size > CACHE_ENTRIES) this.entries.delete(this.entries.keys().next().value!);
      hit = made;
    }
    return hit;
  }
}

const plain = (v: unknown): string | number | boolean | null =>
  v === null || v === undefined ? null : typeof v === "bigint" ? Number(v) : typeof v === "number" || typeof v === "boolean" ? v : String(v);

export class ReadWarehouse {
  private answers = new GenerationCache<unknown>();
  /** usableHoursStatement's answers by range. */
  private usable = new GenerationCache<UsableHour[]>();
  private pool: DuckDBConnection[] = [];

  constructor(
    private readonly source: ReadSource,
    private readonly maxMinuteSketches = MAX_MINUTE_SKETCHES,
  ) {}

  /** An idle connection, or a new one; the caller gives it back to the pool. */
  private async take(): Promise<DuckDBConnection> {
    return (
      this.pool.pop() ??
      this.source.connectReader().catch((err: Error) => {
        throw new ReadError(503, "warehouse_unavailable", err.message);
      })
    );
  }

  async run(st: Statement): Promise<Row[]> {
    const c = await this.take();
    try {
      return await rows(c, st);
    } finally {
      this.pool.push(c);
    }
  }

  /**
   * `body`'s statements on one connection in one read transaction, so they all see one snapshot: a load
   * (or the pre-aggregate's stage) committing meanwhile can never give a question counters of one state
   * and percentiles, or pre-aggregated hours, of another. `body` gets the generation the snapshot holds
   * exactly, or undefined when a commit may have run while it was taken (WriteGeneration.current).
   */
  private async snapshot<T>(body: (c: DuckDBConnection, generation: number | undefined) => Promise<T>): Promise<T> {
    const c = await this.take();
    try {
      const before = this.source.writes.current;
      await c.run("BEGIN TRANSACTION");
      try {
        await c.run(TAKE_SNAPSHOT_SQL);
        const after = this.source.writes.current;
        const out = await body(c, before === after ? before : undefined);
        await c.run("COMMIT");
        return out;
      } catch (err) {
        await c.run("ROLLBACK").catch(() => undefined);
        throw err;
      }
    } finally {
      this.pool.push(c);
    }
  }

  /**
   * The merged sketch of each group of `st` (sketchesStatement: `keyColumns` group columns, then the group's
   * binary and JSON sketches as two lists), merged here (sketches.ts): the sketches come out as plain
   * column chunks, where a MESH_SKETCH_MERGE(ARRAY_AGG(…)) would hand every sketch across to a JavaScript
   * UDF one value at a time.
   */
  private async mergedSketches(c: DuckDBConnection, st: Statement, keyColumns: number): Promise<Map<string, SketchAccumulator>> {
    const merged = new Map<string, SketchAccumulator>();
    // Ingest shares the event loop, and one group may hold a day's sketches of every series.
    const yielder = new Yielder();
    const result = await c.stream(st.sql, st.params);
    for (let chunk = await result.fetchChunk(); chunk && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
      const columns = chunk.getColumns();
      const bins = columns[keyColumns] as (DuckDBListValue | null)[];
      const jsons = columns[keyColumns + 1] as (DuckDBListValue | null)[];
      for (let i = 0; i < chunk.rowCount; i++) {
        const acc = new SketchAccumulator();
        for (const b of bins[i]?.items ?? []) {
          acc.addBinary((b as DuckDBBlobValue).bytes);
          if (yielder.rowDue()) await yielder.maybe();
        }
        for (const j of jsons[i]?.items ?? []) {
          acc.addJson(j as string);
          if (yielder.rowDue()) await yielder.maybe();
        }
        merged.set(JSON.stringify(columns.slice(0, keyColumns).map((col) => plain(col[i]))), acc);
      }
    }
    return merged;
  }

  /**
   * How many commits have changed the database's rows (null while one is under way): what a client polls
   * to learn that its answers may have changed, which the newest load alone misses for a load stamped by a
   * clock behind and for retention's deletes.
   */
  get dataVersion(): number | null {
    return this.source.writes.current ?? null;
  }

  /** The newest load (epoch ms) and the newest minute with traffic; null before the first load. */
  async freshness(): Promise<{ latestLoadMs: number | null; latestMinuteMs: number | null }> {
    const [row] = await this.run({ sql: FRESHNESS_SQL, params: [] });
    return { latestLoadMs: row.l as number | null, latestMinuteMs: row.m as number | null };
  }

  /**
   * `compute`'s answer for `key`, reused until the database changes. Its snapshot, taken after the count is
   * read, holds at least the commits counted. Concurrent asks for the same key share one computation; a
   * failed one is not kept.
   */
  async cached<T>(key: string, compute: () => Promise<T>): Promise<T> {
    return this.answers.get(this.source.writes.current, key, compute) as Promise<T>;
  }

  /**
   * Which pre-aggregate answers which hours of the question's range in the snapshot `c` reads (query.ts
   * usableHoursStatement): whole hours from mesh_board_hour unless it is a per-minute series, whose buckets
   * are minutes; for those, mesh_board_minute where it answers them (minuteTableAnswers).
   */
  async plan(c: DuckDBConnection, q: TrafficQuery, generation: number | undefined): Promise<Plan> {
    if (q.interval === "minute" && !minuteTableAnswers(q)) return MINUTE_ROWS_ONLY;
    // The same for every question over this range in one generation, and a board asks several at once:
    // shared by the questions whose snapshots hold exactly that generation; any other counts its own.
    const hours = await this.usable.get(generation, JSON.stringify([q.fromMs, q.toMs]), async () =>
      (await rows(c, usableHoursStatement(q))).map((r) => ({ hour: r.hour as number, whole: r.whole === true, minutes: r.minutes === true })),
    );
    return q.interval === "minute"
      ? { hours: [], minuteHours: hours.filter((h) => h.minutes).map((h) => h.hour) }
      : { hours: hours.filter((h) => h.whole).map((h) => h.hour), minuteHours: [] };
  }

  /** Rows of the statement `build` makes for the question's plan, in one snapshot. */
  async over(q: TrafficQuery, build: (plan: Plan) => Statement): Promise<Row[]> {
    return this.snapshot(async (c, generation) => rows(c, build(await this.plan(c, q, generation))));
  }

  /**
   * Traffic rows: the counters of countersStatement, joined with the percentiles of the merged sketches
   * (sketchesStatement) for the same groups, plus the LookML's derived measures (error rate, rate per
   * second over the group's window, mean latency, mTLS share).
   */
  async traffic(q: TrafficQuery, scope: Scope): Promise<{ rows: Row[]; hourlyHours: number }> {
    return this.snapshot((c, generation) => this.trafficIn(c, q, scope, generation));
  }

  private async trafficIn(c: DuckDBConnection, q: TrafficQuery, scope: Scope, generation: number | undefined): Promise<{ rows: Row[]; hourlyHours: number }> {
    const plan = await this.plan(c, q, generation);
    // An ungrouped aggregate over no rows is one row of NULLs: no traffic is no row.
    const counters = (await rows(c, countersStatement(q, scope, plan))).filter((r) => r.requests !== null);
    const keys = groupColumns(q);
    const keyOf = (r: Row) => JSON.stringify(keys.map((k) => r[k]));
    const quantiles = new Map<string, (number | null)[]>();
    const sketches = counters.reduce((n, r) => n + (r.source_rows as number), 0);
    if (q.percentiles && q.interval === "minute" && sketches > this.maxMinuteSketches) {
      throw new ReadError(
        400,
        "too_many_sketches",
        `per-minute percentiles here would merge ${sketches} minute sketches (at most ${this.maxMinuteSketches}); use interval=hour or narrow the filters`,
      );
    }
    if (q.percentiles && counters.length > 0) {
      for (const [key, acc] of await this.mergedSketches(c, sketchesStatement(q, scope, plan), keys.length)) {
        const sketch = acc.toJson();
        quantiles.set(
          key,
          QUANTILES.map((p) => (sketch ? meshQuantile([sketch], p) : null)),
        );
      }
    }
    const out = counters.map((r) => {
      const requests = r.requests as number;
      const { source_rows: _, ...out }: Row = r;
      out.error_rate = requests > 0 ? (r.errors as number) / requests : null;
      out.mtls_share = requests > 0 ? (r.mtls_requests as number) / requests : null;
      out.requests_per_second = requests / (((r.last_minute as number) - (r.first_minute as number)) / 1000 + 60);
      out.latency_mean_ms = requests > 0 ? (r.latency_sum_us as number) / requests / 1000 : null;
      out.latency_min_ms = r.latency_min_us === null ? null : (r.latency_min_us as number) / 1000;
      out.latency_max_ms = r.latency_max_us === null ? null : (r.latency_max_us as number) / 1000;
      if (q.percentiles) {
        const qs = quantiles.get(keyOf(r)) ?? QUANTILES.map(() => null);
        QUANTILE_FIELDS.forEach((f, i) => (out[f] = qs[i] === null ? null : qs[i]! / 1000));
      }
      return out;
    });
    return { rows: out, hourlyHours: plan.hours.length + plan.minuteHours.length };
  }

  async close(): Promise<void> {
    for (const c of this.pool.splice(0)) c.closeSync();
  }
}

async function rows(c: DuckDBConnection, st: Statement): Promise<Row[]> {
  const reader = await c.runAndReadAll(st.sql, st.params);
  const names = reader.columnNames();
  return reader.getRows().map((r) => Object.fromEntries(names.map((n, i) => [n, plain(r[i])])));
}
