// The read API's questions, validated against shared/schema.ts and rendered to SQL whose every value is a
// bound parameter. Identifiers in the SQL come only from the schema's own lists, never from the client.
// Pure: no I/O here; collector/read/warehouse.ts runs what this builds.
import { BOARD_HOUR_TABLE, BOARD_MINUTE_DIMENSIONS, BOARD_MINUTE_TABLE, DIMENSIONS, FACT_TABLE, LEDGER_TABLE, LOSS_TABLE, type Dimension } from "../../shared/schema.ts";
import type { Scope } from "./access.ts";

export class ReadError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 503,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Query-string values as Fastify parses them: a repeated key gives an array. */
export type Params = Record<string, string | string[] | undefined>;

/** Derived dimensions the LookML views define on top of the columns (mesh_traffic_fields, service_edges). */
export const DERIVED = {
  response_class:
    "CASE WHEN response_code = 0 THEN 'no response' WHEN response_code BETWEEN 100 AND 199 THEN '1xx' " +
    "WHEN response_code BETWEEN 200 AND 299 THEN '2xx' WHEN response_code BETWEEN 300 AND 399 THEN '3xx' " +
    "WHEN response_code BETWEEN 400 AND 499 THEN '4xx' WHEN response_code BETWEEN 500 AND 599 THEN '5xx' ELSE 'other' END",
  source_node: "source_namespace || '/' || source_canonical_service",
  destination_node: "destination_namespace || '/' || destination_canonical_service",
} as const;
export type Field = Dimension | keyof typeof DERIVED;
export const FIELDS: readonly Field[] = [...DIMENSIONS, ...(Object.keys(DERIVED) as (keyof typeof DERIVED)[])];
const fieldSql = (f: Field) => (f in DERIVED ? `(${DERIVED[f as keyof typeof DERIVED]})` : f);

export const INTERVALS = ["minute", "hour", "none"] as const;
export type Interval = (typeof INTERVALS)[number];
export const QUANTILES = [0.5, 0.9, 0.99, 0.999] as const;
/** Output names of the percentiles, as the LookML measures name them. */
export const QUANTILE_FIELDS = ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_p999_ms"] as const;

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
/** The longest range one question may span: a month of minutes. */
export const MAX_RANGE_MS = 31 * 24 * HOUR_MS;
export const DEFAULT_RANGE_MS = 24 * HOUR_MS;
const MAX_GROUP_BY = 6;
const MAX_FILTER_VALUES = 100;
const MAX_VALUE_LENGTH = 1024;
export const MAX_LIMIT = 10_000;
/**
 * A per-minute percentile series merges one sketch per series and minute (hours cannot stand in for
 * minutes), so its cost follows the rows it reads, not its span: past this many it is refused (use
 * interval=hour, or narrow the filters). bench/dashboard.ts measures the merge rate this is set from.
 */
export const MAX_MINUTE_SKETCHES = 1_000_000;

/** A bound statement: SQL with `?` placeholders and their values in order. */
export interface Statement {
  sql: string;
  params: (string | number)[];
}

export interface Range {
  fromMs: number;
  toMs: number;
}

export interface TrafficQuery extends Range {
  reporter: "destination" | "source";
  /** Field → accepted values (any of them). */
  filters: Partial<Record<Field, string[]>>;
  groupBy: Field[];
  interval: Interval;
  percentiles: boolean;
  limit: number;
}

const one = (params: Params, key: string): string | undefined => {
  const v = params[key];
  if (Array.isArray(v)) throw new ReadError(400, "bad_parameter", `${key}: give it once`);
  return v;
};

const ISO_TIME = /^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d))?$/;

/** A timestamp parameter: ISO 8601 (`2026-01-01T00:00:00Z`) or epoch milliseconds. */
function time(params: Params, key: string): number | undefined {
  const raw = one(params, key);
  if (raw === undefined || raw === "") return undefined;
  // A time of day needs its zone (Z or ±hh:mm): a server-local reading would differ between hosts.
  const ms = /^\d{1,15}$/.test(raw) ? Number(raw) : ISO_TIME.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ms)) throw new ReadError(400, "bad_parameter", `${key}: expected an ISO 8601 time with its zone (2026-01-01T00:00:00Z) or epoch milliseconds`);
  return ms;
}

/**
 * `from`/`to` (to exclusive), widened outwards to whole minutes, the table's grain; default: the last 24
 * hours up to the end of the current minute.
 */
