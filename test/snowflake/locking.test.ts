// Exactly-once on Snowflake must rest on locking Snowflake documents, not on what the stand-in happened
// to do. With the stand-in's "documented" lock model (an insert-only MERGE runs in parallel, like an
// INSERT), the old claim — MERGE into the ledger, trusted to block a second replica — double counts;
// only with "merge-serializes" did it not. The sink's explicit lock row holds under either model. And a
// collector that dies inside its load transaction, holding the lock row, no longer stalls every load:
// the next one to open aborts its stale transaction.
import snowflake from "snowflake-sdk";
import { describe, expect, it } from "vitest";
import { SNOWFLAKE_SQL, SnowflakeSink, snowflakeMigrationSql } from "../../collector/sink/snowflake.ts";
import { FACT_TABLE, LEDGER_TABLE, LOCK_TABLE } from "../../shared/schema.ts";
import { stand, traffic, type Stand } from "./helpers.ts";

type Conn = { run(sql: string, binds?: unknown[]): Promise<Record<string, unknown>[]>; close(): Promise<void> };

/** A driver session as the LOADER user (the key the stand-in registered). */
async function session(s: Stand): Promise<Conn> {
  const st = s.settings();
  const conn = snowflake.createConnection({
    account: st.account!,
    username: st.user!,
    authenticator: "SNOWFLAKE_JWT",
    privateKey: s.key.privateKey,
    accessUrl: st.accessUrl,
    database: st.database,
    schema: st.schema,
    warehouse: st.warehouse,
  } as snowflake.ConnectionOptions);
  await new Promise<void>((resolve, reject) => {
    conn.connectAsync((err) => (err ? reject(err) : resolve())).catch(reject);
  });
  return {
    run: (sqlText, binds) =>
      new Promise((resolve, reject) =>
        conn.execute({ sqlText, binds: binds as snowflake.Binds, complete: (err, _stmt, rows) => (err ? reject(err) : resolve((rows ?? []) as Record<string, unknown>[])) }),
      ),
    close: () => new Promise<void>((resolve) => conn.destroy(() => resolve())),
  };
}

// In LEDGER_TABLE column order: the caller comes last.
const ledgerRow = ["p-1", 1, "2026-11-27 12:00:00", "2026-11-27 12:00:10", 1, 5, "2026-11-27 12:00:11", "spiffe://cluster.local/ns/shop/sa/reviews"];

/** Steps 1–2 of the former claim (candidates, BEGIN, MERGE into the ledger) without the lock row. */
async function claimWithoutLock(c: Conn): Promise<void> {
  await c.run(SNOWFLAKE_SQL.createBatchTable);
  await c.run(SNOWFLAKE_SQL.clearBatch);
  await c.run(SNOWFLAKE_SQL.fillBatch, ledgerRow);
  await c.run(SNOWFLAKE_SQL.dropLedgered);
  await c.run(SNOWFLAKE_SQL.begin);
}

async function migrated(lockModel: "documented" | "merge-serializes"): Promise<Stand> {
  const s = await stand({ lockModel });
  const sink = new SnowflakeSink(s.settings());
  await sink.open();
  await sink.close();
  return s;
}

const ledgerCount = async (s: Stand) => Number((await s.sf.query(`SELECT COUNT(*) AS n FROM ${LEDGER_TABLE.name}`))[0].n);

