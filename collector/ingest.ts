// Ingest stage: a received body becomes a durable, acknowledged summary, or is refused with a reason.
// HTTP concerns (status codes, headers) stay in server.ts; this module decides.
import { checkIdentity, ledgerIdentity, type Caller } from "./identity.ts";
import { ledgerEntry, ledgerKey, type LedgerEntry } from "./ledger.ts";
import type { Metrics } from "./metrics.ts";
import { MinuteRollup } from "./rollup.ts";
import type { Spool } from "./spool.ts";
import { SeriesColumns, type DecodeResult, type DecodedSummary } from "./summary.ts";

/** What an accepted summary says its sidecar lost (DecodedSummary's counters of that name). */
export type ReportedLoss = Pick<DecodedSummary, "droppedRequests" | "droppedWindows" | "overflowKeys">;

export type AcceptResult =
  /**
   * `foldError`: rolling it up in memory failed after it was durable. It is acknowledged all the same (a
   * refusal would be untrue and make the sidecar send it again) and its segment loads from disk.
   */
  | { status: "accepted"; loss: ReportedLoss; foldError?: unknown }
  | { status: "duplicate" }
  | { status: "invalid"; reason: string; message: string }
  | { status: "forbidden"; reason: string; message: string }
  | { status: "spool_full"; message: string };

/**
 * Estimated bytes a tracked key costs beyond its characters (Map entry, the settled promise) and a folded
 * ledger entry beyond its strings (object, numbers); generous, so the estimate stays an upper bound.
 */
const KEY_OVERHEAD_BYTES = 160;
const ENTRY_OVERHEAD_BYTES = 96;
/** Bytes of a string held in memory, at most: V8 stores two bytes per character outside Latin-1. */
const stringBytes = (s: string) => 2 * s.length;
/**
 * Most requests one summary may carry (about 10^12: a sidecar serving 10^8 requests a second for a
 * 10 s window is far below it). Also keeps the ledger's per-summary request total inside a BIGINT.
 */
export const MAX_SUMMARY_REQUESTS = 2 ** 40;
/**
 * Bytes of decoder columns kept for reuse (a set per summary in flight): sets that would take the pool
 * past it, such as one a huge summary grew, are left to the garbage collector.
 */
const SPARE_COLUMNS_BYTES = 16 << 20;

/** Settings of the ingest checks that do not depend on the body's encoding (docs/security.md). */
export interface IngestLimits {
  /** Oldest a window may start before the receive time; 0 = no bound. */
  maxWindowAgeMs: number;
  /** Latest a window may end after the receive time (sidecar clock skew); 0 = no bound. */
  maxWindowAheadMs: number;
  /**
   * Memory (estimated bytes) held for summaries awaiting load: folds (MinuteRollup.bytes plus their
   * ledger entries) and tracked retry keys. Beyond it a summary is spooled without either: it loads from
   * disk and a retry of it is caught by the warehouse ledger, so the bound costs speed, never data.
   */
  maxHeldBytes: number;
  /** Longest a window may have ended before the receive time and still load exactly once (retention.ts ingestHorizonMs); 0 = no bound. */
  ledgerHorizonMs?: number;
}

/**
 * The receive-time bound on a window, or undefined when it is within bounds. A sidecar that was
 * partitioned delivers its held windows late: the age bound must exceed the longest such outage the
 * filter's pending budget covers, and hours are recompacted when late rows land (docs/security.md).
 */
export function windowOutOfRange(s: { windowStartMs: number; windowEndMs: number }, receivedAtMs: number, limits: IngestLimits): string | undefined {
  if (limits.maxWindowAgeMs > 0 && s.windowStartMs < receivedAtMs - limits.maxWindowAgeMs) {
    return `window starts ${Math.round((receivedAtMs - s.windowStartMs) / 1000)} s before it was received; at most ${limits.maxWindowAgeMs / 1000} s (MESHLOOK_MAX_WINDOW_AGE_S) is accepted`;
  }
  const horizon = limits.ledgerHorizonMs ?? 0;
  if (horizon > 0 && s.windowEndMs < receivedAtMs - horizon) {
    return `window ended ${Math.round((receivedAtMs - s.windowEndMs) / 1000)} s before it was received; at most ${horizon / 1000} s (MESHLOOK_RETENTION_LEDGER_DAYS less one day to load it) is accepted: its load ledger row could be pruned before a retry`;
  }
  if (limits.maxWindowAheadMs > 0 && s.windowEndMs > receivedAtMs + limits.maxWindowAheadMs) {
    return `window ends ${Math.round((s.windowEndMs - receivedAtMs) / 1000)} s after it was received; at most ${limits.maxWindowAheadMs / 1000} s (MESHLOOK_MAX_WINDOW_AHEAD_S) of clock skew is accepted`;
  }
  return undefined;
}

