// The hourly explore against the minute explore on the same warehouse: traffic over two hours loaded
// through the real DuckDB sink (which compacts the closed hours), the rendered Snowflake SQL of both
// explores translated to DuckDB and run. Totals and percentiles must be equal, not close: the rollup
// merges sketches exactly, and hours it does not cover exactly are read from their minutes.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privilegedRenderer } from "./checks.ts";
import { parseSnowflake, snowflakeToDuckDB } from "./dialect.ts";
import { loadProject, type Project } from "./project.ts";
import type { ExploreQuery } from "./render.ts";
import { loadWarehouse, query, type Warehouse } from "./warehouse.ts";

let w: Warehouse;
let project: Project;
let day: string;

beforeAll(async () => {
  // ~90 minutes of traffic, so it spans two UTC hours.
  w = await loadWarehouse({ seed: "hourly", requests: 8_000, requestsPerSecond: 1.5 });
  project = await loadProject({ DATABASE: w.database, SCHEMA: w.schema });
  day = new Date(w.fromMs).toISOString().slice(0, 10);
});
afterAll(async () => {
  await w?.close();
});

type Row = Record<string, unknown>;

// Every measure both explores define, except requests_per_second (its window is a minute or an hour).
const MEASURES = [
  "requests",
  "errors",
  "error_rate",
  "success_rate",
  "request_bytes",
  "response_bytes",
  "mtls_requests",
  "plaintext_requests",
  "latency_mean_ms",
  "latency_min_ms",
  "latency_max_ms",
  "latency_p50_ms",
  "latency_p90_ms",
  "latency_p95_ms",
  "latency_p99_ms",
  "latency_p999_ms",
];

/** The same question asked of both explores; rows keyed by the dimensions, fields unscoped. */
async function both(dimensions: string[], filters: Record<string, string> = {}): Promise<{ minute: Map<string, Row>; hourly: Map<string, Row> }> {
  const renderer = privilegedRenderer(project);
  const ask = async (explore: string) => {
    const q: ExploreQuery = {
      explore,
      fields: [...dimensions, ...MEASURES].map((f) => `${explore}.${f}`),
      filters: Object.fromEntries(Object.entries({ traffic_date: day, ...filters }).map(([f, v]) => [`${explore}.${f}`, v])),
    };
    const sql = renderer.render(q);
    parseSnowflake(sql);
    const rows = await query(w, snowflakeToDuckDB(sql));
    const unscoped = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k.slice(explore.length + 1), v instanceof Date ? v.toISOString() : v])));
    return new Map(unscoped.map((r) => [dimensions.map((d) => String(r[d])).join(" | "), r]));
  };
  return { minute: await ask("mesh_traffic"), hourly: await ask("mesh_traffic_hourly") };
}

async function expectSameAnswers(): Promise<void> {
  for (const dims of [["destination_service"], ["traffic_hour", "destination_service"], ["traffic_date"]]) {
    const { minute, hourly } = await both(dims);
    expect(minute.size, dims.join(",")).toBeGreaterThan(dims.length === 1 && dims[0] === "traffic_date" ? 0 : 3);
    expect(hourly).toEqual(minute);
  }
}

const count = async (sql: string) => Number((await query(w, sql))[0].n);

describe("the hourly explore", () => {
  it("spans two hours, both compacted by the sink", async () => {
    const hours = await query(w, "SELECT hour, SUM(minute_rows) AS n FROM mesh_traffic_hour GROUP BY hour ORDER BY hour");
    expect(hours.length).toBe(2);
    expect(hours.reduce((n, r) => n + Number(r.n), 0)).toBe(await count("SELECT COUNT(*) AS n FROM mesh_traffic_minute"));
  });

  it("answers every total and percentile exactly as the minute explore, by service, by hour and service, by day", async () => {
    await expectSameAnswers();
  });

  it("reads an hour the rollup covers incompletely from its minutes, until the next compaction rebuilds it", async () => {
    // Some hourly rows of the second hour go missing: that hour's rollup no longer accounts for all its minute rows.
    const second = new Date(w.fromMs + 3_600_000).toISOString().slice(0, 13).replace("T", " ") + ":00:00";
    await query(w, `DELETE FROM mesh_traffic_hour WHERE hour = TIMESTAMP '${second}' AND response_code <> 200`);
    expect(await count("SELECT SUM(requests) AS n FROM mesh_traffic_hour")).toBeLessThan(await count("SELECT SUM(requests) AS n FROM mesh_traffic_minute"));
    await expectSameAnswers();
    expect((await w.sink.compact()).map((d) => d.toISOString())).toEqual([new Date(`${second.replace(" ", "T")}Z`).toISOString()]);
    expect(await count("SELECT SUM(requests) AS n FROM mesh_traffic_hour")).toBe(await count("SELECT SUM(requests) AS n FROM mesh_traffic_minute"));
    await expectSameAnswers();
  });

  it("keeps answering from the rollup for an hour whose minute rows were deleted (retention)", async () => {
    const { hourly: before } = await both(["traffic_hour", "destination_service"]);
    const first = new Date(w.fromMs).toISOString().slice(0, 13).replace("T", " ") + ":00:00";
    await query(w, `DELETE FROM mesh_traffic_minute WHERE minute < TIMESTAMP '${first}' + INTERVAL 1 HOUR`);
    expect(await w.sink.compact()).toEqual([]);
    const { minute, hourly } = await both(["traffic_hour", "destination_service"]);
    expect(hourly).toEqual(before);
    expect(minute.size).toBeLessThan(hourly.size);
  });
});
