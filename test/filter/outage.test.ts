// The collector goes away and comes back: every window within the pending budget arrives exactly
// once (by producer id and seq), windows beyond the budget are dropped oldest first and reported by
// a later summary, a 429 with Retry-After delays the retry by exactly that, a missing ingest
// token (401) is retried like any other failure, and a summary refused for good (400) is dropped at once
// and reported, so the summaries behind it are not held back.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import type { ManualClock, Sidecar } from "../../sim/host/index.ts";
import { decodeSummary, encodeSummary, type DecodedSummary } from "../../shared/node.ts";
import { COLLECTOR_CLUSTER, DEBUG_WASM, decodeBodies, decodeBody, idle, loadModule, meshlookSidecar, startCollector, syntheticStream, type CollectorReply } from "./fixtures.ts";

async function setup(config: object, reply: (body: Uint8Array, index: number, nowMs: number) => CollectorReply) {
  let clockRef: ManualClock | undefined;
  const collector = await startCollector((body, index) => reply(body, index, clockRef!.nowMs()));
  const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1, ...config }, collector.address);
  clockRef = clock;
  return { clock, collector, sidecar };
}

/**
 * One simulated second: `n` requests with distinct principals (so summaries have size), then the tick;
 * `settle` waits for what the tick started (by default every callout's response).
 */
async function second(sidecar: Sidecar, clock: ManualClock, n: number, tag: number, settle = () => sidecar.settle()) {
  for (let i = 0; i < n; i++) {
    sidecar.stream(syntheticStream({ principal: `spiffe://cluster.local/ns/a/sa/s${tag}-${i}`, durationNs: 2e6 + i * 1000 }));
  }
  clock.advance(1000);
  await settle();
}

const decodeAll = (bodies: { body: Uint8Array; status: number }[]) => bodies.map(({ body, status }) => ({ summary: decodeBody(body), status }));

// The smallest budget, which holds a few of these tests' windows; the filter refuses it beside the default
// cap of 2000 series (no window at that cap could fit), so the cap comes down with it.
const SMALL_BUDGET = { max_pending_bytes: 4096, max_series: 300 };

const requestsOf = (s: DecodedSummary) => s.series.reduce((a, x) => a + x.requests, 0);

