// The read API's contract: reader tokens and their scopes, validation against the schema, bound values.
import { renameSync, writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseReaderTokens } from "../../collector/read/access.ts";
import { countersStatement, parseTraffic, sketchesStatement, ReadError } from "../../collector/read/query.ts";
import type { ReadSource } from "../../collector/read/warehouse.ts";
import { DEFAULT_SCALE, SeriesStats } from "../../shared/node.ts";
import { DIMENSIONS } from "../../shared/schema.ts";
import type { SeriesDims } from "../../sim/traffic/series.ts";
import { loadWarehouse, minuteSummary, query, type Warehouse } from "../looker/warehouse.ts";
import { TOKENS, qs, readApi, type ReadApi } from "./helpers.ts";

let w: Warehouse;
let api: ReadApi;
const range = () => ({ from: new Date(w.fromMs).toISOString(), to: new Date(w.toMs).toISOString() });

beforeAll(async () => {
  w = await loadWarehouse({ requests: 6_000, requestsPerSecond: 50, seed: "read-api" });
  api = await readApi(w.sink, w.toMs);
}, 120_000);
afterAll(async () => {
  await api?.close();
  await w?.close();
});

const ENDPOINTS = ["/traffic", "/edges", "/identity-access", "/sidecar-loss", "/values?dimension=destination_namespace", "/loads", "/freshness", "/whoami", "/schema"];

describe("reader tokens", () => {
  it("a missing, malformed or wrong token gets 401 and no data, on every endpoint", async () => {
    for (const path of ENDPOINTS) {
      for (const header of [undefined, "operator-token-0123456789", "Bearer nope-0123456789abcdef", `Basic ${TOKENS.operator}`]) {
        const res = await api.app.inject({ url: `/api/v1${path}`, headers: header === undefined ? {} : { authorization: header } });
        expect(res.statusCode, `${path} ${header}`).toBe(401);
        expect(res.json()).toEqual({ error: "unauthorized", message: "missing or unknown reader token" });
        expect(res.headers["www-authenticate"]).toMatch(/^Bearer/);
      }
    }
  });

  it("a namespace-scoped token never sees another namespace, whatever it asks", async () => {
    const all = (await api.get(`/api/v1/values?${qs({ ...range(), dimension: "destination_namespace" })}`)).body.values;
    expect(all.length).toBeGreaterThan(3);
    const scoped = ["payments", "shop"];
    const t = TOKENS.shop;
    expect((await api.get(`/api/v1/values?${qs({ ...range(), dimension: "destination_namespace" })}`, t)).body.values).toEqual(scoped);
    const traffic = await api.get(`/api/v1/traffic?${qs({ ...range(), group_by: "destination_namespace,destination_service" })}`, t);
    expect(new Set(traffic.body.rows.map((r: any) => r.destination_namespace))).toEqual(new Set(scoped));
    // Asking for another namespace by name gives nothing rather than its traffic.
    const other = all.find((n: string) => !scoped.includes(n));
    for (const path of ["/traffic", "/edges", "/identity-access"]) {
      const res = await api.get(`/api/v1${path}?${qs({ ...range(), destination_namespace: other })}`, t);
      expect(res.status).toBe(200);
      expect(res.body.rows, path).toEqual([]);
    }
    for (const r of (await api.get(`/api/v1/edges?${qs(range())}`, t)).body.rows) expect(scoped).toContain(r.destination_node.split("/")[0]);
    for (const r of (await api.get(`/api/v1/identity-access?${qs(range())}`, t)).body.rows) expect(scoped).toContain(r.destination_namespace);
    // Sidecar loss follows the sidecar's own namespace (the LookML access filter on mesh_sidecar_loss.namespace).
    const loss = (await api.get(`/api/v1/sidecar-loss?${qs({ ...range(), interval: "none" })}`, t)).body.rows[0];
    expect(loss.dropped_requests).toBe(w.losses.filter((l) => l.namespace === "shop").reduce((n, l) => n + l.droppedRequests, 0));
    expect((await api.get(`/api/v1/whoami`, t)).body).toEqual({ namespaces: ["shop", "payments"], end_users: false, operator: false });
  });

  it("loads are for operator tokens only; end-user principals need the end_users grant", async () => {
    expect((await api.get(`/api/v1/loads?${qs(range())}`, TOKENS.shop)).status).toBe(403);
    const loads = await api.get(`/api/v1/loads?${qs({ from: "2026-01-01", to: "2026-01-02" })}`);
    expect(loads.status).toBe(200);
    for (const params of [{ group_by: "end_user_principal" }, { end_user_principal: "x" }] as Record<string, string>[]) {
      const res = await api.get(`/api/v1/traffic?${qs({ ...range(), ...params })}`);
      expect(res.status).toBe(403);
      expect(res.body.error).toBe("forbidden_field");
    }
    expect((await api.get(`/api/v1/values?${qs({ ...range(), dimension: "end_user_principal" })}`)).status).toBe(403);
    expect((await api.get(`/api/v1/schema`)).body.dimensions).not.toContain("end_user_principal");
    const people = await api.get(`/api/v1/traffic?${qs({ ...range(), group_by: "end_user_principal" })}`, TOKENS.people);
    expect(people.status).toBe(200);
    expect(people.body.rows.some((r: any) => r.end_user_principal !== "unknown")).toBe(true);
  });

  it("rotates: a token added to the file works, a removed one stops working, without a restart", async () => {
    const fresh = "rotated-in-token-0123456789";
    // Replaced whole, as a secret mount swaps it: a poll never sees a half-written file.
    const replace = (text: string) => {
      writeFileSync(`${api.file}.new`, text);
      renameSync(`${api.file}.new`, api.file);
    };
    api.tokens.watch(20);
    replace(`${fresh} %\n${TOKENS.shop} shop,payments\n${TOKENS.people} % end_users\n`);
    await expect.poll(async () => (await api.get("/api/v1/whoami", fresh)).status, { timeout: 20_000 }).toBe(200);
    expect((await api.get("/api/v1/whoami", TOKENS.operator)).status).toBe(401);
    replace("not a valid line\n"); // a broken file keeps the previous tokens
    await new Promise((r) => setTimeout(r, 200));
    expect((await api.get("/api/v1/whoami", fresh)).status).toBe(200);
    replace(`${TOKENS.operator} %\n${TOKENS.shop} shop,payments\n${TOKENS.people} % end_users\n`);
    await expect.poll(async () => (await api.get("/api/v1/whoami", TOKENS.operator)).status, { timeout: 20_000 }).toBe(200);
    api.tokens.unwatch();
  });

  it("the token file format is checked line by line", () => {
    expect(parseReaderTokens("# c\n\nabcdefghijklmnopq shop,team-a\nbcdefghijklmnopqr % end_users\n")).toEqual([
      { token: "abcdefghijklmnopq", scope: { namespaces: ["shop", "team-a"], endUsers: false } },
      { token: "bcdefghijklmnopqr", scope: { namespaces: ["%"], endUsers: true } },
    ]);
    expect(() => parseReaderTokens("abcdefghijklmnopq\n")).toThrow(/line 1.*namespaces/);
    expect(() => parseReaderTokens("short shop\n")).toThrow(/shorter than 16/);
    expect(() => parseReaderTokens("abcdefghijklmnopq Shop'--\n")).toThrow(/not a Kubernetes name/);
    expect(() => parseReaderTokens("abcdefghijklmnopq shop admin\n")).toThrow(/only grant is end_users/);
  });
});

