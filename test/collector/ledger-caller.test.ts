// The caller is part of the load-ledger key (docs/security.md, "Caller binding"): once caller A's summary
// (producer P, seq s) is loaded and ingest no longer tracks it, caller B sending its own (P, s) neither
// becomes a duplicate of A's nor makes A's a duplicate, while A's true retry still is one — on DuckDB and
// on the Snowflake stand-in. Rows and spool records from before callers were recorded stand for every
// caller.
import { DuckDBInstance } from "@duckdb/node-api";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { SnowflakeSink } from "../../collector/sink/snowflake.ts";
import type { Sink } from "../../collector/sink/types.ts";
import { Spool, encodeRecord, parseSegment } from "../../collector/spool.ts";
import type { DecodedSummary } from "../../collector/summary.ts";
import { LEDGER_TABLE, LEGACY_CALLER, LOSS_TABLE, MIGRATIONS, SCHEMA_VERSION_TABLE, createTableSql } from "../../shared/schema.ts";
import { standForSuite } from "../snowflake/helpers.ts";
import { encode, latencies, series, summary } from "./helpers.ts";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "meshlook-ledger-caller-"));
  dirs.push(d);
  return d;
};

const A = "spiffe://cluster.local/ns/shop/sa/reviews";
const B = "spiffe://cluster.local/ns/shop/sa/cart";
const P = "sidecar~10.1.0.7~reviews-1.shop~shop.svc.cluster.local/1764000000123456789/1/9f3a";

/** One summary of `n` requests to `service`, sent by `caller`, with a reported loss of `dropped` requests. */
const sent = (caller: string | undefined, seq: number, service: string, n: number, dropped = 0): DecodedSummary => ({
  ...summary(seq, 60_000, [series(service, latencies(n))], P),
  droppedRequests: dropped,
  droppedWindows: dropped > 0 ? 1 : 0,
  caller,
});

/** The attack in both orders and A's true retry, against one sink; `read` runs SQL on its warehouse. */
async function attack(open: () => Promise<Sink>, read: (sql: string) => Promise<Record<string, unknown>[]>) {
  const sink = await open();
  try {
    // A's summary loads; B then sends the same (producer, seq): its own summary, not a duplicate.
    expect(await sink.load([sent(A, 1, "a", 5, 3)])).toMatchObject({ loaded: 1, duplicates: 0 });
    expect(await sink.load([sent(B, 1, "b", 7, 2)])).toMatchObject({ loaded: 1, duplicates: 0 });
    // The other order: B pre-empts seq 2, and A's real seq 2 still loads.
    expect(await sink.load([sent(B, 2, "b", 11)])).toMatchObject({ loaded: 1, duplicates: 0 });
    expect(await sink.load([sent(A, 2, "a", 13)])).toMatchObject({ loaded: 1, duplicates: 0 });
    // True retries, alone and in a batch with a copy: each counted once.
    expect(await sink.load([sent(A, 1, "a", 5, 3), sent(A, 2, "a", 13), sent(B, 1, "b", 7, 2), sent(B, 1, "b", 7, 2)])).toMatchObject({ loaded: 0, duplicates: 4 });
    const facts = await read("SELECT destination_service AS s, SUM(requests) AS n FROM mesh_traffic_minute GROUP BY 1 ORDER BY 1");
    expect(facts.map((r) => [r.s ?? r.S, Number(r.n ?? r.N)])).toEqual([
      ["a", 5 + 13],
      ["b", 7 + 11],
    ]);
    const ledger = await read(`SELECT caller, seq FROM ${LEDGER_TABLE.name} ORDER BY caller, seq`);
    expect(ledger.map((r) => [r.caller ?? r.CALLER, Number(r.seq ?? r.SEQ)])).toEqual([
      [B, 1],
      [B, 2],
      [A, 1],
      [A, 2],
    ]);
    const losses = await read(`SELECT caller, dropped_requests AS d FROM ${LOSS_TABLE.name} ORDER BY caller`);
    expect(losses.map((r) => [r.caller ?? r.CALLER, Number(r.d ?? r.D)])).toEqual([
      [B, 2],
      [A, 3],
    ]);
    // A summary spooled (or quarantined) before callers were recorded, whose retry from its now identified
    // sender loaded first — on another replica, say: '*' stands for every caller in this direction too.
    expect(await sink.load([sent(A, 3, "a", 17)])).toMatchObject({ loaded: 1, duplicates: 0 });
    expect(await sink.load([sent(LEGACY_CALLER, 3, "a", 17)])).toMatchObject({ loaded: 0, duplicates: 1 });
    const retried = await read("SELECT SUM(requests) AS n FROM mesh_traffic_minute WHERE destination_service = 'a'");
    expect(Number(retried[0].n ?? retried[0].N)).toBe(5 + 13 + 17);
  } finally {
    await sink.close();
  }
}