describe("filter when the collector is unavailable", () => {
  it("keeps the default budget when max_pending_bytes cannot hold a window at max_series, says so naming the field, and delivers full windows", async () => {
    // A summary larger than the whole budget is dropped unsent, collector up or not: with this budget every
    // window at the cap would be, and only the drop count of a later, smaller window would ever arrive.
    const collector = await startCollector();
    const maxSeries = 1000;
    const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1, max_series: maxSeries, max_pending_bytes: 8192 }, collector.address, {
      wasm: await loadModule(DEBUG_WASM),
    });
    const problems = sidecar.logMessages("error").filter((m) => m.includes("pluginConfig field"));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('field "max_pending_bytes": cannot hold one summary at max_series 1000 (got 8192');
    expect(problems[0]).toContain("using the default 1048576");
    expect(sidecar.metrics.get("meshlook_config_errors")?.value).toBe(1n);
    let sent = 0;
    for (let t = 0; t < 3; t++) {
      await second(sidecar, clock, 2 * maxSeries, t);
      sent += 2 * maxSeries;
    }
    await idle(sidecar, clock, 5);
    await sidecar.close();
    await collector.close();
    expect(sidecar.traps).toEqual([]);
    const summaries = decodeBodies(collector.bodies);
    expect(summaries.map((s) => s.seq)).toEqual([0, 1, 2]);
    // Each window reached the cap (keys were folded into the overflow series) and nothing was dropped.
    expect(summaries.every((s) => s.overflowKeys > 0 && s.droppedWindows === 0)).toBe(true);
    expect(Math.min(...collector.bodies.map((b) => b.body.length))).toBeGreaterThan(8192);
    expect(summaries.reduce((a, s) => a + requestsOf(s), 0)).toBe(sent);
  });

  it("delivers every window exactly once after an outage within the budget", async () => {
    let down = true;
    const { clock, collector, sidecar } = await setup({}, () => (down ? { status: 503 } : { status: 200 }));
    let sent = 0;
    for (let t = 0; t < 12; t++) {
      await second(sidecar, clock, 10 + t, t);
      sent += 10 + t;
    }
    down = false;
    await idle(sidecar, clock, 40);
    await sidecar.close();
    await collector.close();
    const all = decodeAll(collector.bodies);
    expect(all.some((x) => x.status === 503)).toBe(true);
    const acked = all.filter((x) => x.status === 200).map((x) => x.summary);
    const seqs = acked.map((s) => s.seq);
    expect(seqs).toEqual([...Array(12).keys()]); // in order, each once
    expect(new Set(acked.map((s) => s.producerId)).size).toBe(1);
    expect(acked.reduce((a, s) => a + requestsOf(s), 0)).toBe(sent);
    expect(acked.every((s) => s.droppedWindows === 0 && s.droppedRequests === 0)).toBe(true);
    // Retries back off: far fewer attempts than one per second of outage.
    expect(all.filter((x) => x.status === 503).length).toBeLessThan(12);
  });

  it("drops the oldest windows beyond max_pending_bytes and reports them in a later summary", async () => {
    let down = true;
    const { clock, collector, sidecar } = await setup(SMALL_BUDGET, () => (down ? { status: 503 } : { status: 200 }));
    let sent = 0;
    for (let t = 0; t < 30; t++) {
      await second(sidecar, clock, 40, t);
      sent += 40;
    }
    down = false;
    await idle(sidecar, clock, 200);
    await second(sidecar, clock, 40, 1000); // a window after recovery carries the drop report
    sent += 40;
    await idle(sidecar, clock, 200);
    await sidecar.close();
    await collector.close();
    const acked = decodeAll(collector.bodies)
      .filter((x) => x.status === 200)
      .map((x) => x.summary);
    const seqs = acked.map((s) => s.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const droppedWindows = acked.reduce((a, s) => a + s.droppedWindows, 0);
    const droppedRequests = acked.reduce((a, s) => a + s.droppedRequests, 0);
    expect(droppedWindows).toBeGreaterThan(0);
    // Every window is either delivered or counted as dropped; every request likewise.
    expect(seqs.length + droppedWindows).toBe(Math.max(...seqs) + 1);
    expect(acked.reduce((a, s) => a + requestsOf(s), 0) + droppedRequests).toBe(sent);
  });

  it("reports drops in a summary of their own when no traffic follows the outage", async () => {
    let down = true;
    const { clock, collector, sidecar } = await setup(SMALL_BUDGET, () => (down ? { status: 503 } : { status: 200 }));
    for (let t = 0; t < 20; t++) await second(sidecar, clock, 40, t);
    down = false;
    await idle(sidecar, clock, 400);
    await sidecar.close();
    await collector.close();
    const acked = decodeAll(collector.bodies)
      .filter((x) => x.status === 200)
      .map((x) => x.summary);
    const report = acked.filter((s) => s.series.length === 0);
    expect(report.length).toBeGreaterThan(0);
    expect(acked.reduce((a, s) => a + requestsOf(s) + s.droppedRequests, 0)).toBe(20 * 40);
  });

  it("waits for Retry-After on 429 before trying again", async () => {
    const attempts: number[] = [];
    const { clock, collector, sidecar } = await setup({}, (_b, index, nowMs) => {
      attempts.push(nowMs);
      return index === 0 ? { status: 429, headers: { "retry-after": "30" } } : { status: 200 };
    });
    await second(sidecar, clock, 5, 0);
    await idle(sidecar, clock, 40);
    await sidecar.close();
    await collector.close();
    const all = decodeAll(collector.bodies);
    expect(all[0].status).toBe(429);
    expect(all[1].summary.seq).toBe(0); // the same summary again
    expect(attempts[1] - attempts[0]).toBeGreaterThanOrEqual(30_000);
    expect(attempts[1] - attempts[0]).toBeLessThanOrEqual(31_000);
  });

  it("keeps summaries refused for a missing token (401) and sends them once the collector accepts", async () => {
    let accept = false;
    const { clock, collector, sidecar } = await setup({}, () => (accept ? { status: 200 } : { status: 401 }));
    for (let t = 0; t < 3; t++) await second(sidecar, clock, 5, t);
    accept = true;
    await idle(sidecar, clock, 20);
    await sidecar.close();
    await collector.close();
    const acked = decodeAll(collector.bodies)
      .filter((x) => x.status === 200)
      .map((x) => x.summary.seq);
    expect(acked).toEqual([0, 1, 2]);
    expect(sidecar.logMessages("warn").some((m) => m.includes("HTTP 401"))).toBe(true);
  });

  it("says a 403 refused the sidecar's identity, not its token", async () => {
    const { clock, collector, sidecar } = await setup({}, () => ({ status: 403 }));
    await second(sidecar, clock, 5, 0);
    await idle(sidecar, clock, 5);
    await sidecar.close();
    await collector.close();
    const warnings = sidecar.logMessages("warn").filter((m) => m.includes("HTTP 403"));
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings.every((m) => m.includes("identity") && !m.includes("token"))).toBe(true);
  });

  it("drops a summary refused for good (400) at once, reports it as lost, and sends the next without waiting", async () => {
    const attempts: { seq: number; nowMs: number }[] = [];
    const { clock, collector, sidecar } = await setup({}, (body, _index, nowMs) => {
      const r = decodeSummary(body);
      const seq = r.ok ? r.summary.seq : -1;
      attempts.push({ seq, nowMs });
      return seq === 0 ? { status: 400 } : { status: 200 };
    });
    let sent = 0;
    for (let t = 0; t < 4; t++) {
      await second(sidecar, clock, 5 + t, t);
      sent += 5 + t;
    }
    await idle(sidecar, clock, 5);
    await sidecar.close();
    await collector.close();
    const all = decodeAll(collector.bodies);
    expect(all.filter((x) => x.summary.seq === 0).map((x) => x.status)).toEqual([400]); // never resent
    const acked = all.filter((x) => x.status === 200).map((x) => x.summary);
    expect(acked.map((s) => s.seq)).toEqual([1, 2, 3]);
    // Each later summary went out once, at its own flush (one per second), never behind a backoff.
    const refusedAt = attempts.find((a) => a.seq === 0)!.nowMs;
    expect(attempts.filter((a) => a.seq > 0)).toEqual([1, 2, 3].map((seq) => ({ seq, nowMs: refusedAt + seq * 1000 })));
    // Every request is delivered or reported dropped; the refused window is one dropped window.
    expect(acked.reduce((a, s) => a + s.droppedWindows, 0)).toBe(1);
    expect(acked.reduce((a, s) => a + requestsOf(s) + s.droppedRequests, 0)).toBe(sent);
    expect(sidecar.logMessages("warn").filter((m) => m.includes("refused a summary for good")).length).toBe(1);
  });
});