describe("questions are validated against the schema", () => {
  it.each([
    ["/traffic?group_by=nope", 400, "bad_parameter"],
    ["/traffic?group_by=requests", 400, "bad_parameter"],
    ["/traffic?not_a_dimension=1", 400, "unknown_parameter"],
    ["/traffic?interval=day", 400, "bad_parameter"],
    ["/traffic?reporter=both", 400, "bad_parameter"],
    ["/traffic?from=yesterday", 400, "bad_parameter"],
    ["/traffic?from=2026-01-01T00:00:00", 400, "bad_parameter"],
    ["/traffic?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "bad_range"],
    ["/traffic?from=2025-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", 400, "bad_range"],
    ["/traffic?limit=0", 400, "bad_parameter"],
    ["/traffic?response_code=abc", 400, "bad_parameter"],
    ["/values?dimension=minute", 400, "bad_parameter"],
    ["/sidecar-loss?interval=week", 400, "bad_parameter"],
  ])("%s → %i %s", async (url, status, error) => {
    const res = await api.get(`/api/v1${url}`);
    expect(res.status).toBe(status);
    expect(res.body.error).toBe(error);
    expect(res.body.message).toEqual(expect.any(String));
  });

  it("per-minute percentiles are bounded by the sketches they merge, not by their span", async () => {
    const day = { from: new Date(w.toMs - 86_400_000).toISOString(), to: new Date(w.toMs).toISOString() };
    const url = `/api/v1/traffic?${qs({ ...day, interval: "minute" })}`;
    const minutes = (await api.get(url)).body.rows;
    // A day of minutes is answered when its sketches are few…
    expect(minutes.length).toBe((w.toMs - w.fromMs) / 60_000);
    for (const r of minutes) expect(r.latency_p99_ms).toEqual(expect.any(Number));
    const rows = (await query(w, "SELECT COUNT(*) AS n FROM mesh_traffic_minute WHERE reporter = 'destination'"))[0].n as number;
    // …and refused, saying how many, past the bound; per hour the same range stays answered.
    const small = await readApi(w.sink, w.toMs, undefined, rows - 1);
    try {
      const res = await small.get(url);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: "too_many_sketches", message: expect.stringContaining(`would merge ${rows} minute sketches`) });
      expect((await small.get(`/api/v1/traffic?${qs({ ...day, interval: "hour" })}`)).status).toBe(200);
    } finally {
      await small.close();
    }
    const exact = await readApi(w.sink, w.toMs, undefined, rows);
    try {
      expect((await exact.get(url)).status).toBe(200);
    } finally {
      await exact.close();
    }
  });

  it("unknown endpoints are 404 in the JSON contract, not data", async () => {
    expect((await api.get("/api/v1/sql?q=SELECT%201")).status).toBe(404);
  });
});

