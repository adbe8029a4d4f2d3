// The warehouse tables, defined once with logical column types. Both sinks (DuckDB, Snowflake) create
// and upgrade their schema from MIGRATIONS below, rendered for their dialect; the LookML check reads the
// same definitions. Column names are the contract with looker/ (docs/schema.md): never rename one in
// place — add a numbered migration.

/** Logical column types and how each dialect spells them. */
export type LogicalType = "timestamp" | "string" | "int32" | "int64" | "float64" | "binary";
export type Dialect = "duckdb" | "snowflake";

const TYPE_NAMES: Record<Dialect, Record<LogicalType, string>> = {
  duckdb: { timestamp: "TIMESTAMP", string: "VARCHAR", int32: "INTEGER", int64: "BIGINT", float64: "DOUBLE", binary: "BLOB" },
  snowflake: { timestamp: "TIMESTAMP_NTZ", string: "VARCHAR", int32: "INTEGER", int64: "BIGINT", float64: "FLOAT", binary: "BINARY" },
};

export interface Column {
  name: string;
  type: LogicalType;
  nullable?: boolean;
  doc: string;
}

export interface Table {
  name: string;
  doc: string;
  columns: readonly Column[];
  primaryKey?: readonly string[];
}

/** The string dimensions of the series key, in wire/schema order (docs/schema.md). */
export const STRING_DIMENSIONS = [
  "reporter",
  "source_principal",
  "source_workload",
  "source_namespace",
  "source_canonical_service",
  "source_canonical_revision",
  "source_cluster",
  "destination_principal",
  "destination_service",
  "destination_workload",
  "destination_namespace",
  "destination_canonical_service",
  "destination_canonical_revision",
  "destination_cluster",
  "request_protocol",
  "grpc_status",
  "response_flags",
  "connection_security_policy",
  "end_user_principal",
] as const;
export type StringDimension = (typeof STRING_DIMENSIONS)[number];

/** Every series dimension (the fact key minus `minute`): the string ones plus `response_code`. */
export const DIMENSIONS = [...STRING_DIMENSIONS.slice(0, 15), "response_code", ...STRING_DIMENSIONS.slice(15)] as const;
export type Dimension = (typeof DIMENSIONS)[number];

/** Additive measures of a fact row (SUM them); min/max and the sketch are listed separately. */
export const SUM_MEASURES = ["requests", "errors", "request_bytes", "response_bytes", "latency_sum_us"] as const;
export type SumMeasure = (typeof SUM_MEASURES)[number];

const dimensionDocs: Record<Dimension, string> = {
  reporter: "`destination` (inbound, server side) or `source` (outbound, client side)",
  source_principal: "SPIFFE ID of the mTLS peer; `unknown` for plaintext",
  source_workload: "source workload name",
  source_namespace: "source workload namespace",
  source_canonical_service: "source canonical service",
  source_canonical_revision: "source canonical revision",
  source_cluster: "source cluster id",
  destination_principal: "SPIFFE ID of the server",
  destination_service: "destination service host",
  destination_workload: "destination workload name",
  destination_namespace: "destination workload namespace",
  destination_canonical_service: "destination canonical service",
  destination_canonical_revision: "destination canonical revision",
  destination_cluster: "destination cluster id",
  request_protocol: "`http` or `grpc`",
  response_code: "HTTP status; 0 when no response was sent",
  grpc_status: "gRPC status as a decimal string; `-` when not gRPC or absent",
  response_flags: "Envoy response flags, short form, comma separated; `-` when none",
  connection_security_policy: "`mutual_tls`, `none` or `unknown`",
  end_user_principal: "JWT principal (`iss/sub`) when enabled; else `unknown`",
};

