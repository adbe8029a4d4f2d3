// Collector settings: defaults in one factory, sources (environment, optional MESHLOOK_CONFIG file),
// and validation that gathers every problem, each naming its setting, before the collector starts.
import { readFileSync } from "node:fs";
import { getHeapStatistics } from "node:v8";
import { join, resolve } from "node:path";
import YAML from "yaml";
import type { RemoteWriteSettings } from "./remote-write/exporter.ts";
import { parseExternalLabels, parseHeaders } from "./remote-write/settings.ts";
import { DEFAULT_HOURLY_GRACE_MS, DEFAULT_LOOKBACK_MS, DEFAULT_MAX_HOURS_PER_LOAD } from "./sink/hourly.ts";
import { DEFAULT_RETENTION, checkRetention, type RetentionPolicy } from "./retention.ts";
import { SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S, checkSnowflakeSettings } from "./sink/snowflake-settings.ts";

export type SinkKind = "duckdb" | "snowflake";
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export interface SnowflakeSettings {
  account?: string;
  user?: string;
  role?: string;
  warehouse?: string;
  database?: string;
  schema?: string;
  privateKeyFile?: string;
  privateKeyPassphraseFile?: string;
  authenticator: "SNOWFLAKE_JWT" | "SNOWFLAKE";
  password?: string;
  accessUrl?: string;
  /** Seconds one connect (login) may take before the attempt is abandoned and retried later (default 20). */
  connectTimeoutS?: number;
}

