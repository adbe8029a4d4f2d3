// Snowflake sink: the production warehouse, loaded with snowflake-sdk over key-pair (JWT) auth.
//
// One load cycle is one transaction (docs/snowflake.md, "How a load works"); exactly-once across retries
// and replicas rests on the ledger rows written in it:
//  1. outside any transaction, the batch's ledger rows, each with its position in the batch, go into a
//     session-private temporary table (array-bound INSERTs), and the rows whose (caller, producer_id, seq)
//     the ledger already holds are deleted from it; the positions left are the candidates C, compared by
//     Snowflake and read back as numbers, never as rebuilt key strings;
//  2. BEGIN; UPDATE the `load` row of mesh_load_lock. Two UPDATEs of one row cannot both proceed, so a
//     second replica's transaction waits here until the first commits or rolls back — Snowflake promises
//     no such thing for an insert-only MERGE, which may run in parallel like an INSERT — and, under READ
//     COMMITTED, every statement after the wait sees what the first committed. Then MERGE the temporary
//     table into mesh_load_ledger (WHEN NOT MATCHED THEN INSERT): it inserts only candidates, so when it
//     reports |C| inserted rows and a count read after it finds each candidate in the ledger exactly
//     once, this transaction has claimed all of C; otherwise (another replica committed some of C before
//     this one took the lock) it rolls back and starts again from 1;
//  3. the fact rows for C (the batch's parts, the first rolled up before BEGIN) and the loss rows of
//     those in C that report one are inserted in statements of bounded size, then COMMIT.
// A crash or lost response after COMMIT leaves the ledger rows in place, so the retried batch finds
// every summary in step 1 and loads nothing twice.
import { hostname } from "node:os";
import type { Logger } from "pino";
import snowflake from "snowflake-sdk";
import { snowflakeQuantileUdfBody, snowflakeSketchMergeUdfBody } from "../../shared/quantile.ts";
import { DIMENSIONS, FACT_TABLE, LEDGER_TABLE, LOCK_TABLE, LOSS_TABLE, MIGRATIONS, SCHEMA_VERSION_TABLE, createTableSql } from "../../shared/schema.ts";
import type { CollectorConfig, SnowflakeSettings } from "../config.ts";
import { loadSummaries, type LoadBatch } from "../batch.ts";
import { ledgerMatchSql, type LedgerEntry } from "../ledger.ts";
import type { LossRow, MinuteRow } from "../rollup.ts";
import { prune, type PruneReport, type RetentionPolicy } from "../retention.ts";
import { Yielder } from "../yielder.ts";
import { HOURLY_SQL, HOUR_MS, compactAfterLoad, compactStaleHours, hourlyPolicy, hourlySettings, type Compaction, type HourlyOptions } from "./hourly.ts";
import { SnowflakeSinkError, checkSnowflakeSettings, fileStamp, readCredential, type Credential } from "./snowflake-settings.ts";
import type { DecodedSummary, LoadResult, Sink } from "./types.ts";

export { SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S, SnowflakeSinkError, checkSnowflakeSettings, type SnowflakeFailure } from "./snowflake-settings.ts";

/**
 * Most values bound in one statement. Above the driver's array-binding threshold snowflake-sdk would
 * upload the binds to a stage instead (dist/lib/connection/statement.js, `numBinds > threshold` →
 * StageBindingRequest, 3.3.0). That threshold is the session's CLIENT_STAGE_ARRAY_BINDING_THRESHOLD
 * (the driver's default 100,000, dist/lib/parameters.js; an account's value is not documented) unless
 * the connection sets arrayBindingThreshold, which overrides it: the sink sets it to this value and stays
 * at or below it, so the stand-in's count of round trips is the driver's (no stage upload).
 */
export const MAX_BINDS_PER_STATEMENT = 65280;

/**
 * Most bytes of bound values in one statement. Snowflake asks clients to keep a statement, binds
 * included, within 1 MB (uncompressed to be safe): a larger one runs, but is truncated in the metadata
 * store and so cannot be retried or rerun (docs.snowflake.com/en/user-guide/query-size-limits) — and the
 * driver does retry a statement whose answer was lost. 4 % is left for the SQL text and the request's
 * JSON framing (a type per bound column).
 */
export const MAX_BIND_BYTES_PER_STATEMENT = 960_000;

/** MESHLOOK_SNOWFLAKE_CONNECT_TIMEOUT_S default: a login normally answers in about a second. */
export const DEFAULT_CONNECT_TIMEOUT_S = 20;