export function parseRange(params: Params, nowMs: number): Range {
  const to = time(params, "to") ?? nowMs;
  const from = time(params, "from") ?? to - DEFAULT_RANGE_MS;
  const fromMs = Math.floor(from / MINUTE_MS) * MINUTE_MS;
  const toMs = Math.ceil(to / MINUTE_MS) * MINUTE_MS;
  if (toMs <= fromMs) throw new ReadError(400, "bad_range", "from must be before to");
  if (toMs - fromMs > MAX_RANGE_MS) throw new ReadError(400, "bad_range", `range longer than ${MAX_RANGE_MS / HOUR_MS / 24} days`);
  return { fromMs, toMs };
}

function values(params: Params, key: string): string[] {
  const v = params[key];
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  if (list.length > MAX_FILTER_VALUES) throw new ReadError(400, "bad_parameter", `${key}: at most ${MAX_FILTER_VALUES} values`);
  for (const s of list) if (s.length > MAX_VALUE_LENGTH) throw new ReadError(400, "bad_parameter", `${key}: value longer than ${MAX_VALUE_LENGTH}`);
  return list;
}

function assertVisible(field: Field, scope: Scope, use: string): void {
  if (field === "end_user_principal" && !scope.endUsers) {
    throw new ReadError(403, "forbidden_field", `${use} end_user_principal needs a reader token granted end_users`);
  }
}

const isField = (s: string): s is Field => (FIELDS as readonly string[]).includes(s);

/** Parameters that are not filters. */
const CONTROL = new Set(["from", "to", "reporter", "group_by", "interval", "percentiles", "limit", "dimension"]);

export function parseFilters(params: Params, scope: Scope): Partial<Record<Field, string[]>> {
  const filters: Partial<Record<Field, string[]>> = {};
  for (const key of Object.keys(params)) {
    if (CONTROL.has(key)) continue;
    if (!isField(key)) throw new ReadError(400, "unknown_parameter", `unknown parameter ${JSON.stringify(key.slice(0, 64))}; filters are dimensions of docs/schema.md`);
    assertVisible(key, scope, "filtering on");
    const list = values(params, key);
    if (list.length > 0) filters[key] = list;
  }
  return filters;
}

export function parseTraffic(params: Params, scope: Scope, nowMs: number): TrafficQuery {
  const reporter = one(params, "reporter") ?? "destination";
  if (reporter !== "destination" && reporter !== "source") throw new ReadError(400, "bad_parameter", "reporter: destination or source");
  const groupBy = (one(params, "group_by") ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (groupBy.length > MAX_GROUP_BY) throw new ReadError(400, "bad_parameter", `group_by: at most ${MAX_GROUP_BY} fields`);
  for (const g of groupBy) {
    if (!isField(g)) throw new ReadError(400, "bad_parameter", `group_by: unknown field ${JSON.stringify(g.slice(0, 64))}`);
    assertVisible(g, scope, "grouping by");
  }
  if (new Set(groupBy).size !== groupBy.length) throw new ReadError(400, "bad_parameter", "group_by: a field is repeated");
  const interval = (one(params, "interval") ?? "none") as Interval;
  if (!INTERVALS.includes(interval)) throw new ReadError(400, "bad_parameter", `interval: one of ${INTERVALS.join(", ")}`);
  const percentiles = one(params, "percentiles") ?? "true";
  if (percentiles !== "true" && percentiles !== "false") throw new ReadError(400, "bad_parameter", "percentiles: true or false");
  const range = parseRange(params, nowMs);
  return {
    ...range,
    reporter,
    filters: parseFilters(params, scope),
    groupBy: groupBy as Field[],
    interval,
    percentiles: percentiles === "true",
    limit: parseLimit(params),
  };
}

export function parseLimit(params: Params, def = 1000): number {
  const raw = one(params, "limit");
  if (raw === undefined) return def;
  const n = /^\d{1,6}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= MAX_LIMIT)) throw new ReadError(400, "bad_parameter", `limit: an integer from 1 to ${MAX_LIMIT}`);
  return n;
}

const iso = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");

/** `target` matches one of the scope's namespace patterns (a `%` makes a LIKE, as Looker's access filter). */
export function scopeCondition(target: string, scope: Scope): Statement | undefined {
  if (scope.namespaces.includes("%")) return undefined;
  const parts = scope.namespaces.map((n) => (n.includes("%") ? `${target} LIKE ?` : `${target} = ?`));
  return { sql: `(${parts.join(" OR ")})`, params: [...scope.namespaces] };
}

