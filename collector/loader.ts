// Load stage: every load interval, seal the spool, load the sealed segments' summaries into the
// warehouse in one sink transaction, compact once, and only then delete the segments. A crash anywhere
// before the delete replays the segments; the sink's ledger makes the replay count each summary once.
//
// Two ways to get a batch's rows: segments this process wrote were rolled up as their summaries were
// acknowledged (Ingestor folds), so they load without decoding anything again; segments from an earlier
// process, or whose fold is incomplete, or whose summaries the ledger already knows, are read back from
// disk: once for the ledger keys, and once more, inside the load, decoding and rolling up the summaries
// the ledger lacks one at a time (collector/batch.ts). Both produce the same rows, in one transaction.
import type { Logger } from "pino";
import type { Ingestor, SegmentFold } from "./ingest.ts";
import { foldBatch, streamedBatch, subBatch, type LoadBatch } from "./batch.ts";
import { LEGACY_CALLER } from "../shared/schema.ts";
import { ledgerEntry, repeatFinder, summaryCaller, type LedgerEntry } from "./ledger.ts";
import type { Metrics } from "./metrics.ts";
import type { Quarantine } from "./quarantine.ts";
import { expiredBefore, type RetentionPolicy } from "./retention.ts";
import type { LoadResult, Sink } from "./sink/types.ts";
import { SNOWFLAKE_FAILURES, SnowflakeSinkError } from "./sink/snowflake-settings.ts";
import type { Spool } from "./spool.ts";
import type { DecodeResult, DecodedSummary } from "./summary.ts";
import { Yielder } from "./yielder.ts";

/** What Ingestor.forget needs of a loaded summary; the replay path keeps only this, not the summary. */
type SummaryKey = Pick<LedgerEntry, "caller" | "producerId" | "seq">;
const keyOf = (s: DecodedSummary): SummaryKey => ({ caller: summaryCaller(s), producerId: s.producerId, seq: s.seq });

export interface LoaderOptions {
  intervalMs: number;
  /** Upper bound of segment bytes per cycle (one transaction), so a long warehouse outage drains in steps. */
  maxBatchBytes: number;
  /**
   * Rollup bytes of one part on the replay path (default batch.ts DEFAULT_PART_BYTES): memory is bounded
   * by this, not by the batch. Summaries are decoded and rolled up one at a time, never held together (a
   * decoded summary takes tens of times its wire size: holding a 31 MiB batch decoded needed ~2 GiB).
   */
  replayPartBytes?: number;
  /**
   * Upper bound of segment bytes one replay-path transaction reads back (default
   * DEFAULT_REPLAY_BATCH_BYTES). Its ledger-key pass holds a key, a spool reference and a repeat check
   * for every summary of the batch at once (about 0.75 KiB each, over a spool byte per byte for 8-series
   * summaries), which replayPartBytes does not bound: a whole 1 GiB spool replayed after a restart took
   * more than the 1 Gi the deployment gives a replica, and the restarted replica replayed it again.
   */
  replayBatchBytes?: number;
  /** Where summaries the warehouse refuses for good go; without one such a refusal fails the batch. */
  quarantine?: Quarantine;
  /** Warehouse retention, pruned after each cycle's loads; absent or minuteDays 0: nothing is pruned. */
  retention?: RetentionPolicy;
  /** The clock retention and expiry use (tests move it). Default Date.now. */
  now?: () => number;
  /**
   * Called after every cycle that leaves no sealed segment behind (loaded or not), inside the cycle
   * chain so it never overlaps a load on the sink's connection: outlier detection. Must not throw.
   */
  afterLoad?: () => Promise<void>;
}

/**
 * LoaderOptions.replayBatchBytes default: the DuckDB cycle's bound. The key pass of 64 MiB of 8-series
 * summaries holds about 75 MiB; a Snowflake replay of a larger spool costs a transaction per 64 MiB.
 */
export const DEFAULT_REPLAY_BATCH_BYTES = 64 << 20;

/** Where a summary of the replay path lies in the spool: its segment and record index. */
interface RecordRef {
  segment: number;
  record: number;
}

/** The replay path's batch: its summaries' places in the spool, and the keys to forget once it loaded. */
interface SpoolBatch extends LoadBatch {
  refs: RecordRef[];
  keys: SummaryKey[];
  /** Repeats of a (producer_id, seq) within the batch, loaded once. */
  repeats: number;
}

/**
 * The `reason` label of meshlook_load_failures_total: the Snowflake sink classifies its failures
 * (config, auth, transient, sql, conflict); DuckDB errors are local (disk, file lock) and get one label;
 * anything else (reading the spool) is "other".
 */
export function failureReason(err: unknown, sink: Sink["kind"]): string {
  if (err instanceof SnowflakeSinkError) return err.reason;
  return sink === "duckdb" ? "duckdb" : "other";
}