export interface SnowflakeSinkOptions {
  /** Attempts per load() for transient failures and ledger conflicts before the error surfaces. Default 4. */
  maxAttempts?: number;
  /** First backoff (doubled per attempt, with jitter, capped at 30 s). Default 1000 ms. */
  backoffMs?: number;
  /** Largest number of bound values per statement (tests lower it to exercise chunking). */
  maxBindsPerStatement?: number;
  /** Largest bytes of bound values per statement (tests lower it); at most MAX_BIND_BYTES_PER_STATEMENT. */
  maxBindBytesPerStatement?: number;
  /** Called for every failure that load()/open() retries: what the collector counts as retries. */
  onRetry?: (err: SnowflakeSinkError, attempt: number) => void;
  /** Hourly rollup policy (grace, hours per load, clock); defaults in hourly.ts. */
  hourly?: HourlyOptions;
  /**
   * A running transaction of the loader user older than this (seconds) is taken to belong to a dead
   * collector and aborted when the sink opens. Default 1800: every statement of a live one ends within
   * STATEMENT_TIMEOUT_IN_SECONDS (600) and a load transaction is a handful of them.
   */
  staleTransactionS?: number;
}

/** Who takes the lock rows, for mesh_load_lock.taken_by (diagnostics only). */
const WRITER = `${hostname()}/${process.pid}`;

const BATCH_TABLE = "mesh_load_batch";
const LEDGER_COLUMNS = LEDGER_TABLE.columns.map((c) => c.name);
const FACT_COLUMNS = FACT_TABLE.columns.map((c) => c.name);
const LOSS_COLUMNS = LOSS_TABLE.columns.map((c) => c.name);

// Login refusals: wrong key or password, disabled or locked user, role not granted.
const AUTH_CODES = new Set(["390100", "390101", "390102", "390144", "390186", "390191", "394304"]);
// Mistakes a retry cannot fix: no usable warehouse (000606), SQL compilation (42xxx), data (22xxx),
// integrity constraint (23xxx), unsupported feature (0Axxx). Everything else — network, lost or expired session, lock and statement
// timeouts, cancellation, internal errors — is worth retrying.
const PERMANENT_CODES = new Set(["000606"]);
const PERMANENT_SQLSTATE = /^(42|22|23|0A)/;

/** Classifies a driver error without copying anything from the request into the message. */
function classify(err: unknown, doing: string): SnowflakeSinkError {
  if (err instanceof SnowflakeSinkError) return err;
  const e = err as { code?: unknown; sqlState?: string; message?: string };
  const code = e.code === undefined ? undefined : String(e.code);
  const msg = `${doing}: ${e.message ?? String(err)}${code ? ` (code ${code}${e.sqlState ? `, SQLSTATE ${e.sqlState}` : ""})` : ""}`;
  if (code && AUTH_CODES.has(code)) return new SnowflakeSinkError("auth", msg, code, e.sqlState);
  if ((code && PERMANENT_CODES.has(code)) || PERMANENT_SQLSTATE.test(e.sqlState ?? "")) return new SnowflakeSinkError("sql", msg, code, e.sqlState);
  return new SnowflakeSinkError("transient", msg, code, e.sqlState);
}

/** Epoch ms of a TIMESTAMP_NTZ the driver returned (a Date-like value in UTC, or its text). */
function timestampMs(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  const ms = Date.parse(`${String(v).replace(" ", "T")}Z`);
  if (Number.isNaN(ms)) throw new SnowflakeSinkError("sql", "hourly rollup: unreadable hour from the warehouse");
  return ms;
}

const sqlTimestamp = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");

const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(", ");

