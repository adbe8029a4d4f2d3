// The collector's Prometheus metrics, on a registry of its own so several collectors can live in one
// process (tests) without sharing counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { CompactionReport } from "./sink/hourly.ts";

export interface SpoolGauges {
  bytes: number;
  segmentCount: number;
  oldestRecordMs(): number | undefined;
}

/** What the auth gauges report: whether ingest auth is off, and how many tokens (and weak ones) are loaded. */
export interface AuthGauges {
  disabled: boolean;
  tokens: number;
  weakTokens: number;
}

export function createMetrics(spool: () => SpoolGauges | undefined, auth?: () => AuthGauges) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "meshlook_" });
  const registers = [registry];
  // Read when scraped: ingest changes it twice per summary, and a Gauge.set hashes its labels every time.
  const held = { bytes: 0 };
  const m = {
    registry,
    /** Estimated bytes ingest holds (collector/ingest.ts Ingestor), as meshlook_ingest_held_bytes reports them. */
    held,
    accepted: new Counter({ name: "meshlook_summaries_accepted_total", help: "Summaries acknowledged (durable in the spool)", registers }),
    seriesUpdates: new Counter({ name: "meshlook_series_updates_total", help: "Series carried by accepted summaries", registers }),
    rejected: new Counter({ name: "meshlook_summaries_rejected_total", help: "Summaries refused, by reason", labelNames: ["reason"] as const, registers }),
    dedupHits: new Counter({
      name: "meshlook_dedup_hits_total",
      help: "Summaries already seen: at ingest (still in the spool) or at load (already in the warehouse ledger)",
      labelNames: ["stage"] as const,
      registers,
    }),
    spoolCorruptions: new Counter({ name: "meshlook_spool_corruptions_total", help: "Damaged spool stretches skipped, by reason", labelNames: ["reason"] as const, registers }),
    replayRejected: new Counter({ name: "meshlook_spool_undecodable_total", help: "Spooled records that no longer decode (skipped at load)", registers }),
    rollupSeries: new Gauge({ name: "meshlook_rollup_series", help: "Minute rows produced by the last load's rollup", registers }),
    rowsLoaded: new Counter({ name: "meshlook_rows_loaded_total", help: "Fact rows written to the warehouse", registers }),
    summariesLoaded: new Counter({ name: "meshlook_summaries_loaded_total", help: "Summaries committed to the warehouse", registers }),
    loadCycles: new Counter({
      name: "meshlook_load_cycles_total",
      help: "Committed load transactions, by path: folded (rolled up at ingest, no spool read) or replay (segments read back from disk: after a restart or a failed load, an incomplete fold, or a summary the ledger already held)",
      labelNames: ["path"] as const,
      registers,
    }),
    loadDuration: new Histogram({
      name: "meshlook_load_duration_seconds",
      help: "Warehouse load latency (one transaction)",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    loadFailures: new Counter({
      name: "meshlook_load_failures_total",
      help: "Warehouse loads that failed (retried next interval), by reason: config, auth, transient, sql, conflict (Snowflake), duckdb, or other",
      labelNames: ["reason"] as const,
      registers,
    }),
    loadRetries: new Counter({
      name: "meshlook_load_retries_total",
      help: "Warehouse operations the sink retried within a load (Snowflake: transient failures and ledger conflicts), by reason",
      labelNames: ["reason"] as const,
      registers,
    }),
    hoursCompacted: new Counter({ name: "meshlook_hourly_hours_compacted_total", help: "Closed hours (re)compacted into mesh_traffic_hour", registers }),
    compactionFailures: new Counter({
      name: "meshlook_hourly_compaction_failures_total",
      help: "Hourly rollup compactions that failed (retried after the next load), by reason: as meshlook_load_failures_total",
      labelNames: ["reason"] as const,
      registers,
    }),
    compactionDuration: new Histogram({
      name: "meshlook_hourly_compaction_duration_seconds",
      help: "Hourly rollup compaction latency after a load (stale-hour count and rebuilt hours, one transaction)",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    hoursWaiting: new Gauge({
      name: "meshlook_hourly_hours_waiting",
      help: "Closed hours the last completed compaction left stale for later loads (the per-load bound)",
      registers,
    }),
    boardHoursWaiting: new Gauge({
      name: "meshlook_board_hours_waiting",
      help: "Hours of the read pre-aggregates the last run left stale for later runs (its time budget spent); reads take their minute rows",
      registers,
    }),
    // What the filters lost before anything reached the collector, as they report it in each summary:
    // the only place operators see loss beyond the sidecars' memory budget.
    filterDroppedWindows: new Counter({
      name: "meshlook_filter_dropped_windows_total",
      help: "Summary windows the filters dropped (pending-bytes budget exceeded), as reported in accepted summaries",
      registers,
    }),
    filterDroppedRequests: new Counter({
      name: "meshlook_filter_dropped_requests_total",
      help: "Requests in windows the filters dropped, as reported in accepted summaries",
      registers,
    }),
    filterOverflowKeys: new Counter({
      name: "meshlook_filter_overflow_keys_total",
      help: "Series keys the filters folded into overflow series (max_series reached; approximate), as reported in accepted summaries",
      registers,
    }),
    quarantined: new Counter({
      name: "meshlook_summaries_quarantined_total",
      help: "Summaries the warehouse refused for good (constraint, encoding, value), moved to the quarantine, by reason",
      labelNames: ["reason"] as const,
      registers,
    }),
    rowsPruned: new Counter({ name: "meshlook_rows_pruned_total", help: "Warehouse rows deleted by retention, by table", labelNames: ["table"] as const, registers }),
    summariesExpired: new Counter({
      name: "meshlook_summaries_expired_total",
      help: "Summaries not loaded because their window ended more than MESHLOOK_RETENTION_LEDGER_DAYS ago (their ledger row may be pruned)",
      registers,
    }),
    quarantineEntries: new Gauge({ name: "meshlook_quarantine_entries", help: "Summaries held in the quarantine (npm run quarantine -- list)", registers }),
    heldBytes: new Gauge({
      name: "meshlook_ingest_held_bytes",
      help: "Estimated memory ingest holds for acknowledged summaries awaiting load (folds, retry keys); at most MESHLOOK_MAX_HELD_BYTES",
      registers,
      collect() {
        this.set(held.bytes);
      },
    }),
    // The label is a keyed-digest prefix (auth.ts TokenSet), never the token: it tells which token is in
    // use, so an old one can be removed once its counter stops moving, and cannot confirm a guessed token.
    acceptedByToken: new Counter({
      name: "meshlook_ingest_accepted_by_token_total",
      help: "Summaries acknowledged (accepted or duplicate), by ingest token: 8 hex digits of a digest keyed per process (the log names the token's file line)",
      labelNames: ["token"] as const,
      registers,
    }),
  };
  if (auth) {
    new Gauge({
      name: "meshlook_ingest_auth_disabled",
      help: "1 while ingest authentication is disabled (MESHLOOK_AUTH_DISABLED=true): anyone reaching the collector can write",
      registers,
      collect() {
        this.set(auth().disabled ? 1 : 0);
      },
    });
    new Gauge({
      name: "meshlook_ingest_tokens",
      help: "Ingest tokens loaded; 0 refuses every summary and makes /readyz fail",
      registers,
      collect() {
        this.set(auth().tokens);
      },
    });
    new Gauge({
      name: "meshlook_ingest_weak_tokens",
      help: "Loaded ingest tokens shorter than 16 characters (replace them)",
      registers,
      collect() {
        this.set(auth().weakTokens);
      },
    });
  }
  new Gauge({
    name: "meshlook_spool_bytes",
    help: "Bytes in spool segments not yet removed",
    registers,
    collect() {
      this.set(spool()?.bytes ?? 0);
    },
  });
  new Gauge({
    name: "meshlook_spool_segments",
    help: "Spool segment files not yet removed",
    registers,
    collect() {
      this.set(spool()?.segmentCount ?? 0);
    },
  });
  new Gauge({
    name: "meshlook_oldest_unloaded_age_seconds",
    help: "Age of the oldest summary received but not yet committed to the warehouse (0 when none)",
    registers,
    collect() {
      const oldest = spool()?.oldestRecordMs();
      this.set(oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
    },
  });
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;

/** The sinks' hourly onCompaction callback that records each compaction in the metrics. */
export function compactionObserver(m: Metrics): (r: CompactionReport) => void {
  return (r) => {
    m.compactionDuration.observe(r.seconds);
    m.hoursCompacted.inc(r.hours);
    if (r.failure !== undefined) m.compactionFailures.inc({ reason: r.failure });
    if (r.waiting !== undefined) m.hoursWaiting.set(r.waiting);
  };
}
