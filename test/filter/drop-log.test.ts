// Summaries the filter drops unsent are logged and counted in proxy stats: one warning per reason and per
// minute at most, with the summaries, series and requests dropped since the previous line, so a collector
// down for hours (or a budget too small for the windows) does not write a line per window; whatever is
// not logged yet when the VM stops is logged then.
import { describe, expect, it } from "vitest";
import type { ManualClock, Sidecar } from "../../sim/host/index.ts";
import { DEBUG_WASM, decodeBodies, decodeBody, idle, loadModule, meshlookSidecar, startCollector, syntheticStream, type CollectorReply } from "./fixtures.ts";

const TOO_LARGE = "summary larger than max_pending_bytes";
const EVICTED = "pending budget full, oldest dropped";

interface DropLine {
  summaries: number;
  series: number;
  requests: number;
  reason: string;
  /** Simulated time of the second after which the line was first seen. */
  atMs: number;
}

/** The drop warnings logged so far, parsed; `seen` keeps when each line first appeared. */
function dropLines(sidecar: Sidecar, seen: DropLine[], nowMs: number): DropLine[] {
  const lines = sidecar.logMessages("warn").filter((m) => m.includes("summaries (") && m.includes(" unsent: "));
  for (const m of lines.slice(seen.length)) {
    const g = /dropped (\d+) summaries \((\d+) series, (\d+) requests\) unsent: ([^;]+);/.exec(m);
    if (!g) throw new Error(`unparsed drop line: ${m}`);
    seen.push({ summaries: Number(g[1]), series: Number(g[2]), requests: Number(g[3]), reason: g[4], atMs: nowMs });
  }
  return seen;
}

/**
 * A simulated second with `callers` distinct callers making `each` requests apiece (one series per caller),
 * then the tick that closes the one-second window.
 */
async function second(sidecar: Sidecar, clock: ManualClock, tag: number, callers: number, each: number) {
  for (let i = 0; i < callers; i++) {
    for (let k = 0; k < each; k++) sidecar.stream(syntheticStream({ principal: `spiffe://cluster.local/ns/a/sa/w${tag}-c${i}`, durationNs: 2e6 + k * 1e6 }));
  }
  clock.advance(1000);
  await sidecar.settle();
}

const metric = (sidecar: Sidecar, name: string) => Number(sidecar.metrics.get(name)?.value ?? -1n);

async function setup(reply: (nowMs: number) => CollectorReply) {
  let clockRef: ManualClock | undefined;
  const collector = await startCollector(() => reply(clockRef!.nowMs()));
  // 4096 bytes hold a few windows of ten callers, and no window of 100.
  const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1, max_series: 300, max_pending_bytes: 4096 }, collector.address, {
    wasm: await loadModule(DEBUG_WASM),
  });
  clockRef = clock;
  return { clock, collector, sidecar };
}