/** Every statement the sink sends, fixed text with `?` placeholders: values are only ever bound. */
export const SNOWFLAKE_SQL = {
  // A replica that dies inside a load transaction keeps the lock row until Snowflake ends its session
  // (hours: docs/snowflake.md has the session policy that shortens it); waiters give up after
  // LOCK_TIMEOUT (transient, retried) instead of hanging, and the next replica to open aborts it.
  lockTimeout: "ALTER SESSION SET LOCK_TIMEOUT = 120",
  statementTimeout: "ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = 600",
  // A query whose client vanished is aborted 5 minutes later instead of running on (Snowflake's default
  // is to let it finish).
  abortDetached: "ALTER SESSION SET ABORT_DETACHED_QUERY = TRUE",
  // Timestamps are bound as text in sqlTimestamp's form; pin how Snowflake reads them (the account's
  // TIMESTAMP_INPUT_FORMAT could be anything) and read every TIMESTAMP_NTZ/LTZ in UTC.
  timestampInputFormat: "ALTER SESSION SET TIMESTAMP_INPUT_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF3'",
  timezone: "ALTER SESSION SET TIMEZONE = 'UTC'",
  takeLock: `UPDATE ${LOCK_TABLE.name} SET taken_by = ?, taken_at = ? WHERE name = ?`,
  showTransactions: "SHOW TRANSACTIONS",
  schemaVersionTable: createTableSql(SCHEMA_VERSION_TABLE, "snowflake"),
  appliedVersions: `SELECT version FROM ${SCHEMA_VERSION_TABLE.name}`,
  recordVersion:
    `MERGE INTO ${SCHEMA_VERSION_TABLE.name} AS v USING (SELECT ? AS version, ? AS name, ? AS applied_at) AS m ON v.version = m.version ` +
    `WHEN NOT MATCHED THEN INSERT (version, name, applied_at) VALUES (m.version, m.name, m.applied_at)`,
  createBatchTable: createTableSql(
    { ...LEDGER_TABLE, name: BATCH_TABLE, primaryKey: undefined, columns: [{ name: "i", type: "int32", doc: "position in the batch" }, ...LEDGER_TABLE.columns] },
    "snowflake",
  ).replace(/^CREATE TABLE/, "CREATE TEMPORARY TABLE"),
  clearBatch: `DELETE FROM ${BATCH_TABLE}`,
  fillBatch: `INSERT INTO ${BATCH_TABLE} (i, ${LEDGER_COLUMNS.join(", ")}) VALUES (${placeholders(LEDGER_COLUMNS.length + 1)})`,
  dropLedgered: `DELETE FROM ${BATCH_TABLE} USING ${LEDGER_TABLE.name} WHERE ${ledgerMatchSql(LEDGER_TABLE.name, BATCH_TABLE)}`,
  candidates: `SELECT i FROM ${BATCH_TABLE}`,
  begin: "BEGIN TRANSACTION",
  claim:
    // The same match as dropLedgered: a row another replica committed meanwhile under either key form
    // leaves its candidate uninserted, so the count check below sees the conflict.
    `MERGE INTO ${LEDGER_TABLE.name} AS l USING ${BATCH_TABLE} AS b ON ${ledgerMatchSql("l", "b")} ` +
    `WHEN NOT MATCHED THEN INSERT (${LEDGER_COLUMNS.join(", ")}) VALUES (${LEDGER_COLUMNS.map((c) => `b.${c}`).join(", ")})`,
  claimedRows: `SELECT COUNT(*) AS n FROM ${LEDGER_TABLE.name} AS l JOIN ${BATCH_TABLE} AS b ON ${ledgerMatchSql("l", "b")}`,
  insertFacts: `INSERT INTO ${FACT_TABLE.name} (${FACT_COLUMNS.join(", ")}) VALUES (${placeholders(FACT_COLUMNS.length)})`,
  insertLosses: `INSERT INTO ${LOSS_TABLE.name} (${LOSS_COLUMNS.join(", ")}) VALUES (${placeholders(LOSS_COLUMNS.length)})`,
  commit: "COMMIT",
  rollback: "ROLLBACK",
  ...HOURLY_SQL,
} as const;

/**
 * `CREATE OR REPLACE FUNCTION <name>(<args>) COPY GRANTS RETURNS … LANGUAGE JAVASCRIPT` with `body` as its
 * $$-quoted source. COPY GRANTS keeps MESHLOOK_READER's USAGE on the function across the replace on every
 * start; without it Looker's queries fail after each collector restart.
 */
function javascriptUdfSql(name: string, returns: string, body: string): string {
  // A `$$` inside the body would end Snowflake's dollar-quoted literal early.
  if (body.includes("$$")) throw new Error("shared/quantile-core.js must not contain $$ (it is a Snowflake $$-literal)");
  return `CREATE OR REPLACE FUNCTION ${name} COPY GRANTS RETURNS ${returns} LANGUAGE JAVASCRIPT AS $$\n${body}$$`;
}

/**
 * `CREATE OR REPLACE FUNCTION MESH_QUANTILE` with the body of shared/quantile-core.js — the same source
 * the DuckDB UDF runs, so the two warehouses cannot disagree on a percentile.
 */
export function meshQuantileUdfSql(): string {
  return javascriptUdfSql("MESH_QUANTILE(SKETCHES ARRAY, Q DOUBLE)", "DOUBLE", snowflakeQuantileUdfBody());
}

/** `CREATE OR REPLACE FUNCTION MESH_SKETCH_MERGE`, from the same source: the hourly rollup's sketch merge. */
export function meshSketchMergeUdfSql(): string {
  return javascriptUdfSql("MESH_SKETCH_MERGE(SKETCHES ARRAY)", "VARCHAR", snowflakeSketchMergeUdfBody());
}

