// mesh_board_hour appended per load and compacted per hour (collector/read/board-rollup.ts): whatever state
// an hour is in — appended rows of several merges, compacted, compacted then appended to by late rows, cut
// by retention, left uncompacted by a run that failed or a process that stopped — its rows add up to what
// was loaded, and the read API answers as the loads say. The truth is the generator's own tally below (how
// many requests each series sent in each loaded minute), not a query of the product's tables.
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { BoardRollup, type BoardRollupReport } from "../../collector/read/board-rollup.ts";
import { SketchAccumulator } from "../../collector/read/sketches.ts";
import { DEFAULT_SCALE, SeriesStats } from "../../shared/node.ts";
import { BOARD_HOUR_TABLE, FACT_TABLE } from "../../shared/schema.ts";
import type { SeriesDims } from "../../sim/traffic/series.ts";
import { loadWarehouse, minuteSummary, query, type Warehouse } from "../looker/warehouse.ts";
import { qs, readApi } from "./helpers.ts";

const MINUTE = 60_000;
const HOUR = 3_600_000;

let w: Warehouse;
let base: Record<string, unknown>;
/** Hours after the simulated traffic, so that the test decides which hour is open. */
let H: number;
beforeAll(async () => {
  w = await loadWarehouse({ requests: 500, requestsPerSecond: 50, seed: "board-compaction" });
  const [row] = await query(w, `SELECT * FROM ${FACT_TABLE.name} WHERE reporter = 'destination' LIMIT 1`);
  base = Object.fromEntries(
    Object.entries(row).filter(([k]) => !["minute", "requests", "errors", "request_bytes", "response_bytes", "loaded_at"].includes(k) && !k.startsWith("latency")),
  );
  H = (Math.floor(w.toMs / HOUR) + 2) * HOUR;
}, 120_000);
afterAll(async () => {
  await w?.close();
});

/** The generator's tally: requests sent per source_workload per minute (ms). */
const sent = new Map<string, Map<number, number>>();
let seq = 0;

/** Loads one summary for `minute`: each workload in `workloads` sends a number of requests of its own. */
async function load(minute: number, workloads: string[]) {
  const series = workloads.map((wl, i) => {
    const n = 1 + ((i * 7 + minute / MINUTE) % 5);
    const stats = new SeriesStats(DEFAULT_SCALE);
    for (let k = 0; k < n; k++) stats.record(700 + 131 * k * (i + 1), 10, 20, false);
    const perMinute = sent.get(wl) ?? new Map<number, number>();
    sent.set(wl, perMinute);
    perMinute.set(minute, (perMinute.get(minute) ?? 0) + n);
    return { dims: { ...base, source_workload: wl } as unknown as SeriesDims, stats };
  });
  await w.sink.load([minuteSummary("compaction-sidecar", ++seq, minute, series)]);
}

/** What the generator sent in [from, to): per workload, requests and the minutes it sent in. */
function tally(from: number, to: number): Map<string, { requests: number; minutes: number }> {
  const out = new Map<string, { requests: number; minutes: number }>();
  for (const [wl, perMinute] of sent)
    for (const [minute, n] of perMinute)
      if (minute >= from && minute < to) {
        const t = out.get(wl) ?? { requests: 0, minutes: 0 };
        out.set(wl, { requests: t.requests + n, minutes: t.minutes + 1 });
      }
  return out;
}

/** mesh_board_hour's rows of hour `hour` per workload: rows, requests, minute rows absorbed, rows not compacted. */
async function boardRows(hour: number) {
  const rows = await query(
    w,
    `SELECT source_workload, COUNT(*) AS n, SUM(requests) AS requests, SUM(minute_rows) AS minutes, COUNT(appended_at) AS appended FROM ${BOARD_HOUR_TABLE.name} ` +
      `WHERE hour = make_timestamp(${hour * 1000}) GROUP BY 1`,
  );
  return new Map(rows.map((r) => [String(r.source_workload), { rows: Number(r.n), requests: Number(r.requests), minutes: Number(r.minutes), appended: Number(r.appended) }]));
}

/** The board's rows of the hour add up, per workload, to what the generator sent in it (every minute of it absorbed). */
async function expectBoardHoldsSent(hour: number) {
  const got = await boardRows(hour);
  const want = tally(hour, hour + HOUR);
  expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
  for (const [wl, t] of want) expect([got.get(wl)!.requests, got.get(wl)!.minutes], wl).toEqual([t.requests, t.minutes]);
  return got;
}

/**
 * The API's requests per workload over the hour equal the generator's for the minutes still held, and its
 * percentiles those of the held minute rows' sketches by MESH_QUANTILE (the LookML measure); `hourly` says
 * whether mesh_board_hour answered.
 */
