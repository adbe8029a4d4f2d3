// Two collector replicas behind one address, with acknowledgements lost on the way back so sidecars
// retry summaries a replica already spooled — and the retry lands on the other replica. Snowflake (the
// stand-in) with both replicas loading concurrently; DuckDB with one replica taking the file over from
// the other mid-run. Each summary must be counted once: the warehouse equals the ground truth.
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
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

/**
 * Prints, when the running test fails or times out, what it was waiting for and what every replica was
 * doing: a hang leaves nothing else to go on. `phase` is set by the test as it goes; `more` adds lines.
 */
function reportOnFailure(replicas: CollectorReplica[], more: () => string[] = () => []): { phase: string } {
  const where = { phase: "starting" };
  onTestFailed(async () => {
    const lines = [`failed while ${where.phase}`, ...more(), ...(await Promise.all(replicas.map((r) => r.describe())))];
    console.error(lines.join("\n"));
  });
  return where;
}

const frontState = (f: Front) => `[front] ${f.requests} requests, ${f.acked.size} summaries acknowledged, ${f.lostAcks} acknowledgements lost, ${f.cut} connections cut`;

/**
 * Waits until every replica's spool is empty; throws as soon as one reports a load failure no retry can
 * fix (the Snowflake sink's config, auth and sql reasons), which would otherwise keep its spool full.
 */
async function spoolsDrained(replicas: CollectorReplica[]): Promise<void> {
  for (const r of replicas) {
    while ((await r.metric("meshlook_spool_bytes")) > 0) {
      for (const reason of ["config", "auth", "sql"]) {
        if ((await r.metric(`meshlook_load_failures_total{reason="${reason}"}`)) > 0) throw new Error(`replica ${r.name}: loads fail for good (${reason}); its spool cannot drain`);
      }
      await sleep(100);
    }
  }
}

const dedupHits = async (r: CollectorReplica) =>
  ((await r.metric('meshlook_dedup_hits_total{stage="ingest"}')) || 0) + ((await r.metric('meshlook_dedup_hits_total{stage="load"}')) || 0);

describe("two replicas behind one address", () => {
  it("Snowflake: retries landing on the other replica, loaded concurrently, are counted once", async () => {
    const s = await stand();
    cleanups.add(() => s.sf.stop());
    const replicas = [replica("a", { ...s.env(), MESHLOOK_LOG_LEVEL: "info" }), replica("b", { ...s.env(), MESHLOOK_LOG_LEVEL: "info" })];
    const rng = new Rng(5);
    const front = new Front(replicas, { policy: "alternate", loseAck: () => rng.next() < 0.3 });
    const test = reportOnFailure(replicas, () => [
      frontState(front),
      `[stand-in] ${s.sf.statements.length} statements, ${s.sf.lockWaits} lock waits; last: ${s.sf.statements
        .slice(-8)
        .map((x) => `#${x.sessionId} ${x.sql.slice(0, 60)}`)
        .join(" | ")}`,
    ]);
    await Promise.all(replicas.map((r) => r.start()));
    const address = await front.listen();
    cleanups.add(() => front.close());
    test.phase = "running traffic";
    const run = await runTraffic({ seed: 14, durationS: 25, requestsPerSecond: 40, flushS: 5, collector: address, token: TOKEN, drainS: 200 });
    test.phase = "waiting for the spools to drain";
    await spoolsDrained(replicas);
    const dedup = (await Promise.all(replicas.map(dedupHits))).reduce((a, b) => a + b, 0);
    test.phase = "stopping the replicas";
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
    const rng = new Rng(6);
    const front = new Front([a, b], { loseAck: () => rng.next() < 0.3 });
    const test = reportOnFailure([a, b], () => [frontState(front)]);
    await a.start();
    test.phase = "running traffic";
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
        test.phase = "handing the file over";
        await a.stop();
        await b.start();
        test.phase = "running traffic";
      },
      drainS: 200,
    });
    test.phase = "waiting for the spool to drain";
    await spoolsDrained([b]);
    const bDedup = await b.metric('meshlook_dedup_hits_total{stage="load"}');
    test.phase = "stopping";
    await b.stop();
    expect(front.lostAcks).toBeGreaterThan(3);
    expect(bDedup).toBeGreaterThan(0); // retries of summaries A had loaded reached B
    const c = compare(await readDuckDB(duckdbPath), run.truth);
    expect(c.mismatched).toBe(0);
    expect(c.warehouseRequests).toBe(c.truthRequests);
  });
});