/** WHERE conditions of a traffic question other than time: reporter, filters, scope. */
function conditions(q: TrafficQuery, scope: Scope): Statement {
  const sql = ["reporter = ?"];
  const params: (string | number)[] = [q.reporter];
  for (const [field, list] of Object.entries(q.filters) as [Field, string[]][]) {
    if (field === "response_code") {
      const codes = list.map((v) => {
        if (!/^\d{1,3}$/.test(v)) throw new ReadError(400, "bad_parameter", "response_code: an HTTP status number");
        return Number(v);
      });
      sql.push(`response_code IN (${codes.map(() => "?").join(", ")})`);
      params.push(...codes);
    } else {
      sql.push(`${fieldSql(field)} IN (${list.map(() => "?").join(", ")})`);
      params.push(...list);
    }
  }
  const s = scopeCondition("destination_namespace", scope);
  if (s) {
    sql.push(s.sql);
    params.push(...s.params);
  }
  return { sql: sql.join(" AND "), params };
}

const bucketSql = (interval: Interval, col: string) => (interval === "none" ? "NULL" : `epoch_ms(date_trunc('${interval}', ${col}))`);

/** Column names of a traffic result's grouping: the bucket (when there is an interval) then group_by. */
export const groupColumns = (q: TrafficQuery) => [...(q.interval === "none" ? [] : ["t"]), ...q.groupBy];

/** Parts of [from, to) outside the given hours (sorted): the minutes the minute table must answer for. */
export function minuteSpans(r: Range, hours: readonly number[]): Range[] {
  const out: Range[] = [];
  let at = r.fromMs;
  for (const h of hours) {
    if (h > at) out.push({ fromMs: at, toMs: Math.min(h, r.toMs) });
    at = Math.max(at, h + HOUR_MS);
  }
  if (at < r.toMs) out.push({ fromMs: at, toMs: r.toMs });
  return out;
}

/** Measure columns of the source relation after its time column `at_time` and the dimensions. */
const SOURCE_MEASURES = ["requests", "errors", "request_bytes", "response_bytes", "latency_sum_us", "latency_min_us", "latency_max_us"];
/** Per-row mTLS requests where the row has the dimension, as the LookML measure counts them. */
const MTLS_REQUESTS = "CASE WHEN connection_security_policy = 'mutual_tls' THEN requests ELSE 0 END AS mtls_requests";

/** Fields mesh_board_minute can filter and group by: its dimensions and what derives from them alone. */
const MINUTE_TABLE_FIELDS: readonly Field[] = [...BOARD_MINUTE_DIMENSIONS, "response_class"];

/** Whether mesh_board_minute answers the question exactly: a per-minute series that filters and groups only by what it keeps. */
export const minuteTableAnswers = (q: TrafficQuery): boolean =>
  q.interval === "minute" && [...q.groupBy, ...(Object.keys(q.filters) as Field[])].every((f) => MINUTE_TABLE_FIELDS.includes(f));

/** Which pre-aggregate answers which hours of a question (warehouse.ts plans it from usableHoursStatement). */
export interface Plan {
  /** Whole hours read from mesh_board_hour (sorted). */
  hours: readonly number[];
  /** Hours whose minutes inside the range are read from mesh_board_minute (sorted, none shared with `hours`). */
  minuteHours: readonly number[];
}
export const MINUTE_ROWS_ONLY: Plan = { hours: [], minuteHours: [] };

/**
 * The rows a traffic question reads, as one relation: `at_time` (minute or hour), every dimension, the counters,
 * `first_minute`/`last_minute`, the sketch as `sketch_bin` (binary) or `sketch_json` (stored JSON), then
 * `mtls_requests`; a row is a sketch a percentile question merges. Hours of
 * `plan.hours` (usableHoursStatement: the pre-aggregate holds exactly the minute rows of that hour, all of
 * them inside the range) come from mesh_board_hour, one row per series instead of up to sixty; minutes of
 * `plan.minuteHours` from mesh_board_minute, a few rows per minute (its dimensions only: the question uses no
 * other, minuteTableAnswers); every other minute of the range from mesh_traffic_minute, each span its own
 * plain range scan. All give the same sums, extremes and merged sketches, so the answer is the same either way.
 */
