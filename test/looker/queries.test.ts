// Explore queries end to end: the SQL Looker would send to Snowflake for this project is rendered,
// parsed as Snowflake SQL, translated to DuckDB and run on a warehouse loaded with generated traffic
// through the real DuckDB sink; results are compared with the generator's exact ground truth
// (counts exact, percentiles within 1 %).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { privilegedRenderer, tileQueries } from "./checks.ts";
import { parseSnowflake, snowflakeToDuckDB } from "./dialect.ts";
import { evaluate } from "./expression.ts";
import { loadProject, substituteConstants, type Project } from "./project.ts";
import { dataTestQuery, SqlRenderer, type ExploreQuery } from "./render.ts";
import { loadWarehouse, minuteSummary, query, type Warehouse } from "./warehouse.ts";
import { SeriesStats } from "../../shared/node.ts";
import { DIMENSIONS, MIGRATIONS } from "../../shared/schema.ts";
import { Stats, type TruthRow } from "../../sim/traffic/index.ts";

let w: Warehouse;
let project: Project;
let window: string;

const minuteText = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");

beforeAll(async () => {
  w = await loadWarehouse({ requests: 12_000, requestsPerSecond: 50 });
  project = await loadProject({ DATABASE: w.database, SCHEMA: w.schema });
  window = `${minuteText(w.fromMs)} to ${minuteText(w.toMs)}`;
});
afterAll(async () => {
  await w?.close();
});

type Row = Record<string, unknown>;

async function run(q: ExploreQuery, renderer: SqlRenderer = privilegedRenderer(project)): Promise<Row[]> {
  const sql = renderer.render(q);
  parseSnowflake(sql);
  return query(w, snowflakeToDuckDB(sql));
}

/** Truth rows merged per key, over the rows `keep` accepts. */
function truth(keep: (r: TruthRow) => boolean, key: (r: TruthRow) => string): Map<string, Stats> {
  const out = new Map<string, Stats>();
  for (const r of w.truth.rows()) {
    if (!keep(r)) continue;
    const k = key(r);
    if (!out.has(k)) out.set(k, new Stats());
    out.get(k)!.merge(r.stats);
  }
  return out;
}

const server = (r: TruthRow) => r.dims.reporter === "destination";
const QUANTILES: [string, number][] = [
  ["latency_p50_ms", 0.5],
  ["latency_p90_ms", 0.9],
  ["latency_p95_ms", 0.95],
  ["latency_p99_ms", 0.99],
  ["latency_p999_ms", 0.999],
];

function expectWithin(actual: unknown, exact: number, relative: number, what: string): void {
  const a = Number(actual);
  expect(Math.abs(a - exact), `${what}: ${a} vs exact ${exact}`).toBeLessThanOrEqual(Math.abs(exact) * relative);
}

function expectPercentiles(row: Row, view: string, stats: Stats, what: string): void {
  for (const [field, q] of QUANTILES) expectWithin(row[`${view}.${field}`], stats.quantile(q) / 1000, 0.01, `${what} ${field}`);
}

const byKey = (rows: Row[], ...fields: string[]) => new Map(rows.map((r) => [fields.map((f) => String(r[f])).join(" | "), r]));

describe("the embedded warehouse", () => {
  it("holds several fact rows for some (minute, series), so measures must aggregate", async () => {
    const key = ["minute", ...DIMENSIONS].join(", ");
    const [{ n }] = await query(w, `SELECT COUNT(*) AS n FROM (SELECT ${key} FROM mesh_traffic_minute GROUP BY ${key} HAVING COUNT(*) > 1)`);
    expect(Number(n)).toBeGreaterThan(50);
  });
});

