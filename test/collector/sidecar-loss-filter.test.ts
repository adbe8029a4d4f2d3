// Sidecar loss from the release filter to the warehouse: a sidecar under a cardinality attack (series
// folded into __overflow__) whose collector is unreachable long enough to drop windows beyond
// max_pending_bytes. What it sent is known request by request; the warehouse must account for it: fact
// requests plus mesh_sidecar_loss dropped requests equal what was sent, exactly, and the overflowed keys
// estimate the keys the test made beyond the cap.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { decodeSummary, type DecodedSummary } from "../../collector/summary.ts";
import { LOSS_TABLE } from "../../shared/schema.ts";
import { LOCAL_NODE, idle, meshlookSidecar, startCollector, syntheticStream } from "../filter/fixtures.ts";

const dir = mkdtempSync(join(tmpdir(), "meshlook-loss-filter-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MAX_SERIES = 20;
const WINDOWS = 8;
// Windows 2..5 meet an unreachable collector; at the smallest budget the oldest of them are dropped.
const DOWN = (window: number) => window >= 2 && window <= 5;

describe("release filter → DuckDB: mesh_sidecar_loss", () => {
  it("accounts for every request sent: loaded, or reported dropped; overflowed keys near the keys made", async () => {
    let down = false;
    const collector = await startCollector(() => ({ status: down ? 503 : 200 }));
    const { clock, sidecar } = await meshlookSidecar({ max_series: MAX_SERIES, max_pending_bytes: 4096 }, collector.address);
    let sent = 0;
    const keysPerWindow: number[] = [];
    for (let window = 0; window < WINDOWS; window++) {
      down = DOWN(window);
      const keys = new Set<string>();
      const requests = 200 + 50 * window;
      for (let i = 0; i < requests; i++) {
        // A few regular callers, and per window more distinct callers than the cap allows.
        const principal = i % 4 === 0 ? `spiffe://cluster.local/ns/shop/sa/caller-${i % 3}` : `spiffe://cluster.local/ns/tenants/sa/w${window}-${i}`;
        sidecar.stream(syntheticStream({ principal, workload: null, durationNs: 1e6 + i * 1000 }));
        keys.add(principal);
        sent++;
      }
      keysPerWindow.push(keys.size);
      await idle(sidecar, clock, 10);
    }
    down = false;
    await idle(sidecar, clock, 300);
    expect(sidecar.traps).toEqual([]);
    await sidecar.close();
    await collector.close();

    const delivered: DecodedSummary[] = collector.bodies
      .filter((b) => b.status === 200)
      .map(({ body }) => {
        const r = decodeSummary(body);
        if (!r.ok) throw new Error(`${r.reason}: ${r.message}`);
        return r.summary;
      });
    const sink = new DuckDBSink(join(dir, "w.duckdb"));
    await sink.open();
    await sink.load(delivered);
    const one = async (sql: string) => (await sink.connection.runAndReadAll(sql)).getRowObjectsJS()[0];
    const facts = await one("SELECT SUM(requests) AS n, COUNT(*) FILTER (WHERE source_principal = '__overflow__') AS overflow_rows FROM mesh_traffic_minute");
    const loss = await one(
      `SELECT SUM(dropped_requests) AS requests, SUM(dropped_windows) AS windows, COUNT(DISTINCT pod || '|' || namespace || '|' || workload) AS identities,
         MIN(pod || '|' || namespace || '|' || workload) AS identity FROM ${LOSS_TABLE.name}`,
    );
    const seqs = delivered.map((s) => s.seq);
    // Some windows were dropped (missing sequence numbers) and the rest arrived.
    expect(Number(loss.windows)).toBeGreaterThan(0);
    expect(Number(loss.windows)).toBe(Math.max(...seqs) + 1 - seqs.length);
    expect(Number(facts.n) + Number(loss.requests)).toBe(sent);
    expect(Number(facts.overflow_rows)).toBeGreaterThan(0);
    // Every loss row names the sidecar as Istio does: pod and namespace from its node, its workload.
    expect([Number(loss.identities), loss.identity]).toEqual([1, `${LOCAL_NODE.metadata.NAME}|shop|${LOCAL_NODE.metadata.WORKLOAD_NAME}`]);

    // Per delivered window, the overflowed keys estimate the keys made beyond the regular series.
    const overflow = (await sink.connection.runAndReadAll(`SELECT seq, overflow_keys FROM ${LOSS_TABLE.name} WHERE overflow_keys > 0`)).getRowObjectsJS();
    const bySeq = new Map(overflow.map((r) => [Number(r.seq), Number(r.overflow_keys)]));
    for (const s of delivered) {
      const folded = keysPerWindow[s.seq] - (s.series.length - 1);
      expect(Math.abs(bySeq.get(s.seq)! - folded) / folded, `seq ${s.seq}`).toBeLessThan(0.2);
    }
    await sink.close();
  });
});