async function expectApiAnswersSent(hour: number, hourly: number, heldFrom = hour) {
  const api = await readApi(w.sink, hour + 3 * HOUR);
  try {
    const range = { from: new Date(hour).toISOString(), to: new Date(hour + HOUR).toISOString() };
    const body = (await api.get(`/api/v1/traffic?${qs({ ...range, group_by: "source_workload", limit: "10000" })}`)).body;
    expect(body.hourly_hours).toBe(hourly);
    const got = Object.fromEntries(
      body.rows.map((r: { source_workload: string; requests: number; latency_p50_ms: number; latency_p99_ms: number }) => [
        r.source_workload,
        [r.requests, r.latency_p50_ms, r.latency_p99_ms],
      ]),
    );
    const quantiles = await query(
      w,
      "SELECT source_workload, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.5) AS p50, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99 " +
        `FROM ${FACT_TABLE.name} WHERE minute >= make_timestamp(${hour * 1000}) AND minute < make_timestamp(${(hour + HOUR) * 1000}) GROUP BY 1`,
    );
    const q = new Map(quantiles.map((r) => [String(r.source_workload), [Number(r.p50) / 1000, Number(r.p99) / 1000]]));
    const want = Object.fromEntries([...tally(heldFrom, hour + HOUR)].map(([wl, t]) => [wl, [t.requests, ...q.get(wl)!]]));
    expect(got).toEqual(want);
  } finally {
    await api.close();
  }
}

const WORKLOADS = ["cmp-a", "cmp-b", "cmp-c", "cmp-d"];