describe("SQL-hostile values are bound, never interpolated", () => {
  const HOSTILE = ["x' OR '1'='1", "'; DROP TABLE mesh_traffic_minute; --", 'shop") OR (1=1', "%", "\\' UNION SELECT * FROM mesh_load_ledger --"];

  it("in the statements: values appear only among the parameters", () => {
    const scope = { namespaces: ["shop"], endUsers: false };
    for (const v of HOSTILE) {
      const q = parseTraffic({ destination_service: v, source_principal: [v, "b"], from: "2026-01-01T00:00:00Z", to: "2026-01-01T02:00:00Z" }, scope, 0);
      // Per-minute counters read mesh_board_minute (with fewer dimensions) where it is current.
      const perMinute = parseTraffic({ destination_service: v, interval: "minute", percentiles: "false", from: "2026-01-01T00:00:00Z", to: "2026-01-01T02:00:00Z" }, scope, 0);
      const minuteTable = countersStatement(perMinute, scope, { hours: [], minuteHours: [Date.parse("2026-01-01T01:00:00Z")] });
      expect(minuteTable.sql).toContain("mesh_board_minute");
      for (const st of [countersStatement(q, scope), sketchesStatement(q, scope, { hours: [Date.parse("2026-01-01T00:00:00Z")], minuteHours: [] }), minuteTable]) {
        expect(st.sql).not.toContain(v);
        expect(st.params).toContain(v);
        expect(st.sql.split("?").length - 1).toBe(st.params.length);
      }
    }
  });

  it("against the warehouse: hostile filters match nothing, change nothing, and % is no wildcard", async () => {
    const before = await query(w, "SELECT COUNT(*) AS n FROM mesh_traffic_minute");
    for (const v of HOSTILE) {
      for (const key of ["destination_service", "destination_namespace", "response_flags"]) {
        const res = await api.get(`/api/v1/traffic?${qs({ ...range(), [key]: v })}`);
        expect(res.status, `${key}=${v}`).toBe(200);
        expect(res.body.rows, `${key}=${v}`).toEqual([]);
      }
      expect((await api.get(`/api/v1/identity-access?${qs({ ...range(), source_principal: v })}`)).body.rows).toEqual([]);
    }
    expect(await query(w, "SELECT COUNT(*) AS n FROM mesh_traffic_minute")).toEqual(before);
  });

  it("a group_by naming SQL is refused before any SQL is built", () => {
    expect(() => parseTraffic({ group_by: "destination_service, 1; DROP TABLE x" }, { namespaces: ["%"], endUsers: false }, 0)).toThrow(ReadError);
  });
});