export const FACT_TABLE: Table = {
  name: "mesh_traffic_minute",
  doc: "One row per (minute, series) per load; consumers always aggregate.",
  columns: [
    { name: "minute", type: "timestamp", doc: "start of the UTC minute the requests ended in" },
    ...DIMENSIONS.map((d): Column => ({ name: d, type: d === "response_code" ? "int32" : "string", doc: dimensionDocs[d] })),
    { name: "requests", type: "int64", doc: "requests that ended in this minute" },
    { name: "errors", type: "int64", doc: "requests counted as errors" },
    { name: "request_bytes", type: "int64", doc: "sum of request sizes" },
    { name: "response_bytes", type: "int64", doc: "sum of response sizes" },
    { name: "latency_sum_us", type: "int64", doc: "sum of request durations, µs" },
    { name: "latency_min_us", type: "int64", doc: "smallest request duration, µs" },
    { name: "latency_max_us", type: "int64", doc: "largest request duration, µs" },
    { name: "latency_sketch", type: "string", doc: "latency sketch JSON {s,z,o,c}" },
    { name: "loaded_at", type: "timestamp", doc: "when this row was written" },
  ],
};

/** The measure columns a minute row and an hourly row share (counters, extremes, sketch). */
const MEASURE_COLUMNS = FACT_TABLE.columns.filter((c) => c.name !== "minute" && !DIMENSIONS.includes(c.name as Dimension) && c.name !== "loaded_at");

export const HOUR_TABLE: Table = {
  name: "mesh_traffic_hour",
  doc: "One row per (hour, series), compacted from mesh_traffic_minute once the hour is closed; recompacted when minute rows arrive late.",
  columns: [
    { name: "hour", type: "timestamp", doc: "start of the UTC hour" },
    ...FACT_TABLE.columns.filter((c) => DIMENSIONS.includes(c.name as Dimension)),
    ...MEASURE_COLUMNS,
    { name: "minute_rows", type: "int64", doc: "minute rows this row was compacted from (how staleness is detected)" },
    { name: "compacted_at", type: "timestamp", doc: "when this row was compacted" },
  ],
};

/** mesh_load_ledger as migration 1 created it; migration 6 added `caller` (LEDGER_TABLE). */
const LEDGER_TABLE_V1: Table = {
  name: "mesh_load_ledger",
  doc: "One row per summary ever loaded; a summary whose (producer_id, seq) is here is never loaded again.",
  columns: [
    { name: "producer_id", type: "string", doc: "the sidecar instance that produced the summary" },
    { name: "seq", type: "int64", doc: "the producer's summary sequence number" },
    { name: "window_start", type: "timestamp", doc: "start of the summary's aggregation window" },
    { name: "window_end", type: "timestamp", doc: "end of the summary's aggregation window" },
    { name: "series", type: "int32", doc: "number of series in the summary" },
    { name: "requests", type: "int64", doc: "requests in the summary (audit against the fact table)" },
    { name: "loaded_at", type: "timestamp", doc: "when the summary was loaded" },
  ],
  primaryKey: ["producer_id", "seq"],
};

/** mesh_sidecar_loss as migration 2 created it; migration 6 added `caller` (LOSS_TABLE). */
const LOSS_TABLE_V2: Table = {
  name: "mesh_sidecar_loss",
  doc: "One row per loaded summary that reported a loss: windows the sidecar dropped, keys it folded into overflow.",
  columns: [
    { name: "minute", type: "timestamp", doc: "minute the reporting summary is attributed to (as its fact rows)" },
    { name: "producer_id", type: "string", doc: "the sidecar instance that reported the loss" },
    { name: "seq", type: "int64", doc: "sequence number of the reporting summary" },
    { name: "pod", type: "string", doc: "pod of the sidecar, from its Istio node id; `unknown` if it has none" },
    { name: "namespace", type: "string", doc: "namespace of the sidecar's workload; `unknown` if not known" },
    { name: "workload", type: "string", doc: "the sidecar's workload; `unknown` if not known" },
    { name: "dropped_requests", type: "int64", doc: "requests in windows dropped since the producer's previous delivered summary" },
    { name: "dropped_windows", type: "int64", doc: "windows dropped since the producer's previous delivered summary" },
    { name: "overflow_keys", type: "int64", doc: "distinct series keys folded into overflow series in this window (approximate)" },
    { name: "loaded_at", type: "timestamp", doc: "when the summary was loaded" },
  ],
  primaryKey: ["producer_id", "seq"],
};

