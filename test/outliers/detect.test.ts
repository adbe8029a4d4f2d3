// Outlier detection on DuckDB against planted incidents whose truth comes from the scenario's own
// description (sim/traffic/incidents.ts), not from the detector: each must be found, with the right
// kind, ranked above every finding that no incident explains; the same mesh without incidents yields
// nothing; and mesh_outlier keeps one row per finding across runs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detect, type Finding } from "../../collector/outliers/detect.ts";
import { openFindings, refreshFindings } from "../../collector/outliers/store.ts";
import { duckdbQuery } from "../../collector/outliers/warehouse.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { OUTLIER_TABLE } from "../../shared/schema.ts";
import { TEST_THRESHOLDS, explains, loadHourly, scenario, type Scenario } from "./scenario.ts";

const options = { thresholds: TEST_THRESHOLDS, grains: ["edge", "service"] as const, lookerUrl: "https://looker.example.com", maxFindings: 200 };

async function loaded(s: Scenario) {
  const clock = { now: s.startMs };
  const sink = new DuckDBSink(":memory:", undefined, { now: () => clock.now });
  await sink.open();
  await loadHourly(sink, s.summaries, clock);
  return sink;
}

describe("outlier detection on DuckDB", () => {
  let planted: Scenario;
  let sink: DuckDBSink;
  let findings: Finding[];

  beforeAll(async () => {
    planted = scenario(true);
    sink = await loaded(planted);
    findings = (
      await detect(
        duckdbQuery(() => sink.connection),
        { ...options, grains: [...options.grains] },
        planted.endMs,
      )
    ).findings;
  }, 120_000);
  afterAll(() => sink?.close());

  it("finds every planted incident with its kind", () => {
    for (const p of planted.planted) {
      const hit = findings.find(
        (f) =>
          f.kind === p.kind &&
          f.destination_service === p.destinationService &&
          (p.sourcePrincipal === undefined ? f.grain === "service" : f.source_principal === p.sourcePrincipal),
      );
      expect(hit, `${p.what}\nfound:\n${findings.map((f) => f.summary).join("\n")}`).toBeDefined();
    }
  });

  it("ranks every planted incident above any finding no incident explains", () => {
    const noise = findings.filter((f) => !planted.planted.some((p) => explains(p, f)));
    const lowestPlanted = Math.min(...planted.planted.map((p) => Math.max(...findings.filter((f) => f.kind === p.kind && explains(p, f)).map((f) => f.score))));
    for (const n of noise) expect(n.score, n.summary).toBeLessThan(lowestPlanted);
  });

  it("the caller's error rise is an edge finding that scores above the service-wide one", () => {
    const p = planted.planted.find((x) => x.kind === "error_rate")!;
    const edge = findings.find((f) => f.kind === "error_rate" && f.source_principal === p.sourcePrincipal)!;
    expect(edge.recent_value!).toBeGreaterThan(0.03);
    expect(edge.baseline_value!).toBeLessThan(0.003);
    const service = findings.find((f) => f.kind === "error_rate" && f.grain === "service" && f.destination_service === p.destinationService);
    if (service) expect(edge.score).toBeGreaterThan(service.score);
  });

  it("gives each finding an explore URL filtered to its series and time range", () => {
    const f = findings.find((x) => x.kind === "new_edge")!;
    const url = new URL(f.exploreUrl);
    expect(url.pathname).toBe("/explore/meshlook/mesh_traffic");
    expect(url.searchParams.get("f[mesh_traffic.source_principal]")).toBe(f.source_principal!.replace(/_/g, "^_"));
    expect(url.searchParams.get("f[mesh_traffic.destination_service]")).toBe(f.destination_service);
    expect(url.searchParams.get("f[mesh_traffic.traffic_minute]")).toBe("2026-01-01 00:45 to 2026-01-01 03:00");
  });

  it("mesh_outlier: repeated runs update one row per finding; a finding no longer found is resolved", async () => {
    const q = duckdbQuery(() => sink.connection);
    const t0 = planted.endMs;
    const first = await refreshFindings(q, findings, t0);
    expect(first.every((f) => f.opened)).toBe(true);
    const second = await refreshFindings(q, findings, t0 + 60_000);
    expect(second.every((f) => !f.opened && f.firstDetectedAt === t0 && f.lastDetectedAt === t0 + 60_000)).toBe(true);
    const [count] = await q.query(`SELECT COUNT(*) AS n, COUNT(DISTINCT finding_id) AS d FROM ${OUTLIER_TABLE.name}`);
    expect(count).toEqual({ n: findings.length, d: findings.length });
    const kept = findings.slice(1);
    await refreshFindings(q, kept, t0 + 120_000);
    const open = await openFindings(q);
    expect(open.map((r) => r.finding_id).sort()).toEqual(kept.map((f) => f.id).sort());
    const [gone] = await q.query(`SELECT status, resolved_at FROM ${OUTLIER_TABLE.name} WHERE finding_id = ?`, [findings[0].id]);
    expect(gone).toEqual({ status: "resolved", resolved_at: t0 + 120_000 });
    // It comes back: a new episode of the same row.
    const back = await refreshFindings(q, findings, t0 + 180_000);
    expect(back.find((f) => f.id === findings[0].id)).toMatchObject({ opened: true, firstDetectedAt: t0 + 180_000 });
    const [again] = await q.query(`SELECT COUNT(*) AS n FROM ${OUTLIER_TABLE.name}`);
    expect(again.n).toBe(findings.length);
  });
});

describe("outlier detection on a clean run", () => {
  it("the same mesh without incidents yields no finding", async () => {
    const clean = scenario(false);
    const sink = await loaded(clean);
    try {
      const { windows, findings } = await detect(
        duckdbQuery(() => sink.connection),
        { ...options, grains: [...options.grains] },
        clean.endMs,
      );
      expect(windows).toBeDefined();
      expect(findings.map((f) => f.summary)).toEqual([]);
    } finally {
      await sink.close();
    }
  }, 120_000);

  it("does not judge a series before the baseline holds minBaselineMinutes of data", async () => {
    const s = scenario(false, 7, 50 * 60);
    const sink = await loaded(s);
    try {
      const res = await detect(
        duckdbQuery(() => sink.connection),
        { ...options, grains: [...options.grains] },
        s.startMs + 50 * 60_000,
      );
      expect(res).toEqual({ findings: [] });
    } finally {
      await sink.close();
    }
  }, 60_000);
});
