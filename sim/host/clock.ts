// Time as the host's dispatcher sees it. Tests drive a ManualClock (time moves only on advance(), and
// timers fire in due order inside advance); the demo uses RealClock (wall time, setTimeout).

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock time in nanoseconds since the Unix epoch (proxy_get_current_time_nanoseconds). */
  nowNs(): bigint;
  /** Monotonic time in nanoseconds (WASI clock_time_get with the monotonic clock). */
  monotonicNs(): bigint;
  /** Runs fn once after delayMs of this clock's time. */
  setTimer(delayMs: number, fn: () => void): Timer;
}

interface Pending {
  due: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

function msToNs(ms: number): bigint {
  const whole = Math.floor(ms);
  return BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
}

/** A clock that moves only when told to; timers fire synchronously inside advance(). */
export class ManualClock implements Clock {
  private ms: number;
  private readonly startMs: number;
  private pending: Pending[] = [];
  private seq = 0;

  /** @param start initial wall time (default 2026-01-01T00:00:00Z). */
  constructor(start: Date | number = Date.UTC(2026, 0, 1)) {
    this.ms = typeof start === "number" ? start : start.getTime();
    this.startMs = this.ms;
  }

  nowMs(): number {
    return this.ms;
  }

  // Whole milliseconds and the fraction apart: ms × 1e6 as a double is past 2^53 for present-day times
  // and rounds, e.g. to 1767225824968999936 ns for 1767225824969 ms, one millisecond early when floored.
  nowNs(): bigint {
    return msToNs(this.ms);
  }

  monotonicNs(): bigint {
    return msToNs(this.ms - this.startMs);
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const p: Pending = { due: this.ms + Math.max(0, delayMs), seq: this.seq++, fn, cancelled: false };
    this.pending.push(p);
    return { cancel: () => (p.cancelled = true) };
  }

  /** Moves time forward by ms, firing every timer that falls due, in due order, at its due time. */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance(ms): ms must be a non-negative number, got ${ms}`);
    const target = this.ms + ms;
    for (;;) {
      let next: Pending | undefined;
      let cancelled = false;
      for (const p of this.pending) {
        if (p.cancelled) cancelled = true;
        else if (p.due <= target && (!next || p.due < next.due || (p.due === next.due && p.seq < next.seq))) next = p;
      }
      if (cancelled) this.pending = this.pending.filter((p) => !p.cancelled);
      if (!next) break;
      this.pending.splice(this.pending.indexOf(next), 1);
      this.ms = next.due;
      next.fn();
    }
    this.ms = target;
  }

  /** Sets the wall time (forward only), firing timers on the way. */
  advanceTo(date: Date | number): void {
    const t = typeof date === "number" ? date : date.getTime();
    this.advance(Math.max(0, t - this.ms));
  }
}

/** Wall time and real timers, for the demo. */
export class RealClock implements Clock {
  private readonly origin = process.hrtime.bigint();
  nowNs(): bigint {
    return BigInt(Date.now()) * 1_000_000n;
  }
  monotonicNs(): bigint {
    return process.hrtime.bigint() - this.origin;
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    const t = setTimeout(fn, delayMs);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  }
}