/**
 * The `caller` of a ledger or loss row written before migration 6, and of a summary spooled or quarantined
 * before callers were recorded: who sent it is unknown, so it stands for every caller (collector/ledger.ts).
 */
export const LEGACY_CALLER = "*";

const callerColumn: Column = {
  name: "caller",
  type: "string",
  doc: "who sent the summary (collector/identity.ts ledgerIdentity): the caller's SPIFFE ID, else its token's namespace scope (`ns:<a>,<b>`), else empty; `*` for rows loaded before callers were recorded",
};

export const LEDGER_TABLE: Table = {
  ...LEDGER_TABLE_V1,
  doc: "One row per summary ever loaded; a summary whose (caller, producer_id, seq) is here (or whose (producer_id, seq) is here with caller `*`) is never loaded again.",
  columns: [...LEDGER_TABLE_V1.columns, callerColumn],
  primaryKey: ["caller", "producer_id", "seq"],
};

export const LOSS_TABLE: Table = {
  ...LOSS_TABLE_V2,
  columns: [...LOSS_TABLE_V2.columns, { ...callerColumn, doc: "who sent the reporting summary (as mesh_load_ledger.caller)" }],
  primaryKey: ["caller", "producer_id", "seq"],
};

/**
 * Migration 6 for one table: `caller` appended as the last column, existing rows `*`, the key widened to
 * it. DuckDB enforces primary keys and cannot change one in place, so the table is rebuilt, inside the
 * migration's transaction. Snowflake DDL commits on its own and its keys are informational (never
 * enforced): each statement is one that a re-run finds done (docs.snowflake.com/en/sql-reference/sql/
 * alter-table: `ADD [ COLUMN ] [ IF NOT EXISTS ] … DEFAULT …`; alter-table-column: `ALTER COLUMN … SET NOT
 * NULL`), and the declared key stays (producer_id, seq). The default stays too (alter-table-column: DROP
 * DEFAULT is not allowed on a column whose default an ALTER TABLE defined): a row inserted without a
 * caller is `*`, which is what an older collector still running in a rolling upgrade should write; this
 * collector binds the caller in every insert.
 */
function addCallerSql(before: Table, after: Table, dialect: Dialect): string[] {
  if (dialect === "snowflake") {
    return [`ALTER TABLE ${after.name} ADD COLUMN IF NOT EXISTS caller VARCHAR DEFAULT '${LEGACY_CALLER}'`, `ALTER TABLE ${after.name} ALTER COLUMN caller SET NOT NULL`];
  }
  const next = `${after.name}__v6`;
  return [
    createTableSql({ ...after, name: next }, dialect),
    `INSERT INTO ${next} SELECT ${before.columns.map((c) => c.name).join(", ")}, '${LEGACY_CALLER}' FROM ${before.name}`,
    `DROP TABLE ${before.name}`,
    `ALTER TABLE ${next} RENAME TO ${after.name}`,
  ];
}

/**
 * One row per kind of writer that must run alone: `load` (a load transaction) and `hourly` (a compaction).
 * Every such transaction starts by updating its row, so a second collector's transaction waits there
 * until the first commits — an UPDATE of the same row is the one write Snowflake documents as blocking
 * another (docs/snowflake.md, "Exactly once") — and every statement after the wait sees what it committed.
 */
export const LOCK_TABLE: Table = {
  name: "mesh_load_lock",
  doc: "Serializes loads and compactions across collector replicas; one row per kind, updated first in each transaction.",
  columns: [
    { name: "name", type: "string", doc: "`load` or `hourly`" },
    { name: "taken_by", type: "string", nullable: true, doc: "the collector (host and process) whose transaction last took the row" },
    { name: "taken_at", type: "timestamp", nullable: true, doc: "when that transaction took it" },
  ],
  primaryKey: ["name"],
};

/**
 * Seeds LOCK_TABLE's rows; a no-op when they exist, so a re-run migration (Snowflake DDL is not transactional)
 * is harmless. Two replicas seeding at the same moment on Snowflake can both insert (no enforced primary key):
 * the sink's lock UPDATE takes every row of a name, so a doubled row still serializes.
 */