export function sourceStatement(q: TrafficQuery, scope: Scope, plan: Plan = MINUTE_ROWS_ONLY): Statement {
  const { hours, minuteHours } = plan;
  if (q.interval === "minute" && hours.length > 0) throw new Error("a per-minute series cannot read hourly rows");
  if (minuteHours.length > 0 && !minuteTableAnswers(q)) throw new Error("mesh_board_minute cannot answer this question");
  const where = conditions(q, scope);
  const dims = DIMENSIONS.join(", ");
  const parts: Statement[] = [];
  if (hours.length > 0) {
    parts.push({
      sql:
        `SELECT hour AS at_time, ${dims}, ${SOURCE_MEASURES.join(", ")}, first_minute, last_minute, sketch AS sketch_bin, NULL::VARCHAR AS sketch_json, ${MTLS_REQUESTS} ` +
        `FROM ${BOARD_HOUR_TABLE.name} WHERE hour IN (${hours.map(() => "CAST(? AS TIMESTAMP)").join(", ")}) AND ${where.sql}`,
      params: [...hours.map(iso), ...where.params],
    });
  }
  if (minuteHours.length > 0) {
    // Every dimension it does not keep is a string one (response_code it keeps).
    const kept = DIMENSIONS.map((d) => ((BOARD_MINUTE_DIMENSIONS as readonly string[]).includes(d) ? d : `NULL::VARCHAR AS ${d}`));
    // Each hour clipped to the range; adjacent hours make one span.
    const spans: Range[] = [];
    for (const h of minuteHours) {
      const last = spans[spans.length - 1];
      if (last?.toMs === Math.min(h, q.toMs)) last.toMs = Math.min(h + HOUR_MS, q.toMs);
      else spans.push({ fromMs: Math.max(h, q.fromMs), toMs: Math.min(h + HOUR_MS, q.toMs) });
    }
    parts.push({
      sql:
        `SELECT minute AS at_time, ${kept.join(", ")}, ${SOURCE_MEASURES.join(", ")}, minute AS first_minute, minute AS last_minute, sketch AS sketch_bin, NULL::VARCHAR AS sketch_json, ` +
        `mtls_requests FROM ${BOARD_MINUTE_TABLE.name} WHERE (${spans.map(() => "(minute >= CAST(? AS TIMESTAMP) AND minute < CAST(? AS TIMESTAMP))").join(" OR ")}) AND ${where.sql}`,
      params: [...spans.flatMap((s) => [iso(s.fromMs), iso(s.toMs)]), ...where.params],
    });
  }
  for (const span of minuteSpans(
    q,
    [...hours, ...minuteHours].sort((a, b) => a - b),
  )) {
    parts.push({
      sql:
        `SELECT minute AS at_time, ${dims}, ${SOURCE_MEASURES.join(", ")}, minute AS first_minute, minute AS last_minute, NULL::BLOB AS sketch_bin, latency_sketch AS sketch_json, ` +
        `${MTLS_REQUESTS} FROM ${FACT_TABLE.name} WHERE minute >= CAST(? AS TIMESTAMP) AND minute < CAST(? AS TIMESTAMP) AND ${where.sql}`,
      params: [iso(span.fromMs), iso(span.toMs), ...where.params],
    });
  }
  return { sql: `(${parts.map((p) => p.sql).join(" UNION ALL ")}) AS src`, params: parts.flatMap((p) => p.params) };
}

/** The select list of a question's grouping: bucket `t` then the group_by fields. */
const keySql = (q: TrafficQuery) => [...(q.interval === "none" ? [] : [`${bucketSql(q.interval, "at_time")} AS t`]), ...q.groupBy.map((g) => `${fieldSql(g)} AS ${g}`)];
/** GROUP BY the keySql columns, which lead the select list, by position. */
const groupBySql = (keys: readonly string[]) => (keys.length ? ` GROUP BY ${keys.map((_, i) => i + 1).join(", ")}` : "");

/**
 * Counters, exact and cheap to sum (no sketches): requests, errors, bytes, latency sum/min/max, the
 * first and last minute (the LookML requests_per_second window), and the rows read (the sketches a
 * percentile question would merge).
 */
