// Retention: prunes old warehouse rows after each load cycle, a bounded amount at a time, with the
// exactly-once guarantee intact.
//
//  - mesh_traffic_minute and mesh_sidecar_loss: rows whose minute is older than minuteDays (default 8: the
//    minute-grain explores default to the last 7 days, and everything older is in mesh_traffic_hour);
//  - mesh_traffic_hour: older than hourDays (default 400);
//  - mesh_load_ledger: rows whose window ended more than ledgerDays + 1 day ago (default 35 + 1).
//
// Exactly-once: a summary's ledger row is what makes a retry of it a duplicate, so a retry must never
// arrive after its ledger row is gone. The loader therefore refuses (counts and drops) any summary whose
// window ended more than ledgerDays ago (`expiredBefore`), and the pruner keeps ledger rows one day
// longer than that, so clocks of different replicas may disagree by up to a day: at any time T a summary
// loads only if windowEnd ≥ T − ledgerDays, and its ledger row, if any, survives until
// windowEnd + ledgerDays + 1 day > T. Pruning runs only when the hourly compaction has no hour waiting,
// so minute rows never go before their hour is rolled up.
//
// Each table loses at most maxDaysPerRun days of rows per cycle, oldest first, one DELETE per day, each
// its own autocommitted statement: a long backlog (retention turned on for a year of data) spreads over
// cycles instead of one huge transaction holding locks that loads would wait for.
import { FACT_TABLE, HOUR_TABLE, LEDGER_TABLE, LOSS_TABLE } from "../shared/schema.ts";

export const DAY_MS = 86_400_000;

export interface RetentionPolicy {
  /** Days of minute (and loss) rows kept; 0 turns retention off entirely. */
  minuteDays: number;
  hourDays: number;
  /** Days after its window ended that a summary can still load; its ledger row is kept one day longer. */
  ledgerDays: number;
  /** Most days of rows deleted per table per cycle. */
  maxDaysPerRun: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { minuteDays: 8, hourDays: 400, ledgerDays: 35, maxDaysPerRun: 2 };

/** What the pruner deletes: table, the timestamp column that ages it, and how long its rows live. */
export const RETAINED = [
  // Only minutes whose hour has hourly rows: if compaction has been failing, the minutes wait for it.
  {
    table: FACT_TABLE.name,
    column: "minute",
    keepMs: (p: RetentionPolicy) => p.minuteDays * DAY_MS,
    only: `DATE_TRUNC('hour', minute) IN (SELECT DISTINCT hour FROM ${HOUR_TABLE.name})`,
  },
  { table: LOSS_TABLE.name, column: "minute", keepMs: (p: RetentionPolicy) => p.minuteDays * DAY_MS },
  { table: HOUR_TABLE.name, column: "hour", keepMs: (p: RetentionPolicy) => p.hourDays * DAY_MS },
  { table: LEDGER_TABLE.name, column: "window_end", keepMs: (p: RetentionPolicy) => (p.ledgerDays + 1) * DAY_MS },
] as const;

/** A summary whose window ended before this may have lost its ledger row: it must not load. */
export const expiredBefore = (p: RetentionPolicy, nowMs: number) => (p.minuteDays > 0 ? nowMs - p.ledgerDays * DAY_MS : -Infinity);

/**
 * How long after its window ended ingest still acknowledges a summary (0 = no bound, retention off): a
 * day less than the loader's horizon above, so what is acknowledged has a day to load before the loader
 * would have to drop it. An acknowledgement tells the sidecar to forget the summary; one the loader
 * then drops is lost without anyone having been told.
 */
export const ingestHorizonMs = (p: RetentionPolicy) => (p.minuteDays > 0 ? (p.ledgerDays - 1) * DAY_MS : 0);

/** The statements, `?` placeholders only; both warehouses bind them positionally. */
export const retentionSql = (t: (typeof RETAINED)[number]) => {
  const only = "only" in t ? ` AND ${t.only}` : "";
  return {
    /** Binds: cutoff. */
    oldest: `SELECT MIN(${t.column}) AS oldest FROM ${t.table} WHERE ${t.column} < ?${only}`,
    /** Binds: before (≤ cutoff). */
    prune: `DELETE FROM ${t.table} WHERE ${t.column} < ?${only}`,
  };
};

/** Problems with a policy, each naming its setting; [] when it is usable. */
export function checkRetention(p: RetentionPolicy): string[] {
  if (p.minuteDays === 0) return [];
  const out: string[] = [];
  if (p.hourDays < p.minuteDays) out.push("MESHLOOK_RETENTION_HOUR_DAYS: must be at least MESHLOOK_RETENTION_MINUTE_DAYS (the hourly rollup is what remains of older minutes)");
  if (p.ledgerDays < p.minuteDays)
    out.push("MESHLOOK_RETENTION_LEDGER_DAYS: must be at least MESHLOOK_RETENTION_MINUTE_DAYS (a summary must not load after its ledger row could be gone)");
  if (p.ledgerDays < 2) out.push("MESHLOOK_RETENTION_LEDGER_DAYS: must be at least 2 (ingest refuses windows that ended more than a day less than it ago)");
  return out;
}

export interface PruneReport {
  table: string;
  rows: number;
}

/**
 * One pruning pass at `nowMs`: for each table, up to maxDaysPerRun DELETEs, each of at most one day of
 * rows, oldest first. `oldest` answers the oldest timestamp (epoch ms) below a cutoff, or undefined;
 * `remove` deletes the rows below a bound and answers how many. Returns the rows deleted per table.
 */
export async function prune(
  policy: RetentionPolicy,
  nowMs: number,
  oldest: (sql: string, cutoffMs: number) => Promise<number | undefined>,
  remove: (sql: string, beforeMs: number) => Promise<number>,
): Promise<PruneReport[]> {
  if (policy.minuteDays === 0) return [];
  const out: PruneReport[] = [];
  for (const t of RETAINED) {
    const sql = retentionSql(t);
    const cutoff = nowMs - t.keepMs(policy);
    let rows = 0;
    for (let day = 0; day < policy.maxDaysPerRun; day++) {
      const first = await oldest(sql.oldest, cutoff);
      if (first === undefined) break;
      rows += await remove(sql.prune, Math.min(cutoff, Math.floor(first / DAY_MS) * DAY_MS + DAY_MS));
    }
    out.push({ table: t.table, rows });
  }
  return out;
}
