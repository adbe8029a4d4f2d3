// The read API answers the LookML project's questions with the same numbers: the dashboards' tile queries
// (and a few explore queries) are rendered as Looker would send them, run on the LookML test warehouse
// (test/looker, the `npm run looker:check` machinery), and compared with the API's answer to the request the
// dashboard at /ui makes for the same tile (ui/boards.js). Counts equal exactly; derived rates and
// percentiles to floating-point noise, since both merge the very same sketches.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BoardRollup } from "../../collector/read/board-rollup.ts";
import { boardRequests } from "../../ui/boards.js";
import { privilegedRenderer, tileQueries } from "../looker/checks.ts";
import { parseSnowflake, snowflakeToDuckDB } from "../looker/dialect.ts";
import { loadProject, type Project } from "../looker/project.ts";
import { SqlRenderer, type ExploreQuery } from "../looker/render.ts";
import { loadWarehouse, query, type Warehouse } from "../looker/warehouse.ts";
import { TOKENS, qs, readApi, type ReadApi } from "./helpers.ts";

type Row = Record<string, unknown>;
let w: Warehouse;
let project: Project;
let api: ReadApi;
let window: string;

const minuteText = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
const HOUR = 3_600_000;

beforeAll(async () => {
  w = await loadWarehouse({ requests: 12_000, requestsPerSecond: 50 });
  project = await loadProject({ DATABASE: w.database, SCHEMA: w.schema });
  window = `${minuteText(w.fromMs)} to ${minuteText(w.toMs)}`;
}, 120_000);
afterAll(async () => {
  await w?.close();
});

