// GET /api/v1/outliers: the open findings of the last detection run, best first, with their evidence
// and Looker explore URLs. A Fastify plugin of its own that takes the authorization check as an option,
// so whichever credential guards the collector's read API can guard it.
import { Type } from "@sinclair/typebox";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import { OUTLIER_KINDS } from "../../shared/outliers.ts";
import type { OutlierSnapshot } from "./monitor.ts";
import { findingJson } from "./store.ts";

export const OUTLIERS_PATH = "/api/v1/outliers";

export interface OutlierRoutesOptions {
  /** The findings to serve (OutlierMonitor.current). */
  snapshot: () => OutlierSnapshot;
  /** Answers (e.g. 401) and returns false when the request may not read; true lets it through. */
  authorize: (req: FastifyRequest, reply: FastifyReply) => boolean | Promise<boolean>;
}

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
const Nullable = <T extends ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()]);

const Query = Type.Object({
  kind: Type.Optional(Type.Union(OUTLIER_KINDS.map((k) => Type.Literal(k)))),
  service: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
});

const FindingBody = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  grain: Type.String(),
  sourcePrincipal: Type.Union([Type.String(), Type.Null()]),
  destinationService: Type.String(),
  score: Type.Number(),
  summary: Type.String(),
  recentStart: Type.String(),
  recentEnd: Type.String(),
  baselineStart: Type.String(),
  recentRequests: Type.Number(),
  baselineRequests: Type.Number(),
  recentErrors: Type.Number(),
  baselineErrors: Type.Number(),
  recentValue: Nullable(Type.Number()),
  baselineValue: Nullable(Type.Number()),
  recentP50Us: Nullable(Type.Number()),
  baselineP50Us: Nullable(Type.Number()),
  recentP99Us: Nullable(Type.Number()),
  baselineP99Us: Nullable(Type.Number()),
  exploreUrl: Type.String(),
  firstDetectedAt: Type.String(),
  lastDetectedAt: Type.String(),
});

export const outlierRoutes: FastifyPluginAsync<OutlierRoutesOptions> = async (app, opts) => {
  app.get<{ Querystring: typeof Query.static }>(OUTLIERS_PATH, {
    schema: {
      querystring: Query,
      response: { 200: Type.Object({ ranAt: Type.Union([Type.String(), Type.Null()]), recentStart: Type.Union([Type.String(), Type.Null()]), recentEnd: Type.Union([Type.String(), Type.Null()]), findings: Type.Array(FindingBody) }) },
    },
    onRequest: async (req, reply) => {
      if (!(await opts.authorize(req, reply)) && !reply.sent) reply.code(401).send({ error: "unauthorized", message: "missing or unknown bearer token" });
    },
    handler: async (req) => {
      const s = opts.snapshot();
      const { kind, service, limit } = req.query;
      const findings = s.findings.filter((f) => (kind === undefined || f.kind === kind) && (service === undefined || f.destination_service === service)).slice(0, limit ?? 500);
      return {
        ranAt: iso(s.ranAt),
        recentStart: iso(s.recentStart),
        recentEnd: iso(s.recentEnd),
        findings: findings.map(findingJson),
      };
    },
  });
};