/** The Snowflake DDL of every numbered migration, in order (schema-version table first). */
export function snowflakeMigrationSql(): { version: number; name: string; statements: string[] }[] {
  return MIGRATIONS.map((m) => ({ version: m.version, name: m.name, statements: m.statements("snowflake") }));
}

let driverConfigured = false;
/** The driver logs to ./snowflake.log at INFO by default; route its warnings and errors to our logger. */
function configureDriver(log?: Logger): void {
  if (driverConfigured) return;
  driverConfigured = true;
  const child = log?.child({ component: "snowflake-sdk" });
  const drop = () => undefined;
  snowflake.configure({
    logLevel: "WARN",
    customLogger: {
      error: (m: string) => child?.error(m),
      warn: (m: string) => child?.warn(m),
      info: drop,
      debug: drop,
      trace: drop,
    },
  } as Parameters<typeof snowflake.configure>[0]);
}

type Row = Record<string, unknown>;

export class SnowflakeSink implements Sink {
  readonly kind = "snowflake" as const;
  private conn?: snowflake.Connection;
  private connecting?: Promise<snowflake.Connection>;
  /** Why the last connect failed, for readiness checks made while no session is up. */
  private lastConnectError?: SnowflakeSinkError;
  private credential?: Credential;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly maxBinds: number;
  private readonly maxBindBytes: number;
  private readonly hourly: Required<HourlyOptions>;

  constructor(
    readonly settings: SnowflakeSettings,
    private readonly log?: Logger,
    private readonly options: SnowflakeSinkOptions = {},
  ) {
    this.maxAttempts = options.maxAttempts ?? 4;
    this.backoffMs = options.backoffMs ?? 1000;
    this.maxBinds = Math.min(options.maxBindsPerStatement ?? MAX_BINDS_PER_STATEMENT, MAX_BINDS_PER_STATEMENT);
    this.maxBindBytes = Math.min(options.maxBindBytesPerStatement ?? MAX_BIND_BYTES_PER_STATEMENT, MAX_BIND_BYTES_PER_STATEMENT);
    this.hourly = hourlyPolicy(options.hourly);
    configureDriver(log);
  }

  async open(): Promise<void> {
    const problems = checkSnowflakeSettings(this.settings);
    if (problems.length > 0) throw new SnowflakeSinkError("config", `invalid Snowflake settings:\n  - ${problems.join("\n  - ")}`);
    await this.withRetries("migrate", async () => {
      const c = await this.connection();
      await this.exec(c, SNOWFLAKE_SQL.schemaVersionTable);
      const applied = new Set((await this.exec(c, SNOWFLAKE_SQL.appliedVersions)).rows.map((r) => Number(r.VERSION)));
      for (const m of snowflakeMigrationSql()) {
        if (applied.has(m.version)) continue;
        // Snowflake commits DDL on its own, so a migration cannot share a transaction with its version
        // row: its statements are idempotent (IF NOT EXISTS) and the version row is merged after them,
        // which also makes two replicas migrating at once harmless.
        for (const sql of m.statements) await this.exec(c, sql);
        await this.exec(c, SNOWFLAKE_SQL.recordVersion, [m.version, m.name, sqlTimestamp(Date.now())]);
        this.log?.info({ version: m.version, name: m.name }, "warehouse migration applied");
      }
      // Replaced on every start so the UDFs always match the sketch code this collector ships.
      await this.exec(c, meshQuantileUdfSql());
      await this.exec(c, meshSketchMergeUdfSql());
      await this.abortStaleTransactions(c);
    });
  }

  /**
   * Aborts the loader user's transactions that have run longer than staleTransactionS: what a collector
   * killed mid-load leaves behind, holding the lock row every load waits for, until Snowflake ends its
   * session. SHOW TRANSACTIONS lists only the current user's; SYSTEM$ABORT_TRANSACTION may abort them.
   */
  private async abortStaleTransactions(c: snowflake.Connection): Promise<void> {
    const cutoff = Date.now() - (this.options.staleTransactionS ?? 1800) * 1000;
    for (const t of (await this.exec(c, SNOWFLAKE_SQL.showTransactions)).rows) {
      const id = String(t.id ?? t.ID ?? "");
      const state = String(t.state ?? t.STATE ?? "").toLowerCase();
      const started = timestampMs(t.started_on ?? t.STARTED_ON);
      if (!/^\d+$/.test(id) || state !== "running" || started > cutoff) continue;
      // The id is inlined (digits only, checked above): SYSTEM$ABORT_TRANSACTION takes a constant.
      await this.exec(c, `SELECT SYSTEM$ABORT_TRANSACTION(${id})`);
      this.log?.warn({ transaction: id, startedAt: new Date(started).toISOString() }, "aborted a stale transaction of the loader user (a collector that died mid-load)");
    }
  }

