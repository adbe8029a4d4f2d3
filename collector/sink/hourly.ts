// Hourly compaction of mesh_traffic_minute into mesh_traffic_hour (docs/schema.md, "mesh_traffic_hour"),
// shared by both sinks: the policy (which hours, how many per load) and the statements, written once
// with `?` placeholders, which DuckDB and Snowflake both bind positionally.
//
// Staleness is detected by counting rows, not by comparing timestamps: each hourly row records how many
// minute rows it was built from, and an hour is stale when its minute table holds more rows than its
// hourly rows were built from (or it has no hourly rows). Minute rows are only ever appended, so the
// count can only grow; a clock comparison (loaded_at > compacted_at) would miss the rows of a load that
// stamped loaded_at before a compaction ran and committed after it, or came from a replica whose clock
// is behind. Deleting old minute rows (retention) never triggers a recompaction: the hourly rows stay.
import type { Logger } from "pino";
import type { CollectorConfig } from "../config.ts";
import { DIMENSIONS, FACT_TABLE, HOUR_TABLE, SUM_MEASURES } from "../../shared/schema.ts";
import { SATURATED } from "../rollup.ts";

export const HOUR_MS = 3_600_000;

export interface HourlyOptions {
  /** How long after its end an hour is considered closed, for late summaries to land. Default 5 min. */
  graceMs?: number;
  /** Most hours (re)compacted per load, oldest first, so a backlog spreads over loads; 0 turns compaction off. Default 24. */
  maxHoursPerLoad?: number;
  /** The clock deciding which hours are closed (tests move it). Default Date.now. */
  now?: () => number;
  /** Told the outcome of every compaction a load ran (the collector's metrics); not called when none ran. */
  onCompaction?: (report: CompactionReport) => void;
  /**
   * How far back before the closed-hours cutoff the stale-hour search looks. Default 7 days: the
   * search then reads a bounded range of minute rows (on Snowflake, the micro-partitions of one week)
   * instead of the whole fact table on every load; an hour older than that which still changes (a
   * summary more than a week late) keeps its previous hourly rows.
   */
  lookbackMs?: number;
}

export interface CompactionReport {
  /** Hours (re)compacted; 0 when the compaction failed. */
  hours: number;
  /** Closed, stale hours it left to later loads (the per-load bound); undefined when it failed. */
  waiting?: number;
  /** Wall time of the compaction, stale-hour count included. */
  seconds: number;
  /** Set when it failed: the sink's failure reason (the labels of meshlook_load_failures_total). */
  failure?: string;
}

/** What one compaction did: the hours it compacted, oldest first, the stale ones it left, and the ones that failed. */
export interface Compaction {
  hours: Date[];
  waiting: number;
  /** Hours whose rebuild failed (each rolled back alone); later hours were still compacted. */
  failed: { hour: Date; err: unknown }[];
}

export const DEFAULT_HOURLY_GRACE_MS = 5 * 60_000;
export const DEFAULT_MAX_HOURS_PER_LOAD = 24;
export const DEFAULT_LOOKBACK_MS = 7 * 24 * HOUR_MS;

/** The policy with defaults applied. */
export function hourlyPolicy(o: HourlyOptions = {}): Required<HourlyOptions> {
  return {
    graceMs: o.graceMs ?? DEFAULT_HOURLY_GRACE_MS,
    maxHoursPerLoad: o.maxHoursPerLoad ?? DEFAULT_MAX_HOURS_PER_LOAD,
    now: o.now ?? Date.now,
    onCompaction: o.onCompaction ?? (() => undefined),
    lookbackMs: o.lookbackMs ?? DEFAULT_LOOKBACK_MS,
  };
}

/** The policy the collector's settings ask for (MESHLOOK_HOURLY_GRACE_S, MESHLOOK_HOURLY_MAX_HOURS_PER_LOAD). */
export function hourlySettings(config: Pick<CollectorConfig, "hourlyGraceS" | "hourlyMaxHoursPerLoad" | "hourlyLookbackH">): HourlyOptions {
  return { graceMs: config.hourlyGraceS * 1000, maxHoursPerLoad: config.hourlyMaxHoursPerLoad, lookbackMs: config.hourlyLookbackH * HOUR_MS };
}

/**
 * Start of the first hour that is not yet closed at `nowMs`: hour H is closed when H + 1 h + grace ≤ now,
 * i.e. when H + 1 h ≤ this cutoff. The wall clock, not the newest loaded minute, decides, so an hour
 * still closes when its traffic stops.
 */
export function closedBefore(nowMs: number, graceMs: number): number {
  return Math.floor((nowMs - graceMs) / HOUR_MS) * HOUR_MS;
}

const dims = DIMENSIONS.join(", ");
const hourOf = "DATE_TRUNC('hour', minute)";
const HOUR_COLUMNS = HOUR_TABLE.columns.map((c) => c.name);
// An hour's sum stops where a minute row's does (rollup.ts SATURATED): a BIGINT SUM over many saturated
// minutes would overflow and fail every compaction of the hour.
const saturatingSum = (m: string) => `LEAST(SUM(${m}), ${SATURATED})`;