describe("load ledger keyed by caller", () => {
  it("DuckDB: another caller's (producer, seq) is another summary; a true retry is a duplicate", async () => {
    const sink = new DuckDBSink(":memory:");
    await attack(
      async () => {
        await sink.open();
        return sink;
      },
      async (sql) => (await sink.connection.runAndReadAll(sql)).getRowObjectsJS(),
    );
  });

  describe("Snowflake stand-in", () => {
    const s = standForSuite();
    it("another caller's (producer, seq) is another summary; a true retry is a duplicate", async () => {
      await attack(
        async () => {
          const sink = new SnowflakeSink(s.settings(), undefined, { maxAttempts: 4, backoffMs: 10 });
          await sink.open();
          return sink;
        },
        (sql) => s.sf.query(sql),
      );
    });
  });

  describe("Snowflake stand-in, upgraded", () => {
    const s = standForSuite();
    it("migration 6 gives old ledger and loss rows caller '*', which stand for every caller; re-running it is harmless", async () => {
      await previousRelease((sql) => s.sf.query(sql));
      for (let run = 0; run < 2; run++) {
        // The second start runs migration 6 again, as after a crash between its DDL and its version row.
        if (run === 1) await s.sf.query(`DELETE FROM ${SCHEMA_VERSION_TABLE.name} WHERE version = 6`);
        const sink = new SnowflakeSink(s.settings(), undefined, { maxAttempts: 2, backoffMs: 10 });
        await sink.open();
        expect(await s.sf.query(`SELECT caller, requests FROM ${LEDGER_TABLE.name}`)).toEqual([{ caller: "*", requests: 5n }]);
        expect(await s.sf.query(`SELECT caller, dropped_requests FROM ${LOSS_TABLE.name}`)).toEqual([{ caller: "*", dropped_requests: 3n }]);
        expect(await sink.load([sent(A, 1, "a", 5)])).toMatchObject({ loaded: 0, duplicates: 1 });
        await sink.close();
      }
      await expect(
        s.sf.query(
          `INSERT INTO ${LEDGER_TABLE.name} (producer_id, seq, window_start, window_end, series, requests, loaded_at, caller) VALUES ('x', 1, now(), now(), 1, 1, now(), NULL)`,
        ),
      ).rejects.toThrow(/NOT NULL/i);
    });
  });
});

/** A warehouse as the previous release left it: migrations 1–5 and one loaded summary of P that reported a loss. */
async function previousRelease(run: (sql: string) => Promise<unknown>): Promise<void> {
  await run(createTableSql(SCHEMA_VERSION_TABLE, "duckdb"));
  for (const m of MIGRATIONS.filter((m) => m.version < 6)) {
    for (const sql of m.statements("duckdb")) await run(sql);
    await run(`INSERT INTO ${SCHEMA_VERSION_TABLE.name} VALUES (${m.version}, 'old', TIMESTAMP '2026-01-01')`);
  }
  await run(`INSERT INTO ${LEDGER_TABLE.name} VALUES ('${P}', 1, TIMESTAMP '1970-01-01 00:00:50', TIMESTAMP '1970-01-01 00:01:00', 1, 5, TIMESTAMP '2026-01-01')`);
  await run(`INSERT INTO ${LOSS_TABLE.name} VALUES (TIMESTAMP '1970-01-01 00:01:00', '${P}', 1, 'reviews-1', 'shop', 'reviews', 3, 1, 0, TIMESTAMP '2026-01-01')`);
}

