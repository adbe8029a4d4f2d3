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

const Query = Type.Object({
  kind: Type.Optional(Type.Union(OUTLIER_KINDS.map((k) => Type.Literal(k)))),
  service: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
});

export const outlierRoutes: FastifyPluginAsync<OutlierRoutesOptions> = async (app, opts) => {
  app.get<{ Querystring: typeof Query.static }>(OUTLIERS_PATH, {
    schema: {
      querystring: Query,
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
