import { describe, expect, it } from "vitest";
import { ManualClock, RealClock } from "../../sim/host/index.ts";

describe("ManualClock", () => {
  it("fires due timers in due order, each at its own due time, and skips cancelled ones", () => {
    const clock = new ManualClock(1_000);
    const start = clock.monotonicNs();
    const fired: [string, number][] = [];
    clock.setTimer(30, () => fired.push(["c", clock.nowMs()]));
    clock.setTimer(10, () => {
      fired.push(["a", clock.nowMs()]);
      clock.setTimer(5, () => fired.push(["a+5", clock.nowMs()])); // scheduled from inside a timer
    });
    const cancelled = clock.setTimer(20, () => fired.push(["b", clock.nowMs()]));
    cancelled.cancel();
    clock.advance(29);
    expect(fired).toEqual([
      ["a", 1010],
      ["a+5", 1015],
    ]);
    expect(clock.nowMs()).toBe(1029);
    clock.advanceTo(1_030);
    expect(fired.at(-1)).toEqual(["c", 1030]);
    expect(clock.nowNs()).toBe(1_030_000_000n);
    expect(clock.monotonicNs() - start).toBe(30_000_000n);
  });

  it("starts its monotonic time at the host's uptime, never 0, as Envoy's steady clock since boot", () => {
    // Envoy Context::getMonotonicTimeNanoseconds (source/extensions/common/wasm/context.cc) reads the
    // dispatcher's steady clock; cpp-host answers WASI clock_time_get(monotonic) with it (src/exports.cc).
    expect(new ManualClock(0).monotonicNs()).toBe(3_600_000_000_000n);
    expect(new ManualClock(0, 5).monotonicNs()).toBe(5_000_000n);
    expect(() => new ManualClock(0, 0)).toThrow(RangeError);
    expect(new RealClock().monotonicNs() > 0n).toBe(true);
  });

  it("rejects moving backwards", () => {
    expect(() => new ManualClock().advance(-1)).toThrow(RangeError);
  });
});
