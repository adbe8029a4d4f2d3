// The outlier detection statement on Snowflake (through the stand-in): the same planted-incident
// traffic loaded through the Snowflake sink and the DuckDB sink yields the same findings with the same
// evidence, and the refresh of mesh_outlier runs as Snowflake SQL (checked after the suite).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detect, type Finding } from "../../collector/outliers/detect.ts";
import { openFindings, refreshFindings } from "../../collector/outliers/store.ts";
import { duckdbQuery, snowflakeQuery } from "../../collector/outliers/warehouse.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { SnowflakeSink } from "../../collector/sink/snowflake.ts";
import { TEST_THRESHOLDS, loadHourly, scenario, type Scenario } from "../outliers/scenario.ts";
import { standForSuite } from "./helpers.ts";

const options = { thresholds: { ...TEST_THRESHOLDS, baselineHours: 1 }, grains: ["edge" as const, "service" as const], lookerUrl: "", maxFindings: 200 };

/** What must agree across warehouses: identity and evidence (percentiles to the sketch's resolution). */
const evidence = (f: Finding) => ({
  id: f.id,
  requests: [f.recent_requests, f.baseline_requests, f.recent_errors, f.baseline_errors],
  score: Number(f.score.toFixed(6)),
  p99: [f.recent_p99_us, f.baseline_p99_us],
  url: f.exploreUrl,
});

describe("outlier detection on Snowflake (stand-in)", () => {
  const s = standForSuite({ migrate: true });
  let sc: Scenario;
  let onDuck: Finding[];

  beforeAll(async () => {
    sc = scenario(true, 5, 2 * 3600);
    const clock = { now: sc.startMs };
    const duck = new DuckDBSink(":memory:", undefined, { now: () => clock.now });
    await duck.open();
    await loadHourly(duck, sc.summaries, clock);
    onDuck = (
      await detect(
        duckdbQuery(() => duck.connection),
        options,
        sc.endMs,
      )
    ).findings;
    await duck.close();
  }, 120_000);

  let sink: SnowflakeSink;
  afterAll(() => sink?.close());

  it("finds what DuckDB finds, with the same evidence", async () => {
    const clock = { now: sc.startMs };
    sink = new SnowflakeSink(s.settings(), undefined, { hourly: { now: () => clock.now } });
    await sink.open();
    await loadHourly(sink, sc.summaries, clock);
    const q = snowflakeQuery((sql, params) => sink.query(sql, params));
    const onSnowflake = (await detect(q, options, sc.endMs)).findings;
    expect(onDuck.length).toBeGreaterThanOrEqual(sc.planted.length);
    expect(onSnowflake.map(evidence)).toEqual(onDuck.map(evidence));

    await refreshFindings(q, onSnowflake, sc.endMs);
    await refreshFindings(q, onSnowflake.slice(1), sc.endMs + 60_000);
    expect((await openFindings(q)).map((r) => r.finding_id)).toEqual(onSnowflake.slice(1).map((f) => f.id));
  }, 300_000);
});
