// The warehouse sink interface: what the collector's loader needs from a warehouse. Implemented by
// collector/sink/duckdb.ts (embedded default) and collector/sink/snowflake.ts.
//
// Contract every implementation keeps:
//  - the schema comes from shared/schema.ts MIGRATIONS, applied in order and recorded in
//    `meshlook_schema_version` (createTableSql renders the dialect);
//  - load() is ONE warehouse transaction: summaries whose (caller, producer_id, seq) is already in
//    `mesh_load_ledger` are skipped (counted as duplicates), the rest are rolled up with
//    collector/rollup.ts and written as `mesh_traffic_minute` rows together with their ledger rows and
//    the `mesh_sidecar_loss` rows of those that report a loss (rollup.ts lossOf).
//    If it throws, nothing of the batch is visible and the caller retries the whole batch later;
//    the ledger makes that retry (or a retry by another collector replica) count each summary once.
//  - the same summary may appear twice within one batch; it is loaded once;
//  - after a load (or loadRollup) committed, the sink compacts closed, stale hours into
//    `mesh_traffic_hour` in a transaction of its own (collector/sink/hourly.ts); a failure there is logged
//    and left to the next load, never reported as a failed load.
import type { LedgerEntry } from "../ledger.ts";
import type { PruneReport, RetentionPolicy } from "../retention.ts";
import type { LossRow, MinuteRow } from "../rollup.ts";
import type { DecodedSummary } from "../summary.ts";

export type { DecodedSummary } from "../summary.ts";

export interface Sink {
  readonly kind: "duckdb" | "snowflake";
  /** Connect and run the numbered migrations that have not run yet. */
  open(): Promise<void>;
  /**
   * One transaction: skip summaries whose (caller, producer_id, seq) is already in the load ledger, roll the
   * rest up per (minute, series) with collector/rollup.ts, write fact rows + ledger rows.
   */
  load(summaries: DecodedSummary[]): Promise<LoadResult>;
  /**
   * Optional fast path for summaries the collector already rolled up as they arrived: one transaction
   * that writes the rows, the ledger entries and the loss rows (MinuteRollup.losses) — unless ANY entry's (caller, producer_id, seq) is already in
   * the ledger, in which case it writes nothing and returns null, and the caller loads the summaries
   * one by one with load(). Never partially applied.
   */
  loadRollup?(rows: Iterable<MinuteRow>, ledger: readonly LedgerEntry[], losses: readonly LossRow[]): Promise<LoadResult | null>;
  /**
   * When `err` (thrown by load or loadRollup) is a refusal that retrying the same summaries cannot
   * change — a constraint, an encoding, a value the warehouse will not store — its class ("constraint",
   * "encoding", "value"); undefined for anything worth retrying (network, lock, disk, session). The loader
   * then loads the batch in halves and sends each summary the warehouse still refuses alone to the
   * quarantine (collector/quarantine.ts) instead of retrying the batch forever.
   */
  refusal(err: unknown): string | undefined;
  /**
   * Deletes rows older than the retention policy allows, a bounded amount per call (collector/retention.ts
   * has the rule and why exactly-once survives it). Called by the loader after its cycle's loads.
   */
  prune(policy: RetentionPolicy, nowMs: number): Promise<PruneReport[]>;
  /** Warehouse reachable (for /readyz); throws when it is not. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface LoadResult {
  /** Summaries newly loaded by this call. */
  loaded: number;
  /** Summaries skipped because the ledger (or the same batch) already had their (caller, producer_id, seq). */
  duplicates: number;
  /** Fact rows written. */
  rows: number;
}

/**
 * How collector/main.ts builds a sink: each sink module exports a factory of this shape
 * (`createDuckDBSink` in duckdb.ts, `createSnowflakeSink` in snowflake.ts). The logger is pino's.
 */
export type SinkFactory = (config: import("../config.ts").CollectorConfig, log: import("pino").Logger) => Sink;