export function countersStatement(q: TrafficQuery, scope: Scope, plan: Plan = MINUTE_ROWS_ONLY): Statement {
  const src = sourceStatement(q, scope, plan);
  const keys = keySql(q);
  const groupBy = groupBySql(keys);
  // Every key breaks ties, so which groups make the LIMIT (and in what order) is the same on every read,
  // from minute rows or a pre-aggregate, cached or fresh.
  const order = [...(q.interval === "none" ? ["requests DESC"] : []), ...keys.map((_, i) => i + 1)].join(", ");
  return {
    sql:
      `SELECT ${[
        ...keys,
        "SUM(requests) AS requests",
        "SUM(errors) AS errors",
        "SUM(request_bytes) AS request_bytes",
        "SUM(response_bytes) AS response_bytes",
        "SUM(latency_sum_us) AS latency_sum_us",
        "MIN(latency_min_us) AS latency_min_us",
        "MAX(latency_max_us) AS latency_max_us",
        "epoch_ms(MIN(first_minute)) AS first_minute",
        "epoch_ms(MAX(last_minute)) AS last_minute",
        "SUM(mtls_requests) AS mtls_requests",
        "COUNT(*) AS source_rows",
      ].join(", ")} ` + `FROM ${src.sql}${groupBy} ORDER BY ${order} LIMIT ${q.limit}`,
    params: src.params,
  };
}

/**
 * The latency sketches of a question's groups: its group columns (groupColumns), then the group's binary
 * sketches as one list and its stored JSON ones as another, for merging per group in the read process.
 * Grouped here, so the group's values cross into the read process once per group, not once per row.
 */
export function sketchesStatement(q: TrafficQuery, scope: Scope, plan: Plan): Statement {
  const src = sourceStatement(q, scope, plan);
  const keys = keySql(q);
  const lists = ["LIST(sketch_bin) FILTER (WHERE sketch_bin IS NOT NULL) AS bins", "LIST(sketch_json) FILTER (WHERE sketch_json IS NOT NULL) AS jsons"];
  return { sql: `SELECT ${[...keys, ...lists].join(", ")} FROM ${src.sql}${groupBySql(keys)}`, params: src.params };
}

/** hourTotalsSql's table, and its hour, minute rows and first minute, per table it compares. */
const HOUR_TOTALS = {
  minutes: [FACT_TABLE.name, "date_trunc('hour', minute)", "COUNT(*)", "MIN(minute)"],
  board_hour: [BOARD_HOUR_TABLE.name, "hour", "SUM(minute_rows)", "MIN(first_minute)"],
  board_minute: [BOARD_MINUTE_TABLE.name, "date_trunc('hour', minute)", "SUM(minute_rows)", "MIN(minute)"],
} as const;

/**
 * Per hour of a table's rows matching `where` (a WHERE clause, or ""): `hour` (TIMESTAMP), `n` the minute rows
 * (of mesh_traffic_minute) or those a pre-aggregate's rows absorbed, `r` their requests and `f` their first
 * minute, then `extra` select items. A pre-aggregate absorbed exactly an hour's minute rows when all three
 * agree (sameRows): a count alone agrees when as many rows land (not merged yet) as are deleted, and
 * retention deletes an hour's first minutes. The read path (usableHoursStatement) and the stage that keeps
 * the pre-aggregates (board-rollup.ts) judge by the same totals.
 */
export function hourTotalsSql(table: keyof typeof HOUR_TOTALS, where: string, extra = ""): string {
  const [name, hour, n, f] = HOUR_TOTALS[table];
  return `SELECT ${hour} AS hour, ${n} AS n, SUM(requests) AS r, ${f} AS f${extra} FROM ${name}${where} GROUP BY 1`;
}

/** Whether hourTotalsSql's rows aliased `a` and `b` stand for the same minute rows (NULL when either is missing). */
export const sameRows = (a: string, b: string) => `${a}.n = ${b}.n AND ${a}.r = ${b}.r AND ${a}.f = ${b}.f`;

/**
 * Hours overlapping the range where a pre-aggregate can stand in for the minute rows, each with `whole`:
 * mesh_board_hour absorbed the minute rows the minute table holds for the hour now (hourTotalsSql), and all
 * of them lie inside the range (an edge hour with no traffic outside the range counts too); and `minutes`:
 * mesh_board_minute's rows of the hour absorbed them (its rows are per minute, so the range may cut the hour).
 */
export function usableHoursStatement(r: Range): Statement {
  const fromHour = iso(Math.floor(r.fromMs / HOUR_MS) * HOUR_MS);
  const toHour = iso(Math.ceil(r.toMs / HOUR_MS) * HOUR_MS);
  const between = (col: string) => ` WHERE ${col} >= CAST(? AS TIMESTAMP) AND ${col} < CAST(? AS TIMESTAMP)`;
  const inside = ", COUNT(*) FILTER (WHERE minute >= CAST(? AS TIMESTAMP) AND minute < CAST(? AS TIMESTAMP)) AS inside";
  return {
    sql:
      `SELECT epoch_ms(m.hour) AS hour, COALESCE(${sameRows("m", "b")} AND m.inside = m.n, false) AS whole, COALESCE(${sameRows("m", "bm")}, false) AS minutes FROM (` +
      `${hourTotalsSql("minutes", between("minute"), inside)}) AS m LEFT JOIN (${hourTotalsSql("board_hour", between("hour"))}) AS b ON m.hour = b.hour LEFT JOIN (` +
      `${hourTotalsSql("board_minute", between("minute"))}) AS bm ON m.hour = bm.hour ORDER BY 1`,
    params: [iso(r.fromMs), iso(r.toMs), fromHour, toHour, fromHour, toHour, fromHour, toHour],
  };
}

