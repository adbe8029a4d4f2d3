// Time as the host's dispatcher sees it. Tests drive a ManualClock (time moves only on advance(), and
// timers fire in due order inside advance); the demo uses RealClock (wall time, setTimeout).

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock time in nanoseconds since the Unix epoch (proxy_get_current_time_nanoseconds). */
  nowNs(): bigint;
  /**
   * Monotonic time in nanoseconds (WASI clock_time_get with the monotonic clock): Envoy's
   * Context::getMonotonicTimeNanoseconds, the dispatcher's steady clock since boot — never 0.
   */
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

/**
 * How long the simulated host has been up when a ManualClock starts: Envoy's monotonic clock is
 * std::chrono::steady_clock (time since boot on Linux), so a module never reads 0 from it — Go's runtime
 * refuses to start on a zero monotonic time ("nanotime returning zero").
 */
export const DEFAULT_UPTIME_MS = 3_600_000;

/** A clock that moves only when told to; timers fire synchronously inside advance(). */
export class ManualClock implements Clock {
  private ms: number;
  private readonly bootMs: number;
  private pending: Pending[] = [];
  private seq = 0;

  /**
   * @param start initial wall time (default 2026-01-01T00:00:00Z).
   * @param uptimeMs monotonic time at start, i.e. how long ago the host booted (default one hour; must be > 0).
   */
  constructor(start: Date | number = Date.UTC(2026, 0, 1), uptimeMs = DEFAULT_UPTIME_MS) {
    if (!(uptimeMs > 0)) throw new RangeError(`uptimeMs must be positive (a steady clock since boot is never 0), got ${uptimeMs}`);
    this.ms = typeof start === "number" ? start : start.getTime();
    this.bootMs = this.ms - uptimeMs;
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
    return msToNs(this.ms - this.bootMs);
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
  nowNs(): bigint {
    return BigInt(Date.now()) * 1_000_000n;
  }
  /** The machine's monotonic clock (CLOCK_MONOTONIC, time since boot), as Envoy's steady clock. */
  monotonicNs(): bigint {
    return process.hrtime.bigint();
  }
  setTimer(delayMs: number, fn: () => void): Timer {
    const t = setTimeout(fn, delayMs);
    t.unref?.();
    return { cancel: () => clearTimeout(t) };
  }
}