describe("mesh traffic explore", () => {
  it("totals on the server side match the truth", async () => {
    const measures = [
      "requests",
      "errors",
      "request_bytes",
      "response_bytes",
      "error_rate",
      "success_rate",
      "requests_per_second",
      "latency_mean_ms",
      "latency_min_ms",
      "latency_max_ms",
      "mtls_requests",
      "plaintext_requests",
      "mtls_share",
      ...QUANTILES.map(([f]) => f),
    ];
    const [row] = await run({
      explore: "mesh_traffic",
      fields: measures.map((m) => `mesh_traffic.${m}`),
      filters: { "mesh_traffic.traffic_minute": window },
    });
    const all = truth(server, () => "all").get("all")!;
    const mtls = truth(
      (r) => server(r) && r.dims.connection_security_policy === "mutual_tls",
      () => "m",
    ).get("m")!;
    const v = (m: string) => Number(row[`mesh_traffic.${m}`]);
    expect(v("requests")).toBe(all.requests);
    expect(v("errors")).toBe(all.errors);
    expect(v("request_bytes")).toBe(all.requestBytes);
    expect(v("response_bytes")).toBe(all.responseBytes);
    expect(v("mtls_requests")).toBe(mtls.requests);
    expect(v("plaintext_requests")).toBe(all.requests - mtls.requests);
    expectWithin(v("error_rate"), all.errors / all.requests, 1e-12, "error rate");
    expectWithin(v("success_rate"), 1 - all.errors / all.requests, 1e-12, "success rate");
    expectWithin(v("mtls_share"), mtls.requests / all.requests, 1e-12, "mtls share");
    expectWithin(v("requests_per_second"), all.requests / ((w.toMs - w.fromMs) / 1000), 1e-12, "rps");
    expectWithin(v("latency_mean_ms"), all.latencySumUs / all.requests / 1000, 1e-12, "mean");
    expectWithin(v("latency_min_ms"), all.latencyMinUs / 1000, 1e-12, "min");
    expectWithin(v("latency_max_ms"), all.latencyMaxUs / 1000, 1e-12, "max");
    expectPercentiles(row, "mesh_traffic", all, "all");
  });

  it("server errors follow Istio's definition (5xx, gRPC not OK), independent of response flags", async () => {
    const [row] = await run({
      explore: "mesh_traffic",
      fields: ["mesh_traffic.requests", "mesh_traffic.server_errors", "mesh_traffic.server_error_rate"],
      filters: { "mesh_traffic.traffic_minute": window },
    });
    const code = (r: TruthRow) => Number(r.dims.response_code);
    const istio = (r: TruthRow) => (code(r) >= 500 && code(r) <= 599) || !["-", "0"].includes(String(r.dims.grpc_status));
    const all = truth(server, () => "all").get("all")!;
    const failed = truth(
      (r) => server(r) && istio(r),
      () => "e",
    ).get("e")!;
    expect(failed.requests).toBeGreaterThan(0);
    expect(Number(row["mesh_traffic.server_errors"])).toBe(failed.requests);
    expectWithin(row["mesh_traffic.server_error_rate"], failed.requests / all.requests, 1e-12, "server error rate");
  });

  it("per destination service, percentiles merge the sketches of every minute and load", async () => {
    const rows = await run({
      explore: "mesh_traffic",
      fields: ["mesh_traffic.destination_service", "mesh_traffic.requests", "mesh_traffic.errors", ...QUANTILES.map(([f]) => `mesh_traffic.${f}`)],
      filters: { "mesh_traffic.traffic_minute": window },
    });
    const expected = truth(server, (r) => r.dims.destination_service);
    expect(rows.length).toBe(expected.size);
    const got = byKey(rows, "mesh_traffic.destination_service");
    for (const [service, stats] of expected) {
      const row = got.get(service)!;
      expect(row, service).toBeDefined();
      expect(Number(row["mesh_traffic.requests"]), service).toBe(stats.requests);
      expect(Number(row["mesh_traffic.errors"]), service).toBe(stats.errors);
      expectPercentiles(row, "mesh_traffic", stats, service);
    }
  });

  it("per minute and response class, filtered to failures, with per-minute request rates", async () => {
    const rows = await run({
      explore: "mesh_traffic",
      fields: ["mesh_traffic.traffic_minute", "mesh_traffic.response_class", "mesh_traffic.requests", "mesh_traffic.requests_per_second"],
      filters: { "mesh_traffic.traffic_minute": window, "mesh_traffic.response_class": "5xx,no response" },
    });
    const cls = (code: number) => (code === 0 ? "no response" : code >= 500 ? "5xx" : "other");
    const expected = truth(
      (r) => server(r) && cls(r.dims.response_code) !== "other",
      (r) => `${minuteText(r.minuteMs)} | ${cls(r.dims.response_code)}`,
    );
    expect(expected.size).toBeGreaterThan(3);
    const got = byKey(rows, "mesh_traffic.traffic_minute", "mesh_traffic.response_class");
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, stats] of expected) {
      expect(Number(got.get(k)!["mesh_traffic.requests"]), k).toBe(stats.requests);
      expectWithin(got.get(k)!["mesh_traffic.requests_per_second"], stats.requests / 60, 1e-12, k);
    }
  });

  it("on the client side, by workload and response flags, filtered by response code", async () => {
    const rows = await run({
      explore: "mesh_traffic",
      fields: ["mesh_traffic.source_workload", "mesh_traffic.response_flags", "mesh_traffic.requests", "mesh_traffic.errors", "mesh_traffic.latency_p99_ms"],
      filters: { "mesh_traffic.traffic_minute": window, "mesh_traffic.reporter": "source", "mesh_traffic.response_code": ">=500" },
    });
    const expected = truth(
      (r) => r.dims.reporter === "source" && r.dims.response_code >= 500,
      (r) => `${r.dims.source_workload} | ${r.dims.response_flags}`,
    );
    expect(expected.size).toBeGreaterThan(1);
    const got = byKey(rows, "mesh_traffic.source_workload", "mesh_traffic.response_flags");
    expect(got.size).toBe(expected.size);
    for (const [k, stats] of expected) {
      expect(Number(got.get(k)!["mesh_traffic.requests"]), k).toBe(stats.requests);
      expect(Number(got.get(k)!["mesh_traffic.errors"]), k).toBe(stats.errors);
      expectWithin(got.get(k)!["mesh_traffic.latency_p99_ms"], stats.quantile(0.99) / 1000, 0.01, k);
    }
  });

  it("time frames coarser than a minute label and sum the same traffic", async () => {
    const rows = await run({
      explore: "mesh_traffic",
      fields: [
        "mesh_traffic.traffic_hour",
        "mesh_traffic.traffic_date",
        "mesh_traffic.traffic_week",
        "mesh_traffic.traffic_month",
        "mesh_traffic.traffic_hour_of_day",
        "mesh_traffic.requests",
      ],
      filters: { "mesh_traffic.traffic_minute": window },
    });
    // The generated traffic lies within the first minutes of Thursday 2026-01-01 (UTC).
    expect(rows).toEqual([
      {
        "mesh_traffic.traffic_hour": "2026-01-01 00",
        "mesh_traffic.traffic_date": "2026-01-01",
        "mesh_traffic.traffic_week": "2025-12-29",
        "mesh_traffic.traffic_month": "2026-01",
        "mesh_traffic.traffic_hour_of_day": 0,
        "mesh_traffic.requests": w.truth.totals({ reporter: "destination" }).requests,
      },
    ]);
  });

  it("derives the caller's service account from its SPIFFE ID, and excludes plaintext callers by filter", async () => {
    const rows = await run({
      explore: "mesh_traffic",
      fields: ["mesh_traffic.source_principal", "mesh_traffic.source_service_account", "mesh_traffic.requests"],
      filters: { "mesh_traffic.traffic_minute": window, "mesh_traffic.source_principal": "-unknown" },
    });
    const expected = truth(
      (r) => server(r) && r.dims.source_principal !== "unknown",
      (r) => r.dims.source_principal,
    );
    expect(rows.length).toBe(expected.size);
    for (const row of rows) {
      const principal = String(row["mesh_traffic.source_principal"]);
      expect(row["mesh_traffic.source_service_account"], principal).toBe(principal.split("/sa/")[1]);
      expect(Number(row["mesh_traffic.requests"]), principal).toBe(expected.get(principal)!.requests);
    }
  });

  it("shows end-user principals to users holding the grant", async () => {
    const rows = await run({
      explore: "mesh_traffic",
      fields: ["mesh_traffic.end_user_principal", "mesh_traffic.requests"],
      filters: { "mesh_traffic.traffic_minute": window },
    });
    const expected = truth(server, (r) => r.dims.end_user_principal);
    expect(expected.size).toBeGreaterThan(2);
    const got = byKey(rows, "mesh_traffic.end_user_principal");
    for (const [k, stats] of expected) expect(Number(got.get(k)?.["mesh_traffic.requests"]), k).toBe(stats.requests);
  });
});