describe("answers follow the loads", () => {
  it("are not cached by clients, and a new load invalidates the collector's cache", async () => {
    const url = `/api/v1/traffic?${qs({ ...range(), percentiles: "false" })}`;
    const res = await api.app.inject({ url, headers: { authorization: `Bearer ${TOKENS.operator}` } });
    expect(res.headers["cache-control"]).toBe("no-store");
    const before = res.json().rows[0].requests;
    // Written around the sink, so no commit it counts: the cached answer stands.
    const [row] = await query(w, `SELECT * FROM mesh_traffic_minute WHERE reporter = 'destination' AND minute = make_timestamp(${w.fromMs * 1000}) LIMIT 1`);
    await query(w, `INSERT INTO mesh_traffic_minute SELECT * REPLACE (1000 AS requests) FROM mesh_traffic_minute WHERE reporter = 'destination' LIMIT 1`);
    expect((await api.get(url)).body.rows[0].requests).toBe(before);
    // A load's commit drops it.
    const stats = new SeriesStats(DEFAULT_SCALE);
    for (let k = 0; k < 7; k++) stats.record(1000 + k, 10, 20, false);
    const dims = Object.fromEntries(DIMENSIONS.map((d) => [d, row[d]])) as unknown as SeriesDims;
    await w.sink.load([minuteSummary("cache-sidecar", 1, w.fromMs, [{ dims, stats }])]);
    expect((await api.get(url)).body.rows[0].requests).toBe(before + 1000 + 7);
    // A retention pass that deletes nothing, as an idle cycle's, keeps it.
    await query(w, `INSERT INTO mesh_traffic_minute SELECT * REPLACE (1000 AS requests) FROM mesh_traffic_minute WHERE reporter = 'destination' LIMIT 1`);
    const pruned = await w.sink.prune({ minuteDays: 3650, hourDays: 3650, ledgerDays: 3650, maxDaysPerRun: 2 }, w.toMs);
    expect(pruned.every((p) => p.rows === 0)).toBe(true);
    expect((await api.get(url)).body.rows[0].requests).toBe(before + 1000 + 7);
  });

  it("a question reads one snapshot: a load committing between its statements changes none of its numbers", async () => {
    const inRange = `reporter = 'destination' AND minute >= make_timestamp(${w.fromMs * 1000}) AND minute < make_timestamp(${w.toMs * 1000})`;
    const truth = async () =>
      (await query(w, `SELECT SUM(requests) AS requests, MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS p99_us FROM mesh_traffic_minute WHERE ${inRange}`))[0];
    const before = await truth();
    // A load of slow calls (a minute's tenth of the traffic at 30 s) committing after the question's counters
    // were read and before its sketches are: deterministic, by the reader's own connection.
    const [row] = await query(w, `SELECT * FROM mesh_traffic_minute WHERE ${inRange} LIMIT 1`);
    const stats = new SeriesStats(DEFAULT_SCALE);
    for (let k = 0; k < Number(before.requests) / 10; k++) stats.record(30_000_000, 10, 20, false);
    const dims = Object.fromEntries(DIMENSIONS.map((d) => [d, row[d]])) as unknown as SeriesDims;
    let loaded = false;
    const source: ReadSource = {
      writes: w.sink.writes,
      async connectReader() {
        const c = await w.sink.connectReader();
        return new Proxy(c, {
          get(target, prop) {
            const v = Reflect.get(target, prop, target);
            if (prop !== "stream") return typeof v === "function" ? v.bind(target) : v;
            return async (sql: string, params: unknown[]) => {
              if (!loaded && sql.includes("sketch_bin")) {
                loaded = true;
                await w.sink.load([minuteSummary("snapshot-sidecar", 1, w.fromMs + 60_000, [{ dims, stats }])]);
              }
              return target.stream(sql, params as never);
            };
          },
        });
      },
    };
    const reader = await readApi(source, w.toMs);
    try {
      const [answer] = (await reader.get(`/api/v1/traffic?${qs(range())}`)).body.rows;
      expect(loaded).toBe(true);
      expect([answer.requests, answer.latency_p99_ms]).toEqual([Number(before.requests), Number(before.p99_us) / 1000]);
      // The load did commit, and moves both numbers.
      const after = await truth();
      expect(Number(after.requests)).toBeGreaterThan(Number(before.requests));
      expect(Number(after.p99_us)).toBeGreaterThan(Number(before.p99_us));
    } finally {
      await reader.close();
    }
  });
});

describe("groups tied at the limit", () => {
  it("are cut by their keys, so a LIMIT answers the same groups on every read", async () => {
    // Three workloads of one new namespace with the same request count, loaded in an order that is not theirs.
    const [row] = await query(w, `SELECT * FROM mesh_traffic_minute WHERE reporter = 'destination' LIMIT 1`);
    const stats = new SeriesStats(DEFAULT_SCALE);
    for (let k = 0; k < 5; k++) stats.record(2000 + k, 10, 20, false);
    const tied = ["tie-c", "tie-a", "tie-b"].map((workload) => ({
      dims: { ...Object.fromEntries(DIMENSIONS.map((d) => [d, row[d]])), destination_namespace: "tie-ns", destination_workload: workload } as unknown as SeriesDims,
      stats,
    }));
    await w.sink.load([minuteSummary("tie-sidecar", 1, w.fromMs, tied)]);
    const ask = async (limit: number) =>
      (
        await api.get(`/api/v1/traffic?${qs({ ...range(), destination_namespace: "tie-ns", group_by: "destination_workload", limit: String(limit), percentiles: "false" })}`)
      ).body.rows.map((r: any) => [r.destination_workload, r.requests]);
    expect(await ask(3)).toEqual([
      ["tie-a", 5],
      ["tie-b", 5],
      ["tie-c", 5],
    ]);
    expect(await ask(2)).toEqual([
      ["tie-a", 5],
      ["tie-b", 5],
    ]);
  });
});
