// DuckDB sink: the embedded warehouse (default ./data/meshlook.duckdb). DuckDB admits one writing
// process per file, so replicas hand the file over (one stops, the next opens); the load ledger inside
// the file keeps that hand-over, and any replay, counting each summary once.
import { DuckDBInstance, DuckDBTimestampValue, type DuckDBAppender, type DuckDBConnection } from "@duckdb/node-api";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";
import { registerMeshQuantile, registerMeshSketchMerge } from "../../shared/quantile-duckdb.ts";
import { DIMENSIONS, FACT_TABLE, LEDGER_TABLE, LOSS_TABLE, MIGRATIONS, SCHEMA_VERSION_TABLE, createTableSql } from "../../shared/schema.ts";
import type { CollectorConfig } from "../config.ts";
import { loadSummaries, type LoadBatch } from "../batch.ts";
import { ledgerMatchSql, summaryCaller, type LedgerEntry } from "../ledger.ts";
import type { LossRow, MinuteRollup, MinuteRow } from "../rollup.ts";
import { prune, type PruneReport, type RetentionPolicy } from "../retention.ts";
import { Yielder } from "../yielder.ts";
import { WriteGeneration } from "./generation.ts";
import { HOURLY_SQL, HOUR_MS, closedBefore, compactAfterLoad, compactStaleHours, hourlyPolicy, hourlySettings, type Compaction, type HourlyOptions } from "./hourly.ts";
import type { DecodedSummary, LoadResult, Sink } from "./types.ts";

const ts = (ms: number) => new DuckDBTimestampValue(BigInt(Math.round(ms)) * 1000n);

export class DuckDBSink implements Sink {
  readonly kind = "duckdb" as const;
  private instance?: DuckDBInstance;
  private conn?: DuckDBConnection;
  /** Why the last open failed, so readiness and loads say why the warehouse is unreachable. */
  private openError?: Error;
  private readonly hourly: Required<HourlyOptions>;
  /**
   * The closed-hours cutoff at which every closed hour was last found current, or undefined when that is
   * not known (just opened, backlog left, compaction failed). DuckDB admits one writing process, so until
   * the cutoff moves only this sink's own loads can make a closed hour stale.
   */
  private currentBefore?: number;
  /** Oldest minute written by the last load (Infinity when it wrote none). */
  private oldestWritten = Infinity;
  /** Counts every commit that changes the database's rows; the read API keys its caches on it. */
  readonly writes = new WriteGeneration();

  constructor(
    readonly path: string,
    private readonly log?: Logger,
    hourly: HourlyOptions = {},
  ) {
    this.hourly = hourlyPolicy(hourly);
  }

  async open(): Promise<void> {
    if (this.path !== ":memory:") mkdirSync(dirname(this.path), { recursive: true });
    try {
      this.instance = await DuckDBInstance.create(this.path);
    } catch (err) {
      this.openError = err as Error; // e.g. the file is locked by another process
      throw err;
    }
    this.openError = undefined;
    this.conn = await this.instance.connect();
    registerMeshQuantile(this.conn);
    registerMeshSketchMerge(this.conn);
    await this.migrate();
    // Keys of the batch being loaded, joined against the ledger inside the load transaction.
    await this.conn.run("CREATE TEMP TABLE IF NOT EXISTS incoming_keys (i INTEGER NOT NULL, caller VARCHAR NOT NULL, producer_id VARCHAR NOT NULL, seq BIGINT NOT NULL)");
  }

  /** The open connection (MESH_QUANTILE registered), for queries in the same process. */
  get connection(): DuckDBConnection {
    if (!this.conn) throw new Error(this.openError ? `DuckDB file ${this.path} cannot be opened: ${this.openError.message}` : "DuckDB sink is not open");
    return this.conn;
  }

  /**
   * A further connection to the same open database, MESH_QUANTILE registered, for reads that must not
   * share the loader's connection (and its open transactions). The caller closes it.
   */
  async connectReader(): Promise<DuckDBConnection> {
    if (!this.instance || !this.conn) return this.connection; // throws, saying why
    const c = await this.instance.connect();
    registerMeshQuantile(c);
    registerMeshSketchMerge(c);
    return c;
  }

  private async migrate(): Promise<void> {
    const c = this.connection;
    await c.run(createTableSql(SCHEMA_VERSION_TABLE, "duckdb"));
    const done = new Set((await c.runAndReadAll(`SELECT version FROM ${SCHEMA_VERSION_TABLE.name}`)).getRows().map((r) => Number(r[0])));
    for (const m of MIGRATIONS) {
      if (done.has(m.version)) continue;
      await this.transaction(async () => {
        for (const sql of m.statements("duckdb")) await c.run(sql);
        await c.run(`INSERT INTO ${SCHEMA_VERSION_TABLE.name} VALUES ($1, $2, now()::TIMESTAMP)`, [m.version, m.name]);
      });
      this.log?.info({ version: m.version, name: m.name }, "warehouse migration applied");
    }
  }