export class Loader {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  private sinkOpen = false;
  /** Message of the failure that keeps the sink closed, so a long outage logs once, not every cycle. */
  private openFailure?: string;

  constructor(
    private readonly spool: Spool,
    private readonly sink: Sink,
    private readonly decode: (body: Uint8Array) => DecodeResult,
    private readonly ingestor: Ingestor | undefined,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: LoaderOptions,
  ) {
    // Every reason this sink can report starts at 0, so increase() sees the first failure as one.
    const reasons = sink.kind === "snowflake" ? [...SNOWFLAKE_FAILURES, "other"] : ["duckdb", "other"];
    for (const reason of reasons) {
      metrics.loadFailures.inc({ reason }, 0);
      metrics.compactionFailures.inc({ reason }, 0);
    }
    if (sink.kind === "snowflake") for (const reason of ["transient", "conflict"]) metrics.loadRetries.inc({ reason }, 0);
    metrics.summariesExpired.inc(0);
    for (const reason of ["constraint", "encoding", "value", "decode"]) metrics.quarantined.inc({ reason }, 0);
    metrics.quarantineEntries.set(opts.quarantine?.size ?? 0);
  }

  /** The sink is open: connected and every migration applied (readiness waits for this). */
  get sinkIsOpen(): boolean {
    return this.sinkOpen;
  }