describe("VM stop with the collector down", () => {
  it("counts as lost every window not delivered, those dropped earlier for the budget included", async () => {
    const { clock, collector, sidecar } = await setup(SMALL_BUDGET, () => ({ status: 503 }));
    let sent = 0;
    for (let t = 0; t < 20; t++) {
      await second(sidecar, clock, 40, t);
      sent += 40;
    }
    await sidecar.close();
    await collector.close();
    const seqs = decodeAll(collector.bodies).map((x) => x.summary.seq);
    // Nothing was acknowledged, so every window encoded and every request is lost; some of the windows
    // were dropped for the budget, and the summaries reporting them were still held at the stop.
    expect(Math.max(...seqs) + 1).toBeGreaterThan(new Set(seqs).size);
    expect(sidecar.metrics.get("meshlook_requests_lost_at_stop")?.value).toBe(BigInt(sent));
    // The 20 windows, and the summary the stop may have encoded only to report the last drops.
    const lost = Number(sidecar.metrics.get("meshlook_summaries_lost_at_stop")?.value);
    expect(lost).toBeGreaterThanOrEqual(20);
    expect(lost).toBeLessThanOrEqual(21);
  });
});

describe("summary bytes in the outbox", () => {
  it("are sent again exactly after failures, while summaries around them are dropped, refused and moved down", async () => {
    // A collector that first leaves calls unanswered (the proxy times them out, so new windows are queued
    // and dropped beside the one in flight), then answers each summary's first attempt 503, refuses the
    // first one sent again for good and accepts the rest.
    const bodies: { body: Uint8Array; status: number }[] = [];
    const hung: http.ServerResponse[] = [];
    const attempts = new Map<number, number>();
    let hang = true;
    let refused = false;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = new Uint8Array(Buffer.concat(chunks));
        const r = decodeSummary(body);
        const seq = r.ok ? r.summary.seq : -1;
        const n = (attempts.get(seq) ?? 0) + 1;
        attempts.set(seq, n);
        let status = 200;
        if (hang) {
          bodies.push({ body, status: 0 });
          hung.push(res);
          return;
        }
        if (n === 1) status = 503;
        else if (!refused) {
          refused = true;
          status = 400;
        }
        bodies.push({ body, status });
        res.writeHead(status, status === 503 ? { "retry-after": "1" } : {});
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { clock, sidecar } = await meshlookSidecar(
      { flush_interval_s: 1, ...SMALL_BUDGET, collector: { cluster: COLLECTOR_CLUSTER, timeout_ms: 3000 } },
      `127.0.0.1:${(server.address() as AddressInfo).port}`,
    );
    let sent = 0;
    for (let t = 0; t < 25; t++) {
      const n = 6 + (t % 5);
      if (t === 12) hang = false;
      // Until the last unanswered call has timed out, settle() would wait for it: real time passes instead,
      // for each request to arrive and each timeout (on the sidecar's clock) to reach the filter.
      if (t < 16) await second(sidecar, clock, n, t, () => new Promise((resolve) => setTimeout(resolve, 50)));
      else await second(sidecar, clock, n, t);
      sent += n;
    }
    await idle(sidecar, clock, 120);
    await second(sidecar, clock, 5, 99); // carries the last drop report
    sent += 5;
    await idle(sidecar, clock, 10);
    await sidecar.close();
    for (const res of hung) res.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));

    const bySeq = new Map<number, Buffer>();
    for (const { body } of bodies) {
      const summary = decodeBody(body);
      // The bytes an encoder of its own writes for the same content: nothing of another summary leaked in.
      expect(Buffer.from(encodeSummary(summary)).equals(Buffer.from(body))).toBe(true);
      const first = bySeq.get(summary.seq);
      if (first === undefined) bySeq.set(summary.seq, Buffer.from(body));
      else expect(first.equals(Buffer.from(body)), `seq ${summary.seq} re-sent with other bytes`).toBe(true);
    }
    const all = decodeAll(bodies);
    expect(all.filter((x) => x.status === 0).length).toBeGreaterThan(1);
    expect([...attempts.values()].filter((n) => n > 1).length).toBeGreaterThan(5);
    expect(refused).toBe(true);
    const acked = all.filter((x) => x.status === 200).map((x) => x.summary);
    const dropped = acked.reduce((a, s) => a + s.droppedWindows, 0);
    expect(dropped).toBeGreaterThan(1);
    expect(acked.length + dropped).toBe(Math.max(...acked.map((s) => s.seq)) + 1);
    expect(acked.reduce((a, s) => a + requestsOf(s) + s.droppedRequests, 0)).toBe(sent);
  });
});
