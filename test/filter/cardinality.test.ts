// Cardinality attack: 100 000 distinct caller principals in one window. The window keeps at most
// max_series series, the excess is folded into the overflow series with exact totals, the number of
// folded keys is estimated, and linear memory stays under the documented bound across windows.
import { describe, expect, it } from "vitest";
import { bytes, peerInfo, type Attr } from "../../sim/host/index.ts";
import type { DecodedSummary } from "../../shared/node.ts";
import { decodeBodies, decodeBody, idle, meshlookSidecar, startCollector, syntheticStream } from "./fixtures.ts";

const ATTACKERS = 100_000;
const MAX_SERIES = 2000;
// docs/filter-config.md: at most 4 MiB per VM at the default cap, however many keys are folded: live
// series keep one-byte bucket counts (latencies 1–20 ms here: sketches of about 300 buckets) and the
// string table, fact caches and series table are sized at configure time.
const MEMORY_BOUND = 4 * 1024 * 1024;

describe("filter under a cardinality attack", () => {
  it("caps live series, keeps totals exact via overflow, and holds memory flat over windows", async () => {
    const collector = await startCollector();
    const { clock, sidecar } = await meshlookSidecar({ max_series: MAX_SERIES }, collector.address);
    const memory: number[] = [];
    const sent: { requests: number; errors: number; requestBytes: number; responseBytes: number; keys: number }[] = [];
    for (let window = 0; window < 4; window++) {
      const t = { requests: 0, errors: 0, requestBytes: 0, responseBytes: 0, keys: 0 };
      const keys = new Set<string>();
      // The first window takes the full attack; later ones enough to overflow again (the leak check).
      const requests = window === 0 ? ATTACKERS : ATTACKERS / 10;
      for (let i = 0; i < requests; i++) {
        // A few legitimate callers interleaved with the attackers, so real series exist in every window.
        const legit = i % 10 === 0;
        const principal = legit ? `spiffe://cluster.local/ns/shop/sa/caller-${i % 7}` : `spiffe://cluster.local/ns/tenants/sa/w${window}-job-${i}`;
        const code = i % 13 === 0 ? 503 : 200;
        const requestBytes = 100 + (i % 997);
        const responseBytes = 500 + (i % 7919);
        sidecar.stream(syntheticStream({ principal, workload: null, code, durationNs: 1e6 + (i % 19_000) * 1000, requestBytes, responseBytes }));
        t.requests++;
        if (code >= 500) t.errors++;
        t.requestBytes += requestBytes;
        t.responseBytes += responseBytes;
        keys.add(`${principal}|${code}`);
      }
      t.keys = keys.size;
      sent.push(t);
      clock.advance(10_000);
      await sidecar.settle();
      memory.push(Math.max(...sidecar.linearMemoryBytes));
    }
    expect(sidecar.traps).toEqual([]);
    await sidecar.close();
    await collector.close();

    const summaries = decodeBodies(collector.bodies);
    expect(summaries.map((s) => s.seq)).toEqual([0, 1, 2, 3]);
    summaries.forEach((s, w) => {
      expect(s.series.length).toBeLessThanOrEqual(MAX_SERIES);
      const overflow = s.series.filter((x) => x.dimensions.source_principal === "__overflow__");
      expect(overflow).toHaveLength(1); // inbound only: one reporter
      const o = overflow[0].dimensions;
      expect(o.reporter).toBe("destination");
      for (const [name, value] of Object.entries(o)) {
        if (name !== "reporter" && name !== "response_code" && name !== "end_user_principal") expect(value, name).toBe("__overflow__");
      }
      const sum = (f: (x: DecodedSummary["series"][number]) => number) => s.series.reduce((a, x) => a + f(x), 0);
      expect({
        requests: sum((x) => x.requests),
        errors: sum((x) => x.errors),
        requestBytes: sum((x) => x.requestBytes),
        responseBytes: sum((x) => x.responseBytes),
      }).toEqual({ requests: sent[w].requests, errors: sent[w].errors, requestBytes: sent[w].requestBytes, responseBytes: sent[w].responseBytes });
      // Distinct keys folded: every key beyond the regular series; HyperLogLog, ~6.5 % standard error.
      const folded = sent[w].keys - (s.series.length - 1);
      expect(Math.abs(s.overflowKeys - folded) / folded).toBeLessThan(0.2);
      expect(s.flags & 1).toBe(1);
    });
    expect(Math.max(...memory)).toBeLessThanOrEqual(MEMORY_BOUND);
    // No leak: later windows reuse the first window's memory.
    expect(memory[3]).toBe(memory[1]);
  });
});