  private async transaction<T>(body: () => Promise<T>): Promise<T> {
    const c = this.connection;
    await c.run("BEGIN TRANSACTION");
    try {
      const out = await body();
      await this.writes.commit(() => c.run("COMMIT"));
      return out;
    } catch (err) {
      await c.run("ROLLBACK").catch(() => undefined);
      throw err;
    }
  }

  private async append(table: string, fill: (a: DuckDBAppender) => void | Promise<void>): Promise<void> {
    const a = await this.connection.createAppender(table);
    try {
      await fill(a);
      a.flushSync();
    } catch (err) {
      // Closing an appender whose flush failed fails again ("transaction is aborted"); the flush's error
      // is the one that says which row the warehouse refused, and the loader classifies by it.
      try {
        a.closeSync();
      } catch {
        // the transaction rolls back either way
      }
      throw err;
    }
    a.closeSync();
  }

  load(summaries: DecodedSummary[]): Promise<LoadResult> {
    return loadSummaries(this, summaries);
  }

  async loadBatch(batch: LoadBatch): Promise<LoadResult | null> {
    return this.transaction(async () => {
      const seen = await this.ledgered(batch.entries);
      const fresh = batch.entries.map((_, i) => !seen.has(i));
      const parts = batch.parts(fresh);
      if (!parts) return null;
      let rows = 0;
      for await (const part of parts) rows += await this.appendRows(part);
      await this.appendLedger(batch.entries.filter((_, i) => fresh[i]));
      return { loaded: batch.entries.length - seen.size, duplicates: seen.size, rows };
    });
  }

  /**
   * (Re)compacts the closed hours whose minute rows changed since their hourly rows were built, at most
   * maxHoursPerLoad of them, oldest first, in one transaction (hourly.ts has the rule). Stateless and
   * idempotent: run twice, the second finds nothing stale. Returns the hours compacted.
   */
  async compact(nowMs = this.hourly.now()): Promise<Date[]> {
    return (await this.compaction(nowMs)).hours;
  }

  private async compaction(nowMs: number): Promise<Compaction> {
    const c = this.connection;
    return compactStaleHours(
      this.hourly,
      nowMs,
      async (from, cutoff) =>
        (await c.runAndReadAll(HOURLY_SQL.staleHours, [ts(from), ts(cutoff), ts(from)])).getRows().map((r) => Number((r[0] as DuckDBTimestampValue).micros / 1000n)),
      (h) =>
        this.transaction(async () => {
          await c.run(HOURLY_SQL.deleteHour, [ts(h)]);
          await c.run(HOURLY_SQL.insertHour, [ts(nowMs), ts(h), ts(h + HOUR_MS)]);
        }),
    );
  }

  /**
   * Compacts after a load unless nothing can have gone stale since every closed hour was last found
   * current: the cutoff has not moved and the load wrote no minute of a closed hour. That spares the
   * stale-hour count (a scan of the fact table's minute column) on the loads of open-hour traffic that
   * are nearly all of them; an hour closing or a late summary brings it back.
   */
  async compactLoaded(): Promise<void> {
    const nowMs = this.hourly.now();
    const cutoff = closedBefore(nowMs, this.hourly.graceMs);
    const oldest = this.oldestWritten;
    this.oldestWritten = Infinity;
    if (this.currentBefore === cutoff && oldest >= cutoff) return;
    this.currentBefore = undefined;
    await compactAfterLoad(
      this.hourly,
      async () => {
        const done = await this.compaction(nowMs);
        if (done.waiting === 0 && done.failed.length === 0) this.currentBefore = cutoff;
        return done;
      },
      this.log,
      (err) => ({ fields: { err }, message: (err as Error).message, reason: "duckdb" }),
    );
  }

  /**
   * Positions in `keys` of the keys already in the ledger (inside the caller's transaction): the same
   * caller's (producer_id, seq), or any caller's where either is legacy (ledgerMatchSql). The keys are
   * compared by DuckDB, never rebuilt from strings it hands back: @duckdb/node-api drops a leading
   * U+FEFF from VARCHARs it returns, so a rebuilt key could miss the ledger row it came from.
   */
  private async ledgered(keys: readonly { caller?: string; producerId: string; seq: number }[]): Promise<Set<number>> {
    const c = this.connection;
    await c.run("DELETE FROM incoming_keys");
    await this.append("incoming_keys", (a) => {
      for (const [i, k] of keys.entries()) {
        a.appendInteger(i);
        a.appendVarchar(summaryCaller(k));
        a.appendVarchar(k.producerId);
        a.appendBigInt(BigInt(k.seq));
        a.endRow();
      }
    });
    const hits = await c.runAndReadAll(`SELECT DISTINCT k.i FROM incoming_keys k JOIN ${LEDGER_TABLE.name} l ON ${ledgerMatchSql("l", "k")}`);
    return new Set(hits.getRows().map((r) => Number(r[0])));
  }

