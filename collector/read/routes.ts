// The read surface of the collector: JSON endpoints under /api/v1 (docs/read-api.md) and the dashboard
// under /ui, its static files served from the package (no CDN: it works offline). Every /api request
// carries a reader token (access.ts) whose namespace scope is applied inside the SQL; the dashboard's
// files carry no data and need none.
import fastifyStatic from "@fastify/static";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { DIMENSIONS } from "../../shared/schema.ts";
import { isOperator, type ReaderTokens, type Scope } from "./access.ts";
import {
  FIELDS,
  IDENTITY_FIELDS,
  INTERVALS,
  QUANTILE_FIELDS,
  ReadError,
  identityStatement,
  loadsStatement,
  lossStatement,
  parseField,
  parseFilters,
  parseLimit,
  parseRange,
  parseTraffic,
  valuesStatement,
  type Params,
} from "./query.ts";
import type { ReadWarehouse } from "./warehouse.ts";

export const API_PREFIX = "/api/v1";
const UI_DIR = join(import.meta.dirname, "..", "..", "ui");
const ECHARTS_DIR = dirname(createRequire(import.meta.url).resolve("echarts/dist/echarts.min.js"));

export type ReadAccess =
  /** Reader tokens checked on every API request. */
  | { mode: "tokens"; tokens: ReaderTokens }
  /** MESHLOOK_READ_AUTH_DISABLED=true (demo only): every request reads every namespace, end users excluded. */
  | { mode: "open" }
  /** The read API is off (MESHLOOK_READ_API=false, or a sink it does not serve); says why. */
  | { mode: "off"; reason: string };

const OPEN_SCOPE: Scope = { namespaces: ["%"], endUsers: false };

export interface ReadRoutesOptions {
  access: ReadAccess;
  warehouse?: ReadWarehouse;
  now?: () => number;
}

