// Encoded summaries waiting for the collector's acknowledgement, and when to try next. Pure state,
// no host calls: the root context asks it what to send and tells it what happened.
//
// Portable AssemblyScript (numbers are f64/i32 only), so test/filter/outbox.test.ts runs it in Node.
//
// Order is kept: one call is in flight at a time, always the oldest summary. A failure (transport
// error, timeout, non-2xx) keeps the summary and backs off exponentially; a 429/503 with Retry-After
// waits exactly that long instead. When the summaries waiting exceed the byte budget, the oldest
// ones not in flight are dropped and their requests are counted, to be reported by the next summary
// encoded (a dropped summary's own drop report is carried over, so no drop goes unreported). A summary
// the collector refuses for good (400, 413: resending the same bytes cannot succeed) is dropped the same
// way at once, so it never holds back the summaries behind it.

export class Pending {
  constructor(
    public seq: f64,
    public body: Uint8Array,
    /** Requests the summary accounts for. */
    public requests: f64,
    /** Drop counts this summary reports (restored if it is dropped in turn). */
    public reportsDroppedRequests: f64,
    public reportsDroppedWindows: f64,
  ) {}
}

export class Outbox {
  /** Drops not yet reported in an encoded summary. */
  droppedRequests: f64 = 0;
  droppedWindows: f64 = 0;
  /** Bytes of the summaries held. */
  bytes: i32 = 0;
  private queue: Array<Pending> = [];
  private inFlight: bool = false;
  private inFlightSinceMs: f64 = 0;
  private nextAttemptMs: f64 = 0;
  private failures: i32 = 0;

  constructor(
    public maxBytes: i32,
    /** First retry delay; doubles per consecutive failure up to maxBackoffMs. */
    public baseBackoffMs: f64,
    public maxBackoffMs: f64,
    /** A call unanswered this long is treated as failed (the host should have timed it out). */
    public callDeadlineMs: f64,
  ) {}

  get length(): i32 {
    return this.queue.length;
  }

  /** The summary at `index` (0 is the oldest). */
  at(index: i32): Pending {
    return this.queue[index];
  }

  /** Takes the drop counts for the summary being encoded now. */
  takeDrops(): Array<f64> {
    const out: Array<f64> = [this.droppedRequests, this.droppedWindows];
    this.droppedRequests = 0;
    this.droppedWindows = 0;
    return out;
  }

  /** Queues an encoded summary, then drops the oldest summaries while over budget. */
  push(p: Pending): void {
    this.queue.push(p);
    this.bytes += p.body.length;
    while (this.bytes > this.maxBytes) {
      // The summary in flight may still arrive: never drop it (it would be counted twice).
      const victim = this.inFlight ? 1 : 0;
      if (victim >= this.queue.length) break;
      this.drop(victim);
    }
  }

  /** The summary to send now, or null (one in flight, backing off, or nothing queued). */
  next(nowMs: f64): Pending | null {
    if (this.inFlight && nowMs - this.inFlightSinceMs > this.callDeadlineMs) this.failed(nowMs, -1);
    if (this.inFlight || this.queue.length == 0 || nowMs < this.nextAttemptMs) return null;
    return this.queue[0];
  }

  /** The head summary was handed to the host. */
  sent(nowMs: f64): void {
    this.inFlight = true;
    this.inFlightSinceMs = nowMs;
  }

  /** The collector acknowledged the head summary (2xx). */
  acknowledged(): void {
    if (!this.inFlight) return;
    this.inFlight = false;
    this.failures = 0;
    this.nextAttemptMs = 0;
    this.bytes -= this.queue[0].body.length;
    this.queue.shift();
  }

  /** The call for the head summary failed; `retryAfterMs` < 0 when the collector gave none. */
  failed(nowMs: f64, retryAfterMs: f64): void {
    if (!this.inFlight) return;
    this.inFlight = false;
    this.failures++;
    let delay = this.baseBackoffMs;
    for (let i = 1; i < this.failures && delay < this.maxBackoffMs; i++) delay *= 2;
    if (delay > this.maxBackoffMs) delay = this.maxBackoffMs;
    if (retryAfterMs >= 0) delay = retryAfterMs;
    this.nextAttemptMs = nowMs + delay;
  }

  /** The collector refused the head summary for good: dropped and counted as a loss, the next one goes at once. */
  refused(): void {
    if (!this.inFlight) return;
    this.inFlight = false;
    this.failures = 0;
    this.nextAttemptMs = 0;
    this.drop(0);
  }

  private drop(index: i32): void {
    const p = this.queue[index];
    this.queue.splice(index, 1);
    this.bytes -= p.body.length;
    this.droppedRequests += p.requests + p.reportsDroppedRequests;
    this.droppedWindows += 1 + p.reportsDroppedWindows;
  }
}