describe("Snowflake lock model", { timeout: 240_000 }, () => {
  it("an insert-only MERGE does not serialize two replicas under the documented model: the old claim double counts", async () => {
    const s = await migrated("documented");
    const [a, b] = [await session(s), await session(s)];
    try {
      await claimWithoutLock(a);
      await claimWithoutLock(b);
      await a.run(SNOWFLAKE_SQL.claim);
      await b.run(SNOWFLAKE_SQL.claim); // does not wait: nothing documented makes it
      await a.run(SNOWFLAKE_SQL.commit);
      await b.run(SNOWFLAKE_SQL.commit);
      expect(await ledgerCount(s)).toBe(2);
    } finally {
      await a.close();
      await b.close();
      await s.sf.stop();
    }
  });

  it("the same claim is exactly-once only if MERGE serializes (the model the old design assumed)", async () => {
    const s = await migrated("merge-serializes");
    const [a, b] = [await session(s), await session(s)];
    try {
      await claimWithoutLock(a);
      await claimWithoutLock(b);
      await a.run(SNOWFLAKE_SQL.claim);
      const second = b.run(SNOWFLAKE_SQL.claim); // waits for a's COMMIT, then sees its row
      await a.run(SNOWFLAKE_SQL.commit);
      await second;
      await b.run(SNOWFLAKE_SQL.commit);
      expect(await ledgerCount(s)).toBe(1);
    } finally {
      await a.close();
      await b.close();
      await s.sf.stop();
    }
  });

  for (const lockModel of ["documented", "merge-serializes"] as const) {
    it(`two sinks loading the same summaries at once count each once (lock model ${lockModel})`, async () => {
      const s = await stand({ lockModel, statementDelayMs: 3 });
      const t = traffic(41, 4, 6);
      const sinks = [new SnowflakeSink(s.settings()), new SnowflakeSink(s.settings())];
      try {
        await sinks[0].open();
        await sinks[1].open();
        const waits = s.sf.lockWaits;
        const results = await Promise.all([sinks[0].load(t.summaries), sinks[1].load([...t.summaries].reverse())]);
        expect(results.reduce((n, r) => n + r.loaded, 0)).toBe(t.summaries.length);
        expect(await ledgerCount(s)).toBe(t.summaries.length);
        expect(Number((await s.sf.query(`SELECT SUM(requests) AS n FROM ${FACT_TABLE.name}`))[0].n)).toBe(t.requests);
        expect(s.sf.lockWaits - waits).toBeGreaterThan(0); // they did contend, on the lock row
      } finally {
        for (const k of sinks) await k.close();
        await s.sf.stop();
      }
    });
  }

  it("two replicas migrating a fresh schema at once seed the lock rows twice, and loads still serialize on them", async () => {
    const s = await stand({ statementDelayMs: 3 });
    const sinks = [new SnowflakeSink(s.settings()), new SnowflakeSink(s.settings())];
    const [a, b] = [await session(s), await session(s)];
    try {
      // Migration 4's seed as two starting replicas run it at the same moment: each statement reads a
      // schema with no lock row yet. The transactions only pin down that overlap.
      const [createLockTable, seedLockRows] = snowflakeMigrationSql().find((m) => m.statements.some((x) => x.includes(LOCK_TABLE.name)))!.statements;
      await a.run(createLockTable);
      await a.run(SNOWFLAKE_SQL.begin);
      await b.run(SNOWFLAKE_SQL.begin);
      await a.run(seedLockRows);
      await b.run(seedLockRows); // an INSERT takes no lock: nothing documented makes it wait
      await a.run(SNOWFLAKE_SQL.commit);
      await b.run(SNOWFLAKE_SQL.commit);
      expect(Number((await s.sf.query(`SELECT COUNT(*) AS n FROM ${LOCK_TABLE.name} WHERE name = 'load'`))[0].n)).toBe(2);

      const t = traffic(43, 4, 6);
      await Promise.all(sinks.map((k) => k.open()));
      const waits = s.sf.lockWaits;
      const results = await Promise.all([sinks[0].load(t.summaries), sinks[1].load([...t.summaries].reverse())]);
      expect(results.reduce((n, r) => n + r.loaded, 0)).toBe(t.summaries.length);
      expect(await ledgerCount(s)).toBe(t.summaries.length);
      expect(Number((await s.sf.query(`SELECT SUM(requests) AS n FROM ${FACT_TABLE.name}`))[0].n)).toBe(t.requests);
      expect(s.sf.lockWaits - waits).toBeGreaterThan(0);
    } finally {
      for (const k of sinks) await k.close();
      await a.close();
      await b.close();
      await s.sf.stop();
    }
  });

  it("a collector that died holding the lock row does not stall loads: the next sink to open aborts its transaction", async () => {
    const s = await migrated("documented");
    const dead = await session(s);
    try {
      await dead.run(SNOWFLAKE_SQL.begin);
      await dead.run(SNOWFLAKE_SQL.takeLock, ["dead-replica", "2026-11-27 12:00:00", "load"]);
      // The client is gone; its session, transaction and lock live on in Snowflake.
      const waiter = await session(s);
      await waiter.run("ALTER SESSION SET LOCK_TIMEOUT = 1");
      await waiter.run(SNOWFLAKE_SQL.begin);
      await expect(waiter.run(SNOWFLAKE_SQL.takeLock, ["w", "2026-11-27 12:00:00", "load"])).rejects.toThrow(/LOCK_TIMEOUT/);
      await waiter.close();

      const sink = new SnowflakeSink(s.settings(), undefined, { staleTransactionS: 0 });
      try {
        await sink.open();
        const t = traffic(42, 2, 3);
        expect((await sink.load(t.summaries)).loaded).toBe(t.summaries.length);
        expect(Number((await s.sf.query(`SELECT SUM(requests) AS n FROM ${FACT_TABLE.name}`))[0].n)).toBe(t.requests);
        const [row] = await s.sf.query(`SELECT taken_by FROM ${LOCK_TABLE.name} WHERE name = 'load'`);
        expect(row.taken_by).not.toBe("dead-replica"); // the dead transaction's write was rolled back
        expect(s.sf.statements.some((x) => /^SELECT SYSTEM\$ABORT_TRANSACTION\(\d+\)$/.test(x.sql))).toBe(true);
      } finally {
        await sink.close();
      }
    } finally {
      await dead.close();
      await s.sf.stop();
    }
  });
});