export async function readRoutes(app: FastifyInstance, opts: ReadRoutesOptions): Promise<void> {
  const now = opts.now ?? Date.now;
  const scopes = new WeakMap<FastifyRequest, Scope>();
  const fail = (reply: FastifyReply, err: ReadError) => reply.code(err.status).send({ error: err.code, message: err.message });

  await app.register(fastifyStatic, { root: [UI_DIR, ECHARTS_DIR], prefix: "/ui/", index: "index.html", wildcard: true });
  app.get("/ui", (_req, reply) => reply.redirect("/ui/"));

  app.register(
    async (api) => {
      api.addHook("onRequest", async (req, reply) => {
        const access = opts.access;
        if (access.mode === "off" || !opts.warehouse) {
          return fail(reply, new ReadError(404, "read_api_off", access.mode === "off" ? access.reason : "the read API is off"));
        }
        const scope = access.mode === "open" ? OPEN_SCOPE : access.tokens.match(req.headers.authorization);
        if (!scope) {
          reply.header("www-authenticate", 'Bearer realm="meshlook-read"');
          return reply.code(401).send({ error: "unauthorized", message: "missing or unknown reader token" });
        }
        scopes.set(req, scope);
      });
      // Answers follow the data: never cached by the browser or a proxy past the next load.
      api.addHook("onSend", async (_req, reply) => {
        reply.header("cache-control", "no-store");
      });

      const handle = (answer: (params: Params, scope: Scope) => Promise<unknown>) => async (req: FastifyRequest, reply: FastifyReply) => {
        try {
          return await answer(req.query as Params, scopes.get(req)!);
        } catch (err) {
          if (err instanceof ReadError) return fail(reply, err);
          throw err;
        }
      };
      const wh = opts.warehouse!;
      const keyed = (name: string, params: Params, scope: Scope) => JSON.stringify([name, params, scope]);

      api.get(
        "/whoami",
        handle(async (_p, scope) => ({ namespaces: scope.namespaces, end_users: scope.endUsers, operator: isOperator(scope) })),
      );

      api.get(
        "/schema",
        handle(async (_p, scope) => ({
          dimensions: DIMENSIONS.filter((d) => d !== "end_user_principal" || scope.endUsers),
          fields: FIELDS.filter((d) => d !== "end_user_principal" || scope.endUsers),
          intervals: INTERVALS,
          measures: [
            "requests",
            "errors",
            "error_rate",
            "requests_per_second",
            "request_bytes",
            "response_bytes",
            "mtls_requests",
            "mtls_share",
            "latency_mean_ms",
            "latency_min_ms",
            "latency_max_ms",
            ...QUANTILE_FIELDS,
          ],
        })),
      );

      api.get(
        "/freshness",
        handle(async () => {
          const f = await wh.freshness();
          return { latest_load: f.latestLoadMs, latest_window_end: f.latestMinuteMs, data_version: wh.dataVersion, now: now() };
        }),
      );

      api.get(
        "/traffic",
        handle(async (params, scope) => {
          const q = parseTraffic(params, scope, now());
          const { rows, hourlyHours } = await wh.cached(keyed("traffic", params, scope), () => wh.traffic(q, scope));
          return { from: q.fromMs, to: q.toMs, reporter: q.reporter, group_by: q.groupBy, interval: q.interval, hourly_hours: hourlyHours, rows };
        }),
      );

      // Service graph: caller → callee at canonical-service grain (looker/views/service_edges.view.lkml).
      api.get(
        "/edges",
        handle(async (params, scope) => {
          const q = parseTraffic({ ...params, group_by: "source_node,destination_node", interval: "none" }, scope, now());
          const { rows, hourlyHours } = await wh.cached(keyed("edges", params, scope), () => wh.traffic(q, scope));
          return { from: q.fromMs, to: q.toMs, reporter: q.reporter, hourly_hours: hourlyHours, rows };
        }),
      );

      api.get(
        "/identity-access",
        handle(async (params, scope) => {
          const q = parseTraffic({ ...params, group_by: undefined, interval: "none", percentiles: "false" }, scope, now());
          const rows = await wh.cached(keyed("identity", params, scope), () => wh.over(q, (hours) => identityStatement(q, scope, hours)));
          return { from: q.fromMs, to: q.toMs, reporter: q.reporter, fields: IDENTITY_FIELDS, rows };
        }),
      );

      api.get(
        "/sidecar-loss",
        handle(async (params, scope) => {
          const { interval = "minute", destination_namespace, ...rest } = params;
          const range = parseRange(rest, now());
          if (interval !== "minute" && interval !== "hour" && interval !== "none") throw new ReadError(400, "bad_parameter", "interval: minute, hour or none");
          const namespaces = parseFilters({ destination_namespace }, scope).destination_namespace ?? [];
          const rows = await wh.cached(keyed("loss", params, scope), () => wh.run(lossStatement(range, interval, namespaces, scope)));
          return { from: range.fromMs, to: range.toMs, rows };
        }),
      );

      api.get(
        "/values",
        handle(async (params, scope) => {
          const field = parseField(params, "dimension");
          const q = parseTraffic({ ...params, dimension: undefined, percentiles: "false", interval: "none", limit: String(parseLimit(params, 500)) }, scope, now());
          const rows = await wh.cached(keyed("values", params, scope), () => wh.over(q, (hours) => valuesStatement(q, field, scope, hours)));
          return { dimension: field, values: rows.map((r) => r.value) };
        }),
      );

      // The load ledger names pods in every namespace: operators (scope %) only, as can_see_collector_loads.
      api.get(
        "/loads",
        handle(async (params, scope) => {
          if (!isOperator(scope)) throw new ReadError(403, "forbidden", "loads are visible to operator tokens (namespace scope %) only");
          const range = parseRange(params, now());
          const rows = await wh.cached(keyed("loads", params, scope), () => wh.run(loadsStatement(range)));
          return { from: range.fromMs, to: range.toMs, rows };
        }),
      );
    },
    { prefix: API_PREFIX },
  );
}