async function looker(q: ExploreQuery, renderer: SqlRenderer = privilegedRenderer(project)): Promise<Row[]> {
  const sql = renderer.render(q);
  parseSnowflake(sql);
  return query(w, snowflakeToDuckDB(sql));
}
const tile = (dashboard: string, title: string, filters: Record<string, string> = {}) => {
  const t = tileQueries(project, { Time: window, ...filters }).find((x) => x.dashboard === dashboard && x.tile === title);
  if (!t) throw new Error(`no tile ${title} in ${dashboard}`);
  return t.query;
};
const range = () => ({ from: new Date(w.fromMs).toISOString(), to: new Date(w.toMs).toISOString() });
async function get(path: string, params: Record<string, string | string[]>, token?: string) {
  const res = await api.get(`/api/v1${path}?${qs(params)}`, token);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

/** `got` equals `want`: exactly for integers, to 1e-9 relative for the rest (both null alike). */
function same(got: unknown, want: unknown, what: string) {
  if (want === null || want === undefined) return expect(got ?? null, what).toBeNull();
  const g = Number(got);
  const x = Number(want);
  if (Number.isInteger(x) && Number.isInteger(g)) return expect(g, what).toBe(x);
  expect(Math.abs(g - x), `${what}: ${g} vs ${x}`).toBeLessThanOrEqual(Math.abs(x) * 1e-9);
}

/** Compares rows keyed alike; `fields` maps a LookML field (without view) to the API's column. */
function compare(lookerRows: Row[], apiRows: Row[], view: string, key: { looker: (r: Row) => string; api: (r: Row) => string }, fields: Record<string, string>) {
  const byKey = new Map(apiRows.map((r) => [key.api(r), r]));
  expect([...byKey.keys()].sort()).toEqual(lookerRows.map(key.looker).sort());
  for (const lr of lookerRows) {
    const k = key.looker(lr);
    for (const [lf, af] of Object.entries(fields)) same(byKey.get(k)![af], lr[`${view}.${lf}`], `${k} ${lf}`);
  }
}

/** The dashboard's own request for a tile (ui/boards.js), with the test warehouse's window. */
function boardUrl(board: string, tileName: string, state: Record<string, string> = {}): string {
  const urls = boardRequests({ board, range: "15m", reporter: "destination", namespace: "", service: "", caller: "", ...state }, w.toMs) as Record<string, string>;
  const u = new URL(urls[tileName], "http://x");
  u.searchParams.set("from", new Date(w.fromMs).toISOString());
  u.searchParams.set("to", new Date(w.toMs).toISOString());
  return `${u.pathname}?${u.searchParams}`;
}
async function board(board: string, tileName: string, state: Record<string, string> = {}, token = TOKENS.operator) {
  const res = await api.get(boardUrl(board, tileName, state), token);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.rows as Row[];
}

const G = "mesh_golden_signals";
const one = () => "all";

// Every question twice: first from the minute rows alone, then with the read pre-aggregates
// (mesh_board_hour and mesh_board_minute, collector/read/board-rollup.ts) built, which the API then reads
// for whole hours, and per-minute series for every hour they match.
for (const preaggregated of [false, true]) {
  describe(preaggregated ? "with the read pre-aggregate" : "from minute rows", () => {
    beforeAll(async () => {
      if (preaggregated) {
        const rollup = new BoardRollup(w.sink);
        const report = await rollup.run();
        rollup.close();
        expect(report.rebuilt).toBeGreaterThan(0);
      }
      api = await readApi(w.sink, w.toMs);
    }, 120_000);
    afterAll(async () => {
      await api?.close();
    });

    describe("golden-signals tiles: the dashboard's API requests answer as the LookML tiles", () => {
      it("single values: requests, requests per second, error rate, p99", async () => {
        const [totals] = await board("golden", "totals");
        for (const [title, field, column] of [
          ["Requests", "requests", "requests"],
          ["Requests per second", "requests_per_second", "requests_per_second"],
          ["Error rate", "error_rate", "error_rate"],
          ["p99 latency (ms)", "latency_p99_ms", "latency_p99_ms"],
        ]) {
          const [row] = await looker(tile(G, title));
          same(totals[column], row[`mesh_traffic.${field}`], title);
        }
        expect(totals.requests).toBe(w.truth.totals({ reporter: "destination" }).requests);
      });

      it("traffic and errors per minute; latency percentiles per minute", async () => {
        const key = { looker: (r: Row) => String(r["mesh_traffic.traffic_minute"]), api: (r: Row) => minuteText(r.t as number) };
        compare(await looker(tile(G, "Traffic and errors per minute")), await board("golden", "traffic"), "mesh_traffic", key, { requests: "requests", errors: "errors" });
        compare(await looker(tile(G, "Latency percentiles per minute (ms)")), await board("golden", "latency"), "mesh_traffic", key, {
          latency_p50_ms: "latency_p50_ms",
          latency_p90_ms: "latency_p90_ms",
          latency_p99_ms: "latency_p99_ms",
          latency_p999_ms: "latency_p999_ms",
        });
      });

      it("per-minute series come from the per-minute pre-aggregate when it is built", async () => {
        for (const tileName of ["traffic", "classes", "latency"]) {
          const res = await api.get(boardUrl("golden", tileName));
          const hours = new Set(res.body.rows.map((r: Row) => Math.floor((r.t as number) / HOUR))).size;
          expect(res.body.hourly_hours, tileName).toBe(preaggregated ? hours : 0);
        }
      });

      it("responses by class per minute", async () => {
        compare(
          await looker(tile(G, "Responses by class per minute")),
          await board("golden", "classes"),
          "mesh_traffic",
          { looker: (r) => `${r["mesh_traffic.traffic_minute"]} ${r["mesh_traffic.response_class"]}`, api: (r) => `${minuteText(r.t as number)} ${r.response_class}` },
          { requests: "requests" },
        );
      });

      it("services, callers by identity, failures by response flags", async () => {
        const services = await looker(tile(G, "Services"));
        expect(services.length).toBeGreaterThan(5);
        compare(
          services,
          await board("golden", "services"),
          "mesh_traffic",
          { looker: (r) => String(r["mesh_traffic.destination_service"]), api: (r) => String(r.destination_service) },
          {
            requests: "requests",
            requests_per_second: "requests_per_second",
            error_rate: "error_rate",
            latency_p50_ms: "latency_p50_ms",
            latency_p99_ms: "latency_p99_ms",
            latency_p999_ms: "latency_p999_ms",
            response_bytes: "response_bytes",
          },
        );
        const callerKey = (p: string) => (r: Row) => ["source_principal", "source_namespace", "source_workload"].map((f) => r[`${p}${f}`]).join(" | ");
        compare(
          await looker(tile(G, "Callers by identity")),
          await board("golden", "callers"),
          "mesh_traffic",
          { looker: callerKey("mesh_traffic."), api: callerKey("") },
          {
            requests: "requests",
            error_rate: "error_rate",
            latency_p50_ms: "latency_p50_ms",
            latency_p99_ms: "latency_p99_ms",
          },
        );
        const failKey = (p: string) => (r: Row) => ["response_flags", "response_code", "grpc_status", "destination_service"].map((f) => r[`${p}${f}`]).join(" | ");
        compare(
          await looker(tile(G, "Failures by response flags")),
          (await board("golden", "failures")).filter((r) => (r.errors as number) > 0),
          "mesh_traffic",
          { looker: failKey("mesh_traffic."), api: failKey("") },
          { requests: "requests", errors: "errors" },
        );
      });

      it("requests lost in sidecars per minute", async () => {
        compare(
          await looker(tile(G, "Requests lost in sidecars")),
          await board("golden", "loss"),
          "mesh_sidecar_loss",
          { looker: (r) => String(r["mesh_sidecar_loss.reported_minute"]), api: (r) => minuteText(r.t as number) },
          { dropped_requests: "dropped_requests", dropped_windows: "dropped_windows" },
        );
      });

      it("with the dashboard's namespace and service filters and the client-side reporter", async () => {
        const filters = { Reporter: "source", "Destination namespace": "shop" };
        const state = { reporter: "source", namespace: "shop" };
        const services = await looker(tile(G, "Services", filters));
        expect(services.length).toBeGreaterThan(1);
        compare(
          services,
          await board("golden", "services", state),
          "mesh_traffic",
          { looker: (r) => String(r["mesh_traffic.destination_service"]), api: (r) => String(r.destination_service) },
          {
            requests: "requests",
            error_rate: "error_rate",
            latency_p99_ms: "latency_p99_ms",
          },
        );
        const service = String(services[0]["mesh_traffic.destination_service"]);
        const [t] = await board("golden", "totals", { ...state, service });
        const [l] = await looker(tile(G, "p99 latency (ms)", { ...filters, "Destination service": service }));
        same(t.latency_p99_ms, l["mesh_traffic.latency_p99_ms"], service);
      });
    });

    describe("other questions", () => {
      it("service edges: caller -> callee with rate, errors and p99", async () => {
        const rows = await looker({
          explore: "service_edges",
          fields: [
            "service_edges.source_node",
            "service_edges.destination_node",
            "service_edges.requests",
            "service_edges.errors",
            "service_edges.requests_per_second",
            "service_edges.latency_p99_ms",
          ],
          filters: { "service_edges.traffic_minute": window },
        });
        const key = (p: string) => (r: Row) => `${r[`${p}source_node`]} -> ${r[`${p}destination_node`]}`;
        compare(
          rows,
          (await get("/edges", range())).rows,
          "service_edges",
          { looker: key("service_edges."), api: key("") },
          {
            requests: "requests",
            errors: "errors",
            requests_per_second: "requests_per_second",
            latency_p99_ms: "latency_p99_ms",
          },
        );
      });

      /** The "Who calls whom" tile with the dashboard's filters against the identity board's request; returns the tile's rows. */
      async function whoCallsWhom(filters: Record<string, string>, state: Record<string, string>): Promise<Row[]> {
        const rows = await looker(tile("identity_access", "Who calls whom", { Observed: window, ...filters }));
        const key = (p: string) => (r: Row) =>
          ["source_principal", "source_namespace", "source_workload", "destination_service", "connection_security_policy"].map((f) => r[`${p}${f}`]).join(" | ");
        // The API keeps the callee's principal and namespace apart; the tile does not group by them.
        const merged = new Map<string, Row>();
        for (const r of await board("identity", "access", state)) {
          const k = key("")(r);
          const m = merged.get(k);
          if (!m) merged.set(k, { ...r, first_seen: minuteText(r.first_seen as number), last_seen: minuteText(r.last_seen as number) });
          else {
            m.requests = (m.requests as number) + (r.requests as number);
            m.errors = (m.errors as number) + (r.errors as number);
          }
        }
        const byKey = new Map([...merged.values()].map((r) => [key("")(r), r]));
        expect([...byKey.keys()].sort()).toEqual(rows.map(key("identity_access.")).sort());
        for (const r of rows) {
          const a = byKey.get(key("identity_access.")(r))!;
          expect([a.requests, a.errors, a.first_seen, a.last_seen]).toEqual([
            Number(r["identity_access.calls"]),
            Number(r["identity_access.errors"]),
            r["identity_access.first_seen_at"],
            r["identity_access.last_seen_at"],
          ]);
        }
        return rows;
      }

      it("identity access: who calls whom, first and last seen", async () => {
        const all = await whoCallsWhom({}, {});
        // The dashboard's "Caller namespace" filter: the namespace of the busiest caller.
        const ns = String(all.sort((x, y) => Number(y["identity_access.calls"]) - Number(x["identity_access.calls"]))[0]["identity_access.source_namespace"]);
        const some = await whoCallsWhom({ "Caller namespace": ns }, { callerNamespace: ns });
        expect(some.length).toBeGreaterThan(0);
        expect(some.length).toBeLessThan(all.length);
        const mtls = await looker(tile("identity_access", "mTLS share per hour", { Observed: window, "Caller namespace": ns }));
        const hourly = await board("identity", "mtls_hourly", { callerNamespace: ns });
        expect(hourly.length).toBe(mtls.length);
        expect(mtls.length).toBeGreaterThan(0);
        mtls.forEach((r, i) => {
          same((hourly[i].requests as number) - (hourly[i].mtls_requests as number), r["mesh_traffic_hourly.plaintext_requests"], "plaintext requests");
          same(hourly[i].mtls_share, r["mesh_traffic_hourly.mtls_share"], "mTLS share");
        });
      });

      it("a whole hour is read from the pre-aggregate when it is built, and answers as the minute rows do", async () => {
        const hour = Math.floor(w.fromMs / HOUR) * HOUR;
        const params = { from: new Date(hour).toISOString(), to: new Date(hour + HOUR).toISOString(), group_by: "destination_service,response_code" };
        const body = await get("/traffic", params);
        expect(body.hourly_hours).toBe(preaggregated ? 1 : 0);
        const rows = await looker({
          explore: "mesh_traffic",
          fields: [
            "mesh_traffic.destination_service",
            "mesh_traffic.response_code",
            "mesh_traffic.requests",
            "mesh_traffic.latency_p50_ms",
            "mesh_traffic.latency_p99_ms",
            "mesh_traffic.latency_p999_ms",
          ],
          filters: { "mesh_traffic.traffic_minute": `${minuteText(hour)} to ${minuteText(hour + HOUR)}` },
        });
        const key = (p: string) => (r: Row) => `${r[`${p}destination_service`]} ${r[`${p}response_code`]}`;
        compare(
          rows,
          body.rows,
          "mesh_traffic",
          { looker: key("mesh_traffic."), api: key("") },
          {
            requests: "requests",
            latency_p50_ms: "latency_p50_ms",
            latency_p99_ms: "latency_p99_ms",
            latency_p999_ms: "latency_p999_ms",
          },
        );
      });

      it("a namespace-scoped reader token sees what the Looker access filter lets the same namespaces see", async () => {
        const user = new SqlRenderer(project, { attributes: { meshlook_allowed_namespaces: "shop,payments" } });
        const rows = await looker(
          {
            explore: "mesh_traffic",
            fields: ["mesh_traffic.destination_service", "mesh_traffic.requests", "mesh_traffic.latency_p99_ms"],
            filters: { "mesh_traffic.traffic_minute": window },
          },
          user,
        );
        const body = await get("/traffic", { ...range(), group_by: "destination_service" }, TOKENS.shop);
        compare(
          rows,
          body.rows,
          "mesh_traffic",
          { looker: (r) => String(r["mesh_traffic.destination_service"]), api: (r) => String(r.destination_service) },
          { requests: "requests", latency_p99_ms: "latency_p99_ms" },
        );
        const loss = await looker(
          {
            explore: "mesh_sidecar_loss",
            fields: ["mesh_sidecar_loss.dropped_requests", "mesh_sidecar_loss.overflow_keys"],
            filters: { "mesh_sidecar_loss.reported_minute": window },
          },
          user,
        );
        const [apiLoss] = (await get("/sidecar-loss", { ...range(), interval: "none" }, TOKENS.shop)).rows;
        compare(loss, [apiLoss], "mesh_sidecar_loss", { looker: one, api: one }, { dropped_requests: "dropped_requests", overflow_keys: "overflow_keys" });
      });
    });
  });
}