describe("governed access on the warehouse", () => {
  const namespaces = ["shop", "payments"];
  const user = () => new SqlRenderer(project, { attributes: { meshlook_allowed_namespaces: namespaces.join(",") } });

  it("a user sees exactly the traffic to their namespaces", async () => {
    const rows = await run(
      { explore: "mesh_traffic", fields: ["mesh_traffic.destination_namespace", "mesh_traffic.requests"], filters: { "mesh_traffic.traffic_minute": window } },
      user(),
    );
    const expected = truth(
      (r) => server(r) && namespaces.includes(r.dims.destination_namespace),
      (r) => r.dims.destination_namespace,
    );
    expect(rows.map((r) => r["mesh_traffic.destination_namespace"]).sort()).toEqual([...namespaces].sort());
    for (const r of rows) {
      const ns = String(r["mesh_traffic.destination_namespace"]);
      expect(Number(r["mesh_traffic.requests"]), ns).toBe(expected.get(ns)!.requests);
    }
  });

  it("filtering on another namespace returns nothing, in every explore", async () => {
    for (const explore of ["mesh_traffic", "service_edges", "identity_access"]) {
      const measure = explore === "identity_access" ? "calls" : "requests";
      const rows = await run(
        { explore, fields: [`${explore}.destination_namespace`, `${explore}.${measure}`], filters: { [`${explore}.destination_namespace`]: "search" } },
        user(),
      );
      expect(rows, explore).toEqual([]);
    }
  });
});