describe("load ledger keyed by caller, across the upgrade", () => {
  it("DuckDB: migration 6 keeps old ledger and loss rows as caller '*', which stand for every caller", async () => {
    const path = join(tempDir(), "v5.duckdb");
    const old = await DuckDBInstance.create(path);
    const conn = await old.connect();
    await previousRelease((sql) => conn.run(sql));
    conn.closeSync();
    old.closeSync();
    for (let run = 0; run < 2; run++) {
      const sink = new DuckDBSink(path);
      await sink.open();
      const q = async (sql: string) => (await sink.connection.runAndReadAll(sql)).getRowObjectsJS();
      expect(await q(`SELECT caller, requests FROM ${LEDGER_TABLE.name} WHERE seq = 1`)).toEqual([{ caller: "*", requests: 5n }]);
      expect(await q(`SELECT caller, dropped_requests FROM ${LOSS_TABLE.name}`)).toEqual([{ caller: "*", dropped_requests: 3n }]);
      // Loaded before callers were recorded: a retry of it from its (now identified) sender is a duplicate.
      expect(await sink.load([sent(A, 1, "a", 5)])).toMatchObject({ loaded: 0, duplicates: 1 });
      await sink.close();
    }
  });

  it("reads spool records written before callers were recorded as caller '*', and records the caller of new ones", async () => {
    const dir = tempDir();
    const legacy = Buffer.from(encode(sent(undefined, 1, "a", 5)));
    // docs/spool.md, record type 1: magic "MLR1" | length u32 BE | crc32 u32 BE (over the length bytes and
    // the payload) | payload = type 1 u8 | received-at f64 LE | body.
    const payload = Buffer.concat([Buffer.from([1]), Buffer.alloc(8), legacy]);
    payload.writeDoubleLE(1234, 1);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(payload.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(payload, crc32(len)));
    writeFileSync(join(dir, "0000000001.seg"), Buffer.concat([Buffer.from("MLSPOOL\x01", "latin1"), Buffer.from("MLR1", "latin1"), len, crc, payload]));
    const spool = await Spool.open(dir, { segmentBytes: 1 << 20 });
    const fresh = Buffer.from(encode(sent(undefined, 2, "a", 5)));
    await spool.append(fresh, 5678, B);
    const ids = await spool.seal();
    expect(readdirSync(dir).filter((f) => f.endsWith(".seg"))).toHaveLength(2);
    const records = (await Promise.all(ids.map((id) => spool.read(id)))).flatMap((r) => r.records);
    expect(records.map((r) => [r.receivedAtMs, r.caller, Buffer.from(r.body).toString("hex")])).toEqual([
      [1234, "*", legacy.toString("hex")],
      [5678, B, fresh.toString("hex")],
    ]);
    await spool.close();
  });

  it("skips a type-2 record whose caller length runs past its payload, naming why", () => {
    // Checksum-valid framing around an impossible caller length: written by no collector, so damage.
    const payload = Buffer.concat([Buffer.from([2]), Buffer.alloc(8), Buffer.from([0xff, 0x00]), Buffer.from("short")]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(payload.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(payload, crc32(len)));
    const good = encodeRecord(Buffer.from("body"), 7, A);
    const { records, corruptions } = parseSegment("s", Buffer.concat([Buffer.from("MLSPOOL\x01", "latin1"), Buffer.from("MLR1", "latin1"), len, crc, payload, good]));
    expect(records.map((r) => [r.caller, r.body.toString()])).toEqual([[A, "body"]]);
    expect(corruptions.map((c) => [c.offset, c.reason])).toEqual([[8, "bad caller length"]]);
  });
});
