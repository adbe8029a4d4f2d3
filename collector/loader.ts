// Load stage: every load interval, seal the spool, read the sealed segments, load their summaries into
// the warehouse in one sink transaction, and only then delete the segments. A crash anywhere before
// the delete replays the segments; the sink's ledger makes the replay count each summary once.
import type { Logger } from "pino";
import type { Ingestor } from "./ingest.ts";
import type { Metrics } from "./metrics.ts";
import type { Sink } from "./sink/types.ts";
import type { Spool } from "./spool.ts";
import type { DecodeResult, DecodedSummary } from "./summary.ts";
import { Yielder } from "./yielder.ts";

export interface LoaderOptions {
  intervalMs: number;
  /** Upper bound of segment bytes per transaction, so a long warehouse outage drains in steps. */
  maxBatchBytes: number;
}

export class Loader {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly spool: Spool,
    private readonly sink: Sink,
    private readonly decode: (body: Uint8Array) => DecodeResult,
    private readonly ingestor: Ingestor | undefined,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly opts: LoaderOptions,
  ) {}

  /** Loads what earlier runs left in the spool, then keeps loading every interval. */
  start(): void {
    this.schedule(0);
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
    const run = (this.running ?? Promise.resolve()).then(() => this.cycle());
    this.running = run.then(
      () => undefined,
      () => undefined,
    );
    return run.catch((err) => {
      this.metrics.loadFailures.inc();
      this.log.error({ err }, "warehouse load failed; the spool keeps the summaries and the next cycle retries");
      return false;
    });
  }

  private async cycle(): Promise<boolean> {
    const sealed = await this.spool.seal();
    const batch: number[] = [];
    let bytes = 0;
    const summaries: DecodedSummary[] = [];
    const yielder = new Yielder();
    for (const id of sealed) {
      if (batch.length > 0 && bytes >= this.opts.maxBatchBytes) break;
      const seg = await this.spool.read(id);
      batch.push(id);
      for (const c of seg.corruptions) {
        this.metrics.spoolCorruptions.inc({ reason: c.reason });
        this.log.error(c, "spool corruption skipped");
      }
      for (const r of seg.records) {
        bytes += r.body.length;
        const d = this.decode(r.body);
        if (d.ok) summaries.push(d.summary);
        else {
          this.metrics.replayRejected.inc();
          this.log.error({ segment: id, reason: d.reason }, "spooled summary no longer decodes; skipped");
        }
        await yielder.maybe();
      }
    }
    if (batch.length === 0) return false;
    if (summaries.length > 0) {
      const end = this.metrics.loadDuration.startTimer();
      const res = await this.sink.load(summaries);
      end();
      this.metrics.summariesLoaded.inc(res.loaded);
      this.metrics.rowsLoaded.inc(res.rows);
      this.metrics.rollupSeries.set(res.rows);
      if (res.duplicates > 0) this.metrics.dedupHits.inc({ stage: "load" }, res.duplicates);
      this.log.debug({ segments: batch.length, ...res }, "loaded");
    }
    await this.spool.remove(batch);
    this.ingestor?.forget(summaries);
    return batch.length < sealed.length;
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
