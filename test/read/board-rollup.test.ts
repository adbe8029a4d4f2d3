// The read pre-aggregate (collector/read/board-rollup.ts) stays equal to the minute rows it stands for as
// loads arrive: merged incrementally after a load, rebuilt when rows arrive below its watermark, and read
// by the API only when current. The truth is SQL over mesh_traffic_minute with the MESH_QUANTILE UDF, as
// the LookML measures compute it.
import { setImmediate } from "node:timers/promises";
import { Gauge, Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { BoardRollup } from "../../collector/read/board-rollup.ts";
import { SketchAccumulator } from "../../collector/read/sketches.ts";
import { DEFAULT_SCALE, SeriesStats } from "../../shared/node.ts";
import { BOARD_HOUR_TABLE, BOARD_MINUTE_TABLE, FACT_TABLE } from "../../shared/schema.ts";
import type { SeriesDims } from "../../sim/traffic/series.ts";
import { loadWarehouse, minuteSummary, query, type Warehouse } from "../looker/warehouse.ts";
import { qs, readApi, type ReadApi } from "./helpers.ts";

let w: Warehouse;
let rollup: BoardRollup;
beforeAll(async () => {
  w = await loadWarehouse({ requests: 4_000, requestsPerSecond: 50, seed: "board-rollup" });
  rollup = new BoardRollup(w.sink);
}, 120_000);
afterAll(async () => {
  rollup?.close();
  await w?.close();
});

const firstHour = () => Math.floor(w.fromMs / 3_600_000) * 3_600_000;

/** The API's answer over one hour (read from the pre-aggregate when current) against SQL over minute rows. */
async function expectApiEqualsMinuteRows(wantHourly: number, group = ["destination_service", "source_principal", "response_code"], hour = firstHour(), shared?: ReadApi) {
  const api = shared ?? (await readApi(w.sink, w.toMs + 3_600_000));
  try {
    const range = { from: new Date(hour).toISOString(), to: new Date(hour + 3_600_000).toISOString() };
    const body = (await api.get(`/api/v1/traffic?${qs({ ...range, group_by: group.join(","), limit: "10000" })}`)).body;
    expect(body.hourly_hours).toBe(wantHourly);
    const truth = await query(
      w,
      `SELECT ${group.join(", ")}, SUM(requests) AS requests, SUM(errors) AS errors, epoch_ms(MIN(minute)) AS first_minute, epoch_ms(MAX(minute)) AS last_minute, ` +
        `MIN(latency_min_us) AS min_us, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99_us, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.5) AS p50_us ` +
        `FROM ${FACT_TABLE.name} WHERE reporter = 'destination' AND minute >= make_timestamp(${hour * 1000}) AND minute < make_timestamp(${(hour + 3_600_000) * 1000}) GROUP BY ${group.join(", ")}`,
    );
    const key = (r: Record<string, unknown>) => group.map((g) => String(r[g])).join(" | ");
    const got = new Map<string, Record<string, unknown>>(body.rows.map((r: Record<string, unknown>) => [key(r), r]));
    expect([...got.keys()].sort()).toEqual(truth.map(key).sort());
    for (const t of truth) {
      const r = got.get(key(t))!;
      const rps = Number(t.requests) / ((Number(t.last_minute) - Number(t.first_minute)) / 1000 + 60);
      expect([r.requests, r.errors, r.latency_min_ms, r.latency_p50_ms, r.latency_p99_ms], key(t)).toEqual([
        Number(t.requests),
        Number(t.errors),
        Number(t.min_us) / 1000,
        Number(t.p50_us) / 1000,
        Number(t.p99_us) / 1000,
      ]);
      expect(r.requests_per_second).toBeCloseTo(rps, 9);
    }
  } finally {
    if (!shared) await api.close();
  }
}

/**
 * A per-minute series as the dashboard's charts ask for it (read from mesh_board_minute when current) over
 * one hour, against SQL with MESH_QUANTILE over the minute rows; `wantHours` the hours the answer says came
 * from a pre-aggregate.
 */
async function expectMinuteSeriesEqualsMinuteRows(wantHours: number, hour = firstHour(), shared?: ReadApi, group = ["destination_namespace", "response_code"]) {
  const api = shared ?? (await readApi(w.sink, w.toMs + 3_600_000));
  try {
    const range = { from: new Date(hour).toISOString(), to: new Date(hour + 3_600_000).toISOString() };
    const body = (await api.get(`/api/v1/traffic?${qs({ ...range, interval: "minute", group_by: group.join(","), limit: "10000" })}`)).body;
    expect(body.hourly_hours).toBe(wantHours);
    const truth = await query(
      w,
      `SELECT epoch_ms(minute) AS t, ${group.join(", ")}, SUM(requests) AS requests, SUM(errors) AS errors, SUM(response_bytes) AS response_bytes, ` +
        "MIN(latency_min_us) AS min_us, MAX(latency_max_us) AS max_us, SUM(requests) FILTER (WHERE connection_security_policy = 'mutual_tls') AS mtls, " +
        "MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.5) AS p50_us, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99_us " +
        `FROM ${FACT_TABLE.name} WHERE reporter = 'destination' AND minute >= make_timestamp(${hour * 1000}) AND minute < make_timestamp(${(hour + 3_600_000) * 1000}) ` +
        `GROUP BY ALL`,
    );
    const key = (r: Record<string, unknown>) => ["t", ...group].map((g) => String(r[g])).join(" | ");
    const got = new Map<string, Record<string, unknown>>(body.rows.map((r: Record<string, unknown>) => [key(r), r]));
    expect([...got.keys()].sort()).toEqual(truth.map(key).sort());
    for (const t of truth) {
      const r = got.get(key(t))!;
      expect([r.requests, r.errors, r.response_bytes, r.latency_min_ms, r.latency_max_ms, r.mtls_requests, r.latency_p50_ms, r.latency_p99_ms], key(t)).toEqual([
        Number(t.requests),
        Number(t.errors),
        Number(t.response_bytes),
        Number(t.min_us) / 1000,
        Number(t.max_us) / 1000,
        Number(t.mtls ?? 0),
        Number(t.p50_us) / 1000,
        Number(t.p99_us) / 1000,
      ]);
    }
  } finally {
    if (!shared) await api.close();
  }
}

/** One more sidecar's summary for a minute of the loaded hour: a series already there, and a new one. */
async function loadMore(producer: string, minuteMs: number, variants: Record<string, string>[] = [{}, { source_principal: `spiffe://cluster.local/ns/new/sa/${producer}` }]) {
  const [row] = await query(w, `SELECT * FROM ${FACT_TABLE.name} WHERE reporter = 'destination' ORDER BY requests DESC LIMIT 1`);
  const existing = Object.fromEntries(
    Object.entries(row).filter(([k]) => !["minute", "requests", "errors", "request_bytes", "response_bytes", "loaded_at"].includes(k) && !k.startsWith("latency")),
  );
  const series = variants
    .map((v) => ({ ...existing, ...v }))
    .map((dims, i) => {
      const stats = new SeriesStats(DEFAULT_SCALE);
      for (let k = 0; k < 50; k++) stats.record(500 + 97 * k * (i + 1), 10, 20, k % 10 === 0);
      return { dims: dims as unknown as SeriesDims, stats };
    });
  await w.sink.load([minuteSummary(producer, 1, minuteMs, series)]);
}

/** `make_timestamp` of minute `minutes` of `hour` (ms). */
const minuteAt = (hour: number, minutes: number) => `make_timestamp(${(hour + minutes * 60_000) * 1000})`;

/** 20 minute rows, copies of a destination row with source_workload `${prefix}0` … `${prefix}19`, at each of `minutes` of `hour`, loaded now. */
async function insertMinuteRows(hour: number, minutes: number[], prefix: string) {
  for (const m of minutes)
    await w.sink.connection.run(
      `INSERT INTO ${FACT_TABLE.name} SELECT * EXCLUDE (i) REPLACE (${minuteAt(hour, m)} AS minute, '${prefix}' || i AS source_workload, make_timestamp(${Date.now() * 1000}) AS loaded_at) ` +
        `FROM (SELECT * FROM ${FACT_TABLE.name} WHERE reporter = 'destination' LIMIT 1), range(20) AS r(i)`,
    );
}

describe("read pre-aggregate", () => {
  it("built from the minute rows on its first run, it answers as they do", async () => {
    const r = await rollup.run();
    expect(r).toMatchObject({ merged: 0, waiting: 0 });
    expect(r.rebuilt).toBeGreaterThan(0);
    await expectApiEqualsMinuteRows(1);
    await expectMinuteSeriesEqualsMinuteRows(1);
  });

  it("after a load, merges only the new rows into their hour, and still answers as the minute rows do", async () => {
    await loadMore("late-sidecar", w.fromMs + 60_000);
    // Not merged yet: the hour's counts disagree, so the API reads its minute rows.
    await expectApiEqualsMinuteRows(0);
    await expectMinuteSeriesEqualsMinuteRows(0);
    expect(await rollup.run()).toMatchObject({ merged: 1, rebuilt: 0, waiting: 0 });
    await expectApiEqualsMinuteRows(1);
    await expectMinuteSeriesEqualsMinuteRows(1);
    // The merge appended the new minute rows' counters; it read nothing back.
    const [dup] = await query(
      w,
      `SELECT COUNT(*) - COUNT(DISTINCT (minute, reporter, destination_namespace, destination_service, response_code)) AS n FROM ${BOARD_MINUTE_TABLE.name}`,
    );
    expect(Number(dup.n)).toBeGreaterThan(0);
  });

  it("rows loaded below its watermark (a replica's clock behind) make it rebuild the hour", async () => {
    await loadMore("behind-sidecar", w.fromMs);
    await w.sink.connection.run(`UPDATE ${FACT_TABLE.name} SET loaded_at = TIMESTAMP '2000-01-01' WHERE loaded_at = (SELECT MAX(loaded_at) FROM ${FACT_TABLE.name})`);
    expect(await rollup.run()).toMatchObject({ merged: 0, rebuilt: 1, waiting: 0 });
    await expectApiEqualsMinuteRows(1);
    await expectMinuteSeriesEqualsMinuteRows(1);
    const [n] = await query(
      w,
      `SELECT (SELECT SUM(minute_rows) FROM ${BOARD_HOUR_TABLE.name}) AS board, (SELECT SUM(minute_rows) FROM ${BOARD_MINUTE_TABLE.name}) AS per_minute, (SELECT COUNT(*) FROM ${FACT_TABLE.name}) AS minutes`,
    );
    expect([Number(n.board), Number(n.per_minute)]).toEqual([Number(n.minutes), Number(n.minutes)]);
  });

  it("keeps apart series whose dimension values would run together if joined (a NUL inside a value)", async () => {
    // Valid UTF-8 that ingest accepts: joined with a NUL separator both read "w\0x\0y".
    await loadMore("nul-sidecar", w.fromMs + 120_000, [
      { source_workload: "w\u0000x", source_namespace: "y" },
      { source_workload: "w", source_namespace: "x\u0000y" },
    ]);
    expect(await rollup.run()).toMatchObject({ merged: 1, waiting: 0 });
    await expectApiEqualsMinuteRows(1, ["source_workload", "source_namespace", "destination_service", "response_code"]);
  });

  it("leaves the oldest hour to its minute rows while retention deletes them, instead of rebuilding it every cycle", async () => {
    const next = firstHour() + 3_600_000;
    await loadMore("next-hour-sidecar", next + 5 * 60_000);
    expect(await rollup.run()).toMatchObject({ merged: 1, rebuilt: 0, waiting: 0 });
    // Retention's cutoff moves a cycle at a time through the oldest hour.
    const [{ first }] = await query(w, `SELECT epoch_ms(MIN(minute)) AS first FROM ${FACT_TABLE.name}`);
    for (const cutoff of [Number(first) + 60_000, Number(first) + 120_000]) {
      await w.sink.connection.run(`DELETE FROM ${FACT_TABLE.name} WHERE minute < make_timestamp(${cutoff * 1000})`);
      expect(await rollup.run()).toMatchObject({ merged: 0, rebuilt: 0, waiting: 0 });
      await expectApiEqualsMinuteRows(0, undefined, firstHour());
      await expectApiEqualsMinuteRows(1, undefined, next);
      // Per minute, what retention took is trimmed exactly: the oldest hour keeps its pre-aggregate.
      await expectMinuteSeriesEqualsMinuteRows(1, firstHour());
    }
    // Its last minutes gone, its pre-aggregate rows go too.
    await w.sink.connection.run(`DELETE FROM ${FACT_TABLE.name} WHERE minute < make_timestamp(${next * 1000})`);
    expect(await rollup.run()).toMatchObject({ merged: 0, rebuilt: 0, waiting: 0 });
    const [n] = await query(w, `SELECT COUNT(*) FILTER (WHERE hour < make_timestamp(${next * 1000})) AS old, SUM(minute_rows) AS rows FROM ${BOARD_HOUR_TABLE.name}`);
    const [m] = await query(w, `SELECT COUNT(*) AS rows FROM ${FACT_TABLE.name}`);
    expect([Number(n.old), Number(n.rows)]).toEqual([0, Number(m.rows)]);
    const [pm] = await query(w, `SELECT COUNT(*) FILTER (WHERE minute < make_timestamp(${next * 1000})) AS old, SUM(minute_rows) AS rows FROM ${BOARD_MINUTE_TABLE.name}`);
    expect([Number(pm.old), Number(pm.rows)]).toEqual([0, Number(m.rows)]);
  });

  it("gives the event loop turns while it writes an hour of many series (ingest shares it)", async () => {
    // Observed as an ordering, not a time: turns of a setImmediate loop between the hour's first and last
    // sketch written. Written in one synchronous block, none get through.
    const hour = firstHour() + 2 * 3_600_000;
    await w.sink.connection.run(
      `INSERT INTO ${FACT_TABLE.name} SELECT * EXCLUDE (i) REPLACE (make_timestamp(${hour * 1000}) AS minute, 'bulk-' || i AS source_workload, make_timestamp(${Date.now() * 1000}) AS loaded_at) ` +
        `FROM (SELECT * FROM ${FACT_TABLE.name} WHERE reporter = 'destination' LIMIT 1), range(3000) AS r(i)`,
    );
    const events: string[] = [];
    const toBinary = SketchAccumulator.prototype.toBinary;
    SketchAccumulator.prototype.toBinary = function (this: SketchAccumulator) {
      events.push("sketch");
      return toBinary.call(this);
    };
    let running = true;
    const ticker = (async () => {
      while (running) {
        await setImmediate();
        events.push("turn");
      }
    })();
    try {
      expect(await rollup.run()).toMatchObject({ merged: 1, waiting: 0 });
    } finally {
      running = false;
      await ticker;
      SketchAccumulator.prototype.toBinary = toBinary;
    }
    const during = events.slice(events.indexOf("sketch"), events.lastIndexOf("sketch"));
    expect(during.filter((e) => e === "sketch").length).toBeGreaterThanOrEqual(2999);
    expect(during.filter((e) => e === "turn").length).toBeGreaterThan(0);
    await expectApiEqualsMinuteRows(1, ["source_workload", "destination_service", "response_code"], hour);
  });

  it("a cached answer is dropped when a load is stamped older than the newest (a replica's clock behind) and when retention deletes minute rows", async () => {
    // Neither adds a ledger entry newer than the newest: the ledger's newest loaded_at says nothing changed.
    const hour = firstHour() + 3 * 3_600_000;
    for (const at of [hour, hour + 30 * 60_000]) {
      await w.sink.connection.run(
        `INSERT INTO ${FACT_TABLE.name} SELECT * EXCLUDE (i) REPLACE (make_timestamp(${at * 1000}) AS minute, 'pruned-' || i AS source_workload, make_timestamp(${Date.now() * 1000}) AS loaded_at) ` +
          `FROM (SELECT * FROM ${FACT_TABLE.name} WHERE reporter = 'destination' LIMIT 1), range(20) AS r(i)`,
      );
    }
    expect(await rollup.run()).toMatchObject({ merged: 1, waiting: 0 });
    const group = ["source_workload", "source_principal", "destination_service", "response_code"];
    const api = await readApi(w.sink, w.toMs + 3_600_000);
    try {
      await expectApiEqualsMinuteRows(1, group, hour, api);
      await expectMinuteSeriesEqualsMinuteRows(1, hour, api);
      const freshness = async () => (await api.get("/api/v1/freshness")).body as { latest_load: number; data_version: number };
      const before = await freshness();
      const [{ newest }] = await query(w, "SELECT epoch_ms(MAX(loaded_at)) AS newest FROM mesh_load_ledger");
      const clock = vi.spyOn(Date, "now").mockReturnValue(Number(newest) - 60_000);
      try {
        await loadMore("clock-behind-sidecar", hour + 30 * 60_000);
      } finally {
        clock.mockRestore();
      }
      const [{ late }] = await query(w, `SELECT COUNT(*) AS late FROM mesh_load_ledger WHERE producer_id = 'clock-behind-sidecar' AND epoch_ms(loaded_at) < ${Number(newest)}`);
      expect(Number(late)).toBe(1);
      // What a polling client sees: the newest load did not move, the data version did.
      const afterLate = await freshness();
      expect(afterLate.latest_load).toBe(before.latest_load);
      expect(afterLate.data_version).toBeGreaterThan(before.data_version);
      await expectApiEqualsMinuteRows(0, group, hour, api);
      await expectMinuteSeriesEqualsMinuteRows(0, hour, api);
      expect(await rollup.run()).toMatchObject({ merged: 0, rebuilt: 1, waiting: 0 });
      await expectApiEqualsMinuteRows(1, group, hour, api);
      await expectMinuteSeriesEqualsMinuteRows(1, hour, api);

      // Retention as the loader runs it (only compacted hours lose minute rows), its cutoff 10 minutes into the hour.
      while ((await w.sink.compact()).length > 0);
      const cutoff = hour + 10 * 60_000;
      const pruned = await w.sink.prune({ minuteDays: 1, hourDays: 400, ledgerDays: 35, maxDaysPerRun: 2 }, cutoff + 86_400_000);
      expect(pruned.find((p) => p.table === FACT_TABLE.name)!.rows).toBeGreaterThan(0);
      const afterPrune = await freshness();
      expect(afterPrune.latest_load).toBe(afterLate.latest_load);
      expect(afterPrune.data_version).toBeGreaterThan(afterLate.data_version);
      await expectApiEqualsMinuteRows(0, group, hour, api);
      await expectMinuteSeriesEqualsMinuteRows(0, hour, api, ["destination_service", "response_code"]);
      // The stage trims the per-minute table to what retention left; the hour's pre-aggregate now holds more.
      expect(await rollup.run()).toMatchObject({ merged: 0, rebuilt: 0, waiting: 0 });
      await expectApiEqualsMinuteRows(0, group, hour, api);
      await expectMinuteSeriesEqualsMinuteRows(1, hour, api, ["destination_service", "response_code"]);
    } finally {
      await api.close();
    }
  });

  it("with its time budget spent after one hour, a stale multi-hour state converges over runs and answers stay exact at every step", async () => {
    // The first start after an upgrade, data present: no pre-aggregate rows at all, several hours of minutes.
    const hours = [4, 5, 6, 7].map((k) => firstHour() + k * 3_600_000);
    for (const hour of hours)
      for (const at of [hour, hour + 17 * 60_000, hour + 45 * 60_000])
        await w.sink.connection.run(
          `INSERT INTO ${FACT_TABLE.name} SELECT * EXCLUDE (i) REPLACE (make_timestamp(${at * 1000}) AS minute, 'budget-' || (i % 7) AS source_workload, response_code + i AS response_code, make_timestamp(${Date.now() * 1000}) AS loaded_at) ` +
            `FROM (SELECT * FROM ${FACT_TABLE.name} WHERE reporter = 'destination' LIMIT 1), range(${at % 7 === 0 ? 30 : 25}) AS r(i)`,
        );
    await w.sink.connection.run(`DELETE FROM ${BOARD_HOUR_TABLE.name}`);
    await w.sink.connection.run(`DELETE FROM ${BOARD_MINUTE_TABLE.name}`);
    const [{ all }] = await query(w, `SELECT COUNT(DISTINCT date_trunc('hour', minute)) AS all FROM ${FACT_TABLE.name}`);
    const waitingGauge = new Gauge({ name: "hours_waiting", help: "-", registers: [new Registry()] });
    const budgeted = new BoardRollup(w.sink, undefined, { budgetSeconds: 0, waitingGauge });
    const waitingNow = async () => (await waitingGauge.get()).values[0].value;
    const group = ["source_workload", "destination_service", "response_code"];
    try {
      // Newest first, one hour a run; the hours not yet rebuilt are answered from their minute rows.
      for (let run = 1; run <= Number(all); run++) {
        expect(await budgeted.run()).toMatchObject({ merged: 0, rebuilt: 1, waiting: Number(all) - run });
        expect(await waitingNow()).toBe(Number(all) - run);
        for (const [i, hour] of [...hours].reverse().entries()) {
          await expectApiEqualsMinuteRows(i < run ? 1 : 0, group, hour);
          await expectMinuteSeriesEqualsMinuteRows(i < run ? 1 : 0, hour);
        }
      }
      expect(await budgeted.run()).toMatchObject({ merged: 0, rebuilt: 0, waiting: 0 });
      const [n] = await query(w, `SELECT (SELECT SUM(minute_rows) FROM ${BOARD_HOUR_TABLE.name}) AS board, (SELECT COUNT(*) FROM ${FACT_TABLE.name}) AS minutes`);
      expect(Number(n.board)).toBe(Number(n.minutes));
    } finally {
      budgeted.close();
    }
  });

  it("is not read for an hour whose minute rows changed while their count stayed: rows deleted as as many land, not yet merged", async () => {
    const hour = firstHour() + 9 * 3_600_000;
    const at = (minutes: number) => minuteAt(hour, minutes);
    await insertMinuteRows(hour, [0, 10, 20], "swap-");
    // Also catches up with the hours the test before built with a rollup of its own: four rebuilt, over as
    // many runs as its time budget takes on a loaded machine.
    while ((await rollup.run()).waiting > 0);
    const group = ["source_workload", "destination_service", "response_code"];
    await expectApiEqualsMinuteRows(1, group, hour);
    await expectMinuteSeriesEqualsMinuteRows(1, hour);
    // Moves a minute's rows to another minute of the hour, as late rows loading while as many are deleted do.
    const move = async (from: number, to: number, requests: string) => {
      await w.sink.connection.run(
        `INSERT INTO ${FACT_TABLE.name} SELECT * REPLACE (${at(to)} AS minute, ${requests} AS requests, make_timestamp(${Date.now() * 1000}) AS loaded_at) FROM ${FACT_TABLE.name} WHERE minute = ${at(from)}`,
      );
      await w.sink.connection.run(`DELETE FROM ${FACT_TABLE.name} WHERE minute = ${at(from)}`);
    };
    // Minute rows deleted from inside the hour, as many landing with other request counts.
    await move(10, 30, "requests + 1");
    await expectApiEqualsMinuteRows(0, group, hour);
    await expectMinuteSeriesEqualsMinuteRows(0, hour);
    expect(await rollup.run()).toMatchObject({ merged: 1, rebuilt: 1, waiting: 0 });
    await expectApiEqualsMinuteRows(1, group, hour);
    await expectMinuteSeriesEqualsMinuteRows(1, hour);
    // Retention taking the hour's first minute while late rows as many, with the same request counts, land.
    await move(0, 40, "requests");
    await expectApiEqualsMinuteRows(0, group, hour);
    await expectMinuteSeriesEqualsMinuteRows(0, hour);
    expect(await rollup.run()).toMatchObject({ merged: 1, rebuilt: 1, waiting: 0 });
    await expectApiEqualsMinuteRows(1, group, hour);
  });

  it("rebuilds an hour whose minute rows changed below its watermark while their count stayed, within a round of the hours it holds", async () => {
    const hour = firstHour() + 11 * 3_600_000;
    const at = (minutes: number) => minuteAt(hour, minutes);
    await insertMinuteRows(hour, [0, 20], "below-");
    const group = ["source_workload", "destination_service", "response_code"];
    expect(await rollup.run()).toMatchObject({ waiting: 0 });
    await expectApiEqualsMinuteRows(1, group, hour);
    // A replica whose clock is behind loads as many rows into the hour as are deleted from it: every total
    // of the stage's agrees, and its watermark hides the new rows.
    await w.sink.connection.run(
      `INSERT INTO ${FACT_TABLE.name} SELECT * REPLACE (${at(50)} AS minute, requests + 2 AS requests, TIMESTAMP '2000-01-01' AS loaded_at) FROM ${FACT_TABLE.name} WHERE minute = ${at(20)}`,
    );
    await w.sink.connection.run(`DELETE FROM ${FACT_TABLE.name} WHERE minute = ${at(20)}`);
    await expectApiEqualsMinuteRows(0, group, hour);
    const [{ hours }] = await query(w, `SELECT COUNT(DISTINCT hour) AS hours FROM ${BOARD_HOUR_TABLE.name}`);
    const reports = [];
    for (let run = 0; run < Number(hours); run++) reports.push(await rollup.run());
    expect(reports.every((r) => r.merged === 0 && r.waiting === 0)).toBe(true);
    expect(reports.reduce((n, r) => n + r.rebuilt, 0)).toBe(1);
    await expectApiEqualsMinuteRows(1, group, hour);
    await expectMinuteSeriesEqualsMinuteRows(1, hour);
  });
});