export const LOCK_ROWS = ["load", "hourly"] as const;
const seedLockRowsSql = () =>
  `INSERT INTO ${LOCK_TABLE.name} (name) SELECT k.name FROM (${LOCK_ROWS.map((n) => `SELECT '${n}' AS name`).join(" UNION ALL ")}) AS k ` +
  `WHERE NOT EXISTS (SELECT 1 FROM ${LOCK_TABLE.name} AS l WHERE l.name = k.name)`;

export const OUTLIER_TABLE: Table = {
  name: "mesh_outlier",
  doc: "One row per outlier finding (collector/outliers, docs/outliers.md): open while the last detection run found it, resolved after; a finding that recurs updates its row.",
  columns: [
    { name: "finding_id", type: "string", doc: "stable identity: grain, kind, caller identity and service" },
    { name: "kind", type: "string", doc: "error_rate, latency, traffic_drop, traffic_surge, new_edge or plaintext" },
    { name: "grain", type: "string", doc: "`edge` (caller identity → service) or `service`" },
    { name: "source_principal", type: "string", nullable: true, doc: "caller identity at the edge grain; NULL at the service grain" },
    { name: "destination_service", type: "string", doc: "destination service host" },
    { name: "status", type: "string", doc: "`open` (found by the last run) or `resolved`" },
    { name: "score", type: "float64", doc: "how far past its threshold the series is (log2 of a conservative ratio; docs/outliers.md)" },
    { name: "summary", type: "string", doc: "one-line human-readable evidence" },
    { name: "recent_start", type: "timestamp", doc: "start of the recent window the finding was measured on" },
    { name: "recent_end", type: "timestamp", doc: "end (exclusive) of that window" },
    { name: "baseline_start", type: "timestamp", doc: "start of the trailing baseline it was compared with (ends at recent_start)" },
    { name: "recent_requests", type: "int64", doc: "requests of the series in the recent window" },
    { name: "baseline_requests", type: "int64", doc: "requests of the series in the baseline" },
    { name: "recent_errors", type: "int64", doc: "errors in the recent window" },
    { name: "baseline_errors", type: "int64", doc: "errors in the baseline" },
    { name: "recent_value", type: "float64", nullable: true, doc: "the compared measure in the recent window (rate, µs, requests; per kind)" },
    { name: "baseline_value", type: "float64", nullable: true, doc: "the same measure in the baseline (expected requests for traffic kinds)" },
    { name: "recent_p50_us", type: "float64", nullable: true, doc: "recent median latency, µs" },
    { name: "baseline_p50_us", type: "float64", nullable: true, doc: "baseline median latency, µs" },
    { name: "recent_p99_us", type: "float64", nullable: true, doc: "recent p99 latency, µs" },
    { name: "baseline_p99_us", type: "float64", nullable: true, doc: "baseline p99 latency, µs" },
    { name: "explore_url", type: "string", doc: "Looker explore URL pre-filtered to the series and time range" },
    { name: "first_detected_at", type: "timestamp", doc: "when this episode of the finding was first detected" },
    { name: "last_detected_at", type: "timestamp", doc: "last detection run that found it" },
    { name: "resolved_at", type: "timestamp", nullable: true, doc: "first run that no longer found it; NULL while open" },
    { name: "notified_at", type: "timestamp", nullable: true, doc: "last webhook delivery of the finding; NULL if never sent" },
  ],
  primaryKey: ["finding_id"],
};

/**
 * The read API's own pre-aggregate (collector/read/board-rollup.ts): what the dashboards group and filter by,
 * one row per (hour, series), kept current after every load from the minute rows it has not yet absorbed,
 * including the hour still in progress. Unlike mesh_traffic_hour it keeps the first and last minute (the
 * LookML rate window and first/last seen stay exact) and the sketch in a binary form merged without parsing
 * JSON. Embedded DuckDB only: the read API serves no other warehouse. As migration 7 created it; migration 9
 * added `appended_at` (BOARD_HOUR_TABLE).
 */