/** Identity access (looker/views/identity_access.view.lkml): who calls whom, over mTLS or not, first/last seen. */
export const IDENTITY_FIELDS = [
  "source_principal",
  "source_namespace",
  "source_workload",
  "destination_principal",
  "destination_service",
  "destination_namespace",
  "connection_security_policy",
] as const;

export function identityStatement(q: TrafficQuery, scope: Scope, plan: Plan = MINUTE_ROWS_ONLY): Statement {
  const src = sourceStatement(q, scope, plan);
  return {
    sql:
      `SELECT ${IDENTITY_FIELDS.join(", ")}, epoch_ms(MIN(first_minute)) AS first_seen, epoch_ms(MAX(last_minute)) AS last_seen, ` +
      `SUM(requests) AS requests, SUM(errors) AS errors FROM ${src.sql} ` +
      `GROUP BY ${IDENTITY_FIELDS.join(", ")} ORDER BY requests DESC, ${IDENTITY_FIELDS.join(", ")} LIMIT ${q.limit}`,
    params: src.params,
  };
}

/**
 * Sidecar loss (looker/views/mesh_sidecar_loss.view.lkml) per minute or in total; the namespace filter and
 * the scope apply to the sidecar's own namespace, as the LookML access filter does.
 */
export function lossStatement(r: Range, interval: Interval, namespaces: readonly string[], scope: Scope): Statement {
  const sql = ["minute >= CAST(? AS TIMESTAMP)", "minute < CAST(? AS TIMESTAMP)"];
  const params: (string | number)[] = [iso(r.fromMs), iso(r.toMs)];
  if (namespaces.length) {
    sql.push(`namespace IN (${namespaces.map(() => "?").join(", ")})`);
    params.push(...namespaces);
  }
  const s = scopeCondition("namespace", scope);
  if (s) {
    sql.push(s.sql);
    params.push(...s.params);
  }
  const t = interval === "none" ? "" : `${bucketSql(interval, "minute")} AS t, `;
  return {
    sql:
      `SELECT ${t}SUM(dropped_requests) AS dropped_requests, SUM(dropped_windows) AS dropped_windows, ` +
      `SUM(overflow_keys) AS overflow_keys, COUNT(DISTINCT producer_id) AS reporting_sidecars FROM ${LOSS_TABLE.name} ` +
      `WHERE ${sql.join(" AND ")}${t ? " GROUP BY 1 ORDER BY 1" : ""}`,
    params,
  };
}

/** Loads per minute from the load ledger (looker/views/mesh_loads.view.lkml); operators only. */
export function loadsStatement(r: Range): Statement {
  return {
    sql:
      `SELECT epoch_ms(date_trunc('minute', loaded_at)) AS t, COUNT(*) AS summaries, COUNT(DISTINCT producer_id) AS producers, ` +
      `SUM(requests) AS requests, SUM(series) AS series FROM ${LEDGER_TABLE.name} ` +
      `WHERE loaded_at >= CAST(? AS TIMESTAMP) AND loaded_at < CAST(? AS TIMESTAMP) GROUP BY 1 ORDER BY 1`,
    params: [iso(r.fromMs), iso(r.toMs)],
  };
}

/** Distinct values of one field in the range, within scope (for filter pickers). */
export function valuesStatement(q: TrafficQuery, field: Field, scope: Scope, plan: Plan = MINUTE_ROWS_ONLY): Statement {
  assertVisible(field, scope, "listing");
  const src = sourceStatement(q, scope, plan);
  return { sql: `SELECT DISTINCT ${fieldSql(field)} AS value FROM ${src.sql} ORDER BY 1 LIMIT ${q.limit}`, params: src.params };
}

export function parseField(params: Params, key: string): Field {
  const f = one(params, key);
  if (f === undefined || !isField(f)) throw new ReadError(400, "bad_parameter", `${key}: one of ${FIELDS.join(", ")}`);
  return f;
}
