// Sidecar loss in the warehouse: the drop and overflow counters of each summary header become one
// mesh_sidecar_loss row per reporting summary, written in the load transaction with the facts and the
// ledger, so a summary loaded twice (a retry, a replay, a second replica) counts its loss once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, describe, expect, it } from "vitest";
import { ledgerEntry } from "../../collector/ledger.ts";
import { MinuteRollup, lossOf } from "../../collector/rollup.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { decodeSummary, type DecodedSummary } from "../../collector/summary.ts";
import { LOSS_TABLE, MIGRATIONS, SCHEMA_VERSION_TABLE, createTableSql } from "../../shared/schema.ts";
import { encode, latencies, series, summary } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "meshlook-loss-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NODE = "sidecar~10.1.0.7~reviews-v1-5c8d7f9b4-x2x9q.shop~shop.svc.cluster.local";
const PRODUCER = `${NODE}/1764000000123456789/1/9f3a`;

/** A summary of `producer` reporting the given loss, with one inbound series of `reviews` in `shop`. */
function lossy(seq: number, endMs: number, loss: Partial<DecodedSummary>, producer = PRODUCER): DecodedSummary {
  const s = series("reviews.shop.svc.cluster.local", latencies(20));
  s.dimensions = { ...s.dimensions, reporter: "destination", destination_workload: "reviews-v1", destination_namespace: "shop" };
  return { ...summary(seq, endMs, [s], producer), ...loss };
}

/** Through the wire, as the collector receives it (the decoder's flat columns, not series objects). */
function wired(s: DecodedSummary): DecodedSummary {
  const d = decodeSummary(encode(s));
  if (!d.ok) throw new Error(d.reason);
  return d.summary;
}

async function rows(sink: DuckDBSink, sql: string) {
  return (await sink.connection.runAndReadAll(sql)).getRowObjectsJS();
}

const LOSS_SUMS = `SELECT COUNT(*) AS summaries, SUM(dropped_requests) AS requests, SUM(dropped_windows) AS windows,
  SUM(overflow_keys) AS keys FROM ${LOSS_TABLE.name}`;

describe("lossOf", () => {
  it("takes the counters, the minute of the reporting window and the sidecar's own workload and namespace", () => {
    const s = lossy(7, 125_000, { droppedRequests: 4321, droppedWindows: 3, overflowKeys: 12 });
    const expected = {
      minuteMs: 120_000,
      producerId: PRODUCER,
      seq: 7,
      pod: "reviews-v1-5c8d7f9b4-x2x9q",
      namespace: "shop",
      workload: "reviews-v1",
      droppedRequests: 4321,
      droppedWindows: 3,
      overflowKeys: 12,
      caller: "",
    };
    expect(lossOf(s)).toEqual(expected);
    expect(lossOf(wired(s))).toEqual(expected);
  });

  it("reads the client side for outbound series and skips overflow series", () => {
    const overflow = series("__overflow__", latencies(5));
    for (const d of Object.keys(overflow.dimensions) as (keyof typeof overflow.dimensions)[]) {
      if (d !== "response_code") overflow.dimensions[d] = "__overflow__";
    }
    overflow.dimensions.reporter = "source";
    const out = series("ratings.shop.svc.cluster.local", latencies(5));
    out.dimensions = { ...out.dimensions, reporter: "source", source_workload: "productpage-v1", source_namespace: "web" };
    const s = { ...summary(1, 60_000, [overflow, out], "gw/1/1/1"), overflowKeys: 40 };
    for (const form of [s, wired(s)]) {
      expect(lossOf(form)).toMatchObject({ workload: "productpage-v1", namespace: "web", pod: "unknown", overflowKeys: 40 });
    }
  });

  it("falls back to the node id's namespace when no series names the sidecar (every window before was dropped)", () => {
    const s = { ...summary(2, 60_000, [], PRODUCER), droppedRequests: 90, droppedWindows: 2 };
    expect(lossOf(s)).toMatchObject({ pod: "reviews-v1-5c8d7f9b4-x2x9q", namespace: "shop", workload: "unknown", droppedRequests: 90 });
  });

  it("reports nothing for a summary without loss", () => {
    expect(lossOf(lossy(1, 60_000, {}))).toBeUndefined();
    const r = new MinuteRollup();
    r.add(wired(lossy(1, 60_000, {})));
    r.add(wired(lossy(2, 70_000, { overflowKeys: 1 })));
    expect(r.losses.map((l) => l.seq)).toEqual([2]);
  });
});