describe("service edges explore", () => {
  it("one row per caller -> callee edge with the edge's traffic", async () => {
    const rows = await run({
      explore: "service_edges",
      fields: ["service_edges.edge", "service_edges.requests", "service_edges.errors", "service_edges.latency_p99_ms"],
      filters: { "service_edges.traffic_minute": window },
    });
    const expected = truth(
      server,
      (r) => `${r.dims.source_namespace}/${r.dims.source_canonical_service} -> ${r.dims.destination_namespace}/${r.dims.destination_canonical_service}`,
    );
    const got = byKey(rows, "service_edges.edge");
    expect(got.size).toBe(expected.size);
    for (const [edge, stats] of expected) {
      expect(Number(got.get(edge)?.["service_edges.requests"]), edge).toBe(stats.requests);
      expect(Number(got.get(edge)?.["service_edges.errors"]), edge).toBe(stats.errors);
      expectWithin(got.get(edge)?.["service_edges.latency_p99_ms"], stats.quantile(0.99) / 1000, 0.01, edge);
    }
    const [{ "service_edges.edges": edges }] = await run({ explore: "service_edges", fields: ["service_edges.edges"], filters: { "service_edges.traffic_minute": window } });
    expect(Number(edges)).toBe(expected.size);
  });
});

describe("identity access explore", () => {
  const key = (r: TruthRow) => `${r.dims.source_principal} | ${r.dims.destination_service} | ${r.dims.connection_security_policy}`;

  async function whoCallsWhom(observed: string, keep: (r: TruthRow) => boolean) {
    const rows = await run({
      explore: "identity_access",
      fields: [
        "identity_access.source_principal",
        "identity_access.destination_service",
        "identity_access.connection_security_policy",
        "identity_access.calls",
        "identity_access.errors",
        "identity_access.first_seen_at",
        "identity_access.last_seen_at",
      ],
      filters: { "identity_access.observed": observed },
    });
    const got = byKey(rows, "identity_access.source_principal", "identity_access.destination_service", "identity_access.connection_security_policy");
    const seen = new Map<string, { first: number; last: number }>();
    for (const r of w.truth.rows()) {
      if (!server(r) || !keep(r)) continue;
      const s = seen.get(key(r)) ?? { first: Infinity, last: -Infinity };
      seen.set(key(r), { first: Math.min(s.first, r.minuteMs), last: Math.max(s.last, r.minuteMs) });
    }
    const expected = truth((r) => server(r) && keep(r), key);
    expect(got.size).toBe(expected.size);
    for (const [k, stats] of expected) {
      const row = got.get(k)!;
      expect(row, k).toBeDefined();
      expect(Number(row["identity_access.calls"]), k).toBe(stats.requests);
      expect(Number(row["identity_access.errors"]), k).toBe(stats.errors);
      expect(row["identity_access.first_seen_at"], k).toBe(minuteText(seen.get(k)!.first));
      expect(row["identity_access.last_seen_at"], k).toBe(minuteText(seen.get(k)!.last));
    }
  }

  it("who calls whom, with first and last seen, over the whole window", async () => {
    await whoCallsWhom(window, () => true);
  });

  it("the observed filter bounds first and last seen", async () => {
    const from = w.fromMs + 60_000;
    const to = w.fromMs + 180_000;
    await whoCallsWhom(`${minuteText(from)} to ${minuteText(to)}`, (r) => r.minuteMs >= from && r.minuteMs < to);
  });

  it("counts caller identities, plaintext callers and the mTLS share", async () => {
    const [row] = await run({
      explore: "identity_access",
      fields: ["identity_access.callers", "identity_access.plaintext_callers", "identity_access.mtls_share"],
      filters: { "identity_access.observed": window },
    });
    const rows = w.truth.rows().filter(server);
    const principals = new Set(rows.map((r) => r.dims.source_principal));
    const plaintext = new Set(rows.filter((r) => r.dims.connection_security_policy !== "mutual_tls").map((r) => `${r.dims.source_namespace}/${r.dims.source_workload}`));
    const total = rows.reduce((n, r) => n + r.stats.requests, 0);
    const mtls = rows.filter((r) => r.dims.connection_security_policy === "mutual_tls").reduce((n, r) => n + r.stats.requests, 0);
    expect(plaintext.size).toBeGreaterThan(0);
    expect(Number(row["identity_access.callers"])).toBe(principals.size);
    expect(Number(row["identity_access.plaintext_callers"])).toBe(plaintext.size);
    expectWithin(row["identity_access.mtls_share"], mtls / total, 1e-12, "mtls share");
  });
});

