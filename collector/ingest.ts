// Ingest stage: a received body becomes a durable, acknowledged summary, or is refused with a reason.
// HTTP concerns (status codes, headers) stay in server.ts; this module decides.
import { ledgerEntry, ledgerKey, type LedgerEntry } from "./ledger.ts";
import type { Metrics } from "./metrics.ts";
import { MinuteRollup } from "./rollup.ts";
import type { Spool } from "./spool.ts";
import type { DecodeResult, DecodedSummary } from "./summary.ts";

export type AcceptResult =
  | { status: "accepted"; summary: DecodedSummary }
  | { status: "duplicate" }
  | { status: "invalid"; reason: string; message: string }
  | { status: "spool_full"; message: string };

/** Beyond this many tracked keys, duplicates are still caught, but only by the warehouse ledger. */
const MAX_TRACKED = 1_000_000;
/** Beyond this many folded rows (all segments), new segments are not folded and load from disk. */
const MAX_FOLDED_ROWS = 2_000_000;

/** The summaries acknowledged into one spool segment, already rolled up (see Ingestor.takeFold). */
export interface SegmentFold {
  rollup: MinuteRollup;
  ledger: LedgerEntry[];
}

export class Ingestor {
  /**
   * (producer, seq) of summaries in the spool and not yet loaded, with their durability promise: a retry
   * of one of them is acknowledged once the original is durable, without spooling a second copy. Retries
   * of already-loaded summaries are spooled again and dropped by the load ledger.
   */
  private readonly unloaded = new Map<string, Promise<unknown>>();
  /**
   * Per spool segment, the rollup of the summaries acknowledged into it, so the loader need not decode
   * the segment again. The segment on disk stays the source of truth: the loader uses a fold only when
   * it holds exactly as many summaries as the spool wrote to the segment.
   */
  private readonly folds = new Map<number, SegmentFold>();
  private foldedRows = 0;

  constructor(
    private readonly spool: Spool,
    private readonly decode: (body: Uint8Array) => DecodeResult,
    private readonly metrics: Metrics,
    private readonly spoolMaxBytes: number,
    /** Fold only for sinks that can load a fold (Sink.loadRollup); others always load from the spool. */
    private readonly foldSegments: boolean,
  ) {}

  async accept(body: Buffer, receivedAtMs: number): Promise<AcceptResult> {
    if (this.spool.bytes >= this.spoolMaxBytes) {
      return { status: "spool_full", message: `spool holds ${this.spool.bytes} unloaded bytes (limit ${this.spoolMaxBytes})` };
    }
    const decoded = this.decode(body);
    if (!decoded.ok) return { status: "invalid", reason: decoded.reason, message: decoded.message };
    const summary = decoded.summary;
    const key = ledgerKey(summary.producerId, summary.seq);
    const earlier = this.unloaded.get(key);
    if (earlier) {
      await earlier;
      this.metrics.dedupHits.inc({ stage: "ingest" });
      return { status: "duplicate" };
    }
    const durable = this.spool.append(body, receivedAtMs);
    if (this.unloaded.size < MAX_TRACKED) this.unloaded.set(key, durable);
    let segment: number;
    try {
      segment = await durable;
    } catch (err) {
      this.unloaded.delete(key);
      throw err;
    }
    const entry = ledgerEntry(summary);
    this.fold(segment, summary, entry);
    this.metrics.accepted.inc();
    this.metrics.seriesUpdates.inc(entry.series);
    return { status: "accepted", summary };
  }

  private fold(segment: number, summary: DecodedSummary, entry: LedgerEntry): void {
    if (!this.foldSegments) return;
    let f = this.folds.get(segment);
    if (!f) {
      if (this.foldedRows >= MAX_FOLDED_ROWS) return; // this segment will load from disk
      f = { rollup: new MinuteRollup(), ledger: [] };
      this.folds.set(segment, f);
    }
    const before = f.rollup.size;
    f.rollup.add(summary);
    f.ledger.push(entry);
    this.foldedRows += f.rollup.size - before;
  }

  /**
   * Hands the loader a segment's fold if it covers every record the spool wrote there (`records`), and
   * forgets it either way.
   */
  takeFold(segment: number, records: number | undefined): SegmentFold | undefined {
    const f = this.folds.get(segment);
    if (!f) return undefined;
    this.folds.delete(segment);
    this.foldedRows -= f.rollup.size;
    return f.ledger.length === records ? f : undefined;
  }

  /** Called by the loader once summaries are committed in the warehouse. */
  forget(summaries: readonly { producerId: string; seq: number }[]): void {
    for (const s of summaries) this.unloaded.delete(ledgerKey(s.producerId, s.seq));
  }
}