/** The statements of a compaction; `?` placeholders only, values are always bound. */
export const HOURLY_SQL = {
  /**
   * Closed hours (?from <= minute < ?cutoff) whose minute rows outnumber what their hourly rows were built
   * from, oldest first. Binds: from, cutoff, from.
   */
  staleHours:
    `SELECT m.hour AS hour FROM (` +
    `SELECT ${hourOf} AS hour, COUNT(*) AS minute_rows FROM ${FACT_TABLE.name} WHERE minute >= ? AND minute < ? GROUP BY ${hourOf}` +
    `) AS m LEFT JOIN (` +
    `SELECT hour, SUM(minute_rows) AS minute_rows FROM ${HOUR_TABLE.name} WHERE hour >= ? GROUP BY hour` +
    `) AS h ON h.hour = m.hour WHERE h.minute_rows IS NULL OR h.minute_rows < m.minute_rows ORDER BY m.hour`,
  /** Binds: hour. */
  deleteHour: `DELETE FROM ${HOUR_TABLE.name} WHERE hour = ?`,
  /** Binds: hour. Read after the INSERT, inside its transaction: must be exactly the rows it inserted. */
  hourRows: `SELECT COUNT(*) AS n FROM ${HOUR_TABLE.name} WHERE hour = ?`,
  /** Binds: compacted_at, hour start, hour end. One row per series of the hour, sketches merged exactly. */
  insertHour:
    `INSERT INTO ${HOUR_TABLE.name} (${HOUR_COLUMNS.join(", ")}) ` +
    `SELECT ${hourOf}, ${dims}, ${SUM_MEASURES.map(saturatingSum).join(", ")}, ` +
    `MIN(latency_min_us), MAX(latency_max_us), MESH_SKETCH_MERGE(ARRAY_AGG(latency_sketch)), COUNT(*), ? ` +
    `FROM ${FACT_TABLE.name} WHERE minute >= ? AND minute < ? GROUP BY ${hourOf}, ${dims}`,
} as const;

/**
 * One compaction at `nowMs`, the part both sinks share: `staleHours` reads the closed, stale hours (epoch
 * ms) in [cutoff − lookback, cutoff), the first maxHoursPerLoad of them, oldest first, go one by one to
 * `rebuild` (the sink's own transaction per hour, so an hour the warehouse cannot rebuild fails alone and
 * the hours after it are still compacted), and the rest wait for later loads.
 */
export async function compactStaleHours(
  policy: Required<HourlyOptions>,
  nowMs: number,
  staleHours: (fromMs: number, cutoffMs: number) => Promise<number[]>,
  rebuild: (hour: number) => Promise<void>,
): Promise<Compaction> {
  const cutoff = closedBefore(nowMs, policy.graceMs);
  const stale = await staleHours(cutoff - policy.lookbackMs, cutoff);
  const chosen = [...stale].sort((a, b) => a - b).slice(0, Math.max(0, policy.maxHoursPerLoad));
  const hours: Date[] = [];
  const failed: Compaction["failed"] = [];
  for (const h of chosen) {
    try {
      await rebuild(h);
      hours.push(new Date(h));
    } catch (err) {
      failed.push({ hour: new Date(h), err });
    }
  }
  return { hours, waiting: stale.length - chosen.length, failed };
}

/**
 * Runs a sink's compaction once its load has committed, in a transaction of its own: a failure there
 * must neither undo nor retry a load that succeeded, and the next load finds the same stale hours again,
 * so it is logged, reported to policy.onCompaction and swallowed. `describe` turns the error into what
 * may be logged and its reason label (the Snowflake sink keeps driver errors, which may quote
 * statements, out of its logs). With maxHoursPerLoad 0 nothing runs, not even the stale-hour count.
 */
export async function compactAfterLoad(
  policy: Required<HourlyOptions>,
  compact: () => Promise<Compaction>,
  log: Logger | undefined,
  describe: (err: unknown) => { fields: object; message: string; reason: string },
): Promise<void> {
  if (policy.maxHoursPerLoad === 0) return;
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  try {
    const { hours, waiting, failed } = await compact();
    const failure = failed.length > 0 ? describe(failed[0].err) : undefined;
    policy.onCompaction({ hours: hours.length, waiting: waiting + failed.length, seconds: seconds(), ...(failure && { failure: failure.reason }) });
    if (hours.length > 0) log?.debug({ hours: hours.length, waiting, oldest: hours[0].toISOString() }, "hourly rollup compacted");
    for (const f of failed) {
      const d = describe(f.err);
      log?.warn(
        { ...d.fields, hour: f.hour.toISOString() },
        `hourly rollup of ${f.hour.toISOString()} failed (${d.message}); later hours were compacted, the next load retries this one`,
      );
    }
  } catch (err) {
    const d = describe(err);
    policy.onCompaction({ hours: 0, seconds: seconds(), failure: d.reason });
    log?.warn(d.fields, `hourly rollup compaction failed (${d.message}); the next load retries it`);
  }
}
