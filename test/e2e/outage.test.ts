// End to end through a collector crash: the bookinfo mesh runs through the release filter while the
// collector process is killed (SIGKILL: acknowledged summaries may sit unloaded in its spool, calls in
// flight are cut) and restarted 20 simulated seconds later on the same data directory and port. The filters
// keep their windows and retry; the restarted collector replays its spool. Afterwards the warehouse must
// equal the ground truth exactly, series by series, with every summary in the load ledger once.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollectorProcess, type CollectorProcess } from "../../sim/collector-process.ts";
import { ManualClock } from "../../sim/host/index.ts";
import type { MeshProgress } from "../../sim/mesh.ts";
import { drain, meshOnCollector, tallySummaries, type SummaryTally } from "../../sim/pipeline.ts";
import { GroundTruth, TrafficGenerator, bookinfo } from "../../sim/traffic/index.ts";
import { Warehouse, compareSeries } from "../../sim/warehouse.ts";

const TOKEN = "e2e-outage";

let dir: string;
let truth: GroundTruth;
let progress: MeshProgress;
let tally: SummaryTally;
let ackedBeforeCrash = 0;
let warehouse: Warehouse;
let collector: CollectorProcess | undefined;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meshlook-e2e-outage-"));
  const model = bookinfo({ durationS: 60 });
  const generator = new TrafficGenerator(model, { seed: 99, requestsPerSecond: 300 });
  truth = new GroundTruth();
  // The first collector never loads on its own: whatever it acknowledged sits in its spool at the kill.
  collector = await startCollectorProcess({ dataDir: dir, token: TOKEN, settings: { MESHLOOK_LOAD_INTERVAL_S: "3600" } });
  const port = new URL(collector.url).port;
  const clock = new ManualClock(generator.startTimeMs);
  const mesh = await meshOnCollector(model, collector, TOKEN, clock);
  try {
    await mesh.run(generator, { durationS: 20, truth });
    ackedBeforeCrash = mesh.progress().acknowledged;
    collector.child.kill("SIGKILL");
    await new Promise((resolve) => collector!.child.once("exit", resolve));
    await mesh.run(generator, { durationS: 40, truth });
    collector = await startCollectorProcess({ dataDir: dir, token: TOKEN, settings: { MESHLOOK_PORT: port } });
    await mesh.run(generator, { durationS: 60, truth });
    // Backoff after the outage can reach tens of seconds: let simulated time run until every summary is in.
    progress = await drain(mesh, clock, 30);
    tally = tallySummaries(mesh);
    for (let i = 0; i < 10 && tally.acknowledged.size < tally.sent.size; i++) {
      progress = await drain(mesh, clock, 30);
      tally = tallySummaries(mesh);
    }
  } finally {
    await mesh.close();
  }
  await collector.stop();
  collector = undefined;
  warehouse = await Warehouse.open(join(dir, "meshlook.duckdb"));
}, 180_000);

afterAll(() => {
  warehouse?.close();
  collector?.child.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("a collector crash and restart in the middle of the traffic", () => {
  it("made the filters retry: calls failed during the outage, and every summary was acknowledged in the end", () => {
    expect(ackedBeforeCrash).toBeGreaterThan(0);
    expect(tally.failedCalls).toBeGreaterThan(0);
    expect(progress.trapped).toBe(0);
    expect([...tally.acknowledged].sort()).toEqual([...tally.sent].sort());
  });

  it("loads every summary exactly once, those only spooled before the crash included", async () => {
    const keys = (await warehouse.rows("SELECT producer_id || '#' || seq FROM mesh_load_ledger")).map((r) => String(r[0]));
    expect(keys.length).toBe(new Set(keys).size);
    expect(keys.sort()).toEqual([...tally.sent].sort());
  });

  it("holds exactly the ground truth, series by series", async () => {
    const comparison = compareSeries(await warehouse.series(), truth);
    expect(comparison.mismatches).toEqual([]);
    expect(comparison.truthSeries).toBeGreaterThan(50);
    expect((await warehouse.ledger()).requests).toBe(truth.observations);
  });
});