describe("filter memory over many attack windows", () => {
  // Each window of attack: every request a new caller with its own principal and workload (peer
  // metadata), enough of them to fill the window's string table and the series table.
  const ATTACK_CALLERS = 6000;
  const ATTACK_WINDOWS = 6;

  it("stays within 4 MiB at the cap, the same after every window, with the collector up, refusing and back", async () => {
    let down = false;
    const collector = await startCollector(() => (down ? { status: 503, headers: { "retry-after": "1" } } : { status: 200 }));
    const { clock, sidecar } = await meshlookSidecar({}, collector.address, { workers: 1 });
    const memory: number[] = [];
    let windows = 0;
    const flush = async () => {
      clock.advance(10_000);
      await sidecar.settle();
      windows++;
      memory.push(sidecar.linearMemoryBytes[0]);
    };
    const caller = (n: number, i: number) =>
      syntheticStream({
        principal: `spiffe://cluster.local/ns/tenants/sa/caller-${n}`,
        workload: `caller-${n}`,
        code: i % 50 === 0 ? 503 : 200,
        // 2–8 ms, every 97th request 20 times slower: sketches about 400 buckets wide at the default scale.
        durationNs: (2e6 + (i % 61) * 1e5) * (i % 97 === 0 ? 20 : 1),
        requestBytes: 200 + (i % 300),
        responseBytes: 1000 + (i % 4000),
      });
    // The cap (2,000 series, each with a spread of latencies), then attack after attack.
    for (let i = 0; i < 40_000; i++) sidecar.stream(caller(i % 1998, i));
    await flush();
    let next = 1_000_000;
    const attack = async () => {
      for (let i = 0; i < ATTACK_CALLERS; i++) sidecar.stream(caller(next++, i));
      await flush();
    };
    for (let w = 0; w < ATTACK_WINDOWS; w++) await attack();
    // The collector refuses: summaries pile up in the outbox, which drops the oldest beyond its budget.
    down = true;
    for (let w = 0; w < ATTACK_WINDOWS; w++) await attack();
    down = false;
    await idle(sidecar, clock, 30);
    expect(sidecar.traps).toEqual([]);
    await sidecar.close();
    await collector.close();

    // Issue 19's target for one VM at the default cap.
    expect(Math.max(...memory)).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(new Set(memory).size).toBe(1);
    // Every window closed is either delivered or reported lost by a summary that was.
    const delivered = new Map<number, number>();
    for (const { body, status } of collector.bodies) {
      const s = decodeBody(body);
      if (status === 200) delivered.set(s.seq, s.droppedWindows);
    }
    const reportedLost = [...delivered.values()].reduce((a, b) => a + b, 0);
    const encoded = Math.max(...delivered.keys()) + 1;
    expect(encoded).toBeGreaterThanOrEqual(windows);
    expect(reportedLost).toBeGreaterThan(0);
    expect(delivered.size + reportedLost).toBe(encoded);
  });
});