  /**
   * First statement of every load and compaction transaction: waits for any other collector's one.
   * Replicas that migrate a fresh schema together can each seed the row (Snowflake enforces no primary
   * key and lets INSERTs run in parallel), so the row may be there twice: updating both still makes two
   * transactions wait for each other, while refusing them would fail every load for good.
   */
  private async takeLock(c: snowflake.Connection, name: "load" | "hourly"): Promise<void> {
    const taken = (await this.exec(c, SNOWFLAKE_SQL.takeLock, [WRITER, sqlTimestamp(Date.now()), name])).updated;
    if (taken < 1) throw new SnowflakeSinkError("sql", `${LOCK_TABLE.name} has no '${name}' row (migration 4 incomplete?)`);
  }

  load(summaries: DecodedSummary[]): Promise<LoadResult> {
    return loadSummaries(this, summaries);
  }

  loadBatch(batch: LoadBatch): Promise<LoadResult | null> {
    return this.withRetries("load", () => this.loadOnce(batch));
  }

  async compactLoaded(): Promise<void> {
    await compactAfterLoad(
      this.hourly,
      () => this.compaction(this.hourly.now()),
      this.log,
      (err) => {
        const e = classify(err, "hourly rollup");
        return { fields: { reason: e.reason, code: e.code }, message: e.message, reason: e.reason };
      },
    );
  }

  /**
   * (Re)compacts the closed hours whose minute rows changed since their hourly rows were built, at most
   * maxHoursPerLoad of them, oldest first (hourly.ts has the rule); returns the hours compacted.
   *
   * One transaction whose first write, the first DELETE, takes mesh_traffic_hour's table lock: a second
   * replica compacting at the same time waits for it, then deletes and rebuilds the same hours from the
   * minute rows committed by then, so the hour ends with one set of rows, never two. The INSERT … SELECT
   * runs after the lock was granted and so reads every minute row committed before it. As with the
   * ledger claim, the argument does not rest on which snapshot a DELETE that waited reads: a count after
   * the INSERT must find exactly the rows it inserted, or the transaction rolls back (another replica's
   * rows survived the DELETE) and the next load compacts the hour again.
   */
  async compact(nowMs = this.hourly.now()): Promise<Date[]> {
    return (await this.compaction(nowMs)).hours;
  }

  private async compaction(nowMs: number): Promise<Compaction> {
    const c = await this.connection();
    return compactStaleHours(
      this.hourly,
      nowMs,
      async (from, cutoff) => (await this.exec(c, SNOWFLAKE_SQL.staleHours, [sqlTimestamp(from), sqlTimestamp(cutoff), sqlTimestamp(from)])).rows.map((r) => timestampMs(r.HOUR)),
      (h) =>
        this.transaction(c, async () => {
          await this.takeLock(c, "hourly");
          await this.exec(c, SNOWFLAKE_SQL.deleteHour, [sqlTimestamp(h)]);
          const inserted = (await this.exec(c, SNOWFLAKE_SQL.insertHour, [sqlTimestamp(nowMs), sqlTimestamp(h), sqlTimestamp(h + HOUR_MS)])).updated;
          const present = Number((await this.exec(c, SNOWFLAKE_SQL.hourRows, [sqlTimestamp(h)])).rows[0]?.N);
          if (present !== inserted) {
            throw new SnowflakeSinkError("conflict", `hourly rollup: another collector compacted ${new Date(h).toISOString()} meanwhile; left to the next load`);
          }
        }),
    );
  }

  private async loadOnce(batch: LoadBatch): Promise<LoadResult | null> {
    const c = await this.connection();
    const loadedAt = sqlTimestamp(Date.now());
    // Every CPU-bound loop below (ledger rows, rollup, fact rows) yields to the event loop in slices:
    // with the 900 s default a batch is large, and ingest must keep acknowledging while it loads.
    const yielder = new Yielder();
    const fresh = await this.unledgered(c, batch.entries, loadedAt, yielder);
    const candidates = fresh.filter(Boolean).length;
    if (candidates === 0) return { loaded: 0, duplicates: batch.entries.length, rows: 0 };
    const parts = batch.parts(fresh)?.[Symbol.asyncIterator]();
    if (!parts) return null;
    // The first part (all of a cycle whose rows fit the loader's budget) is rolled up before BEGIN, so
    // the lock other replicas wait for is not held through that CPU work.
    let part = await parts.next();
    return this.transaction(c, async () => {
      await this.takeLock(c, "load");
      await this.claim(c, candidates);
      let rows = 0;
      for (; !part.done; part = await parts.next()) {
        const p = part.value;
        const facts = (function* () {
          for (const r of p.rows()) yield factRow(r, loadedAt);
        })();
        rows += await this.insertChunked(c, SNOWFLAKE_SQL.insertFacts, facts, yielder);
        if (p.losses.length > 0) {
          await this.insertChunked(
            c,
            SNOWFLAKE_SQL.insertLosses,
            p.losses.map((l) => lossRow(l, loadedAt)),
            yielder,
          );
        }
      }
      return { loaded: candidates, duplicates: batch.entries.length - candidates, rows };
    });
  }