/** The summaries acknowledged into one spool segment, already rolled up (see Ingestor.takeFold). */
export interface SegmentFold {
  rollup: MinuteRollup;
  ledger: LedgerEntry[];
}

export class Ingestor {
  /**
   * Ledger keys (caller, producer, seq) of summaries in the spool and not yet loaded, with their
   * durability promise: a retry of one of them is acknowledged once the original is durable, without
   * spooling a second copy. Retries of already-loaded summaries are spooled again and dropped by the
   * load ledger. Another caller's summary with the same (producer, seq) is another summary, here as in
   * the ledger: it can neither stand in for this one nor make it a duplicate.
   */
  private readonly unloaded = new Map<string, Promise<unknown>>();
  /**
   * Per spool segment, the rollup of the summaries acknowledged into it, so the loader need not decode
   * the segment again. The segment on disk stays the source of truth: the loader uses a fold only when
   * it holds exactly as many summaries as the spool wrote to the segment.
   */
  private readonly folds = new Map<number, SegmentFold & { bytes: number }>();
  /**
   * Segments whose fold was dropped (over budget, or its rollup failed): they load from disk whatever is
   * folded after, so what is acknowledged into them next is not rolled up into a fold no load would use.
   */
  private readonly unfolded = new Set<number>();
  /** Estimated bytes of `folds` and `unloaded` together, bounded by limits.maxHeldBytes. */
  private held = 0;
  /**
   * Columns a summary in flight is decoded into (decodeSummaryInto), from here and back once it is folded
   * or refused: the summary is dropped then, so no copy of its columns is made.
   */
  private readonly spareColumns: SeriesColumns[] = [];
  private spareBytes = 0;

  constructor(
    private readonly spool: Spool,
    /** decodeSummaryInto: the summary may use `cols` until accept() returns. */
    private readonly decode: (body: Uint8Array, cols: SeriesColumns) => DecodeResult,
    private readonly metrics: Metrics,
    private readonly spoolMaxBytes: number,
    /** Whether to fold (the collector always does; tests turn it off to load everything from the spool). */
    private readonly foldSegments: boolean,
    private readonly limits: IngestLimits = { maxWindowAgeMs: 0, maxWindowAheadMs: 0, maxHeldBytes: 256 << 20 },
  ) {}

  /** `caller` is who sent the body (identity.ts); absent, the summary is taken as speaking for anyone. */
  async accept(body: Buffer, receivedAtMs: number, caller: Caller = { key: "" }): Promise<AcceptResult> {
    if (this.spool.bytes >= this.spoolMaxBytes) {
      return { status: "spool_full", message: `spool holds ${this.spool.bytes} unloaded bytes (limit ${this.spoolMaxBytes})` };
    }
    let cols = this.spareColumns.pop();
    if (cols) this.spareBytes -= cols.heldBytes();
    else cols = new SeriesColumns();
    try {
      return await this.acceptInto(body, receivedAtMs, caller, cols);
    } finally {
      const bytes = cols.heldBytes();
      if (this.spareBytes + bytes <= SPARE_COLUMNS_BYTES) {
        this.spareColumns.push(cols);
        this.spareBytes += bytes;
      }
    }
  }

