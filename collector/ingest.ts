// Ingest stage: a received body becomes a durable, acknowledged summary, or is refused with a reason.
// HTTP concerns (status codes, headers) stay in server.ts; this module decides.
import type { Metrics } from "./metrics.ts";
import type { Spool } from "./spool.ts";
import type { DecodeResult, DecodedSummary } from "./summary.ts";

export type AcceptResult =
  | { status: "accepted"; summary: DecodedSummary }
  | { status: "duplicate" }
  | { status: "invalid"; reason: string; message: string }
  | { status: "spool_full"; message: string };

/** Beyond this many tracked keys, duplicates are still caught, but only by the warehouse ledger. */
const MAX_TRACKED = 1_000_000;

export const summaryKey = (s: { producerId: string; seq: number }) => `${s.producerId}\u0000${s.seq}`;

export class Ingestor {
  /**
   * (producer, seq) of summaries in the spool and not yet loaded, with their durability promise: a retry
   * of one of them is acknowledged once the original is durable, without spooling a second copy. Retries
   * of already-loaded summaries are spooled again and dropped by the load ledger.
   */
  private readonly unloaded = new Map<string, Promise<void>>();

  constructor(
    private readonly spool: Spool,
    private readonly decode: (body: Uint8Array) => DecodeResult,
    private readonly metrics: Metrics,
    private readonly spoolMaxBytes: number,
  ) {}

  async accept(body: Buffer, receivedAtMs: number): Promise<AcceptResult> {
    if (this.spool.bytes >= this.spoolMaxBytes) {
      return { status: "spool_full", message: `spool holds ${this.spool.bytes} unloaded bytes (limit ${this.spoolMaxBytes})` };
    }
    const decoded = this.decode(body);
    if (!decoded.ok) return { status: "invalid", reason: decoded.reason, message: decoded.message ?? decoded.reason };
    const summary = decoded.summary;
    const key = summaryKey(summary);
    const earlier = this.unloaded.get(key);
    if (earlier) {
      await earlier;
      this.metrics.dedupHits.inc({ stage: "ingest" });
      return { status: "duplicate" };
    }
    const durable = this.spool.append(body, receivedAtMs);
    if (this.unloaded.size < MAX_TRACKED) this.unloaded.set(key, durable);
    try {
      await durable;
    } catch (err) {
      this.unloaded.delete(key);
      throw err;
    }
    this.metrics.accepted.inc();
    this.metrics.seriesUpdates.inc(summary.series.length);
    return { status: "accepted", summary };
  }

  /** Called by the loader once summaries are committed in the warehouse. */
  forget(summaries: readonly DecodedSummary[]): void {
    for (const s of summaries) this.unloaded.delete(summaryKey(s));
  }
}
