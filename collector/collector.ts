// Wires the pipeline stages into one running collector: spool → ingest → HTTP, and spool → loader →
// sink. Used by main.ts and by tests that run a collector in-process.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { TokenSet, ensureGeneratedToken } from "./auth.ts";
import type { CollectorConfig } from "./config.ts";
import { Ingestor } from "./ingest.ts";
import { Loader } from "./loader.ts";
import { boardRollupStage, mountReadSurface, type ReadInfo } from "./read/index.ts";
import { outlierStage, type OutlierMonitor } from "./outliers/index.ts";
import { compactionObserver, createMetrics, type Metrics } from "./metrics.ts";
import { RemoteWriteExporter } from "./remote-write/exporter.ts";
import { Quarantine } from "./quarantine.ts";
import { ingestHorizonMs } from "./retention.ts";
import { buildMetricsServer, buildServer } from "./server.ts";
import { Spool } from "./spool.ts";
import type { Sink } from "./sink/types.ts";
import { decodeSummary, decodeSummaryInto } from "./summary.ts";

export interface RunningCollector {
  app: FastifyInstance;
  /** `http://host:port` the server listens on. */
  url: string;
  /** Where /metrics is served: `url`, or the MESHLOOK_METRICS_PORT listener's address. */
  metricsUrl: string;
  sink: Sink;
  spool: Spool;
  loader: Loader;
  quarantine: Quarantine;
  metrics: Metrics;
  /** The Prometheus remote-write exporter, when MESHLOOK_REMOTE_WRITE_URL is set. */
  exporter?: RemoteWriteExporter;
  /** The outlier stage (undefined when MESHLOOK_OUTLIERS=false or the sink cannot be queried). */
  outliers?: OutlierMonitor;
  /** Where the ingest token came from, for the startup line (never the token itself). */
  auth: { mode: "tokens"; generatedFile?: string; created?: boolean } | { mode: "disabled" };
  /** How the read API and dashboard are set up (collector/read/). */
  read: ReadInfo;
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
    tokens.watch(); // an operator may replace or empty it: never keep serving a stale set silently
    auth = { mode: "tokens", generatedFile: generated.file, created: generated.created };
  } else {
    tokens = new TokenSet(config.ingestTokens, config.ingestTokensFile, log);
    tokens.watch();
    auth = { mode: "tokens" };
  }

  const spool = await Spool.open(config.spoolDir, { segmentBytes: config.spoolSegmentBytes });
  const metrics = createMetrics(
    () => spool,
    () => ({ disabled: config.authDisabled, tokens: tokens?.size ?? 0, weakTokens: tokens?.weak ?? 0 }),
  );
  const sink = opts.sink ?? (await sinkFor(config, log, metrics));
  const ingestor = new Ingestor(spool, decodeSummaryInto, metrics, config.spoolMaxBytes, true, {
    maxWindowAgeMs: config.maxWindowAgeS * 1000,
    maxWindowAheadMs: config.maxWindowAheadS * 1000,
    maxHeldBytes: config.maxHeldBytes,
    ledgerHorizonMs: ingestHorizonMs(config.retention),
  });
  const quarantine = new Quarantine(quarantineDir(config));
  const outliers = outlierStage(sink, config, metrics.registry, log, opts.env);
  // Before outlier detection, so both see the same load: dashboards' pre-aggregate (docs/read-api.md).
  const boardRollup = boardRollupStage(config, sink, log, metrics.boardHoursWaiting);
  const loader = new Loader(spool, sink, decodeSummary, ingestor, metrics, log, {
    intervalMs: config.loadIntervalS * 1000,
    // Snowflake bills every transaction in warehouse time: one cycle takes the whole sealed spool. DuckDB
    // costs nothing per transaction: 64 MiB of spool at a time, so a long outage's backlog drains in steps.
    maxBatchBytes: Math.max(config.spoolSegmentBytes, sink.kind === "snowflake" ? config.spoolMaxBytes : 64 << 20),
    quarantine,
    retention: config.retention,
    afterLoad: async () => {
      await boardRollup?.afterLoad();
      await outliers?.monitor.afterLoad();
    },
  });
  const exporter = config.remoteWrite.url ? await RemoteWriteExporter.open(spool, config.remoteWrite, decodeSummary, metrics.registry, log) : undefined;
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
    trustXfcc: config.trustXfcc,
    rateLimitPerMinute: config.rateLimitPerMinute,
    maxRssBytes: config.maxRssBytes,
    maxHeapUsedBytes: config.maxHeapUsedBytes,
    metricsOnIngestPort: config.metricsPort === undefined,
    sinkOpen: () => loader.sinkIsOpen,
    remoteWriteNotReady: exporter && (() => exporter.notReady()),
  });
  const read = await mountReadSurface(app, config, sink, log);
  // Findings name identities across namespaces: operators' reader tokens (or the demo opt-out) only.
  if (outliers) await app.register(outliers.routes, { snapshot: () => outliers.monitor.current(), authorize: (req) => read.readsEverything(req) });
  const metricsApp = config.metricsPort === undefined ? undefined : await buildMetricsServer(metrics, log);
  // Listen first, always: opening the warehouse (connect + migrations) can take as long as the
  // warehouse's connect timeout, or fail for hours, and the liveness probe must not kill a collector
  // that is spooling fine meanwhile. The loader's first cycle opens the sink and every later cycle
  // retries an open that failed; /readyz answers warehouse_unreachable until one succeeds.
  let url = "";
  let metricsUrl = "";
  if (opts.listen !== false) {
    url = await app.listen({ host: config.host, port: config.port });
    metricsUrl = metricsApp ? await metricsApp.listen({ host: config.host, port: config.metricsPort }) : url;
  } else {
    await app.ready();
    await metricsApp?.ready();
  }
  loader.start();
  exporter?.start();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      tokens?.unwatch();
      await app.close(); // stops accepting, waits for in-flight requests (their spool appends included)
      await metricsApp?.close();
      await loader.stop(); // final load: everything acknowledged goes to the warehouse if it is reachable
      // then the remote write's own catch-up, within part of the shutdown budget (its state resumes it)
      await exporter?.stop(Math.min(10_000, config.shutdownTimeoutS * 500));
      await outliers?.monitor.close();
      await spool.close();
      await read.close();
      boardRollup?.close();
      await sink.close();
    })());
  return { app, url, metricsUrl, sink, spool, loader, quarantine, metrics, exporter, outliers: outliers?.monitor, auth, read: read.info, close };
}

/** Where the quarantine lives: beside the spool, in the data directory. */
export const quarantineDir = (config: Pick<CollectorConfig, "dataDir">) => join(config.dataDir, "quarantine");