describe("dashboards on the warehouse", () => {
  it("every tile returns rows for the loaded window", async () => {
    // The outlier tile needs hours of baseline and a planted incident: test/looker/outliers.test.ts runs it.
    const tiles = tileQueries(project, { Time: window, Observed: window }).filter((t) => t.query.explore !== "mesh_outlier");
    for (const t of tiles) {
      const rows = await run(t.query);
      expect(rows.length, `${t.dashboard}: ${t.tile}`).toBeGreaterThan(0);
    }
  });

  it("the golden-signals Requests tile shows the server-side total", async () => {
    const tile = tileQueries(project, { Time: window }).find((t) => t.dashboard === "mesh_golden_signals" && t.tile === "Requests")!;
    const [row] = await run(tile.query);
    expect(Number(row["mesh_traffic.requests"])).toBe(w.truth.totals({ reporter: "destination" }).requests);
  });
});

describe("LookML data tests on the warehouse", () => {
  // The tests filter on relative dates ("1 days"); the generated traffic sits at a fixed date, so the
  // time filters are pointed at its window and every other filter is kept as written.
  const timeFilter = (field: string) => {
    const f = privilegedRenderer(project).field(field);
    return f.type === "time" || f.type === "date_time" || f.type === "date";
  };

  it("every assertion holds on every row", async () => {
    for (const [name, test] of project.tests) {
      const { query: q, asserts } = dataTestQuery(test);
      const filters = Object.fromEntries(Object.entries(q.filters ?? {}).map(([f, v]) => [f, timeFilter(f) ? window : v]));
      const rows = await run({ ...q, filters });
      expect(rows.length, name).toBeGreaterThan(0);
      for (const [assertName, expression] of asserts) {
        for (const row of rows) expect(evaluate(expression, row), `${name}.${assertName} on ${JSON.stringify(row)}`).toBe(true);
      }
    }
  });

  it("an assertion fails on a row that breaks it", () => {
    const { asserts } = dataTestQuery(project.tests.get("latency_percentiles_are_ordered")!);
    const row = {
      "mesh_traffic.latency_p50_ms": 12,
      "mesh_traffic.latency_p90_ms": 10,
      "mesh_traffic.latency_p95_ms": 13,
      "mesh_traffic.latency_p99_ms": 14,
      "mesh_traffic.latency_p999_ms": 15,
    };
    expect(evaluate(asserts[0][1], row)).toBe(false);
    expect(evaluate(asserts[0][1], { ...row, "mesh_traffic.latency_p90_ms": 12.5 })).toBe(true);
  });
});

