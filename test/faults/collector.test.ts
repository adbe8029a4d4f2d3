// Collector faults seen from a running mesh: the release filter in simulated sidecars posts to a real
// collector process that is SIGKILLed at random moments and restarted, or that cannot be reached for
// many flush intervals. At the end the DuckDB warehouse is compared, per minute and series, with the
// traffic generator's ground truth: nothing doubled, and nothing missing beyond what the filter itself
// reported as dropped.
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Rng } from "../../sim/traffic/index.ts";
import { CollectorReplica, Front, cleanupList, compare, readDuckDB, readDuckDBLoss, runTraffic, sleep } from "./rig.ts";

const TOKEN = "faults-token";
const cleanups = cleanupList("meshlook-faults-");
afterEach(() => cleanups.run());

function collector(): { replica: CollectorReplica; dir: string } {
  const dir = cleanups.tempDir();
  const replica = new CollectorReplica("a", { MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: TOKEN, MESHLOOK_LOAD_INTERVAL_S: "1" });
  cleanups.add(() => replica.kill());
  return { replica, dir };
}

async function front(replicas: CollectorReplica[]) {
  const f = new Front(replicas);
  const address = await f.listen();
  cleanups.add(() => f.close());
  return { f, address };
}

/** Traffic with the collector unreachable from simulated second `from` to `to`; the comparison after. */
async function outage(seed: number, durationS: number, from: number, to: number, maxPendingBytes?: number) {
  const { replica, dir } = collector();
  await replica.start();
  const { f, address } = await front([replica]);
  const run = await runTraffic({
    seed,
    durationS,
    requestsPerSecond: 60,
    flushS: 5,
    maxPendingBytes,
    collector: address,
    token: TOKEN,
    onSecond: (s) => void (f.unreachable = s >= from && s < to),
    drainS: 400,
  });
  await replica.stop();
  expect(f.cut).toBeGreaterThan(0);
  const path = join(dir, "meshlook.duckdb");
  return { c: compare(await readDuckDB(path), run.truth), dropped: f.dropped(), loss: await readDuckDBLoss(path), f };
}

describe("collector faults under live traffic", () => {
  it("loses and doubles nothing when the collector is SIGKILLed at random moments and restarted", async () => {
    const { replica, dir } = collector();
    await replica.start();
    const { f, address } = await front([replica]);
    const rng = new Rng(9);
    const killAt = new Set([7, 19]);
    let restarting: Promise<void> = Promise.resolve();
    const run = await runTraffic({
      seed: 9,
      durationS: 30,
      requestsPerSecond: 80,
      flushS: 5,
      collector: address,
      token: TOKEN,
      speed: 20,
      // The kill lands at a random wall-clock moment of the collector's one-second load cycle, while
      // simulated time runs on (the sidecars see an outage of a few simulated seconds).
      onSecond: (s) => {
        if (!killAt.has(s)) return;
        restarting = restarting.then(async () => {
          await sleep(rng.next() * 1500);
          await replica.kill();
          await replica.start();
        });
      },
      beforeDrain: () => restarting,
      drainS: 400,
    });
    await replica.stop();
    expect(replica.kills).toBe(2);
    expect(run.progress.trapped).toBe(0);
    expect(f.cut).toBeGreaterThan(0); // the sidecars did meet a dead collector
    const c = compare(await readDuckDB(join(dir, "meshlook.duckdb")), run.truth);
    expect(f.dropped().requests).toBe(0);
    expect(c).toEqual({ truthRequests: c.truthRequests, warehouseRequests: c.truthRequests, mismatched: 0, excess: 0, missingRequests: 0 });
    expect(c.truthRequests).toBeGreaterThan(3000);
  });

  it("delivers everything after an outage of many flush intervals within the filter's memory budget", async () => {
    const { c, dropped, loss } = await outage(10, 80, 10, 70); // 12 flush intervals unreachable
    expect(dropped).toEqual({ requests: 0, windows: 0 });
    expect([loss.requests, loss.windows]).toEqual([0, 0]);
    expect(c.mismatched).toBe(0);
    expect(c.warehouseRequests).toBe(c.truthRequests);
  });

  it("beyond the budget loses exactly the requests the filter reported dropped, and nothing else", async () => {
    // 4096 bytes, the smallest budget the filter accepts: a few windows per VM.
    const { c, dropped, loss, f } = await outage(11, 90, 5, 80, 4096);
    expect(dropped.windows).toBeGreaterThan(0);
    expect(c.excess).toBe(0);
    expect(c.missingRequests).toBe(dropped.requests);
    expect(c.truthRequests - c.warehouseRequests).toBe(dropped.requests);
    // The warehouse itself accounts for the gap: the loss rows add up to the generator's requests
    // minus those in the fact table, per sidecar as the filters reported them, each naming its pod.
    expect(loss.requests).toBe(c.truthRequests - c.warehouseRequests);
    expect(loss.windows).toBe(dropped.windows);
    expect(loss.byProducer).toEqual(f.droppedByProducer());
    expect(loss.unnamed).toBe(0);
  });
});