describe("mesh_board_hour appended per load, compacted per hour", () => {
  const rollup = () => new BoardRollup(w.sink);
  let stage: BoardRollup;
  beforeAll(async () => {
    stage = rollup();
    await stage.run();
  });
  afterAll(() => stage.close());

  it("an open hour holds at most compactAfter rows per series, every state adding up to what was sent", async () => {
    const reports: BoardRollupReport[] = [];
    for (let m = 0; m < 9; m++) {
      await load(H + m * MINUTE, WORKLOADS);
      reports.push(await stage.run());
      const got = await expectBoardHoldsSent(H);
      for (const [wl, r] of got) expect(r.rows, wl).toBeLessThanOrEqual(4);
      await expectApiAnswersSent(H, 1);
    }
    expect(reports.every((r) => r.merged === 1 && r.rebuilt === 0)).toBe(true);
    // Nine merges: compacted after the fifth merge's rows (one compacted batch and four appended would be five) and the ninth.
    expect(reports.map((r) => r.compacted)).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 1]);
    for (const [wl, r] of await boardRows(H)) expect([r.rows, r.appended], wl).toEqual([1, 0]);
  });

  it("an hour is compacted once a later hour has rows, and late rows into it are compacted with it again", async () => {
    await load(H + 10 * MINUTE, WORKLOADS);
    await stage.run();
    expect([...(await boardRows(H)).values()].some((r) => r.rows > 1)).toBe(true);
    await load(H + HOUR, WORKLOADS.slice(0, 2));
    expect(await stage.run()).toMatchObject({ merged: 1, rebuilt: 0, compacted: 1 });
    for (const [wl, r] of await expectBoardHoldsSent(H)) expect([r.rows, r.appended], wl).toEqual([1, 0]);
    // Late minutes, one from a series the hour has not seen: appended, then the closed hour compacted at once.
    await load(H + 30 * MINUTE, [...WORKLOADS, "cmp-late"]);
    expect(await stage.run()).toMatchObject({ merged: 1, rebuilt: 0, compacted: 1 });
    const got = await expectBoardHoldsSent(H);
    expect(got.size).toBe(WORKLOADS.length + 1);
    for (const [wl, r] of got) expect([r.rows, r.appended], wl).toEqual([1, 0]);
    await expectApiAnswersSent(H, 1);
    await expectBoardHoldsSent(H + HOUR);
    await expectApiAnswersSent(H + HOUR, 1);
  });

  it("a run that fails between its appends and its compaction commits neither; a restarted stage converges", async () => {
    const hour = H + HOUR;
    const before = await boardRows(hour);
    // Closes hour H + 1 (so the run would compact it) and appends to H + 2.
    await load(hour + 20 * MINUTE, WORKLOADS);
    await load(hour + HOUR, WORKLOADS);
    const addBinary = vi.spyOn(SketchAccumulator.prototype, "addBinary").mockImplementation(() => {
      throw new Error("stopped between append and compaction");
    });
    try {
      await expect(stage.run()).rejects.toThrow("stopped between append and compaction");
    } finally {
      addBinary.mockRestore();
    }
    expect(await boardRows(hour)).toEqual(before);
    expect((await boardRows(hour + HOUR)).size).toBe(0);
    // The minute rows answer meanwhile, exactly.
    await expectApiAnswersSent(hour, 0);
    stage.close();
    stage = rollup();
    const r = await stage.run();
    expect(r.waiting).toBe(0);
    for (const [wl, b] of await expectBoardHoldsSent(hour)) expect(b.rows, wl).toBe(1);
    await expectBoardHoldsSent(hour + HOUR);
    await expectApiAnswersSent(hour, 1);
    await expectApiAnswersSent(hour + HOUR, 1);
  });

  it("appended rows left uncompacted by a stage that stopped are compacted by the next one", async () => {
    const hour = H + 2 * HOUR;
    const lazy = new BoardRollup(w.sink, undefined, { compactAfter: 100 });
    try {
      await lazy.run();
      for (let m = 1; m <= 6; m++) {
        await load(hour + m * MINUTE, WORKLOADS);
        expect(await lazy.run()).toMatchObject({ merged: 1, compacted: 0 });
      }
      for (const [wl, r] of await expectBoardHoldsSent(hour)) expect(r.rows, wl).toBe(7);
      await expectApiAnswersSent(hour, 1);
    } finally {
      lazy.close();
    }
    stage.close();
    stage = rollup();
    expect(await stage.run()).toMatchObject({ merged: 0, rebuilt: 0, compacted: 1, waiting: 0 });
    for (const [wl, r] of await expectBoardHoldsSent(hour)) expect([r.rows, r.appended], wl).toEqual([1, 0]);
    await expectApiAnswersSent(hour, 1);
  });

  it("retention cutting an hour that holds appended rows: reads take its minute rows, compaction keeps what it absorbed, its rows go with its last minute", async () => {
    const hour = H + 3 * HOUR;
    // One stage throughout (two would each merge what the other did): one that compacts only closed hours.
    stage.close();
    stage = new BoardRollup(w.sink, undefined, { compactAfter: 100 });
    await stage.run();
    for (let m = 0; m < 4; m++) {
      await load(hour + m * MINUTE, WORKLOADS);
      await stage.run();
    }
    // Retention has taken everything before this hour and now its first two minutes.
    await w.sink.connection.run(`DELETE FROM ${FACT_TABLE.name} WHERE minute < make_timestamp(${(hour + 2 * MINUTE) * 1000})`);
    expect(await stage.run()).toMatchObject({ merged: 0, rebuilt: 0, compacted: 0, waiting: 0 });
    for (const [wl, r] of await expectBoardHoldsSent(hour)) expect(r.rows, wl).toBe(4);
    await expectApiAnswersSent(hour, 0, hour + 2 * MINUTE);
    // The hour closes: compacted to one row per series, still holding every minute it absorbed.
    await load(hour + HOUR, WORKLOADS);
    expect(await stage.run()).toMatchObject({ merged: 1, rebuilt: 0, compacted: 1, waiting: 0 });
    for (const [wl, r] of await expectBoardHoldsSent(hour)) expect(r.rows, wl).toBe(1);
    await expectApiAnswersSent(hour, 0, hour + 2 * MINUTE);
    await expectApiAnswersSent(hour + HOUR, 1);
    await w.sink.connection.run(`DELETE FROM ${FACT_TABLE.name} WHERE minute < make_timestamp(${(hour + HOUR) * 1000})`);
    expect(await stage.run()).toMatchObject({ merged: 0, rebuilt: 0, waiting: 0 });
    expect((await boardRows(hour)).size).toBe(0);
    await expectBoardHoldsSent(hour + HOUR);
  });

  it("a sidecar whose clock runs ahead does not close the hour in progress: it is still compacted only every compactAfter merges", async () => {
    const hour = H + 6 * HOUR;
    const ahead = (Math.floor(Date.now() / HOUR) + 3) * HOUR;
    stage.close();
    stage = rollup();
    await stage.run();
    await load(hour, WORKLOADS);
    await load(ahead, WORKLOADS.slice(0, 1));
    const reports = [await stage.run()];
    for (let m = 1; m <= 4; m++) {
      await load(hour + m * MINUTE, WORKLOADS);
      reports.push(await stage.run());
    }
    // Compacted once its rows came from a fifth merge, as an open hour is; a closed one would be at every merge.
    expect(reports.map((r) => r.compacted)).toEqual([0, 0, 0, 0, 1]);
    for (const [wl, r] of await expectBoardHoldsSent(hour)) expect([r.rows, r.appended], wl).toEqual([1, 0]);
    await expectApiAnswersSent(hour, 1);
  });
});