  /** Appends the ledger rows of the summaries a load writes (inside its transaction). */
  private async appendLedger(entries: readonly LedgerEntry[]): Promise<void> {
    const now = ts(Date.now());
    await this.append(LEDGER_TABLE.name, (a) => {
      for (const e of entries) {
        a.appendVarchar(e.producerId);
        a.appendBigInt(BigInt(e.seq));
        a.appendTimestamp(ts(e.windowStartMs));
        a.appendTimestamp(ts(e.windowEndMs));
        a.appendInteger(e.series);
        a.appendBigInt(BigInt(e.requests));
        a.appendTimestamp(now);
        a.appendVarchar(e.caller);
        a.endRow();
      }
    });
  }

  /** Appends a part's fact and loss rows (inside the caller's transaction); returns the fact row count. */
  private async appendRows(part: MinuteRollup): Promise<number> {
    const yielder = new Yielder();
    const now = ts(Date.now());
    let n = 0;
    await this.append(FACT_TABLE.name, async (a) => {
      for (const r of part.rows()) {
        if (r.minuteMs < this.oldestWritten) this.oldestWritten = r.minuteMs;
        appendFactRow(a, r, now);
        n++;
        if (yielder.rowDue()) await yielder.maybe();
      }
    });
    if (part.losses.length > 0) {
      await this.append(LOSS_TABLE.name, (a) => {
        for (const l of part.losses) appendLossRow(a, l, now);
      });
    }
    return n;
  }

  /**
   * DuckDB's errors about the data it was given (its ErrorType classes CONSTRAINT, CONVERSION,
   * OUT_OF_RANGE, INVALID_INPUT; an appender reports a constraint as "Failed to append: … constraint
   * failed"; node-api refuses a BIGINT beyond int64 itself); I/O, lock, catalog and aborted-transaction
   * errors are not refusals.
   */
  refusal(err: unknown): string | undefined {
    const m = (err as Error)?.message ?? "";
    if (/Constraint Error|constraint failed|violates .*constraint/i.test(m)) return "constraint";
    if (/Invalid Input Error|invalid unicode|UTF-8/i.test(m)) return "encoding";
    // node-api's own check when a number does not fit the column, before DuckDB sees it.
    if (/Conversion Error|Out of Range Error|out of int64 range/.test(m)) return "value";
    return undefined;
  }

  prune(policy: RetentionPolicy, nowMs: number): Promise<PruneReport[]> {
    const c = this.connection;
    return prune(
      policy,
      nowMs,
      async (sql, cutoff) => {
        const v = (await c.runAndReadAll(sql, [ts(cutoff)])).getRows()[0]?.[0] as DuckDBTimestampValue | null;
        return v ? Number(v.micros / 1000n) : undefined;
      },
      async (sql, before) =>
        (
          await this.writes.commit(
            () => c.run(sql, [ts(before)]),
            (r) => r.rowsChanged > 0,
          )
        ).rowsChanged,
    );
  }

  async ping(): Promise<void> {
    await this.connection.run("SELECT 1");
  }

  async close(): Promise<void> {
    this.conn?.closeSync();
    this.instance?.closeSync();
    this.conn = undefined;
    this.instance = undefined;
  }
}

/** Appends one fact row in FACT_TABLE column order (minute, dimensions, measures, loaded_at). */
function appendFactRow(a: DuckDBAppender, r: MinuteRow, loadedAt: DuckDBTimestampValue): void {
  a.appendTimestamp(ts(r.minuteMs));
  for (const d of DIMENSIONS) {
    if (d === "response_code") a.appendInteger(Number(r.dimensions[d]));
    else a.appendVarchar(String(r.dimensions[d]));
  }
  a.appendBigInt(BigInt(r.requests));
  a.appendBigInt(BigInt(r.errors));
  a.appendBigInt(BigInt(r.requestBytes));
  a.appendBigInt(BigInt(r.responseBytes));
  a.appendBigInt(BigInt(r.latencySumUs));
  a.appendBigInt(BigInt(r.latencyMinUs));
  a.appendBigInt(BigInt(r.latencyMaxUs));
  a.appendVarchar(JSON.stringify(r.sketch));
  a.appendTimestamp(loadedAt);
  a.endRow();
}

/** Appends one loss row in LOSS_TABLE column order. */
function appendLossRow(a: DuckDBAppender, l: LossRow, loadedAt: DuckDBTimestampValue): void {
  a.appendTimestamp(ts(l.minuteMs));
  a.appendVarchar(l.producerId);
  a.appendBigInt(BigInt(l.seq));
  a.appendVarchar(l.pod);
  a.appendVarchar(l.namespace);
  a.appendVarchar(l.workload);
  a.appendBigInt(BigInt(l.droppedRequests));
  a.appendBigInt(BigInt(l.droppedWindows));
  a.appendBigInt(BigInt(l.overflowKeys));
  a.appendTimestamp(loadedAt);
  a.appendVarchar(l.caller);
  a.endRow();
}

/**
 * Sink factory used by collector/main.ts: the hourly rollup follows the collector's settings; `hourly`
 * adds to them (the collector's metrics callback, a test clock).
 */
export function createDuckDBSink(config: CollectorConfig, log: Logger, options: { hourly?: HourlyOptions } = {}): Sink {
  return new DuckDBSink(config.duckdbPath, log, { ...hourlySettings(config), ...options.hourly });
}
