// Wires the pipeline stages into one running collector: spool → ingest → HTTP, and spool → loader →
// sink. Used by main.ts and by tests that run a collector in-process.
import { mkdirSync } from "node:fs";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { TokenSet, ensureGeneratedToken } from "./auth.ts";
import type { CollectorConfig } from "./config.ts";
import { Ingestor } from "./ingest.ts";
import { Loader } from "./loader.ts";
import { outlierStage, type OutlierMonitor } from "./outliers/index.ts";
import { compactionObserver, createMetrics, type Metrics } from "./metrics.ts";
import { buildServer } from "./server.ts";
import { Spool } from "./spool.ts";
import type { Sink } from "./sink/types.ts";
import { decodeSummary } from "./summary.ts";

export interface RunningCollector {
  app: FastifyInstance;
  /** `http://host:port` the server listens on. */
  url: string;
  sink: Sink;
  spool: Spool;
  loader: Loader;
  metrics: Metrics;
  /** The outlier stage (undefined when MESHLOOK_OUTLIERS=false or the sink cannot be queried). */
  outliers?: OutlierMonitor;
  /** Where the ingest token came from, for the startup line (never the token itself). */
  auth: { mode: "tokens"; generatedFile?: string; created?: boolean } | { mode: "disabled" };
  /** Graceful stop: refuse new requests, finish in-flight ones, load the spool, close everything. */
  close(): Promise<void>;
}

export interface StartOptions {
  /** Build the sink; defaults to the one named by config.sink. */
  sink?: Sink;
  /** Event-loop sampling period of the pressure check; tests shorten it. */
  pressureSampleIntervalMs?: number;
  /** Skip listening (tests using inject()). */
  listen?: boolean;
  /** Where MESHLOOK_OUTLIER_* settings are read (default process.env). */
  env?: NodeJS.ProcessEnv;
}

async function sinkFor(config: CollectorConfig, log: Logger, metrics: Metrics): Promise<Sink> {
  const hourly = { onCompaction: compactionObserver(metrics) };
  if (config.sink === "snowflake") {
    const { createSnowflakeSink } = await import("./sink/snowflake.ts");
    return createSnowflakeSink(config, log, { onRetry: (err) => metrics.loadRetries.inc({ reason: err.reason }), hourly });
  }
  const { createDuckDBSink } = await import("./sink/duckdb.ts");
  return createDuckDBSink(config, log, { hourly });
}

export async function startCollector(config: CollectorConfig, log: Logger, opts: StartOptions = {}): Promise<RunningCollector> {
  mkdirSync(config.dataDir, { recursive: true });
  let tokens: TokenSet | undefined;
  let auth: RunningCollector["auth"];
  if (config.authDisabled) {
    log.warn("INGEST AUTHENTICATION IS DISABLED (MESHLOOK_AUTH_DISABLED=true): anyone who can reach the collector can write data");
    auth = { mode: "disabled" };
  } else if (config.ingestTokens.length === 0 && !config.ingestTokensFile) {
    const generated = ensureGeneratedToken(config.dataDir);
    tokens = new TokenSet([], generated.file, log);
    auth = { mode: "tokens", generatedFile: generated.file, created: generated.created };
  } else {
    tokens = new TokenSet(config.ingestTokens, config.ingestTokensFile, log);
    tokens.watch();
    auth = { mode: "tokens" };
  }

  const spool = await Spool.open(config.spoolDir, { segmentBytes: config.spoolSegmentBytes });
  const metrics = createMetrics(() => spool);
  const sink = opts.sink ?? (await sinkFor(config, log, metrics));
  const ingestor = new Ingestor(spool, decodeSummary, metrics, config.spoolMaxBytes, sink.loadRollup !== undefined);
  const outliers = outlierStage(sink, config, metrics.registry, log, opts.env);
  const loader = new Loader(spool, sink, decodeSummary, ingestor, metrics, log, {
    intervalMs: config.loadIntervalS * 1000,
    maxBatchBytes: Math.max(config.spoolSegmentBytes, 64 << 20),
    afterLoad: outliers && (() => outliers.monitor.afterLoad()),
  });
  const app = await buildServer({
    spool,
    sink,
    ingestor,
    tokens,
    metrics,
    log,
    maxBodyBytes: config.maxBodyBytes,
    requestTimeoutMs: config.requestTimeoutS * 1000,
    maxEventLoopDelayMs: config.maxEventLoopDelayMs,
    spoolMaxBytes: config.spoolMaxBytes,
    spoolFullRetryAfterS: config.loadIntervalS,
    pressureSampleIntervalMs: opts.pressureSampleIntervalMs,
  });
  // Guarded by the ingest tokens until the read API's reader tokens exist.
  if (outliers) await app.register(outliers.routes, { snapshot: () => outliers.monitor.current(), authorize: (req) => !tokens || tokens.match(req.headers.authorization) !== undefined });
  // Before listening, so a reachable warehouse is migrated before the first summary; an unreachable one
  // leaves the collector spooling (see Loader.openSink).
  await loader.openSink();
  let url = "";
  if (opts.listen !== false) url = await app.listen({ host: config.host, port: config.port });
  else await app.ready();
  loader.start();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      tokens?.unwatch();
      await app.close(); // stops accepting, waits for in-flight requests (their spool appends included)
      await loader.stop(); // final load: everything acknowledged goes to the warehouse if it is reachable
      await outliers?.monitor.close();
      await spool.close();
      await sink.close();
    })());
  return { app, url, sink, spool, loader, metrics, outliers: outliers?.monitor, auth, close };
}