describe("DuckDB sink: mesh_sidecar_loss", () => {
  it("counts a summary's loss once however often it is loaded, across loads, reopen and the fold path", async () => {
    const path = join(dir, "idempotent.duckdb");
    const a = wired(lossy(1, 60_000, { droppedRequests: 500, droppedWindows: 2 }));
    const b = wired(lossy(2, 70_000, { overflowKeys: 33 }));
    const quiet = wired(lossy(3, 80_000, {}));
    let sink = new DuckDBSink(path);
    await sink.open();
    expect((await sink.load([a, a, quiet])).loaded).toBe(2);
    expect((await sink.load([a, b])).loaded).toBe(1);
    await sink.close();
    // A second process (restart or the next replica) replays all of it, by both load paths.
    sink = new DuckDBSink(path);
    await sink.open();
    expect((await sink.load([a, b, quiet])).loaded).toBe(0);
    const fold = new MinuteRollup();
    for (const s of [a, b]) fold.add(s);
    expect(await sink.loadRollup(fold.rows(), [a, b].map(ledgerEntry), fold.losses)).toBeNull();
    expect(await rows(sink, LOSS_SUMS)).toEqual([{ summaries: 2n, requests: 500n, windows: 2n, keys: 33n }]);
    expect(await rows(sink, `SELECT seq, minute::VARCHAR AS minute, pod, namespace, workload FROM ${LOSS_TABLE.name} ORDER BY seq`)).toEqual([
      { seq: 1n, minute: "1970-01-01 00:00:00", pod: "reviews-v1-5c8d7f9b4-x2x9q", namespace: "shop", workload: "reviews-v1" },
      { seq: 2n, minute: "1970-01-01 00:01:00", pod: "reviews-v1-5c8d7f9b4-x2x9q", namespace: "shop", workload: "reviews-v1" },
    ]);
    await sink.close();
  });

  it("writes the loss rows of a fold with its facts, and none when a failed load rolls back", async () => {
    const sink = new DuckDBSink(join(dir, "fold.duckdb"));
    await sink.open();
    const c = wired(lossy(4, 60_000, { droppedRequests: 70, droppedWindows: 1 }));
    const fold = new MinuteRollup();
    fold.add(c);
    // The table is gone mid-flight: the transaction fails and takes the facts and ledger rows with it.
    await sink.connection.run(`ALTER TABLE ${LOSS_TABLE.name} RENAME TO loss_away`);
    await expect(sink.loadRollup(fold.rows(), [ledgerEntry(c)], fold.losses)).rejects.toThrow();
    await sink.connection.run(`ALTER TABLE loss_away RENAME TO ${LOSS_TABLE.name}`);
    expect(await rows(sink, "SELECT COUNT(*) AS n FROM mesh_load_ledger")).toEqual([{ n: 0n }]);
    expect(await rows(sink, "SELECT COUNT(*) AS n FROM mesh_traffic_minute")).toEqual([{ n: 0n }]);
    const again = new MinuteRollup();
    again.add(c);
    expect(await sink.loadRollup(again.rows(), [ledgerEntry(c)], again.losses)).toEqual({ loaded: 1, duplicates: 0, rows: 1 });
    expect(await rows(sink, LOSS_SUMS)).toEqual([{ summaries: 1n, requests: 70n, windows: 1n, keys: 0n }]);
    await sink.close();
  });

  it("upgrades a warehouse created before the loss table: migration 2 runs once and keeps the data", async () => {
    const path = join(dir, "upgrade.duckdb");
    const old = await DuckDBInstance.create(path);
    const conn = await old.connect();
    await conn.run(createTableSql(SCHEMA_VERSION_TABLE, "duckdb"));
    for (const sql of MIGRATIONS[0].statements("duckdb")) await conn.run(sql);
    await conn.run(`INSERT INTO ${SCHEMA_VERSION_TABLE.name} VALUES (1, 'v1', now()::TIMESTAMP)`);
    await conn.run("INSERT INTO mesh_load_ledger VALUES ('old', 1, TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01', 1, 5, TIMESTAMP '2026-01-01')");
    conn.closeSync();
    old.closeSync();
    for (let i = 0; i < 2; i++) {
      const sink = new DuckDBSink(path);
      await sink.open();
      expect(await rows(sink, `SELECT version FROM ${SCHEMA_VERSION_TABLE.name} ORDER BY version`)).toEqual(MIGRATIONS.map((m) => ({ version: m.version })));
      expect(await rows(sink, "SELECT requests FROM mesh_load_ledger WHERE producer_id = 'old'")).toEqual([{ requests: 5n }]);
      if (i === 0) await sink.load([wired(lossy(1, 60_000, { droppedWindows: 1, droppedRequests: 8 }))]);
      expect(await rows(sink, LOSS_SUMS)).toEqual([{ summaries: 1n, requests: 8n, windows: 1n, keys: 0n }]);
      await sink.close();
    }
  });
});