  /**
   * Step 1, outside any transaction (the temporary table is private to this session): which entries
   * the ledger does not hold yet. Snowflake compares the keys; only positions come back.
   */
  private async unledgered(c: snowflake.Connection, entries: readonly LedgerEntry[], loadedAt: string, yielder: Yielder): Promise<boolean[]> {
    await this.exec(c, SNOWFLAKE_SQL.clearBatch);
    const ledgerRows = (function* () {
      for (const [i, e] of entries.entries()) yield [i, e.producerId, e.seq, sqlTimestamp(e.windowStartMs), sqlTimestamp(e.windowEndMs), e.series, e.requests, loadedAt, e.caller];
    })();
    await this.insertChunked(c, SNOWFLAKE_SQL.fillBatch, ledgerRows, yielder);
    await this.exec(c, SNOWFLAKE_SQL.dropLedgered);
    const fresh = new Array<boolean>(entries.length).fill(false);
    for (const r of (await this.exec(c, SNOWFLAKE_SQL.candidates)).rows) fresh[Number(r.I)] = true;
    return fresh;
  }

  /**
   * Step 2, first inside the transaction after the lock row: inserts the candidates' ledger rows and
   * checks that this transaction claimed every one of them.
   */
  private async claim(c: snowflake.Connection, candidates: number): Promise<void> {
    const claimed = (await this.exec(c, SNOWFLAKE_SQL.claim)).updated;
    // Read after the MERGE, under the lock row: every candidate must be in the ledger exactly once.
    // Both statements start after any other collector's load committed, so a count that disagrees
    // means a writer that does not take the lock; the load is then retried rather than trusted.
    const inLedger = Number((await this.exec(c, SNOWFLAKE_SQL.claimedRows)).rows[0]?.N);
    if (claimed !== candidates || inLedger !== candidates) {
      throw new SnowflakeSinkError("conflict", `load: another collector claimed some of ${candidates} summaries meanwhile; retrying`);
    }
  }