const BOARD_HOUR_TABLE_V7: Table = {
  name: "mesh_board_hour",
  doc: "Read API pre-aggregate (DuckDB only): one row per (hour, series) with first/last minute and a binary latency sketch; kept current after each load.",
  columns: [
    { name: "hour", type: "timestamp", doc: "start of the UTC hour" },
    ...FACT_TABLE.columns.filter((c) => DIMENSIONS.includes(c.name as Dimension)),
    ...MEASURE_COLUMNS.filter((c) => c.name !== "latency_sketch"),
    { name: "first_minute", type: "timestamp", doc: "earliest minute of the series in this hour" },
    { name: "last_minute", type: "timestamp", doc: "latest minute of the series in this hour" },
    {
      name: "minute_rows",
      type: "int64",
      doc: "minute rows absorbed (the read path uses the hour only when this equals the minute table's count, and the requests and first minute agree)",
    },
    { name: "sketch", type: "binary", nullable: true, doc: "latency sketch, binary (collector/read/sketches.ts)" },
  ],
};

/**
 * mesh_board_hour with `appended_at`: a load's merge appends one row per (hour, series) instead of rewriting
 * the hour's rows, so a series may hold several rows in an hour (every read sums and merges them); the stage
 * compacts an hour's appended rows back to one per series once they come from enough merges, or the hour has
 * closed. NULL marks a row compacted or rebuilt, of which an hour holds at most one per series.
 */
export const BOARD_HOUR_TABLE: Table = {
  ...BOARD_HOUR_TABLE_V7,
  doc: "Read API pre-aggregate (DuckDB only): rows per (hour, series) with first/last minute and a binary latency sketch; appended after each load, compacted to one per series.",
  columns: [
    ...BOARD_HOUR_TABLE_V7.columns,
    {
      name: "appended_at",
      type: "timestamp",
      nullable: true,
      doc: "for a row a load's merge appended: the newest loaded_at of the minute rows it absorbed (one value per merge); NULL once compacted or rebuilt",
    },
  ],
};

/** The dimensions mesh_board_minute keeps: what the dashboard's per-minute counter charts filter and group by. */
export const BOARD_MINUTE_DIMENSIONS = ["reporter", "destination_service", "destination_namespace", "response_code"] as const satisfies readonly Dimension[];

/**
 * The read API's per-minute counter pre-aggregate (collector/read/board-rollup.ts), kept beside
 * mesh_board_hour: per-minute counter charts group a day's minute rows (millions at 10k series) by minute,
 * and all they filter and group by is a few coarse dimensions, so per minute they collapse to a few rows per
 * service; the same holds for the per-minute latency chart, so each row keeps its merged binary sketch. DuckDB only.
 */
export const BOARD_MINUTE_TABLE: Table = {
  name: "mesh_board_minute",
  doc: "Read API pre-aggregate (DuckDB only): counters and a binary latency sketch per (minute, reporter, destination namespace and service, response code); kept current after each load.",
  columns: [
    { name: "minute", type: "timestamp", doc: "start of the UTC minute" },
    ...BOARD_MINUTE_DIMENSIONS.map((d) => FACT_TABLE.columns.find((c) => c.name === d)!),
    ...MEASURE_COLUMNS.filter((c) => c.name !== "latency_sketch"),
    { name: "mtls_requests", type: "int64", doc: "requests over mutual TLS (connection_security_policy = mutual_tls)" },
    {
      name: "minute_rows",
      type: "int64",
      doc: "minute rows absorbed (the read path uses an hour only when their sum equals the minute table's count, and the requests and first minute agree)",
    },
    { name: "sketch", type: "binary", nullable: true, doc: "latency sketch of those minute rows merged, binary (collector/read/sketches.ts)" },
  ],
};

/** Bootstrap table recording which numbered migrations ran; created before any migration. */
export const SCHEMA_VERSION_TABLE: Table = {
  name: "meshlook_schema_version",
  doc: "One row per applied migration.",
  columns: [
    { name: "version", type: "int32", doc: "migration number" },
    { name: "name", type: "string", doc: "what the migration does" },
    { name: "applied_at", type: "timestamp", doc: "when it ran" },
  ],
  primaryKey: ["version"],
};