describe("filter logging of dropped summaries", () => {
  it("logs summaries larger than the budget once a minute with their counts, and the rest at stop", async () => {
    const { clock, collector, sidecar } = await setup(() => ({ status: 200 }));
    const lines: DropLine[] = [];
    // Windows too large for the budget (100+ callers, two requests each) amid small ones that are delivered.
    const large = (t: number) => 100 + 10 * (t % 10);
    const expected = { summaries: 0, series: 0, requests: 0 };
    const take = () => {
      const e = { ...expected, reason: TOO_LARGE };
      expected.summaries = expected.series = expected.requests = 0;
      return e;
    };
    const want: Omit<DropLine, "atMs">[] = [];
    for (let t = 0; t < 90; t++) {
      const big = t < 5 || t === 80;
      if (big) {
        await second(sidecar, clock, t, large(t), 2);
        expected.summaries += 1;
        expected.series += large(t);
        expected.requests += 2 * large(t);
      } else await second(sidecar, clock, t, 3, 1);
      dropLines(sidecar, lines, clock.nowMs());
      // The first drop is logged at once; the next four wait for the minute to pass.
      if (t === 0) want.push(take());
      if (t === 70) want.push(take());
    }
    expect(lines.map(({ atMs: _, ...l }) => l)).toEqual(want);
    await sidecar.close();
    await collector.close();
    dropLines(sidecar, lines, clock.nowMs());
    want.push(take()); // the drop at second 80, not due before the stop
    expect(lines.map(({ atMs: _, ...l }) => l)).toEqual(want);
    expect(lines[1].atMs - lines[0].atMs).toBeGreaterThanOrEqual(60_000);
    expect(lines[1].atMs - lines[0].atMs).toBeLessThanOrEqual(61_000);
    expect(metric(sidecar, "meshlook_summaries_dropped_too_large")).toBe(6);
    expect(metric(sidecar, "meshlook_requests_dropped_too_large")).toBe(want.reduce((a, l) => a + l.requests, 0));
    expect(metric(sidecar, "meshlook_summaries_evicted")).toBe(0);
    // None of them reached the collector: every summary it got is a small window.
    expect(decodeBodies(collector.bodies).every((s) => s.series.length <= 3)).toBe(true);
    expect(sidecar.traps).toEqual([]);
  });

  it("logs the windows evicted while the collector is down once a minute, with the counts the collector missed", async () => {
    const downUntilMs = { at: Number.POSITIVE_INFINITY };
    const { clock, collector, sidecar } = await setup((nowMs) => (nowMs < downUntilMs.at ? { status: 503, headers: { "retry-after": "1" } } : { status: 200 }));
    downUntilMs.at = clock.nowMs() + 150_000;
    const lines: DropLine[] = [];
    // Window t: 6–10 callers, one or two requests each.
    const callers = (t: number) => 6 + (t % 5);
    const each = (t: number) => 1 + (t % 2);
    const windows = 160;
    for (let t = 0; t < windows; t++) {
      await second(sidecar, clock, t, callers(t), each(t));
      dropLines(sidecar, lines, clock.nowMs());
    }
    for (let t = 0; t < 100; t++) {
      await idle(sidecar, clock, 1);
      dropLines(sidecar, lines, clock.nowMs());
    }
    await sidecar.close();
    await collector.close();
    dropLines(sidecar, lines, clock.nowMs());

    // The windows never acknowledged are the ones dropped (the collector is up long before the stop).
    const acked = new Set(
      collector.bodies
        .filter((b) => b.status === 200)
        .map((b) => decodeBody(b.body).seq)
        .filter((seq) => seq < windows),
    );
    const dropped = [...Array(windows).keys()].filter((t) => !acked.has(t));
    expect(dropped.length).toBeGreaterThan(100);
    const total = (f: (l: DropLine) => number) => lines.reduce((a, l) => a + f(l), 0);
    expect(lines.every((l) => l.reason.startsWith(EVICTED))).toBe(true);
    expect({ summaries: total((l) => l.summaries), series: total((l) => l.series), requests: total((l) => l.requests) }).toEqual({
      summaries: dropped.length,
      series: dropped.reduce((a, t) => a + callers(t), 0),
      requests: dropped.reduce((a, t) => a + callers(t) * each(t), 0),
    });
    // Drops from the first seconds until the collector is back, at 150 s: a line at the first drop, then one a
    // minute (the last, at about 180 s, with the drops after the one at 120 s), each a tick after its minute.
    expect(lines).toHaveLength(4);
    for (let i = 1; i < lines.length; i++) {
      expect(lines[i].atMs - lines[i - 1].atMs).toBeGreaterThanOrEqual(60_000);
      expect(lines[i].atMs - lines[i - 1].atMs).toBeLessThanOrEqual(61_000);
    }
    expect(metric(sidecar, "meshlook_summaries_evicted")).toBe(dropped.length);
    expect(metric(sidecar, "meshlook_requests_evicted")).toBe(dropped.reduce((a, t) => a + callers(t) * each(t), 0));
    expect(metric(sidecar, "meshlook_summaries_dropped_too_large")).toBe(0);
    expect(sidecar.traps).toEqual([]);
  });

  it("sends a window at a high max_series with the default budget, which grows with it", async () => {
    // 1 MiB, the least default, is too small for this window: it would be dropped unsent.
    const collector = await startCollector();
    const maxSeries = 20_000;
    const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1, max_series: maxSeries, directions: ["inbound"] }, collector.address, {
      wasm: await loadModule(DEBUG_WASM),
    });
    for (let i = 0; i < maxSeries; i++) {
      sidecar.stream(syntheticStream({ principal: `spiffe://cluster.local/ns/t${i % 50}/sa/caller-${i}`, workload: `caller-${i}-v1`, durationNs: 2e6 + (i % 97) * 1e6 }));
    }
    await idle(sidecar, clock, 3);
    await sidecar.close();
    await collector.close();
    expect(sidecar.logMessages("error", true).filter((m) => m.includes("meshlook"))).toEqual([]);
    const summaries = decodeBodies(collector.bodies);
    expect(summaries.map((s) => s.seq)).toEqual([0]);
    expect(collector.bodies[0].body.length).toBeGreaterThan(1024 * 1024);
    expect(summaries[0].series.reduce((a, x) => a + x.requests, 0)).toBe(maxSeries);
    expect(metric(sidecar, "meshlook_summaries_dropped_too_large")).toBe(0);
    expect(sidecar.traps).toEqual([]);
  });
});