describe("sidecar loss explore", () => {
  const sum = (losses: typeof w.losses) => ({
    dropped_requests: losses.reduce((n, l) => n + l.droppedRequests, 0),
    dropped_windows: losses.reduce((n, l) => n + l.droppedWindows, 0),
    overflow_keys: losses.reduce((n, l) => n + l.overflowKeys, 0),
    reporting_summaries: losses.length,
  });
  const MEASURES = ["dropped_requests", "dropped_windows", "overflow_keys", "reporting_summaries"] as const;
  const measuresOf = (row: Row) => Object.fromEntries(MEASURES.map((m) => [m, Number(row[`mesh_sidecar_loss.${m}`])]));

  it("per minute and namespace, the loss every loaded summary reported", async () => {
    expect(w.losses.length).toBeGreaterThan(4);
    const rows = await run({
      explore: "mesh_sidecar_loss",
      fields: ["mesh_sidecar_loss.reported_minute", "mesh_sidecar_loss.namespace", ...MEASURES.map((m) => `mesh_sidecar_loss.${m}`)],
      filters: { "mesh_sidecar_loss.reported_minute": window },
    });
    const expected = new Map<string, typeof w.losses>();
    for (const l of w.losses) {
      const k = `${minuteText(l.minuteMs)} | ${l.namespace}`;
      expected.set(k, [...(expected.get(k) ?? []), l]);
    }
    const got = byKey(rows, "mesh_sidecar_loss.reported_minute", "mesh_sidecar_loss.namespace");
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [k, losses] of expected) expect(measuresOf(got.get(k)!), k).toEqual(sum(losses));
    const [all] = await run({ explore: "mesh_sidecar_loss", fields: ["mesh_sidecar_loss.reporting_sidecars"], filters: { "mesh_sidecar_loss.reported_minute": window } });
    expect(Number(all["mesh_sidecar_loss.reporting_sidecars"])).toBe(2);
  });

  it("a user sees only the loss of sidecars in their namespaces", async () => {
    const user = new SqlRenderer(project, { attributes: { meshlook_allowed_namespaces: "shop,payments" } });
    const q = { explore: "mesh_sidecar_loss", fields: ["mesh_sidecar_loss.namespace", ...MEASURES.map((m) => `mesh_sidecar_loss.${m}`)] };
    const rows = await run({ ...q, filters: { "mesh_sidecar_loss.reported_minute": window } }, user);
    expect(rows.map((r) => r["mesh_sidecar_loss.namespace"])).toEqual(["shop"]);
    expect(measuresOf(rows[0])).toEqual(sum(w.losses.filter((l) => l.namespace === "shop")));
    expect(await run({ ...q, filters: { "mesh_sidecar_loss.namespace": "search" } }, user)).toEqual([]);
  });

  it("the golden-signals tile shows every lost request in the window, per minute", async () => {
    const tile = tileQueries(project, { Time: window }).find((t) => t.dashboard === "mesh_golden_signals" && t.tile === "Requests lost in sidecars")!;
    const rows = await run(tile.query);
    expect(rows.reduce((n, r) => n + Number(r["mesh_sidecar_loss.dropped_requests"]), 0)).toBe(sum(w.losses).dropped_requests);
    expect(rows.length).toBe(new Set(w.losses.map((l) => l.minuteMs)).size);
  });
});

describe("operator explores", () => {
  it("the load ledger accounts for every request loaded", async () => {
    const [row] = await run({
      explore: "mesh_loads",
      fields: ["mesh_loads.summaries", "mesh_loads.producers", "mesh_loads.requests", "mesh_loads.series"],
    });
    const [facts] = await query(w, "SELECT COUNT(DISTINCT minute) AS minutes FROM mesh_traffic_minute");
    expect(Number(row["mesh_loads.requests"])).toBe(w.truth.observations);
    expect(Number(row["mesh_loads.producers"])).toBe(2);
    // One summary per producer and minute; both producers see traffic in every minute.
    expect(Number(row["mesh_loads.summaries"])).toBe(2 * Number(facts.minutes));
  });

  it("the warehouse reports the latest schema migration", async () => {
    const [row] = await run({ explore: "schema_migrations", fields: ["schema_migrations.latest_version"] });
    expect(Number(row["schema_migrations.latest_version"])).toBe(Math.max(...MIGRATIONS.map((m) => m.version)));
  });
});

describe("caching datagroup", () => {
  it("its trigger is valid Snowflake SQL that changes when the collector loads", async () => {
    const trigger = substituteConstants(project.model.datagroup.meshlook_load.sql_trigger.trim(), project.constants);
    parseSnowflake(trigger);
    const read = async () => {
      const [row] = await query(w, snowflakeToDuckDB(trigger));
      return Object.values(row)[0] as Date;
    };
    const before = await read();
    const [{ latest }] = await query(w, "SELECT MAX(loaded_at) AS latest FROM mesh_load_ledger");
    expect(before).toEqual(latest);
    // A late summary for one series: the trigger value must move so Looker drops cached results.
    const [sample] = w.truth.rows();
    const late = new SeriesStats();
    late.record(1000, 10, 10, false);
    await w.sink.load([minuteSummary("looker-check-late", 1, sample.minuteMs, [{ dims: sample.dims, stats: late }])]);
    const after = await read();
    expect(after.getTime()).toBeGreaterThan(before.getTime());
  });
});