/** `CREATE TABLE IF NOT EXISTS` for one table in one dialect. */
export function createTableSql(table: Table, dialect: Dialect): string {
  const cols = table.columns.map((c) => `  ${c.name} ${TYPE_NAMES[dialect][c.type]}${c.nullable ? "" : " NOT NULL"}`);
  if (table.primaryKey) cols.push(`  PRIMARY KEY (${table.primaryKey.join(", ")})`);
  return `CREATE TABLE IF NOT EXISTS ${table.name} (\n${cols.join(",\n")}\n)`;
}

export interface Migration {
  version: number;
  name: string;
  /** Statements for the dialect, run in order inside one transaction with the version row. */
  statements(dialect: Dialect): string[];
  /** Tables as they are after this migration (what looker:check compares against). */
  tables: readonly Table[];
}

/**
 * Numbered migrations, applied in order, each exactly once per warehouse. Append only: a shipped
 * migration is never edited, a change is a new entry.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "fact table mesh_traffic_minute and load ledger mesh_load_ledger",
    statements: (d) => [createTableSql(FACT_TABLE, d), createTableSql(LEDGER_TABLE_V1, d)],
    tables: [FACT_TABLE, LEDGER_TABLE_V1],
  },
  {
    version: 2,
    name: "sidecar loss table mesh_sidecar_loss",
    statements: (d) => [createTableSql(LOSS_TABLE_V2, d)],
    tables: [LOSS_TABLE_V2],
  },
  {
    version: 3,
    name: "hourly rollup mesh_traffic_hour",
    statements: (d) => [createTableSql(HOUR_TABLE, d)],
    tables: [HOUR_TABLE],
  },
  {
    version: 4,
    name: "writer lock table mesh_load_lock",
    statements: (d) => [createTableSql(LOCK_TABLE, d), seedLockRowsSql()],
    tables: [LOCK_TABLE],
  },
  {
    version: 5,
    name: "outlier findings mesh_outlier",
    statements: (d) => [createTableSql(OUTLIER_TABLE, d)],
    tables: [OUTLIER_TABLE],
  },
  {
    version: 6,
    name: "caller identity in the keys of mesh_load_ledger and mesh_sidecar_loss",
    statements: (d) => [...addCallerSql(LEDGER_TABLE_V1, LEDGER_TABLE, d), ...addCallerSql(LOSS_TABLE_V2, LOSS_TABLE, d)],
    tables: [LEDGER_TABLE, LOSS_TABLE],
  },
  {
    version: 7,
    name: "read API pre-aggregate mesh_board_hour (DuckDB only)",
    // Only the embedded warehouse has a read API (docs/read-api.md); Snowflake gets an empty step.
    statements: (d) => (d === "duckdb" ? [createTableSql(BOARD_HOUR_TABLE_V7, d)] : []),
    tables: [BOARD_HOUR_TABLE_V7],
  },
  {
    version: 8,
    name: "read API per-minute counter pre-aggregate mesh_board_minute (DuckDB only)",
    // Created empty: the post-load stage finds every hour's count disagreeing and fills it within its budget.
    statements: (d) => (d === "duckdb" ? [createTableSql(BOARD_MINUTE_TABLE, d)] : []),
    tables: [BOARD_MINUTE_TABLE],
  },
  {
    version: 9,
    name: "mesh_board_hour appended per load, compacted per hour: appended_at (DuckDB only)",
    // Existing rows are one per (hour, series), as compaction leaves them: NULL. Snowflake gets an empty step.
    statements: (d) => (d === "duckdb" ? [`ALTER TABLE ${BOARD_HOUR_TABLE.name} ADD COLUMN appended_at ${TYPE_NAMES[d].timestamp}`] : []),
    tables: [BOARD_HOUR_TABLE],
  },
];

/** The tables (name → column names) that exist once every migration has run. */
export function tablesAfterMigrations(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of MIGRATIONS)
    for (const t of m.tables)
      out.set(
        t.name,
        t.columns.map((c) => c.name),
      );
  return out;
}
