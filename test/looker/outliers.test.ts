// looker:check for outlier findings: every explore URL the collector writes names an explore and
// fields the model has, parses back into a query the SQL renderer accepts, and — run on the warehouse
// it was found in — shows the finding's own evidence; the "What changed" tile returns the findings.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detect, type Finding } from "../../collector/outliers/detect.ts";
import { LOOKER_EXPLORE, LOOKER_MODEL } from "../../collector/outliers/explore-url.ts";
import { refreshFindings } from "../../collector/outliers/store.ts";
import { duckdbQuery } from "../../collector/outliers/warehouse.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { TEST_THRESHOLDS, loadHourly, scenario } from "../outliers/scenario.ts";
import { privilegedRenderer, tileQueries } from "./checks.ts";
import { parseSnowflake, snowflakeToDuckDB } from "./dialect.ts";
import { loadProject, MODEL_NAME, type Project } from "./project.ts";
import type { ExploreQuery } from "./render.ts";

/** The query a Looker explore URL encodes (`/explore/<model>/<explore>?fields=…&f[field]=…&sorts=…`). */
function urlQuery(url: string): { model: string; query: ExploreQuery } {
  const u = new URL(url, "https://looker.invalid");
  const [, kind, model, explore] = u.pathname.split("/");
  expect(kind).toBe("explore");
  const filters: Record<string, string> = {};
  for (const [k, v] of u.searchParams) {
    const m = /^f\[(.+)\]$/.exec(k);
    if (m) filters[m[1]] = v;
  }
  return {
    model,
    query: {
      explore,
      fields: (u.searchParams.get("fields") ?? "").split(","),
      filters,
      sorts: (u.searchParams.get("sorts") ?? "").split(","),
      limit: Number(u.searchParams.get("limit") ?? 500),
    },
  };
}

let dir: string;
let sink: DuckDBSink;
let project: Project;
let findings: Finding[];

beforeAll(async () => {
  const s = scenario(true, 11, 2 * 3600);
  dir = mkdtempSync(join(tmpdir(), "meshlook-outlier-lkml-"));
  const clock = { now: s.startMs };
  sink = new DuckDBSink(join(dir, "meshlook.duckdb"), undefined, { now: () => clock.now });
  await sink.open();
  await loadHourly(sink, s.summaries, clock);
  const q = duckdbQuery(() => sink.connection);
  findings = (await detect(q, { thresholds: { ...TEST_THRESHOLDS, baselineHours: 1 }, grains: ["edge", "service"], lookerUrl: "", maxFindings: 200 }, s.endMs)).findings;
  await refreshFindings(q, findings, s.endMs);
  project = await loadProject({ DATABASE: "meshlook", SCHEMA: "main" });
}, 120_000);
afterAll(async () => {
  await sink?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const run = async (q: ExploreQuery) => {
  const sql = privilegedRenderer(project).render(q);
  parseSnowflake(sql);
  return (await sink.connection.runAndReadAll(snowflakeToDuckDB(sql))).getRowObjectsJS();
};

describe("outlier explore URLs", () => {
  it("name the model's own explore and fields", () => {
    expect(findings.length).toBeGreaterThan(0);
    expect(LOOKER_MODEL).toBe(MODEL_NAME);
    expect(project.explores.has(LOOKER_EXPLORE)).toBe(true);
    for (const f of findings) {
      const { model, query } = urlQuery(f.exploreUrl);
      expect(model).toBe(MODEL_NAME);
      // render() throws on a field, filter or sort the explore does not have.
      expect(() => privilegedRenderer(project).render(query), f.exploreUrl).not.toThrow();
    }
  });

  it("a URL naming a field the model lacks is caught", () => {
    const { query } = urlQuery(findings[0].exploreUrl.replace("mesh_traffic.requests", "mesh_traffic.request_count"));
    expect(() => privilegedRenderer(project).render(query)).toThrow();
  });

  it("show the finding's own evidence: the recent window's requests (and errors) of that series", async () => {
    for (const f of findings) {
      const { query } = urlQuery(f.exploreUrl);
      const rows = await run(query);
      const recent = rows.filter((r) => String(r["mesh_traffic.traffic_minute"]) >= new Date(f.recentStart).toISOString().slice(0, 16).replace("T", " "));
      const sum = (field: string) => recent.reduce((n, r) => n + Number(r[field] ?? 0), 0);
      expect(sum("mesh_traffic.requests"), f.summary).toBe(f.recent_requests);
      if (f.kind === "error_rate") expect(sum("mesh_traffic.errors"), f.summary).toBe(f.recent_errors);
      if (f.kind === "plaintext") expect(sum("mesh_traffic.plaintext_requests"), f.summary).toBe(f.recent_value);
    }
  });

  it("the What changed tile lists the open findings, best first", async () => {
    const tile = tileQueries(project).find((t) => t.tile === "What changed")!;
    const rows = await run(tile.query);
    expect(rows.map((r) => r["mesh_outlier.summary"])).toEqual(findings.map((f) => f.summary));
  });
});
