// `npm start`: the collector process. Reads settings (environment + optional MESHLOOK_CONFIG file),
// starts the pipeline, prints one line saying where it listens and where data goes, and shuts down
// gracefully on SIGTERM/SIGINT, logging last what the run loaded. Built to dist/collector/main.js
// (scripts/build-collector.mjs); `meshlook start` runs that.
import type { AddressInfo } from "node:net";
import pino from "pino";
import { loadConfigOrExit } from "./config.ts";
import { startCollector, type RunningCollector } from "./collector.ts";

const config = loadConfigOrExit();

// Logs go to stderr as JSON; stdout carries only the startup line.
const log = pino({ level: config.logLevel, base: { service: "meshlook-collector" } }, pino.destination(2));
let collector: RunningCollector;
try {
  collector = await startCollector(config, log);
} catch (err) {
  // e.g. the port is taken or the spool directory cannot be created; an unreachable warehouse is not fatal
  log.fatal({ err }, "collector failed to start");
  process.stderr.write(`meshlook collector failed to start: ${(err as Error).message}\n`);
  process.exit(1);
}

const where = config.sink === "duckdb" ? `DuckDB ${config.duckdbPath}` : `Snowflake ${config.snowflake.account}/${config.snowflake.database}.${config.snowflake.schema}`;
const auth =
  collector.auth.mode === "disabled"
    ? "ingest auth DISABLED"
    : collector.auth.generatedFile
      ? `ingest token ${collector.auth.created ? "generated in" : "read from"} ${collector.auth.generatedFile}`
      : "ingest tokens from configuration";
const r = collector.read;
const read =
  r.mode === "off"
    ? "read API off"
    : r.mode === "open"
      ? `dashboard ${collector.url}/ui/ (read auth DISABLED)`
      : `dashboard ${collector.url}/ui/, reader tokens ${r.generated ? (r.created ? "generated in " : "read from ") : "from "}${r.file}`;
const metricsAt = collector.metricsUrl === collector.url ? "" : `; metrics on ${collector.metricsUrl}`;
process.stdout.write(`meshlook collector listening on ${listeningOn()}${metricsAt}; spool ${config.spoolDir}; warehouse ${where}; ${auth}; ${read}\n`);

/** The socket's own address: the port really bound (MESHLOOK_PORT=0 picks one) and, for a wildcard host, that it is one. */
function listeningOn(): string {
  const a = collector.app.server.address() as AddressInfo | null;
  if (!a) return collector.url;
  const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
  const wildcard = a.address === "0.0.0.0" || a.address === "::" ? ` (all ${a.address === "::" ? "" : "IPv4 "}interfaces)` : "";
  return `http://${host}:${a.port}${wildcard}`;
}

/** What this run did, for the last log line: an operator reading it knows the final load happened. */
async function tally() {
  const count = async (c: { get(): Promise<{ values: { value: number }[] }> }) => (await c.get()).values.reduce((n, v) => n + v.value, 0);
  const m = collector.metrics;
  return {
    summariesAccepted: await count(m.accepted),
    summariesLoaded: await count(m.summariesLoaded),
    rowsLoaded: await count(m.rowsLoaded),
    spoolBytesLeft: collector.spool.bytes,
  };
}

let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "shutting down: finishing in-flight requests and loading the spool");
  const force = setTimeout(() => {
    log.error("graceful shutdown timed out; exiting (the spool keeps what was not loaded)");
    process.exit(1);
  }, config.shutdownTimeoutS * 1000);
  force.unref();
  collector.close().then(
    async () => {
      const t = await tally();
      const left = t.spoolBytesLeft > 0 ? `; ${t.spoolBytesLeft} spool bytes left for the next start (warehouse unreachable?)` : "; spool empty";
      log.info({ signal, ...t }, `stopped: ${t.summariesLoaded} summaries (${t.rowsLoaded} rows) loaded since start, ${t.summariesAccepted} accepted${left}`);
      log.flush();
      process.exit(0);
    },
    (err) => {
      log.error({ err }, "shutdown failed");
      process.exit(1);
    },
  );
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
