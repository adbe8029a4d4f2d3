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
// way at once, so it never holds back the summaries behind it. The summaries dropped for the budget are
// also tallied by reason, for the root context to log and count as proxy stats.
//
// The summaries' bytes live in one block of the budget's size, allocated once, oldest first and back to
// back: the encoder writes each summary straight into it, and a summary leaving moves the ones behind it
// down. So holding summaries never allocates, and a full outbox takes no more memory than an empty one
// (the filter's memory stays flat with the collector down). Moving or overwriting the bytes of a summary
// in flight (a resize, a call past its deadline) is safe: the proxy copies a call's body before
// proxy_http_call returns (Envoy source/extensions/common/wasm/context.cc, Context::httpCall,
// `message->body().add(request_body)`, which Buffer::OwnedImpl copies into its own slices; proxy-wasm
// cpp-host src/exports.cc, http_call, passes it only a view of the VM's memory).

export class Pending {
  /** Where its bytes start in the outbox's arena (set by push, lowered as summaries ahead of it leave). */
  offset: i32 = 0;

  constructor(
    public seq: f64,
    /** Bytes of the encoded summary. */
    public length: i32,
    /** Requests the summary accounts for. */
    public requests: f64,
    /** Series the summary carries (the overflow series included). */
    public series: f64,
    /** Drop counts this summary reports (restored if it is dropped in turn). */
    public reportsDroppedRequests: f64,
    public reportsDroppedWindows: f64,
  ) {}
}

/** Summaries dropped for one reason, with their own series and requests (not the drops they reported). */
export class DropTally {
  summaries: f64 = 0;
  series: f64 = 0;
  requests: f64 = 0;

  add(p: Pending): void {
    this.summaries += 1;
    this.series += p.series;
    this.requests += p.requests;
  }

  /** Adds `other`'s counts to these and clears `other`. */
  take(other: DropTally): void {
    this.summaries += other.summaries;
    this.series += other.series;
    this.requests += other.requests;
    other.clear();
  }

  clear(): void {
    this.summaries = 0;
    this.series = 0;
    this.requests = 0;
  }
}

export class Outbox {
  /** Drops not yet reported in an encoded summary. */
  droppedRequests: f64 = 0;
  droppedWindows: f64 = 0;
  /** Summaries dropped because one alone was larger than the budget (push answered -1). */
  tooLarge: DropTally = new DropTally();
  /** Summaries dropped, oldest first, to make room within the budget (a new summary, a smaller budget). */
  evicted: DropTally = new DropTally();
  /** Bytes of the summaries held: arena[0, bytes). */
  bytes: i32 = 0;
  /** The summaries' bytes; at least maxBytes long. */
  arena: Uint8Array;
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
  ) {
    this.arena = new Uint8Array(maxBytes);
  }

  get length(): i32 {
    return this.queue.length;
  }

  /** The summary at `index` (0 is the oldest). */
  at(index: i32): Pending {
    return this.queue[index];
  }

  /** The bytes of a summary held (a view of the arena, valid until the outbox changes). */
  body(p: Pending): Uint8Array {
    return this.arena.subarray(p.offset, p.offset + p.length);
  }

  /** Takes the drop counts for the summary being encoded now. */
  takeDrops(): Array<f64> {
    const out: Array<f64> = [this.droppedRequests, this.droppedWindows];
    this.droppedRequests = 0;
    this.droppedWindows = 0;
    return out;
  }

  /**
   * Makes room for `p` within the budget, dropping the oldest summaries not in flight, and queues it.
   * Returns where its p.length bytes go in `arena` (the caller writes them there before anything else
   * touches the outbox), or -1 when it cannot be held even alone beside the one in flight: then it is
   * dropped (and counted) instead, and the summaries held stay.
   */
  push(p: Pending): i32 {
    const kept = this.inFlight && this.queue.length > 0 ? this.queue[0].length : 0;
    if (kept + p.length <= this.maxBytes) this.dropOldestUntil(this.maxBytes - p.length, this.evicted);
    if (this.bytes + p.length > this.maxBytes) {
      this.count(p);
      this.tooLarge.add(p);
      return -1;
    }
    p.offset = this.bytes;
    this.queue.push(p);
    this.bytes += p.length;
    return p.offset;
  }

  /** A new budget (a reconfiguration): the oldest summaries not in flight are dropped until the rest fit. */
  resize(maxBytes: i32): void {
    if (maxBytes == this.maxBytes) return;
    this.dropOldestUntil(maxBytes, this.evicted);
    // Only a summary in flight larger than the new budget keeps the arena longer, until the next resize.
    const next = new Uint8Array(maxBytes > this.bytes ? maxBytes : this.bytes);
    next.set(this.arena.subarray(0, this.bytes));
    this.arena = next;
    this.maxBytes = maxBytes;
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
    this.remove(0);
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

  /**
   * Drops every summary held but one in flight, each counted with the drops it was reporting (VM stop):
   * the drop counts are then everything never delivered nor reported by a summary that was.
   */
  dropAll(): void {
    // Not tallied by reason: the stop reports these as lost on its own.
    this.dropOldestUntil(0, new DropTally());
  }

  // Drops the oldest summaries until at most `limit` bytes are held, or only the one in flight is left.
  private dropOldestUntil(limit: i32, tally: DropTally): void {
    while (this.bytes > limit) {
      // The summary in flight may still arrive: never drop it (it would be counted twice).
      const victim = this.inFlight ? 1 : 0;
      if (victim >= this.queue.length) break;
      tally.add(this.queue[victim]);
      this.drop(victim);
    }
  }

  private drop(index: i32): void {
    this.count(this.queue[index]);
    this.remove(index);
  }

  // Counts a summary as lost, with the drops it was reporting.
  private count(p: Pending): void {
    this.droppedRequests += p.requests + p.reportsDroppedRequests;
    this.droppedWindows += 1 + p.reportsDroppedWindows;
  }

  // Takes summary `index` out of the queue and moves the bytes of those behind it down over its own.
  private remove(index: i32): void {
    const p = this.queue[index];
    this.queue.splice(index, 1);
    const end = p.offset + p.length;
    this.arena.copyWithin(p.offset, end, this.bytes);
    for (let i = index; i < this.queue.length; i++) this.queue[i].offset -= p.length;
    this.bytes -= p.length;
  }
}