export interface CollectorConfig {
  host: string;
  port: number;
  dataDir: string;
  spoolDir: string;
  /** Above this many spooled-but-unloaded bytes, ingest answers 503 + Retry-After. */
  spoolMaxBytes: number;
  /** A segment is sealed (and a new one opened) once it grows past this. */
  spoolSegmentBytes: number;
  sink: SinkKind;
  duckdbPath: string;
  /** Unset, it follows the sink: DUCKDB_DEFAULT_LOAD_INTERVAL_S or SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S. */
  loadIntervalS: number;
  /** How long after its end an hour is closed and compacted into mesh_traffic_hour (late summaries' margin). */
  hourlyGraceS: number;
  /** Most hours compacted after one load, oldest first; 0 turns the hourly rollup off. */
  hourlyMaxHoursPerLoad: number;
  /** How far back (hours) the stale-hour search of a compaction looks. */
  hourlyLookbackH: number;
  /** Warehouse retention (collector/retention.ts); minuteDays 0 keeps everything. */
  retention: RetentionPolicy;
  ingestTokens: string[];
  ingestTokensFile?: string;
  authDisabled: boolean;
  /** Read API and dashboard (collector/read/); reader tokens are separate from ingest tokens. */
  readApi: boolean;
  readerTokensFile?: string;
  readAuthDisabled: boolean;
  /** Take the caller's SPIFFE ID from x-forwarded-client-cert (set only behind the collector's own sidecar). */
  trustXfcc: boolean;
  /** Separate port for /metrics; unset, /metrics is served on the ingest port. */
  metricsPort?: number;
  /** Ingest requests per minute per caller identity; 0 = unlimited. */
  rateLimitPerMinute: number;
  /** Oldest a summary window may start before it is received (s); 0 = no bound. */
  maxWindowAgeS: number;
  /** Latest a summary window may end after it is received (s, clock skew); 0 = no bound. */
  maxWindowAheadS: number;
  /** Resident memory (bytes) at which ingest sheds load with 503; 0 = no check. */
  maxRssBytes: number;
  /** V8 heap in use (bytes) at which ingest sheds load with 503; 0 = no check. */
  maxHeapUsedBytes: number;
  /**
   * Memory (bytes, estimated) ingest may hold for acknowledged summaries awaiting load: their folds and
   * the keys that let a retry be answered without spooling it again. Beyond it, summaries are spooled
   * without either and load from disk.
   */
  maxHeldBytes: number;
  maxBodyBytes: number;
  /** Longest a request (headers and body) may take to arrive; a slower one is answered 408 and closed. */
  requestTimeoutS: number;
  /** Event-loop delay beyond which ingest answers 503 (@fastify/under-pressure). */
  maxEventLoopDelayMs: number;
  /** Longest a graceful shutdown waits for in-flight requests and the final load. */
  shutdownTimeoutS: number;
  logLevel: LogLevel;
  snowflake: SnowflakeSettings;
  /** Prometheus remote write (docs/prometheus.md); off while its url is empty. */
  remoteWrite: RemoteWriteSettings;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid collector configuration:\n  - ${problems.join("\n  - ")}`);
    this.name = "ConfigError";
  }
}

type Raw = string | number | boolean | undefined;
/** Parses a raw value; throws an Error whose message says what is wrong (the caller adds the name). */
type Parse<T> = (raw: Raw) => T;

interface Setting {
  /** Environment suffix after MESHLOOK_; the file key is its lower-case form. */
  env: string;
  doc: string;
  default: string;
  /** Parses and stores the value; returns the problem, if any. */
  apply(c: CollectorConfig, raw: Raw): string | undefined;
}

function setting<T>(env: string, doc: string, def: string, parse: Parse<T>, set: (c: CollectorConfig, v: T) => void): Setting {
  return {
    env,
    doc,
    default: def,
    apply(c, raw) {
      try {
        set(c, parse(raw));
        return undefined;
      } catch (err) {
        return (err as Error).message;
      }
    },
  };
}

const str: Parse<string> = (raw) => String(raw ?? "").trim();
const int =
  (min: number, max: number): Parse<number> =>
  (raw) => {
    const n = typeof raw === "number" ? raw : /^\s*-?\d+\s*$/.test(String(raw)) ? Number(raw) : NaN;
    if (!Number.isSafeInteger(n)) throw new Error(`must be an integer, got ${JSON.stringify(raw)}`);
    if (n < min || n > max) throw new Error(`must be between ${min} and ${max}, got ${n}`);
    return n;
  };
const bool: Parse<boolean> = (raw) => {
  const s = String(raw).trim().toLowerCase();
  if (s === "true" || s === "1") return true;
  if (s === "false" || s === "0" || s === "") return false;
  throw new Error(`must be true or false, got ${JSON.stringify(raw)}`);
};
const oneOf =
  <T extends string>(...allowed: T[]): Parse<T> =>
  (raw) => {
    const s = String(raw).trim();
    if (!(allowed as string[]).includes(s)) throw new Error(`must be one of ${allowed.join(", ")}, got ${JSON.stringify(raw)}`);
    return s as T;
  };
const optionalPort: Parse<number | undefined> = (raw) => (String(raw ?? "").trim() === "" ? undefined : int(0, 65535)(raw));
const list: Parse<string[]> = (raw) =>
  String(raw)
    .split(",")
    .map((t) => t.trim())
    .filter((t) => t !== "");

const strSetting = (env: string, doc: string, def: string, set: (c: CollectorConfig, v: string) => void) => setting(env, doc, def, str, set);

const MiB = 1 << 20;
/**
 * Shed before V8 runs out of heap: near its limit (`--max-old-space-size`, or V8's default for the
 * machine) the process spends its time in garbage collection and then aborts with "JavaScript heap out
 * of memory", losing every request in flight; 10 % short of it, the acknowledged ones are safe on disk.
 */
const DEFAULT_MAX_HEAP_USED_BYTES = Math.floor(getHeapStatistics().heap_size_limit * 0.9);

/** DuckDB loads are cheap, so the embedded warehouse is kept fresh; Snowflake's default is its own. */
export const DUCKDB_DEFAULT_LOAD_INTERVAL_S = 10;

/** Every setting, in the order of the reference table in docs/collector.md. */
export const SETTINGS: readonly Setting[] = [
  strSetting("HOST", "address to listen on", "0.0.0.0", (c, v) => (c.host = v)),
  setting("PORT", "TCP port to listen on (0 = any free port)", "8080", int(0, 65535), (c, v) => (c.port = v)),
  strSetting("DATA_DIR", "directory for the spool, the DuckDB file and a generated token", "./data", (c, v) => (c.dataDir = v)),
  strSetting("SPOOL_DIR", "spool segment directory", "<data>/spool", (c, v) => (c.spoolDir = v)),
  setting("SPOOL_MAX_BYTES", "unloaded spool bytes above which ingest answers 503", String(1024 * MiB), int(MiB, Number.MAX_SAFE_INTEGER), (c, v) => (c.spoolMaxBytes = v)),
  setting("SPOOL_SEGMENT_BYTES", "segment size at which the spool starts a new segment", String(64 * MiB), int(64 * 1024, 1024 * MiB), (c, v) => (c.spoolSegmentBytes = v)),
  setting("SINK", "warehouse: duckdb or snowflake", "duckdb", oneOf<SinkKind>("duckdb", "snowflake"), (c, v) => (c.sink = v)),
  strSetting("DUCKDB_PATH", "DuckDB database file", "<data>/meshlook.duckdb", (c, v) => (c.duckdbPath = v)),
  setting(
    "LOAD_INTERVAL_S",
    "seconds between warehouse loads",
    `${DUCKDB_DEFAULT_LOAD_INTERVAL_S} (DuckDB), ${SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S} (Snowflake)`,
    int(1, 3600),
    (c, v) => (c.loadIntervalS = v),
  ),
  setting(
    "HOURLY_GRACE_S",
    "seconds after its end before an hour is closed and compacted into mesh_traffic_hour",
    String(DEFAULT_HOURLY_GRACE_MS / 1000),
    int(0, 86_400),
    (c, v) => (c.hourlyGraceS = v),
  ),
  setting(
    "HOURLY_MAX_HOURS_PER_LOAD",
    "most closed hours compacted after one load, oldest first (0 = no hourly rollup)",
    String(DEFAULT_MAX_HOURS_PER_LOAD),
    int(0, 10_000),
    (c, v) => (c.hourlyMaxHoursPerLoad = v),
  ),
  setting(
    "HOURLY_LOOKBACK_H",
    "hours back from now that compaction looks for changed hours; older hours keep their hourly rows",
    String(DEFAULT_LOOKBACK_MS / 3_600_000),
    int(1, 24 * 36_500),
    (c, v) => (c.hourlyLookbackH = v),
  ),
  setting(
    "RETENTION_MINUTE_DAYS",
    "days of mesh_traffic_minute and mesh_sidecar_loss rows kept (0 = keep everything, no pruning)",
    String(DEFAULT_RETENTION.minuteDays),
    int(0, 36_500),
    (c, v) => (c.retention.minuteDays = v),
  ),
  setting("RETENTION_HOUR_DAYS", "days of mesh_traffic_hour rows kept", String(DEFAULT_RETENTION.hourDays), int(1, 36_500), (c, v) => (c.retention.hourDays = v)),
  setting(
    "RETENTION_LEDGER_DAYS",
    "days after its window a summary can still load (at least 2); its mesh_load_ledger row is kept one day longer, and ingest refuses windows that ended more than a day less than this ago",
    String(DEFAULT_RETENTION.ledgerDays),
    int(1, 36_500),
    (c, v) => (c.retention.ledgerDays = v),
  ),
  setting("INGEST_TOKENS", "comma-separated bearer tokens accepted for ingest", "", list, (c, v) => (c.ingestTokens = v)),
  strSetting("INGEST_TOKENS_FILE", "file with one token per line, re-read when it changes", "", (c, v) => (c.ingestTokensFile = v || undefined)),
  setting("AUTH_DISABLED", "accept ingest without a token (demo only; logged as a warning)", "false", bool, (c, v) => (c.authDisabled = v)),
  setting("READ_API", "serve the read API (/api/v1) and the dashboard (/ui); DuckDB sink only", "true", bool, (c, v) => (c.readApi = v)),
  strSetting(
    "READER_TOKENS_FILE",
    "reader tokens with their namespace scopes, re-read when it changes (docs/read-api.md)",
    "<data>/reader-tokens (generated)",
    (c, v) => (c.readerTokensFile = v || undefined),
  ),
  setting("READ_AUTH_DISABLED", "read without a token, every namespace (demo only; logged as a warning)", "false", bool, (c, v) => (c.readAuthDisabled = v)),
  setting(
    "TRUST_XFCC",
    "take the caller's identity from x-forwarded-client-cert; only behind the collector's own Istio sidecar with STRICT mTLS (docs/security.md)",
    "false",
    bool,
    (c, v) => (c.trustXfcc = v),
  ),
  setting("METRICS_PORT", "separate TCP port for /metrics (unset: served on the ingest port; 0 = any free port)", "", optionalPort, (c, v) => (c.metricsPort = v)),
  setting(
    "RATE_LIMIT_PER_MIN",
    "ingest requests per minute one caller identity may make (0 = unlimited; meant with MESHLOOK_TRUST_XFCC, where a caller is one service account)",
    "0",
    int(0, 10_000_000),
    (c, v) => (c.rateLimitPerMinute = v),
  ),
  setting(
    "MAX_WINDOW_AGE_S",
    "oldest a summary window may start before it is received; older ones are refused (0 = no bound; with retention on, windows that ended more than MESHLOOK_RETENTION_LEDGER_DAYS - 1 days ago are refused regardless)",
    "0",
    int(0, 30 * 86_400),
    (c, v) => (c.maxWindowAgeS = v),
  ),
  setting("MAX_WINDOW_AHEAD_S", "latest a summary window may end after it is received, for clock skew (0 = no bound)", "0", int(0, 86_400), (c, v) => (c.maxWindowAheadS = v)),
  setting("MAX_RSS_BYTES", "resident memory at which ingest answers 503 (0 = no check)", "0", int(0, Number.MAX_SAFE_INTEGER), (c, v) => (c.maxRssBytes = v)),
  setting(
    "MAX_HEAP_USED_BYTES",
    "V8 heap in use at which ingest answers 503 (0 = no check); default 90 % of the heap limit",
    String(DEFAULT_MAX_HEAP_USED_BYTES),
    int(0, Number.MAX_SAFE_INTEGER),
    (c, v) => (c.maxHeapUsedBytes = v),
  ),
  setting(
    "MAX_HELD_BYTES",
    "memory ingest may hold for summaries awaiting load (folds, retry keys); beyond it they load from disk",
    String(256 * MiB),
    int(0, Number.MAX_SAFE_INTEGER),
    (c, v) => (c.maxHeldBytes = v),
  ),
  setting("MAX_BODY_BYTES", "largest accepted summary body", String(4 * MiB), int(1024, 256 * MiB), (c, v) => (c.maxBodyBytes = v)),
  setting("REQUEST_TIMEOUT_S", "longest time a request (headers and body) may take to arrive", "30", int(1, 600), (c, v) => (c.requestTimeoutS = v)),
  setting(
    "MAX_EVENT_LOOP_DELAY_MS",
    "mean event-loop delay over a 1 s sample above which ingest answers 503 (a sample without any loop tick, a stall of about a second, counts as infinite whatever this says)",
    "1000",
    int(10, 60_000),
    (c, v) => (c.maxEventLoopDelayMs = v),
  ),
  setting("SHUTDOWN_TIMEOUT_S", "longest graceful shutdown (in-flight requests + final load)", "30", int(1, 3600), (c, v) => (c.shutdownTimeoutS = v)),
  setting("LOG_LEVEL", "pino log level", "info", oneOf<LogLevel>("fatal", "error", "warn", "info", "debug", "trace", "silent"), (c, v) => (c.logLevel = v)),
  strSetting("SNOWFLAKE_ACCOUNT", "Snowflake account identifier", "", (c, v) => (c.snowflake.account = v || undefined)),
  strSetting("SNOWFLAKE_USER", "Snowflake user", "", (c, v) => (c.snowflake.user = v || undefined)),
  strSetting("SNOWFLAKE_ROLE", "Snowflake role", "", (c, v) => (c.snowflake.role = v || undefined)),
  strSetting("SNOWFLAKE_WAREHOUSE", "Snowflake virtual warehouse", "", (c, v) => (c.snowflake.warehouse = v || undefined)),
  strSetting("SNOWFLAKE_DATABASE", "Snowflake database", "", (c, v) => (c.snowflake.database = v || undefined)),
  strSetting("SNOWFLAKE_SCHEMA", "Snowflake schema", "", (c, v) => (c.snowflake.schema = v || undefined)),
  strSetting("SNOWFLAKE_PRIVATE_KEY_FILE", "PEM private key for key-pair (JWT) auth", "", (c, v) => (c.snowflake.privateKeyFile = v || undefined)),
  strSetting("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE", "file holding the private key passphrase", "", (c, v) => (c.snowflake.privateKeyPassphraseFile = v || undefined)),
  setting(
    "SNOWFLAKE_AUTHENTICATOR",
    "SNOWFLAKE_JWT (key pair) or SNOWFLAKE (password, dev only)",
    "SNOWFLAKE_JWT",
    oneOf("SNOWFLAKE_JWT", "SNOWFLAKE"),
    (c, v) => (c.snowflake.authenticator = v),
  ),
  strSetting("SNOWFLAKE_PASSWORD", "password when the authenticator is SNOWFLAKE", "", (c, v) => (c.snowflake.password = v || undefined)),
  strSetting("SNOWFLAKE_ACCESS_URL", "override of the account URL (tests, private link)", "", (c, v) => (c.snowflake.accessUrl = v || undefined)),
  setting(
    "SNOWFLAKE_CONNECT_TIMEOUT_S",
    "seconds a Snowflake login may take before it is abandoned and retried next load interval",
    "20",
    int(1, 600),
    (c, v) => (c.snowflake.connectTimeoutS = v),
  ),
  // Prometheus remote write: docs/prometheus.md
  strSetting("REMOTE_WRITE_URL", "Prometheus remote-write endpoint (empty = off), e.g. http://prometheus:9090/api/v1/write", "", (c, v) => (c.remoteWrite.url = v)),
  setting("REMOTE_WRITE_HEADERS", "extra request headers: Name=value pairs separated by commas, or a JSON object", "", parseHeaders, (c, v) => (c.remoteWrite.headers = v)),
  strSetting("REMOTE_WRITE_BEARER_TOKEN_FILE", "file holding a bearer token (re-read for every request)", "", (c, v) => (c.remoteWrite.bearerTokenFile = v || undefined)),
  strSetting("REMOTE_WRITE_TLS_CA_FILE", "PEM CA bundle that verifies the endpoint (default: Node's CAs)", "", (c, v) => (c.remoteWrite.caFile = v || undefined)),
  strSetting("REMOTE_WRITE_TLS_CERT_FILE", "PEM client certificate (mTLS), with REMOTE_WRITE_TLS_KEY_FILE", "", (c, v) => (c.remoteWrite.certFile = v || undefined)),
  strSetting("REMOTE_WRITE_TLS_KEY_FILE", "PEM client key (mTLS)", "", (c, v) => (c.remoteWrite.keyFile = v || undefined)),
  setting("REMOTE_WRITE_TLS_INSECURE_SKIP_VERIFY", "accept any server certificate (testing only)", "false", bool, (c, v) => (c.remoteWrite.insecureSkipVerify = v)),
  setting("REMOTE_WRITE_TIMEOUT_S", "longest a remote-write request may take", "30", int(1, 600), (c, v) => (c.remoteWrite.timeoutS = v)),
  setting("REMOTE_WRITE_INTERVAL_S", "seconds between writes of every series (the sample interval Prometheus sees)", "10", int(1, 300), (c, v) => (c.remoteWrite.intervalS = v)),
  setting(
    "REMOTE_WRITE_MAX_SERIES",
    "label sets kept; further ones fold into the overflow series of their reporter",
    "20000",
    int(1, 10_000_000),
    (c, v) => (c.remoteWrite.maxSeries = v),
  ),
  setting(
    "REMOTE_WRITE_SERIES_IDLE_S",
    "a label set no summary touched for this long stops being written",
    "3600",
    int(60, 30 * 86_400),
    (c, v) => (c.remoteWrite.seriesIdleS = v),
  ),
  setting(
    "REMOTE_WRITE_MAX_LAG_BYTES",
    "spool bytes the exporter may hold back beyond the warehouse load",
    String(256 * MiB),
    int(MiB, Number.MAX_SAFE_INTEGER),
    (c, v) => (c.remoteWrite.maxLagBytes = v),
  ),
  strSetting(
    "REMOTE_WRITE_INSTANCE",
    "value of the meshlook_collector label (default: hostname plus a random suffix, kept with the state)",
    "",
    (c, v) => (c.remoteWrite.instance = v),
  ),
  setting(
    "REMOTE_WRITE_EXTERNAL_LABELS",
    "labels added to every series: name=value pairs separated by commas, or a JSON object",
    "",
    parseExternalLabels,
    (c, v) => (c.remoteWrite.externalLabels = v),
  ),
  setting(
    "REMOTE_WRITE_READY_MAX_LAG_S",
    "/readyz fails while remote write lags more than this (0 = readiness ignores it)",
    "0",
    int(0, 86_400),
    (c, v) => (c.remoteWrite.readyMaxLagS = v),
  ),
];

/** The defaults, before any source is applied; derived paths are filled in by loadConfig. */
export function defaultConfig(): CollectorConfig {
  return {
    host: "0.0.0.0",
    port: 8080,
    dataDir: "./data",
    spoolDir: "",
    spoolMaxBytes: 1024 * MiB,
    spoolSegmentBytes: 64 * MiB,
    sink: "duckdb",
    duckdbPath: "",
    loadIntervalS: DUCKDB_DEFAULT_LOAD_INTERVAL_S,
    hourlyGraceS: DEFAULT_HOURLY_GRACE_MS / 1000,
    hourlyMaxHoursPerLoad: DEFAULT_MAX_HOURS_PER_LOAD,
    hourlyLookbackH: DEFAULT_LOOKBACK_MS / 3_600_000,
    retention: { ...DEFAULT_RETENTION },
    ingestTokens: [],
    authDisabled: false,
    readApi: true,
    readAuthDisabled: false,
    trustXfcc: false,
    rateLimitPerMinute: 0,
    maxWindowAgeS: 0,
    maxWindowAheadS: 0,
    maxRssBytes: 0,
    maxHeapUsedBytes: DEFAULT_MAX_HEAP_USED_BYTES,
    maxHeldBytes: 256 * MiB,
    maxBodyBytes: 4 * MiB,
    requestTimeoutS: 30,
    maxEventLoopDelayMs: 1000,
    shutdownTimeoutS: 30,
    logLevel: "info",
    snowflake: { authenticator: "SNOWFLAKE_JWT", connectTimeoutS: 20 },
    remoteWrite: {
      url: "",
      headers: {},
      insecureSkipVerify: false,
      timeoutS: 30,
      intervalS: 10,
      maxSeries: 20_000,
      seriesIdleS: 3600,
      maxLagBytes: 256 * MiB,
      instance: "",
      externalLabels: {},
      readyMaxLagS: 0,
    },
  };
}

/** Cross-setting checks; returns every problem found, each naming its setting. */
export function validate(c: CollectorConfig): string[] {
  const problems: string[] = [];
  // The sink's own check, which also opens the key file: a missing, unreadable or wrongly encrypted key
  // stops the collector at start, naming the setting, instead of failing every load later.
  if (c.sink === "snowflake") problems.push(...checkSnowflakeSettings(c.snowflake));
  problems.push(...checkRetention(c.retention));
  if (c.authDisabled && (c.ingestTokens.length > 0 || c.ingestTokensFile)) {
    problems.push("MESHLOOK_AUTH_DISABLED: true contradicts MESHLOOK_INGEST_TOKENS / MESHLOOK_INGEST_TOKENS_FILE being set");
  }
  if (c.readAuthDisabled && c.readerTokensFile) {
    problems.push("MESHLOOK_READ_AUTH_DISABLED: true contradicts MESHLOOK_READER_TOKENS_FILE being set");
  }
  if (c.metricsPort !== undefined && c.metricsPort !== 0 && c.metricsPort === c.port) problems.push("MESHLOOK_METRICS_PORT: must differ from MESHLOOK_PORT");
  problems.push(...checkRemoteWrite(c));
  return problems;
}

function checkRemoteWrite(c: CollectorConfig): string[] {
  const rw = c.remoteWrite;
  if (!rw.url) return [];
  const problems: string[] = [];
  let url: URL | undefined;
  try {
    url = new URL(rw.url);
  } catch {
    problems.push(`MESHLOOK_REMOTE_WRITE_URL: ${JSON.stringify(rw.url)} is not a URL`);
  }
  if (url && url.protocol !== "http:" && url.protocol !== "https:") problems.push(`MESHLOOK_REMOTE_WRITE_URL: must be http:// or https://, got ${url.protocol}`);
  // Both would send two Authorization headers (Prometheus refuses the same combination).
  if (rw.bearerTokenFile && Object.keys(rw.headers).some((h) => h.toLowerCase() === "authorization")) {
    problems.push("MESHLOOK_REMOTE_WRITE_HEADERS: an Authorization header contradicts MESHLOOK_REMOTE_WRITE_BEARER_TOKEN_FILE");
  }
  if (!rw.certFile !== !rw.keyFile) problems.push("MESHLOOK_REMOTE_WRITE_TLS_CERT_FILE and MESHLOOK_REMOTE_WRITE_TLS_KEY_FILE must be set together");
  // The held-back segments count against the spool limit; more than half of it would let a slow endpoint
  // make ingest refuse summaries.
  if (rw.maxLagBytes > c.spoolMaxBytes / 2) {
    problems.push(`MESHLOOK_REMOTE_WRITE_MAX_LAG_BYTES: ${rw.maxLagBytes} must be at most half of MESHLOOK_SPOOL_MAX_BYTES (${c.spoolMaxBytes})`);
  }
  return problems;
}

