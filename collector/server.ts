// HTTP edge of the collector (Fastify): ingest, health, readiness and metrics. Decisions about a
// summary are in ingest.ts; this module maps them to status codes and the JSON error contract
// {"error": "<machine_code>", "message": "<human text>"}.
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import rateLimit from "@fastify/rate-limit";
import underPressure from "@fastify/under-pressure";
import { Type } from "@sinclair/typebox";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { TokenGrant, TokenSet } from "./auth.ts";
import { callerOf, type Caller } from "./identity.ts";
import type { Ingestor } from "./ingest.ts";
import type { Metrics } from "./metrics.ts";
import type { Sink } from "./sink/types.ts";
import type { Spool } from "./spool.ts";

export const INGEST_PATH = "/v1/summaries";
export const SUMMARY_CONTENT_TYPE = "application/x-meshlook-summary";

export interface ServerDeps {
  spool: Spool;
  sink: Sink;
  ingestor: Ingestor;
  /** undefined only with MESHLOOK_AUTH_DISABLED=true. */
  tokens: TokenSet | undefined;
  metrics: Metrics;
  log: Logger;
  maxBodyBytes: number;
  /** Longest a request may take to arrive in full (headers and body). */
  requestTimeoutMs: number;
  maxEventLoopDelayMs: number;
  /** Unloaded spool bytes at which ingest refuses and the collector reports itself not ready. */
  spoolMaxBytes: number;
  /** Retry-After (s) when the spool is full: about when the next load frees space. */
  spoolFullRetryAfterS: number;
  /** Event-loop sampling period of the pressure check; tests shorten it. */
  pressureSampleIntervalMs?: number;
  /** Whether the sink finished opening (connect and every migration); until then the replica is not ready. */
  sinkOpen: () => boolean;
  /** Set when MESHLOOK_REMOTE_WRITE_READY_MAX_LAG_S is: why remote write makes the collector unready, if it does. */
  remoteWriteNotReady?: () => string | undefined;
  /** Take the caller's identity from x-forwarded-client-cert (only behind the collector's own sidecar). */
  trustXfcc: boolean;
  /** Ingest requests one caller (identity.ts Caller.key) may make per minute; 0 = no limit. */
  rateLimitPerMinute: number;
  /** Serve /metrics here too (no MESHLOOK_METRICS_PORT); otherwise only buildMetricsServer serves it. */
  metricsOnIngestPort: boolean;
  /** Resident memory at which ingest sheds load (503), before the pod limit kills the process; 0 = no check. */
  maxRssBytes: number;
  /** V8 heap in use at which ingest sheds load (503), before V8's heap limit aborts the process; 0 = no check. */
  maxHeapUsedBytes: number;
}

const OVERLOAD_RETRY_AFTER_S = 2;

/** The JSON bodies of the HTTP contract (docs/collector.md); also Fastify's response serializers. */
export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String() });
export const AckBody = Type.Object({ status: Type.Union([Type.Literal("accepted"), Type.Literal("duplicate")]) });
const StatusBody = (status: string) => Type.Object({ status: Type.Literal(status) });
const ingestResponses = { 200: AckBody, "4xx": ErrorBody, "5xx": ErrorBody };

/**
 * Answers requests Node refuses before any route sees them (request timeout, oversized headers,
 * unparsable HTTP) in the JSON error contract; the socket is closed afterwards, as Node does.
 */
