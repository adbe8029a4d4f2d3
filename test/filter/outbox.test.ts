// The filter's retry outbox, run as TypeScript (portable AssemblyScript): ordering, acknowledgement,
// backoff, Retry-After, exact drop accounting under the byte budget, and the bytes of the summaries it
// holds in its one block.
import "assemblyscript/std/portable/index";
import { describe, expect, it } from "vitest";
import { DropTally, Outbox, Pending } from "../../filter/outbox.ts";

const summary = (seq: number, bytes: number, requests: number, drops: number[] = [0, 0], series = 1) => new Pending(seq, bytes, requests, series, drops[0], drops[1]);

/** Queues a summary whose every byte is its seq, as the filter writes a body where push() says. */
function pushFilled(o: Outbox, seq: number, bytes: number, requests = 1): Pending {
  const p = summary(seq, bytes, requests);
  const at = o.push(p);
  if (at >= 0) o.arena.fill(seq, at, at + bytes);
  return p;
}

/** Each summary held, as [seq, its bytes all equal to seq]. */
const held = (o: Outbox) =>
  Array.from({ length: o.length }, (_, i) => {
    const p = o.at(i);
    return [p.seq, o.body(p).every((b) => b === p.seq) && o.body(p).length === p.length];
  });

describe("filter outbox", () => {
  it("sends oldest first, one at a time, and moves on after a 2xx", () => {
    const o = new Outbox(1000, 1000, 300_000, 10_000);
    o.push(summary(0, 10, 1));
    o.push(summary(1, 10, 1));
    expect(o.next(0)!.seq).toBe(0);
    o.sent(0);
    expect(o.next(1)).toBeNull();
    o.acknowledged();
    expect(o.next(2)!.seq).toBe(1);
    o.sent(2);
    o.acknowledged();
    expect(o.next(3)).toBeNull();
    expect(o.bytes).toBe(0);
  });

  it("backs off exponentially on failures, capped, and resets after a success", () => {
    const o = new Outbox(1000, 1000, 4000, 10_000);
    o.push(summary(0, 10, 1));
    const waits: number[] = [];
    let now = 0;
    for (let i = 0; i < 5; i++) {
      o.sent(now);
      o.failed(now, -1);
      let t = now;
      while (o.next(t) === null) t += 100;
      waits.push(t - now);
      now = t;
    }
    expect(waits).toEqual([1000, 2000, 4000, 4000, 4000]);
    o.sent(now);
    o.acknowledged();
    o.push(summary(1, 10, 1));
    o.sent(now);
    o.failed(now, -1);
    expect(o.next(now + 999)).toBeNull();
    expect(o.next(now + 1000)!.seq).toBe(1);
  });

  it("waits exactly Retry-After when the collector gives it", () => {
    const o = new Outbox(1000, 1000, 300_000, 10_000);
    o.push(summary(0, 10, 1));
    o.sent(0);
    o.failed(0, 7000);
    expect(o.next(6999)).toBeNull();
    expect(o.next(7000)!.seq).toBe(0);
  });

  it("treats a call never answered as failed after the deadline", () => {
    const o = new Outbox(1000, 1000, 300_000, 10_000);
    o.push(summary(0, 10, 1));
    o.sent(0);
    expect(o.next(10_000)).toBeNull();
    expect(o.next(10_001)).toBeNull(); // failed now, retry after the first backoff
    expect(o.next(11_001)!.seq).toBe(0);
  });

  it("drops the oldest summaries beyond the budget, never the one in flight, and counts every drop once", () => {
    const o = new Outbox(100, 1000, 300_000, 10_000);
    o.push(summary(0, 40, 5));
    o.sent(0); // seq 0 in flight
    o.push(summary(1, 40, 7));
    o.push(summary(2, 40, 11)); // 120 > 100: drop seq 1 (oldest not in flight)
    expect(o.length).toBe(2);
    expect([o.droppedRequests, o.droppedWindows]).toEqual([7, 1]);
    // The next summary takes the report; if it is dropped in turn, its report comes back.
    const drops = o.takeDrops();
    expect(drops).toEqual([7, 1]);
    o.push(summary(3, 40, 13, drops)); // 120: drop seq 2
    expect([o.droppedRequests, o.droppedWindows]).toEqual([11, 1]);
    o.push(summary(4, 40, 17)); // drop seq 3 and the report it carried
    expect([o.droppedRequests, o.droppedWindows]).toEqual([11 + 13 + 7, 3]);
    o.acknowledged(); // seq 0 arrives after all
    expect(o.next(0)!.seq).toBe(4);
    expect(o.bytes).toBe(40);
  });

  it("drops a summary larger than the whole budget", () => {
    const o = new Outbox(100, 1000, 300_000, 10_000);
    o.push(summary(0, 150, 3));
    expect(o.length).toBe(0);
    expect([o.droppedRequests, o.droppedWindows]).toEqual([3, 1]);
  });

  it("tallies the summaries dropped for the budget by reason, with their own series and requests only", () => {
    const o = new Outbox(100, 1000, 300_000, 10_000);
    const tally = (t: DropTally) => [t.summaries, t.series, t.requests];
    o.push(summary(0, 40, 3, [0, 0], 2));
    o.push(summary(1, 40, 5, [0, 0], 4));
    o.push(summary(2, 150, 7, [0, 0], 9)); // larger than the budget: dropped itself, the others stay
    o.push(summary(3, 40, 11, [6, 2], 8)); // evicts seq 0
    o.resize(30); // evicts seq 1 and 3 (the drops seq 3 carried go back to the drop counts, not the tally)
    o.resize(100);
    expect(tally(o.tooLarge)).toEqual([1, 9, 7]);
    expect(tally(o.evicted)).toEqual([3, 2 + 4 + 8, 3 + 5 + 11]);
    // Refusals and the stop are reported on their own, not as budget drops.
    o.push(summary(4, 40, 13, [0, 0], 1));
    o.sent(0);
    o.refused();
    o.push(summary(5, 40, 17, [0, 0], 1));
    o.dropAll();
    expect(tally(o.evicted)).toEqual([3, 14, 19]);
    const logged = new DropTally();
    logged.take(o.evicted);
    expect([tally(logged), tally(o.evicted)]).toEqual([
      [3, 14, 19],
      [0, 0, 0],
    ]);
  });

  it("drops a refused head summary at once, counts it, and sends the next without backing off", () => {
    const o = new Outbox(1000, 1000, 300_000, 10_000);
    o.push(summary(0, 10, 3, [2, 1]));
    o.push(summary(1, 10, 4));
    o.sent(0);
    o.failed(0, -1); // an earlier failure must not delay what follows the refusal
    o.sent(1000);
    o.refused();
    expect(o.next(1000)!.seq).toBe(1);
    expect(o.bytes).toBe(10);
    // its own requests plus the drops it was carrying
    expect(o.takeDrops()).toEqual([5, 2]);
  });

  it("drops everything held at once (VM stop), counting the drops the held summaries were reporting", () => {
    const o = new Outbox(1000, 1000, 300_000, 10_000);
    o.push(summary(0, 10, 3, [2, 1]));
    o.push(summary(1, 10, 4, [5, 3]));
    o.dropAll();
    expect(o.length).toBe(0);
    expect(o.bytes).toBe(0);
    // 2 summaries held, 4 windows they reported; 7 requests held, 7 they reported
    expect(o.takeDrops()).toEqual([14, 6]);
  });

  it("drops a summary with no room beside the one in flight alone, keeping the others", () => {
    const o = new Outbox(100, 1000, 300_000, 10_000);
    o.push(summary(0, 40, 5));
    o.sent(0);
    o.push(summary(1, 30, 7));
    expect(o.push(summary(2, 70, 11))).toBe(-1); // 40 in flight + 70 > 100, whatever else is dropped
    expect([o.at(0).seq, o.at(1).seq]).toEqual([0, 1]);
    expect([o.droppedRequests, o.droppedWindows]).toEqual([11, 1]);
  });

  it("keeps every held summary's bytes as others are acknowledged, dropped and refused", () => {
    const o = new Outbox(100, 1000, 300_000, 10_000);
    for (const [seq, bytes] of [
      [1, 30],
      [2, 20],
      [3, 25],
    ])
      pushFilled(o, seq, bytes);
    expect(held(o)).toEqual([
      [1, true],
      [2, true],
      [3, true],
    ]);
    o.sent(0);
    pushFilled(o, 4, 40); // 115 > 100: seq 2 goes (seq 1 is in flight)
    expect(held(o)).toEqual([
      [1, true],
      [3, true],
      [4, true],
    ]);
    o.acknowledged();
    o.sent(1);
    o.refused(); // seq 3
    expect(held(o)).toEqual([[4, true]]);
    expect(o.bytes).toBe(40);
    expect(o.at(0).offset).toBe(0);
  });

  it("takes a new budget: drops the oldest not in flight until the rest fit, bytes intact", () => {
    const o = new Outbox(100, 1000, 300_000, 10_000);
    for (const seq of [1, 2, 3]) pushFilled(o, seq, 30, seq);
    o.sent(0);
    o.resize(70);
    expect(held(o)).toEqual([
      [1, true],
      [3, true],
    ]);
    expect([o.droppedRequests, o.droppedWindows]).toEqual([2, 1]);
    o.resize(200);
    pushFilled(o, 4, 130);
    expect(held(o)).toEqual([
      [1, true],
      [3, true],
      [4, true],
    ]);
    expect(o.arena.length).toBe(200);
  });
});
