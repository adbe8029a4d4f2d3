// `npm start`: the collector process. Reads settings (environment + optional MESHLOOK_CONFIG file),
// starts the pipeline, prints one line saying where it listens and where data goes, and shuts down
// gracefully on SIGTERM/SIGINT.
import pino from "pino";
import { loadConfigOrExit } from "./config.ts";
import { startCollector } from "./collector.ts";

const config = loadConfigOrExit();

// Logs go to stderr as JSON; stdout carries only the startup line.
const log = pino({ level: config.logLevel, base: { service: "meshlook-collector" } }, pino.destination(2));
let collector;
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
  r.mode === "off" ? "read API off" : r.mode === "open" ? `dashboard ${collector.url}/ui/ (read auth DISABLED)` : `dashboard ${collector.url}/ui/, reader tokens ${r.generated ? (r.created ? "generated in " : "read from ") : "from "}${r.file}`;
const metricsAt = collector.metricsUrl === collector.url ? "" : `; metrics on ${collector.metricsUrl}`;
process.stdout.write(`meshlook collector listening on ${collector.url}${metricsAt}; spool ${config.spoolDir}; warehouse ${where}; ${auth}; ${read}\n`);

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
    () => process.exit(0),
    (err) => {
      log.error({ err }, "shutdown failed");
      process.exit(1);
    },
  );
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