/**
 * Builds the configuration: defaults, then the MESHLOOK_CONFIG file (JSON or YAML, keys as the
 * environment names in lower case without the prefix), then MESHLOOK_* environment variables, which
 * win. Throws ConfigError listing every problem at once.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): CollectorConfig {
  const c = defaultConfig();
  const problems: string[] = [];
  const byKey = new Map(SETTINGS.map((s) => [s.env.toLowerCase(), s]));
  /** Settings some source set, so defaults that depend on other settings apply only to the rest. */
  const given = new Set<string>();
  if (env.MESHLOOK_CONFIG) {
    let doc: unknown;
    try {
      doc = YAML.parse(readFileSync(env.MESHLOOK_CONFIG, "utf8"));
    } catch (err) {
      problems.push(`MESHLOOK_CONFIG: cannot read ${env.MESHLOOK_CONFIG}: ${(err as Error).message}`);
    }
    if (doc !== undefined && doc !== null && (typeof doc !== "object" || Array.isArray(doc))) {
      problems.push(`MESHLOOK_CONFIG: ${env.MESHLOOK_CONFIG} must hold a mapping of settings`);
    } else if (doc) {
      for (const [key, value] of Object.entries(doc)) {
        const s = byKey.get(key);
        if (!s) {
          problems.push(`${key} (in ${env.MESHLOOK_CONFIG}): unknown setting`);
          continue;
        }
        given.add(s.env);
        const raw = Array.isArray(value) ? value.join(",") : (value as Raw);
        const err = s.apply(c, raw);
        if (err) problems.push(`${key} (in ${env.MESHLOOK_CONFIG}): ${err}`);
      }
    }
  }
  for (const s of SETTINGS) {
    const raw = env[`MESHLOOK_${s.env}`];
    if (raw === undefined) continue;
    given.add(s.env);
    const err = s.apply(c, raw);
    if (err) problems.push(`MESHLOOK_${s.env}: ${err}`);
  }
  if (!given.has("LOAD_INTERVAL_S") && c.sink === "snowflake") c.loadIntervalS = SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S;
  c.dataDir = resolve(c.dataDir);
  c.spoolDir = c.spoolDir ? resolve(c.spoolDir) : join(c.dataDir, "spool");
  c.duckdbPath = c.duckdbPath ? resolve(c.duckdbPath) : join(c.dataDir, "meshlook.duckdb");
  problems.push(...validate(c));
  if (problems.length > 0) throw new ConfigError(problems);
  return c;
}

/** loadConfig for a command (`npm start`, `npm run quarantine`): a settings problem is printed and exits 2. */
export function loadConfigOrExit(): CollectorConfig {
  try {
    return loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
}