  /** Loads what earlier runs left in the spool, then keeps loading every interval. */
  start(): void {
    void this.loadNow().then((more) => this.schedule(more ? 0 : this.opts.intervalMs));
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.loadNow().then((more) => this.schedule(more ? 0 : this.opts.intervalMs));
    }, delayMs);
  }

  /**
   * One load cycle (never two at once). Returns true when sealed segments remain beyond this batch.
   * A failed load is logged and counted; its segments stay for the next cycle.
   */
  loadNow(): Promise<boolean> {
    const run = (this.running ?? Promise.resolve()).then(async () => {
      const more = await this.cycle();
      if (!more) await this.opts.afterLoad?.();
      return more;
    });
    this.running = run.then(
      () => undefined,
      () => undefined,
    );
    return run.catch((err) => {
      this.metrics.loadFailures.inc({ reason: failureReason(err, this.sink.kind) });
      this.log.error({ err }, "warehouse load failed; the spool keeps the summaries and the next cycle retries");
      return false;
    });
  }

  /**
   * Opens the sink (connect + migrations) unless it is open. A warehouse that cannot be opened (DuckDB
   * file locked by another process, Snowflake unreachable) does not stop the collector: ingest keeps
   * spooling, /readyz reports the warehouse unreachable, and every load cycle tries again (counted as a
   * failed load). Returns whether the sink is open.
   */
  async openSink(): Promise<boolean> {
    if (this.sinkOpen) return true;
    try {
      await this.sink.open();
    } catch (err) {
      await this.sink.close().catch(() => undefined); // drop a half-open connection before the next try
      this.metrics.loadFailures.inc({ reason: failureReason(err, this.sink.kind) });
      const message = (err as Error).message;
      if (message !== this.openFailure) {
        this.log.error({ err }, `warehouse cannot be opened: ${message}; summaries stay in the spool and the open is retried every load interval`);
      }
      this.openFailure = message;
      return false;
    }
    this.sinkOpen = true;
    if (this.openFailure !== undefined) this.log.warn("warehouse opened; loading the spool");
    this.openFailure = undefined;
    return true;
  }

  private async cycle(): Promise<boolean> {
    if (!(await this.openSink())) return false;
    await this.reloadQueued();
    const sealed = await this.spool.seal();
    let batch: number[] = [];
    let bytes = 0;
    for (const id of sealed) {
      if (batch.length > 0 && bytes >= this.opts.maxBatchBytes) break;
      batch.push(id);
      bytes += this.spool.sizeOf(id);
    }
    if (batch.length === 0) {
      await this.prune();
      return false;
    }
    const folds = batch.map((id) => this.ingestor?.takeFold(id, this.spool.recordCount(id)));
    const end = this.metrics.loadDuration.startTimer();
    let loaded;
    try {
      loaded = await this.loadFolded(folds);
    } catch (err) {
      // The fold path has no per-summary bytes: a refused fold is loaded again from disk, which isolates.
      if (!this.opts.quarantine || this.sink.refusal(err) === undefined) throw err;
    }
    const path = loaded ? "folded" : "replay";
    if (!loaded) {
      // The folds of the segments left out were taken: those segments replay from disk next cycle.
      batch = this.replayPrefix(batch);
      loaded = await this.loadFromDisk(batch);
    }
    await this.sink.compactLoaded();
    end();
    const { res, keys } = loaded;
    this.metrics.loadCycles.inc({ path });
    this.metrics.summariesLoaded.inc(res.loaded);
    this.metrics.rowsLoaded.inc(res.rows);
    this.metrics.rollupSeries.set(res.rows);
    if (res.duplicates > 0) this.metrics.dedupHits.inc({ stage: "load" }, res.duplicates);
    this.log.debug({ segments: batch.length, ...res }, "loaded");
    await this.spool.remove(batch);
    this.ingestor?.forget(keys);
    await this.prune();
    return batch.length < sealed.length;
  }

  /** Retention after the cycle's loads; a failure is logged and left to the next cycle, never a failed load. */
  private async prune(): Promise<void> {
    const policy = this.opts.retention;
    if (!policy || policy.minuteDays === 0) return;
    try {
      for (const r of await this.sink.prune(policy, this.now())) if (r.rows > 0) this.metrics.rowsPruned.inc({ table: r.table }, r.rows);
    } catch (err) {
      this.log.warn({ err }, "retention pruning failed; the next cycle retries it");
    }
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** A summary whose window ended before this must not load: its ledger row may already be pruned. */
  private expired(windowEndMs: number): boolean {
    return this.opts.retention !== undefined && windowEndMs < expiredBefore(this.opts.retention, this.now());
  }

  /** The fast path: every segment of the batch has a complete fold. undefined → load from disk instead. */
  private async loadFolded(folds: (SegmentFold | undefined)[]): Promise<{ res: LoadResult; keys: SummaryKey[] } | undefined> {
    if (!folds.every((f) => f !== undefined)) return undefined;
    const keys: LedgerEntry[] = folds.flatMap((f) => f.ledger);
    // Expired summaries are dropped one by one on the replay path; a fold cannot leave one out. Nor
    // can it load a key twice.
    if (keys.some((e) => this.expired(e.windowEndMs))) return undefined;
    if (keys.some(repeatFinder())) return undefined;
    // The folds were taken from the ingestor for this load alone (a failed one replays from disk), so
    // the first takes in the others' rows: its own are neither copied nor held twice.
    const rollup = folds[0].rollup;
    const yielder = new Yielder();
    for (const f of folds.slice(1)) {
      for (const r of f.rollup.rows()) {
        rollup.addRow(r);
        if (yielder.rowDue()) await yielder.maybe();
      }
      // One at a time: spreading a segment's losses as arguments overflows the stack past ~120k rows.
      for (const l of f.rollup.losses) rollup.losses.push(l);
    }
    const res = await this.sink.loadBatch(foldBatch(rollup, keys));
    return res ? { res, keys } : undefined;
  }

  /** The first segments of `batch` within replayBatchBytes (at least one), for one replay-path transaction. */
  private replayPrefix(batch: number[]): number[] {
    const limit = this.opts.replayBatchBytes ?? DEFAULT_REPLAY_BATCH_BYTES;
    let bytes = 0;
    let n = 0;
    while (n < batch.length && (n === 0 || bytes + this.spool.sizeOf(batch[n]) <= limit)) bytes += this.spool.sizeOf(batch[n++]);
    return batch.slice(0, n);
  }

  /**
   * The replay path: read, check and decode every record for its ledger key (expired and undecodable
   * ones are set aside here), then load the batch in one transaction, in which the sink has the
   * summaries the ledger lacks decoded again and rolled up, one at a time.
   */
  private async loadFromDisk(segments: number[]): Promise<{ res: LoadResult; keys: SummaryKey[] }> {
    const b = await this.spoolBatch(segments);
    const res = await this.loadIsolating(b, [...b.entries.keys()]);
    return { res: { ...res, duplicates: res.duplicates + b.repeats }, keys: b.keys };
  }

  private async spoolBatch(segments: number[]): Promise<SpoolBatch> {
    const entries: LedgerEntry[] = [];
    const refs: RecordRef[] = [];
    const keys: SummaryKey[] = [];
    const repeat = repeatFinder();
    let repeats = 0;
    const yielder = new Yielder();
    for (const id of segments) {
      const seg = await this.spool.read(id);
      for (const c of seg.corruptions) {
        this.metrics.spoolCorruptions.inc({ reason: c.reason });
        this.log.error(c, "spool corruption skipped");
      }
      for (const [record, r] of seg.records.entries()) {
        const d = this.decode(r.body);
        if (!d.ok) {
          this.metrics.replayRejected.inc();
          if (this.opts.quarantine) this.toQuarantine(r.body, { caller: r.caller, producerId: "", seq: -1 }, "decode", d.reason);
          else this.log.error({ segment: id, reason: d.reason }, "spooled summary no longer decodes; skipped");
        } else {
          const s = d.summary;
          s.caller = r.caller;
          keys.push(keyOf(s));
          if (this.expired(s.windowEndMs)) {
            this.metrics.summariesExpired.inc();
            this.log.warn(
              { producerId: s.producerId, seq: s.seq, windowEnd: new Date(s.windowEndMs).toISOString() },
              "summary older than MESHLOOK_RETENTION_LEDGER_DAYS not loaded: it may be a retry whose ledger row was pruned",
            );
          } else if (repeat(s)) {
            repeats++;
          } else {
            entries.push(ledgerEntry(s));
            refs.push({ segment: id, record });
          }
        }
        await yielder.maybe();
      }
    }
    const read = async function* (this: Loader, fresh: readonly boolean[]): AsyncGenerator<DecodedSummary> {
      let segment: number | undefined;
      let records: { body: Uint8Array; caller: string }[] = [];
      for (const [i, ref] of refs.entries()) {
        if (!fresh[i]) continue;
        if (ref.segment !== segment) {
          segment = ref.segment;
          records = (await this.spool.read(segment)).records;
        }
        const r = records[ref.record];
        const d = this.decode(r.body);
        // Decoded a moment ago for its key: only a changed file could fail now, and loading less than
        // the ledger rows claim would lose that summary for good.
        if (!d.ok) throw new Error(`spool segment ${segment} changed while it was being loaded`);
        d.summary.caller = r.caller;
        yield d.summary;
      }
    }.bind(this);
    return { ...streamedBatch(entries, read, this.opts.replayPartBytes), refs, keys, repeats };
  }

  /**
   * Loads the entries at `positions` of `b` in one sink transaction; if the warehouse refuses it for
   * good, loads each half on its own, down to single summaries, which go to the quarantine. A transient
   * failure (or a refusal with no quarantine configured) propagates, and the whole batch is retried next
   * cycle. One bad summary in n costs about 2·log2(n) extra transactions, once.
   */
  private async loadIsolating(b: SpoolBatch, positions: number[]): Promise<LoadResult> {
    try {
      // A streamed batch always has parts, so the sink never answers null.
      return (await this.sink.loadBatch(positions.length === b.entries.length ? b : subBatch(b, positions)))!;
    } catch (err) {
      const reason = this.opts.quarantine ? this.sink.refusal(err) : undefined;
      if (reason === undefined) throw err;
      if (positions.length === 1) {
        const ref = b.refs[positions[0]];
        const body = (await this.spool.read(ref.segment)).records[ref.record].body;
        this.toQuarantine(body, b.entries[positions[0]], reason, (err as Error).message);
        return { loaded: 0, duplicates: 0, rows: 0 };
      }
      const half = positions.length >> 1;
      const x = await this.loadIsolating(b, positions.slice(0, half));
      const y = await this.loadIsolating(b, positions.slice(half));
      return { loaded: x.loaded + y.loaded, duplicates: x.duplicates + y.duplicates, rows: x.rows + y.rows };
    }
  }

  private toQuarantine(body: Uint8Array, key: SummaryKey, reason: string, error: string): void {
    const q = this.opts.quarantine!;
    const id = q.add(body, { caller: key.caller, producerId: key.producerId, seq: key.seq, reason, error });
    this.metrics.quarantined.inc({ reason });
    this.metrics.quarantineEntries.set(q.size);
    this.log.error({ id, producerId: key.producerId, seq: key.seq, reason, error }, "warehouse refused a summary; kept in the quarantine (npm run quarantine -- list)");
  }

  /**
   * Loads the quarantined summaries queued by `npm run quarantine -- reload`, one transaction each (they
   * are few, and each must succeed or fail alone). Refused again: back to the quarantine with the new
   * reason. A transient failure leaves the rest queued and fails this cycle like any load.
   */
  private async reloadQueued(): Promise<void> {
    const q = this.opts.quarantine;
    if (!q) return;
    for (const e of q.queued()) {
      const d = this.decode(e.body);
      if (!d.ok) {
        q.refuseAgain(e.id, "decode", d.reason);
        continue;
      }
      d.summary.caller = e.caller ?? LEGACY_CALLER;
      try {
        const r = await this.sink.load([d.summary]);
        this.metrics.summariesLoaded.inc(r.loaded);
        this.metrics.rowsLoaded.inc(r.rows);
        q.done(e.id);
        this.log.info({ id: e.id, loaded: r.loaded, duplicates: r.duplicates }, "quarantined summary reloaded");
      } catch (err) {
        const reason = this.sink.refusal(err);
        if (reason === undefined) throw err;
        q.refuseAgain(e.id, reason, (err as Error).message);
        this.metrics.quarantined.inc({ reason });
      }
    }
    this.metrics.quarantineEntries.set(q.size);
  }

  /** Stops the timer, waits for a running cycle, then drains the spool into the warehouse once more. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (;;) {
      const more = await this.loadNow();
      if (!more) break;
    }
  }
}