function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const [status, error, message] =
    err.code === "ERR_HTTP_REQUEST_TIMEOUT"
      ? [408, "request_timeout", "the request did not arrive in full within MESHLOOK_REQUEST_TIMEOUT_S"]
      : err.code === "HPE_HEADER_OVERFLOW"
        ? [431, "headers_too_large", "request headers too large"]
        : [400, "bad_request", "malformed HTTP request"];
  if (socket.writable) {
    const body = JSON.stringify({ error, message });
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { metrics } = deps;
  const app = Fastify({
    // Fastify's own info lines (one per listening address) would repeat the startup line on stderr.
    loggerInstance: deps.log.child({ component: "http" }, { level: deps.log.levelVal < 40 ? "warn" : deps.log.level }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }), // one log line per request is noise at this rate
    bodyLimit: deps.maxBodyBytes,
    // A body that trickles in (or never ends) would otherwise hold its socket and request for ever.
    requestTimeout: deps.requestTimeoutMs,
    // Given again to Node's server constructor, which only tracks expiring requests when it sees a timeout
    // there; Node checks only every connectionsCheckingInterval (30 s by default), which would let a short
    // timeout run up to 30 s late; and headers may not be allowed longer than the whole request.
    http: {
      requestTimeout: deps.requestTimeoutMs,
      headersTimeout: Math.min(60_000, deps.requestTimeoutMs),
      connectionsCheckingInterval: Math.min(30_000, Math.max(100, deps.requestTimeoutMs / 4)),
    },
    clientErrorHandler,
    return503OnClosing: false, // answered below, in the JSON error contract and with Retry-After
  });

  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onRequest", async (req, reply) => {
    if (closing && req.url.startsWith(INGEST_PATH)) {
      return reject(reply, 503, "shutting_down", "collector is shutting down; retry on another replica or later", OVERLOAD_RETRY_AFTER_S);
    }
  });

  const reject = (reply: FastifyReply, status: number, error: string, message: string, retryAfterS?: number) => {
    if (reply.request.url.startsWith(INGEST_PATH)) metrics.rejected.inc({ reason: error });
    if (retryAfterS !== undefined) reply.header("retry-after", String(retryAfterS));
    return reply.code(status).send({ error, message });
  };

  await app.register(underPressure, {
    maxEventLoopDelay: deps.maxEventLoopDelayMs,
    maxRssBytes: deps.maxRssBytes,
    maxHeapUsedBytes: deps.maxHeapUsedBytes,
    sampleInterval: deps.pressureSampleIntervalMs,
    // Only ingest sheds load: health, readiness and metrics must keep answering under pressure.
    pressureHandler: (req, reply, type, value) => {
      if (req.routeOptions.url !== INGEST_PATH) return;
      void reject(reply, 503, "overloaded", `collector under pressure (${type} = ${Math.round(value ?? 0)}); retry later`, OVERLOAD_RETRY_AFTER_S);
    },
  });

  /** Which ingest token (by TokenSet label) authenticated a request, for the per-token usage metric. */
  const tokenOf = new WeakMap<FastifyRequest, string>();
  /** Who sent an ingest request (identity.ts), decided once in its onRequest hook. */
  const callers = new WeakMap<FastifyRequest, Caller>();
  const xfccHeader = (req: FastifyRequest) => {
    const h = req.headers["x-forwarded-client-cert"];
    return Array.isArray(h) ? h.join(",") : h;
  };
  if (deps.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      global: false,
      // Per caller: one hostile sidecar exhausts its own allowance, not everyone's.
      keyGenerator: (req) => callers.get(req)?.key ?? `addr:${req.ip}`,
      errorResponseBuilder: (_req, ctx) =>
        Object.assign(new Error(`more than ${ctx.max} summaries a minute from this caller; retry in ${Math.ceil(ctx.ttl / 1000)} s`), {
          statusCode: 429,
          retryAfterS: Math.ceil(ctx.ttl / 1000),
        }),
    });
  }
  // The labelled counter per token, looked up once: prom-client hashes the label set on every inc().
  const tokenCounters = new Map<string, ReturnType<Metrics["acceptedByToken"]["labels"]>>();
  const acceptedByToken = (token: string) => {
    let c = tokenCounters.get(token);
    if (!c) tokenCounters.set(token, (c = metrics.acceptedByToken.labels({ token })));
    return c;
  };

  app.addContentTypeParser(SUMMARY_CONTENT_TYPE, { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; retryAfterS?: number }, _req, reply) => {
    if (err.statusCode === 429) return reject(reply, 429, "rate_limited", err.message, err.retryAfterS);
    if (err.statusCode === 413) return reject(reply, 413, "body_too_large", `summary body exceeds ${deps.maxBodyBytes} bytes`);
    if (err.statusCode === 415) return reject(reply, 415, "unsupported_media_type", `content-type must be ${SUMMARY_CONTENT_TYPE}`);
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return reject(reply, err.statusCode, "bad_request", err.message);
    deps.log.error({ err }, "request failed");
    return reject(reply, 500, "internal", "internal error");
  });
  // Fixed text: quoting the method or path would reflect request data back to the client.
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: "not_found", message: "no such endpoint" }));

  app.post(INGEST_PATH, {
    schema: { response: ingestResponses },
    config: deps.rateLimitPerMinute > 0 ? { rateLimit: { max: deps.rateLimitPerMinute, timeWindow: 60_000 } } : {},
    // Refuse before reading the body: a wrong token, identity or media type costs no upload.
    onRequest: async (req, reply) => {
      if (reply.sent) return; // shed by the pressure check
      let grant: TokenGrant | undefined;
      if (deps.tokens) {
        grant = deps.tokens.match(req.headers.authorization, req.raw.socket);
        if (grant === undefined) return reject(reply, 401, "unauthorized", "missing or unknown bearer token");
        tokenOf.set(req, grant.label);
      }
      const caller = callerOf({ xfcc: xfccHeader(req), trustXfcc: deps.trustXfcc, grant, address: req.ip });
      if (caller === "no_identity") {
        return reject(reply, 403, "no_caller_identity", "no mTLS peer identity (x-forwarded-client-cert URI) reached the collector; send through the mesh with mTLS");
      }
      callers.set(req, caller);
      const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
      if (type !== SUMMARY_CONTENT_TYPE) {
        return reject(reply, 415, "unsupported_media_type", `content-type must be ${SUMMARY_CONTENT_TYPE}`);
      }
    },
    handler: async (req, reply) => {
      let res;
      try {
        // An empty body never reaches the content parser; the decoder refuses it as truncated.
        res = await deps.ingestor.accept(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), Date.now(), callers.get(req));
      } catch (err) {
        deps.log.error({ err }, "spool write failed");
        return reject(reply, 503, "spool_unavailable", "could not store the summary durably; retry later", OVERLOAD_RETRY_AFTER_S);
      }
      if (res.status === "accepted") {
        if (res.foldError !== undefined) deps.log.error({ err: res.foldError }, "rolling up an acknowledged summary failed; its spool segment loads from disk");
        // Counted for new summaries only, so a retry does not report the same loss twice.
        const { droppedWindows, droppedRequests, overflowKeys } = res.loss;
        if (droppedWindows > 0) metrics.filterDroppedWindows.inc(droppedWindows);
        if (droppedRequests > 0) metrics.filterDroppedRequests.inc(droppedRequests);
        if (overflowKeys > 0) metrics.filterOverflowKeys.inc(overflowKeys);
      }
      if (res.status === "accepted" || res.status === "duplicate") {
        const token = tokenOf.get(req);
        if (token !== undefined) acceptedByToken(token).inc();
        return reply.code(200).send({ status: res.status });
      }
      switch (res.status) {
        case "invalid":
          return reject(reply, 400, res.reason, res.message);
        case "forbidden":
          return reject(reply, 403, res.reason, res.message);
        case "spool_full":
          return reject(reply, 503, "spool_full", res.message, deps.spoolFullRetryAfterS);
      }
    },
  });

  app.get("/healthz", { schema: { response: { 200: StatusBody("ok") } } }, async () => ({ status: "ok" }));

  const ReadyBody = Type.Object({ status: Type.Literal("ready"), warnings: Type.Optional(Type.Array(Type.String())) });
  app.get("/readyz", { schema: { response: { 200: ReadyBody, 503: ErrorBody } } }, async (_req, reply) => {
    // Zero tokens refuse every sidecar: as broken as a dead replica, and said so.
    if (deps.tokens && deps.tokens.size === 0) {
      return reply.code(503).send({ error: "no_ingest_tokens", message: "no ingest token is configured (empty or unusable token file): every summary would be refused" });
    }
    // A spool that refuses every summary must take the replica out of the Service, like a dead one.
    if (deps.spool.bytes >= deps.spoolMaxBytes) {
      return reply.code(503).send({ error: "spool_full", message: `spool holds ${deps.spool.bytes} unloaded bytes (limit ${deps.spoolMaxBytes})` });
    }
    if (deps.spool.diskFull) {
      return reply.code(503).send({ error: "spool_disk_full", message: `last spool write failed: ${deps.spool.diskFull.message}` });
    }
    try {
      await deps.spool.probeWritable();
    } catch (err) {
      return reply.code(503).send({ error: "spool_not_writable", message: (err as Error).message });
    }
    try {
      await deps.sink.ping();
    } catch (err) {
      return reply.code(503).send({ error: "warehouse_unreachable", message: (err as Error).message });
    }
    // A sink still migrating answers the ping (its connection is up) but cannot load yet.
    if (!deps.sinkOpen()) {
      return reply.code(503).send({ error: "warehouse_opening", message: "the warehouse answers but its startup migrations have not finished; loads start once they have" });
    }
    const lagging = deps.remoteWriteNotReady?.();
    if (lagging) return reply.code(503).send({ error: "remote_write_lagging", message: lagging });
    // Ready, but an operator looking here must not miss that anyone can write.
    if (!deps.tokens) return { status: "ready", warnings: ["ingest authentication is disabled (MESHLOOK_AUTH_DISABLED=true)"] };
    return { status: "ready" };
  });

  if (deps.metricsOnIngestPort) app.get("/metrics", metricsHandler(metrics));

  return app;
}

const metricsHandler = (metrics: Metrics) => async (_req: FastifyRequest, reply: FastifyReply) => {
  reply.header("content-type", metrics.registry.contentType);
  return metrics.registry.metrics();
};

/**
 * The metrics endpoint on a listener of its own (MESHLOOK_METRICS_PORT), so the network and mesh policies
 * can admit the monitoring namespace there without opening the ingest port, and ingest clients cannot
 * read the collector's counters.
 */
export async function buildMetricsServer(metrics: Metrics, log: Logger): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: log.child({ component: "metrics-http" }, { level: log.levelVal < 40 ? "warn" : log.level }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    clientErrorHandler,
  });
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ error: "not_found", message: "no such endpoint" }));
  app.get("/metrics", metricsHandler(metrics));
  return app;
}