  /** Runs `body` between BEGIN and COMMIT on `c`; rolls back and rethrows when it throws. */
  private async transaction<T>(c: snowflake.Connection, body: () => Promise<T>): Promise<T> {
    await this.exec(c, SNOWFLAKE_SQL.begin);
    try {
      const out = await body();
      await this.exec(c, SNOWFLAKE_SQL.commit);
      return out;
    } catch (err) {
      await this.exec(c, SNOWFLAKE_SQL.rollback).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Sends `rows` in statements of at most maxBinds bound values and maxBindBytes bytes of them, building
   * each statement's rows only when the one before it is sent and yielding between rows as `yielder`
   * says; returns the number of rows sent.
   */
  private async insertChunked(c: snowflake.Connection, sql: string, rows: Iterable<unknown[]>, yielder: Yielder): Promise<number> {
    let chunk: unknown[][] = [];
    let binds = 0;
    let bytes = 0;
    let sent = 0;
    const flush = async () => {
      await this.exec(c, sql, chunk);
      sent += chunk.length;
      chunk = [];
      binds = 0;
      bytes = 0;
    };
    for (const row of rows) {
      const size = boundBytes(row);
      if (chunk.length > 0 && (binds + row.length > this.maxBinds || bytes + size > this.maxBindBytes)) await flush();
      chunk.push(row);
      binds += row.length;
      bytes += size;
      await yielder.maybe();
    }
    if (chunk.length > 0) await flush();
    return sent;
  }

  /** Autocommitted DELETEs, a day of rows each (collector/retention.ts). */
  async prune(policy: RetentionPolicy, nowMs: number): Promise<PruneReport[]> {
    const c = await this.connection();
    return prune(
      policy,
      nowMs,
      async (sql, cutoff) => {
        const v = (await this.exec(c, sql, [sqlTimestamp(cutoff)])).rows[0]?.OLDEST;
        return v === null || v === undefined ? undefined : timestampMs(v);
      },
      async (sql, before) => (await this.exec(c, sql, [sqlTimestamp(before)])).updated,
    );
  }

  /** Data exceptions (SQLSTATE 22xxx) and integrity-constraint violations (23xxx) are about the rows sent. */
  refusal(err: unknown): string | undefined {
    const e = classify(err, "load");
    if (e.reason !== "sql") return undefined;
    if (e.sqlState?.startsWith("23")) return "constraint";
    if (e.sqlState?.startsWith("22")) return e.sqlState === "22021" ? "encoding" : "value";
    return undefined;
  }

  /** Runs one statement on the sink's session and returns its rows (outlier detection reads and writes through it). */
  async query(sqlText: string, binds: readonly unknown[] = []): Promise<Row[]> {
    return (await this.exec(await this.connection(), sqlText, [...binds])).rows;
  }

  /** Checks that the warehouse is reachable without resuming it: a session heartbeat needs no warehouse. */
  async ping(): Promise<void> {
    try {
      // The live session if there is one: checking the key file here could swap the session under a load.
      // Without one, answer at once rather than wait out a connect: the probe has a short timeout, and
      // the loader (re)connects in the background every load interval.
      if (!this.conn?.isUp() && (this.connecting || this.lastConnectError)) {
        throw this.lastConnectError ?? new SnowflakeSinkError("transient", "ping: connecting to Snowflake");
      }
      const c = this.conn?.isUp() ? this.conn : await this.connection();
      if (!(await c.isValidAsync())) throw new SnowflakeSinkError("transient", "ping: Snowflake session heartbeat failed");
    } catch (err) {
      this.dropConnection();
      throw classify(err, "ping");
    }
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    if (c) await new Promise<void>((resolve) => c.destroy(() => resolve()));
  }

  /**
   * The connection to use now. The key file (and passphrase file) is checked on every call; when it
   * changed, a new session is opened with the new key, so a rotated key takes effect without a restart.
   * Concurrent callers (a load and a health check) share one connection attempt.
   */
  private connection(): Promise<snowflake.Connection> {
    this.connecting ??= this.connectOrReuse().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connectOrReuse(): Promise<snowflake.Connection> {
    const s = this.settings;
    let fresh: Credential | undefined;
    if (s.authenticator === "SNOWFLAKE_JWT") {
      let stamp: string | undefined;
      try {
        stamp = fileStamp(s.privateKeyFile!) + (s.privateKeyPassphraseFile ? `|${fileStamp(s.privateKeyPassphraseFile)}` : "");
      } catch {
        stamp = undefined; // readCredential below reports which file is missing
      }
      if (stamp === undefined || stamp !== this.credential?.stamp) {
        try {
          fresh = readCredential(s);
        } catch (err) {
          // Mid-swap or broken secret: keep loading on the live session, if any, until a key reads.
          if (!this.conn?.isUp()) throw err;
          this.log?.warn((err as Error).message + "; keeping the current Snowflake session");
        }
      }
    }
    if (fresh && this.credential && fresh.fingerprint !== this.credential.fingerprint) {
      this.log?.info({ from: this.credential.fingerprint, to: fresh.fingerprint }, "Snowflake private key changed; opening a new session with it");
      this.dropConnection();
    }
    if (fresh) this.credential = fresh;
    if (this.conn?.isUp()) return this.conn;
    this.dropConnection();
    const connectTimeoutS = s.connectTimeoutS ?? DEFAULT_CONNECT_TIMEOUT_S;
    const conn = snowflake.createConnection({
      account: s.account!,
      username: s.user!,
      role: s.role,
      warehouse: s.warehouse,
      database: s.database,
      schema: s.schema,
      accessUrl: s.accessUrl,
      application: "meshlook",
      authenticator: s.authenticator,
      ...(s.authenticator === "SNOWFLAKE_JWT" ? { privateKey: this.credential!.privateKey } : { password: s.password }),
      arrayBindingThreshold: MAX_BINDS_PER_STATEMENT,
      // Hourly heartbeats keep the session (not the warehouse) alive between infrequent loads.
      clientSessionKeepAlive: true,
      // snowflake-sdk retries a login up to sfRetryMaxLoginRetries (default 7) times within retryTimeout,
      // which it never lets fall below 300 s (lib/connection/connection_config.js, 3.3.0), on top of a
      // 90 s request `timeout`: an unreachable account held open() for minutes. One driver retry, a
      // request timeout of the connect timeout, and the race below bound a connect to connectTimeoutS;
      // the loader tries again next interval.
      sfRetryMaxLoginRetries: 1,
      timeout: connectTimeoutS * 1000,
    } as snowflake.ConnectionOptions);
    try {
      // connectAsync reports a refused login only through its callback; its promise resolves regardless.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve, reject) => {
          conn.connectAsync((err) => (err ? reject(err) : resolve())).catch(reject);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within MESHLOOK_SNOWFLAKE_CONNECT_TIMEOUT_S=${connectTimeoutS}`)), connectTimeoutS * 1000);
        }),
      ]).finally(() => clearTimeout(timer));
    } catch (err) {
      conn.destroy(() => undefined);
      this.lastConnectError = classify(err, `connect as ${s.user} to account ${s.account}`);
      throw this.lastConnectError;
    }
    this.lastConnectError = undefined;
    this.conn = conn;
    this.log?.info({ account: s.account, user: s.user, fingerprint: this.credential?.fingerprint }, "Snowflake session opened");
    await this.exec(conn, SNOWFLAKE_SQL.lockTimeout);
    await this.exec(conn, SNOWFLAKE_SQL.statementTimeout);
    await this.exec(conn, SNOWFLAKE_SQL.abortDetached);
    await this.exec(conn, SNOWFLAKE_SQL.timestampInputFormat);
    await this.exec(conn, SNOWFLAKE_SQL.timezone);
    await this.exec(conn, SNOWFLAKE_SQL.createBatchTable);
    return conn;
  }

  private dropConnection(): void {
    const c = this.conn;
    this.conn = undefined;
    if (c?.isUp()) c.destroy(() => undefined);
  }

  private exec(c: snowflake.Connection, sqlText: string, binds?: unknown[]): Promise<{ rows: Row[]; updated: number }> {
    return new Promise((resolve, reject) => {
      c.execute({
        sqlText,
        binds: binds as snowflake.Binds,
        complete: (err, stmt, rows) => {
          // The message names the statement's verb only: bound values never reach logs or errors.
          if (err) reject(classify(err, `Snowflake ${sqlText.split(/\s/, 2).join(" ")}`));
          else resolve({ rows: (rows ?? []) as Row[], updated: Number(stmt.getNumUpdatedRows() ?? -1) });
        },
      });
    });
  }

  /** Runs `body`, retrying transient failures with exponential backoff and jitter; a new session on each. */
  private async withRetries<T>(what: string, body: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await body();
      } catch (raw) {
        const err = classify(raw, what);
        if (!err.transient || attempt >= this.maxAttempts) {
          this.log?.error({ reason: err.reason, code: err.code, sqlState: err.sqlState, attempt }, err.message);
          throw err;
        }
        this.options.onRetry?.(err, attempt);
        this.log?.warn({ reason: err.reason, code: err.code, attempt }, `${err.message}; retrying`);
        if (err.reason === "transient") this.dropConnection();
        // A ledger conflict means another replica just committed: retry at once, it will not recur.
        if (err.reason === "transient") {
          const delay = Math.min(30_000, this.backoffMs * 2 ** (attempt - 1));
          await new Promise((r) => setTimeout(r, delay / 2 + Math.random() * (delay / 2)));
        }
      }
    }
  }
}

/**
 * Bytes a row's values take in the driver's request (snowflake-sdk sends every bound value as a JSON
 * string: dist/lib/connection/statement.js buildBindsMap), with the quotes, escapes and comma around
 * each: a dimension value may be any UTF-8, and a quote or control character in it takes 2 to 6 bytes.
 */
function boundBytes(row: readonly unknown[]): number {
  let n = 0;
  for (const v of row) n += (typeof v === "string" ? Buffer.byteLength(JSON.stringify(v)) : String(v).length + 2) + 1;
  return n;
}

/** Bound values of one fact row, in FACT_TABLE column order. */
function factRow(r: MinuteRow, loadedAt: string): unknown[] {
  return [
    sqlTimestamp(r.minuteMs),
    ...DIMENSIONS.map((d) => (d === "response_code" ? Number(r.dimensions[d]) : String(r.dimensions[d]))),
    r.requests,
    r.errors,
    r.requestBytes,
    r.responseBytes,
    r.latencySumUs,
    r.latencyMinUs,
    r.latencyMaxUs,
    JSON.stringify(r.sketch),
    loadedAt,
  ];
}

/** Bound values of one loss row, in LOSS_TABLE column order. */
function lossRow(l: LossRow, loadedAt: string): unknown[] {
  return [sqlTimestamp(l.minuteMs), l.producerId, l.seq, l.pod, l.namespace, l.workload, l.droppedRequests, l.droppedWindows, l.overflowKeys, loadedAt, l.caller];
}

/**
 * Sink factory used by collector/main.ts when MESHLOOK_SINK=snowflake: the hourly rollup follows the
 * collector's settings; options.hourly adds to them.
 */
export function createSnowflakeSink(config: CollectorConfig, log: Logger, options: SnowflakeSinkOptions = {}): Sink {
  return new SnowflakeSink(config.snowflake, log, { ...options, hourly: { ...hourlySettings(config), ...options.hourly } });
}
