// Two collector replicas behind one address, with acknowledgements lost on the way back so sidecars
// retry summaries a replica already spooled — and the retry lands on the other replica. Snowflake (the
// stand-in) with both replicas loading concurrently; DuckDB with one replica taking the file over from
// the other mid-run. Each summary must be counted once: the warehouse equals the ground truth.
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Rng } from "../../sim/traffic/index.ts";
import { LEDGER_TABLE } from "../../shared/schema.ts";
import { stand } from "../snowflake/helpers.ts";
import { CollectorReplica, Front, WAREHOUSE_SQL, cleanupList, compare, readDuckDB, runTraffic, sleep, warehouseRows } from "./rig.ts";

const TOKEN = "replica-token";
const cleanups = cleanupList("meshlook-rep-");
afterAll(() => cleanups.run());
const tempDir = () => cleanups.tempDir();

function replica(name: string, env: Record<string, string>): CollectorReplica {
  const r = new CollectorReplica(name, { MESHLOOK_INGEST_TOKENS: TOKEN, MESHLOOK_LOAD_INTERVAL_S: "1", MESHLOOK_DATA_DIR: tempDir(), ...env });
  cleanups.add(() => r.kill());
  return r;
}

async function spoolsDrained(replicas: CollectorReplica[]): Promise<void> {
  for (const r of replicas) while ((await r.metric("meshlook_spool_bytes")) > 0) await sleep(100);
}

const dedupHits = async (r: CollectorReplica) =>
  ((await r.metric('meshlook_dedup_hits_total{stage="ingest"}')) || 0) + ((await r.metric('meshlook_dedup_hits_total{stage="load"}')) || 0);

describe("two replicas behind one address", () => {
  it("Snowflake: retries landing on the other replica, loaded concurrently, are counted once", async () => {
    const s = await stand();
    cleanups.add(() => s.sf.stop());
    const replicas = [replica("a", s.env()), replica("b", s.env())];
    await Promise.all(replicas.map((r) => r.start()));
    const rng = new Rng(5);
    const front = new Front(replicas, { policy: "alternate", loseAck: () => rng.next() < 0.3 });
    const address = await front.listen();
    cleanups.add(() => front.close());
    const run = await runTraffic({ seed: 14, durationS: 25, requestsPerSecond: 40, flushS: 5, collector: address, token: TOKEN, drainS: 200 });
    await spoolsDrained(replicas);
    const dedup = (await Promise.all(replicas.map(dedupHits))).reduce((a, b) => a + b, 0);
    await Promise.all(replicas.map((r) => r.stop()));
    expect(front.lostAcks).toBeGreaterThan(3);
    expect(dedup).toBeGreaterThanOrEqual(front.lostAcks);
    const c = compare(warehouseRows(await s.sf.query(WAREHOUSE_SQL)), run.truth);
    expect(c.mismatched).toBe(0);
    expect(c.warehouseRequests).toBe(c.truthRequests);
    const [ledger] = await s.sf.query(`SELECT COUNT(*) AS n FROM ${LEDGER_TABLE.name}`);
    expect(Number(ledger.n)).toBe(front.acked.size);
  });

  it("DuckDB: a replica takes the file over mid-run and drops the retries its predecessor already had", async () => {
    const duckdbPath = join(tempDir(), "meshlook.duckdb");
    const [a, b] = [replica("a", { MESHLOOK_DUCKDB_PATH: duckdbPath }), replica("b", { MESHLOOK_DUCKDB_PATH: duckdbPath })];
    await a.start();
    const rng = new Rng(6);
    const front = new Front([a, b], { loseAck: () => rng.next() < 0.3 });
    const address = await front.listen();
    cleanups.add(() => front.close());
    const run = await runTraffic({
      seed: 15,
      durationS: 40,
      requestsPerSecond: 60,
      flushS: 5,
      collector: address,
      token: TOKEN,
      // A hands over: it stops (loading its spool), B opens the file; sidecars retry meanwhile.
      onSecond: async (sec) => {
        if (sec !== 21) return; // just after a flush (20 s), before its lost acknowledgements are retried
        await a.stop();
        await b.start();
      },
      drainS: 200,
    });
    await spoolsDrained([b]);
    const bDedup = await b.metric('meshlook_dedup_hits_total{stage="load"}');
    await b.stop();
    expect(front.lostAcks).toBeGreaterThan(3);
    expect(bDedup).toBeGreaterThan(0); // retries of summaries A had loaded reached B
    const c = compare(await readDuckDB(duckdbPath), run.truth);
    expect(c.mismatched).toBe(0);
    expect(c.warehouseRequests).toBe(c.truthRequests);
  });
});