describe("facts of a connection whose values did not fit", () => {
  /** Summaries of one window of `callers` callers, each sending `perCaller` requests; `ownConnection` puts every request on a new connection. */
  async function window(ownConnection: boolean) {
    const collector = await startCollector();
    const { clock, sidecar } = await meshlookSidecar({ max_series: 50 }, collector.address);
    let connection = 1;
    // Caller after caller, each request of a caller on its connection (or on a new one): enough distinct
    // principals and workloads to fill the string table, so later callers' values do not fit.
    for (let c = 0; c < 400; c++) {
      for (let r = 0; r < 3; r++) {
        sidecar.stream(
          syntheticStream({
            principal: `spiffe://cluster.local/ns/tenants/sa/job-${c}`,
            workload: `job-${c % 150}`,
            code: r === 2 ? 503 : 200,
            durationNs: 1e6 + c * 1000 + r,
            requestBytes: 100 + c,
            responseBytes: 200 + r,
            connectionId: ownConnection ? connection++ : undefined,
          }),
        );
      }
    }
    clock.advance(10_000);
    await sidecar.settle();
    expect(sidecar.traps).toEqual([]);
    await sidecar.close();
    await collector.close();
    return decodeBody(collector.bodies[0].body);
  }

  it("are reused with what did not fit: the same summary as reading every request's facts anew", async () => {
    const cached = await window(false);
    const uncached = await window(true);
    const overflow = cached.series.find((x) => x.dimensions.source_principal === "__overflow__");
    expect(overflow?.requests).toBeGreaterThan(0);
    expect(cached.overflowKeys).toBeGreaterThan(100);
    const view = (s: DecodedSummary) => ({
      overflowKeys: s.overflowKeys,
      series: s.series.map((x) => ({ ...x.dimensions, requests: x.requests, errors: x.errors, requestBytes: x.requestBytes })),
    });
    expect(view(cached)).toEqual(view(uncached));
  });
});

describe("peer objects (Istio 1.25+) a recent connection brought", () => {
  /**
   * Three windows of 800 requests, each on a new connection, a third of them outbound; callers come back,
   * some with a revision that is not UTF-8 or a workload name too long to report. With `unique`, each
   * object also carries its own pod name, so no two read alike and the filter's memo of recent peer
   * objects (observe.ts, PeerMemo) never holds one: what every object gives when it is parsed.
   */
  async function windows(unique: boolean, maxSeries: number) {
    const collector = await startCollector();
    const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1, max_series: maxSeries }, collector.address);
    let i = 0;
    for (let w = 0; w < 3; w++) {
      for (let k = 0; k < 800; k++, i++) {
        const n = (k * 37 + w * 11) % (40 + w * 30);
        const outbound = k % 3 === 0;
        const peer: Record<string, Attr> = {
          ...(peerInfo({
            type: "deployment",
            workload: `w-${n}`,
            namespace: `ns${n % 3}`,
            cluster: "east",
            service: `svc-${n % 11}`,
            revision: `v${n % 4}`,
            name: unique ? `pod-${i}` : undefined,
          }) as Record<string, Attr>),
        };
        if (n % 7 === 3) peer.revision = bytes(new Uint8Array([0xc0, 0xaf, 0x41]));
        if (n % 13 === 5) peer.workload = "w".repeat(600);
        const input = syntheticStream({ principal: `spiffe://cluster.local/ns/x/sa/s${i % 300}`, durationNs: 1e6 + n * 1000, inbound: !outbound, connectionId: 10_000 + i });
        input.attributes!.filter_state = { [outbound ? "upstream_peer" : "downstream_peer"]: peer };
        sidecar.stream(input);
      }
      clock.advance(1000);
      await sidecar.settle();
    }
    expect(sidecar.traps).toEqual([]);
    await sidecar.close();
    await collector.close();
    return decodeBodies(collector.bodies).map((s) => ({
      overflowKeys: s.overflowKeys,
      series: s.series.map((x) => JSON.stringify([x.dimensions, x.requests, x.latencySumUs])).sort(),
    }));
  }

  // At 10 series the callers' 300 principals fill the string table within each window, so later objects
  // have labels that do not fit; at the default cap every window's objects fit, and a memo not emptied
  // at a window's end would give the closed window's ids.
  for (const maxSeries of [10, MAX_SERIES]) {
    it(`give the summaries that parsing each object gives (max_series ${maxSeries})`, async () => {
      const remembered = await windows(false, maxSeries);
      expect(remembered).toHaveLength(3);
      if (maxSeries === 10) expect(Math.min(...remembered.map((w) => w.overflowKeys))).toBeGreaterThan(100);
      expect(remembered).toEqual(await windows(true, maxSeries));
    });
  }
});