  private async acceptInto(body: Buffer, receivedAtMs: number, caller: Caller, cols: SeriesColumns): Promise<AcceptResult> {
    const decoded = this.decode(body, cols);
    if (!decoded.ok) return { status: "invalid", reason: decoded.reason, message: decoded.message };
    const summary = decoded.summary;
    summary.caller = ledgerIdentity(caller);
    const entry = ledgerEntry(summary);
    if (entry.requests > MAX_SUMMARY_REQUESTS) {
      return { status: "invalid", reason: "too_many_requests", message: `summary carries ${entry.requests} requests; at most 2^40 per summary are accepted` };
    }
    const late = windowOutOfRange(summary, receivedAtMs, this.limits);
    if (late) return { status: "invalid", reason: "window_out_of_range", message: late };
    const mismatch = checkIdentity(summary, caller);
    if (mismatch) return { status: "forbidden", reason: mismatch.reason, message: mismatch.message };
    const key = ledgerKey(entry.caller, entry.producerId, entry.seq);
    const earlier = this.unloaded.get(key);
    if (earlier) {
      await earlier;
      this.metrics.dedupHits.inc({ stage: "ingest" });
      return { status: "duplicate" };
    }
    const durable = this.spool.append(body, receivedAtMs, entry.caller);
    const keyBytes = stringBytes(key) + KEY_OVERHEAD_BYTES;
    const tracked = this.held + keyBytes <= this.limits.maxHeldBytes;
    if (tracked) {
      this.unloaded.set(key, durable);
      this.hold(keyBytes);
    }
    let segment: number;
    try {
      segment = await durable;
    } catch (err) {
      if (tracked) this.untrack(key);
      throw err;
    }
    this.metrics.accepted.inc();
    this.metrics.seriesUpdates.inc(entry.series);
    const { droppedRequests, droppedWindows, overflowKeys } = summary;
    const loss = { droppedRequests, droppedWindows, overflowKeys };
    try {
      this.fold(segment, summary, entry);
    } catch (foldError) {
      // The fold may be part-way changed: without it the loader reads the segment back from disk (takeFold
      // answers undefined for a segment with no fold).
      this.dropFold(segment);
      return { status: "accepted", loss, foldError };
    }
    return { status: "accepted", loss };
  }

  private fold(segment: number, summary: DecodedSummary, entry: LedgerEntry): void {
    if (!this.foldSegments || this.unfolded.has(segment)) return;
    let f = this.folds.get(segment);
    if (!f) {
      if (this.held >= this.limits.maxHeldBytes) {
        // Over budget: this segment loads from disk, this summary being in it unfolded.
        this.dropFold(segment);
        return;
      }
      f = { rollup: new MinuteRollup(), ledger: [], bytes: 0 };
      this.folds.set(segment, f);
    }
    const before = f.rollup.bytes;
    f.rollup.add(summary);
    f.ledger.push(entry);
    const grown = f.rollup.bytes - before + stringBytes(entry.caller) + stringBytes(entry.producerId) + ENTRY_OVERHEAD_BYTES;
    f.bytes += grown;
    this.hold(grown);
    // Over budget mid-segment: give the memory back; the segment loads from disk instead.
    if (this.held > this.limits.maxHeldBytes) this.dropFold(segment);
  }

  private dropFold(segment: number): void {
    this.unfolded.add(segment);
    const f = this.folds.get(segment);
    if (!f) return;
    this.folds.delete(segment);
    this.hold(-f.bytes);
  }

  private hold(bytes: number): void {
    this.held += bytes;
    this.metrics.held.bytes = this.held;
  }

  private untrack(key: string): void {
    if (this.unloaded.delete(key)) this.hold(-(stringBytes(key) + KEY_OVERHEAD_BYTES));
  }

  /**
   * Hands the loader a segment's fold if it covers every record the spool wrote there (`records`), and
   * forgets it either way.
   */
  takeFold(segment: number, records: number | undefined): SegmentFold | undefined {
    this.unfolded.delete(segment);
    const f = this.folds.get(segment);
    if (!f) return undefined;
    this.folds.delete(segment);
    this.hold(-f.bytes);
    return f.ledger.length === records ? f : undefined;
  }

  /** Called by the loader once summaries are committed in the warehouse. */
  forget(summaries: readonly { caller: string; producerId: string; seq: number }[]): void {
    for (const s of summaries) this.untrack(ledgerKey(s.caller, s.producerId, s.seq));
  }
}
