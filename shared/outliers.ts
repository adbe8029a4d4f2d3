// Outlier detection, defined once and rendered for DuckDB and Snowflake (docs/outliers.md explains each
// method and why it was chosen). The statistics run in the warehouse, next to the data: one statement
// per grain aggregates the recent window, the trailing baseline, the first-seen history and the
// same-hour-of-week history of every series, merges their latency sketches with MESH_SKETCH_MERGE and
// reads percentiles with MESH_QUANTILE, and returns only the series that fail a test, with their
// evidence. Every time bound is a bound parameter computed by windows() below, so the SQL needs no
// dialect-specific date arithmetic; the only dialect difference is how a one-element array is written.
import { FACT_TABLE, HOUR_TABLE, type Dialect } from "./schema.ts";

export type Grain = "edge" | "service";
export const GRAINS: readonly Grain[] = ["edge", "service"];

export type OutlierKind = "error_rate" | "latency" | "traffic_drop" | "traffic_surge" | "new_edge" | "plaintext";
export const OUTLIER_KINDS: readonly OutlierKind[] = ["error_rate", "latency", "traffic_drop", "traffic_surge", "new_edge", "plaintext"];

/** Detection thresholds; every one is a collector setting (MESHLOOK_OUTLIER_*, docs/outliers.md). */
export interface OutlierThresholds {
  /** Length of the recent window, minutes. */
  recentMinutes: number;
  /** Length of the trailing baseline before the recent window, hours. */
  baselineHours: number;
  /** Least baseline coverage (minutes of data before the recent window) for any comparison. */
  minBaselineMinutes: number;
  /** Weeks of same-hour-of-week history consulted for the traffic baseline (0 = trailing baseline only). */
  seasonalWeeks: number;
  /** Days of hourly history in which an edge counts as seen before. */
  newEdgeLookbackDays: number;
  /** Which proxy's counts are compared: the server side sees every caller, mTLS or not. */
  reporter: "destination" | "source";
  /** Normal quantile of the one-sided tests (3.09 ≈ 0.1 % per test). */
  z: number;
  errorMinRequests: number;
  errorMinErrors: number;
  /** Recent rate's lower bound must exceed the baseline's upper bound times this. */
  errorMinRatio: number;
  latencyMinRequests: number;
  latencyMinBaselineRequests: number;
  /** Recent p50 or p99 must exceed the baseline's by this factor (and its order-statistic bound). */
  latencyMinRatio: number;
  /**
   * Screening: only series whose mean latency rose by this factor get their sketches merged and tested
   * (sketch merges are the costly part of a run; 0 tests every series with enough volume).
   */
  latencyScreenRatio: number;
  /** Least expected requests in the recent window for a drop or a surge to be judged. */
  trafficMinExpected: number;
  /** Recent requests at or below this fraction of the expected count are a drop. */
  trafficDropRatio: number;
  /** Recent requests at or above this multiple of the expected count are a surge. */
  trafficSurgeRatio: number;
  newEdgeMinRequests: number;
  /** The service must have had this many baseline requests from other callers (so it is not new itself). */
  newEdgeMinServiceRequests: number;
  plaintextMinRequests: number;
  /** Baseline plaintext share of the service at or below which mTLS "was the rule". */
  plaintextMaxBaselineShare: number;
  plaintextMinServiceRequests: number;
}

export const DEFAULT_THRESHOLDS: OutlierThresholds = {
  recentMinutes: 15,
  baselineHours: 24,
  minBaselineMinutes: 60,
  seasonalWeeks: 4,
  newEdgeLookbackDays: 30,
  reporter: "destination",
  z: 3.09,
  errorMinRequests: 100,
  errorMinErrors: 5,
  errorMinRatio: 2,
  latencyMinRequests: 200,
  latencyMinBaselineRequests: 1000,
  latencyMinRatio: 1.5,
  latencyScreenRatio: 1.1,
  trafficMinExpected: 200,
  trafficDropRatio: 0.1,
  trafficSurgeRatio: 4,
  newEdgeMinRequests: 5,
  newEdgeMinServiceRequests: 100,
  plaintextMinRequests: 5,
  plaintextMaxBaselineShare: 0.001,
  plaintextMinServiceRequests: 100,
};

/** The time bounds of one detection run, epoch ms. */
export interface Windows {
  recentStart: number;
  recentEnd: number;
  /** Trailing baseline [baselineStart, recentStart); whole hours before hourCutoff come from mesh_traffic_hour. */
  baselineStart: number;
  hourCutoff: number;
  /** First-seen history [historyStart, baselineStart) from mesh_traffic_hour. */
  historyStart: number;
  /** Start of the hour of the week being compared, one per week back. */
  seasonalHours: number[];
  /** Minutes of the baseline that hold data (the denominator of its per-minute rate). */
  baselineMinutes: number;
}

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const WEEK = 7 * 24 * HOUR;

/**
 * The windows of a run ending at `recentEnd` (a whole minute). `compactedThrough` is the end of the last
 * hour mesh_traffic_hour holds (undefined when none), `firstData` the oldest minute the warehouse holds.
 * Returns undefined when the baseline holds less than minBaselineMinutes of data.
 */
export function windows(t: OutlierThresholds, recentEnd: number, compactedThrough: number | undefined, firstData: number | undefined): Windows | undefined {
  const recentStart = recentEnd - t.recentMinutes * MINUTE;
  const recentHour = Math.floor(recentStart / HOUR) * HOUR;
  const baselineStart = recentHour - t.baselineHours * HOUR;
  const hourCutoff = Math.max(baselineStart, Math.min(recentHour, compactedThrough ?? baselineStart));
  const covered = firstData === undefined ? 0 : recentStart - Math.max(baselineStart, Math.floor(firstData / MINUTE) * MINUTE);
  const baselineMinutes = Math.floor(covered / MINUTE);
  if (baselineMinutes < t.minBaselineMinutes) return undefined;
  return {
    recentStart,
    recentEnd,
    baselineStart,
    hourCutoff,
    historyStart: baselineStart - t.newEdgeLookbackDays * 24 * HOUR,
    seasonalHours: Array.from({ length: t.seasonalWeeks }, (_, k) => recentHour - (k + 1) * WEEK),
    baselineMinutes,
  };
}

/** `YYYY-MM-DD HH:MM:SS.mmm` (UTC), a timestamp literal both warehouses read. */
export const sqlTimestamp = (ms: number) => new Date(ms).toISOString().replace("T", " ").replace("Z", "");

/** One row the detection statement returns (column names lower case). */
export interface DetectedRow {
  kind: OutlierKind;
  source_principal: string | null;
  destination_service: string;
  score: number;
  recent_requests: number;
  baseline_requests: number;
  recent_errors: number;
  baseline_errors: number;
  recent_value: number | null;
  baseline_value: number | null;
  recent_p50_us: number | null;
  baseline_p50_us: number | null;
  recent_p99_us: number | null;
  baseline_p99_us: number | null;
}

export const DETECTED_COLUMNS = [
  "kind",
  "source_principal",
  "destination_service",
  "score",
  "recent_requests",
  "baseline_requests",
  "recent_errors",
  "baseline_errors",
  "recent_value",
  "baseline_value",
  "recent_p50_us",
  "baseline_p50_us",
  "recent_p99_us",
  "baseline_p99_us",
] as const;

const num = (v: number) => {
  if (!Number.isFinite(v)) throw new Error(`outlier threshold must be a finite number, got ${v}`);
  return String(v);
};

/** A one-element array of a sketch, as MESH_QUANTILE takes it. */
const oneSketch = (d: Dialect, expr: string) => (d === "duckdb" ? `[${expr}]` : `ARRAY_CONSTRUCT(${expr})`);

/**
 * Wilson score interval bound of errors/requests (lower with sign -1, upper with +1), without continuity
 * correction: the root of (p̂ − p)² = z²·p(1 − p)/n on that side of p̂ (Wilson 1927).
 */
export function wilson(errors: string, requests: string, z: string, sign: -1 | 1): string {
  const n = `CAST(${requests} AS DOUBLE)`;
  const p = `(CAST(${errors} AS DOUBLE) / ${n})`;
  const op = sign < 0 ? "-" : "+";
  return `((${p} + ${z} * ${z} / (2 * ${n}) ${op} ${z} * SQRT(${p} * (1 - ${p}) / ${n} + ${z} * ${z} / (4 * ${n} * ${n}))) / (1 + ${z} * ${z} / ${n}))`;
}

const log2 = (x: string) => `(LN(${x}) / LN(2))`;

/**
 * The detection statement for one grain with `?` placeholders; bind detectionParams(...) in order.
 * Returns one row per finding (DetectedRow), best score first.
 */
export function detectionSql(dialect: Dialect, grain: Grain, t: OutlierThresholds): string {
  const keys = grain === "edge" ? ["source_principal", "destination_service"] : ["destination_service"];
  const keyList = keys.join(", ");
  const principal = grain === "edge" ? "source_principal" : "CAST(NULL AS VARCHAR)";
  const z = num(t.z);
  const at = `CAST(? AS ${dialect === "duckdb" ? "TIMESTAMP" : "TIMESTAMP_NTZ"})`;
  const from = (table: string, time: string, w: string, where: string, sketch: boolean) =>
    `SELECT ${keyList}, '${w}' AS w, ${time} AS t, requests, errors, latency_sum_us, connection_security_policy AS policy, ${sketch ? "latency_sketch" : "CAST(NULL AS VARCHAR)"} AS sketch
     FROM ${table} WHERE reporter = ? AND ${where}`;
  const seasonal = t.seasonalWeeks > 0 ? `hour IN (${Array.from({ length: t.seasonalWeeks }, () => at).join(", ")})` : "1 = 0";
  const sum = (cond: string, v = "requests") => `SUM(CASE WHEN ${cond} THEN ${v} ELSE 0 END)`;
  // Only screened series have sketches; the others skip the UDF call.
  const q = (sketch: string, p: string) => `CASE WHEN ${sketch} IS NOT NULL THEN MESH_QUANTILE(${oneSketch(dialect, sketch)}, ${p}) END`;
  // Order-statistic bound: under "no change" (recent requests drawn from the baseline's distribution F),
  // the recent nearest-rank p-quantile X(k), k = ceil(pn), exceeds F's p'-quantile only if fewer than k of
  // n draws fall below it: P = P(Binomial(n, p') <= k - 1). With p' = p + z·sqrt(p(1−p)/n), capped at
  // 0.9999, that exact binomial probability stays at or below 1 − Φ(z) for p = 0.5 and far below it for
  // p = 0.99 (docs/outliers.md gives the figures). F is read from the baseline sketch, i.e. taken as known.
  const hiRank = (p: number) => `LEAST(0.9999, ${p} + ${z} * SQRT(${p * (1 - p)} / CAST(GREATEST(r_req, 1) AS DOUBLE)))`;
  const expected = `(CASE WHEN s_weeks > 0 THEN CAST(s_req AS DOUBLE) / s_weeks / 60 ELSE CAST(b_req AS DOUBLE) / CAST(? AS DOUBLE) END) * ${num(t.recentMinutes)}`;
  const evidence = (kind: OutlierKind, score: string, recent: string, baseline: string) =>
    `SELECT '${kind}' AS kind, ${principal} AS source_principal, destination_service, ${score} AS score,
       r_req AS recent_requests, b_req AS baseline_requests, r_err AS recent_errors, b_err AS baseline_errors,
       ${recent} AS recent_value, ${baseline} AS baseline_value, r_p50 AS recent_p50_us, b_p50 AS baseline_p50_us,
       r_p99 AS recent_p99_us, b_p99 AS baseline_p99_us
     FROM judged`;
  const latencyScore = `GREATEST(CASE WHEN r_p99 >= ${num(t.latencyMinRatio)} * b_p99 AND r_p99 > b_p99_hi THEN ${log2("r_p99 / b_p99_hi")} ELSE 0 END,
       CASE WHEN r_p50 >= ${num(t.latencyMinRatio)} * b_p50 AND r_p50 > b_p50_hi THEN ${log2("r_p50 / b_p50_hi")} ELSE 0 END)`;
  const selects = [
    `${evidence("error_rate", log2(`r_lo / b_hi`), "CAST(r_err AS DOUBLE) / r_req", "CAST(b_err AS DOUBLE) / b_req")}
     WHERE r_req >= ${num(t.errorMinRequests)} AND r_err >= ${num(t.errorMinErrors)} AND b_req >= ${num(t.errorMinRequests)}
       AND r_lo > ${num(t.errorMinRatio)} * b_hi`,
    `${evidence("latency", latencyScore, "r_p99", "b_p99")}
     WHERE r_req >= ${num(t.latencyMinRequests)} AND b_req >= ${num(t.latencyMinBaselineRequests)} AND ${latencyScore} > 0`,
    `${evidence("traffic_drop", log2("(expected + 1) / (r_req + 1)"), "CAST(r_req AS DOUBLE)", "expected")}
     WHERE expected >= ${num(t.trafficMinExpected)} AND r_req <= ${num(t.trafficDropRatio)} * expected`,
    `${evidence("traffic_surge", log2("(r_req + 1) / (expected + 1)"), "CAST(r_req AS DOUBLE)", "expected")}
     WHERE expected > 0 AND r_req >= ${num(t.trafficMinExpected)} AND r_req >= ${num(t.trafficSurgeRatio)} * expected`,
  ];
  if (grain === "edge") {
    selects.push(
      `${evidence("new_edge", log2("r_req + 1"), "CAST(r_req AS DOUBLE)", "CAST(0 AS DOUBLE)")}
       WHERE r_req >= ${num(t.newEdgeMinRequests)} AND b_req = 0 AND h_req = 0 AND source_principal <> 'unknown'
         AND svc_b_req >= ${num(t.newEdgeMinServiceRequests)}`,
    );
  } else {
    selects.push(
      `${evidence("plaintext", log2("r_plain + 1"), "CAST(r_plain AS DOUBLE)", "CAST(b_plain AS DOUBLE) / b_req")}
       WHERE r_plain >= ${num(t.plaintextMinRequests)} AND b_req >= ${num(t.plaintextMinServiceRequests)}
         AND b_plain <= ${num(t.plaintextMaxBaselineShare)} * b_req`,
    );
  }
  return `WITH src AS (
  ${from(FACT_TABLE.name, "minute", "r", `minute >= ${at} AND minute < ${at}`, true)}
  UNION ALL
  ${from(FACT_TABLE.name, "minute", "b", `minute >= ${at} AND minute < ${at}`, true)}
  UNION ALL
  ${from(HOUR_TABLE.name, "hour", "b", `hour >= ${at} AND hour < ${at}`, true)}
  UNION ALL
  ${from(HOUR_TABLE.name, "hour", "h", `hour >= ${at} AND hour < ${at}`, false)}
  UNION ALL
  ${from(HOUR_TABLE.name, "hour", "s", seasonal, false)}
),
agg AS (
  SELECT ${keyList},
    ${sum("w = 'r'")} AS r_req,
    ${sum("w = 'r'", "errors")} AS r_err,
    ${sum("w = 'r' AND policy = 'none'")} AS r_plain,
    ${sum("w = 'b'")} AS b_req,
    ${sum("w = 'b'", "errors")} AS b_err,
    ${sum("w = 'b' AND policy = 'none'")} AS b_plain,
    ${sum("w = 'h'")} AS h_req,
    ${sum("w = 's'")} AS s_req,
    COUNT(DISTINCT CASE WHEN w = 's' THEN t END) AS s_weeks,
    ${sum("w = 'r'", "latency_sum_us")} AS r_lat,
    ${sum("w = 'b'", "latency_sum_us")} AS b_lat
  FROM src
  GROUP BY ${keyList}
),
screened AS (
  SELECT ${keyList} FROM agg
  WHERE r_req >= ${num(t.latencyMinRequests)} AND b_req >= ${num(t.latencyMinBaselineRequests)}
    AND CAST(r_lat AS DOUBLE) / r_req >= ${num(t.latencyScreenRatio)} * CAST(b_lat AS DOUBLE) / b_req
),
sketches AS (
  SELECT ${keys.map((k) => `src.${k}`).join(", ")},
    MESH_SKETCH_MERGE(ARRAY_AGG(CASE WHEN w = 'r' THEN sketch END)) AS r_sketch,
    MESH_SKETCH_MERGE(ARRAY_AGG(CASE WHEN w = 'b' THEN sketch END)) AS b_sketch
  FROM src JOIN screened ON ${keys.map((k) => `src.${k} = screened.${k}`).join(" AND ")}
  WHERE w IN ('r', 'b')
  GROUP BY ${keys.map((k) => `src.${k}`).join(", ")}
),
measured AS (
  SELECT agg.*,
    SUM(b_req) OVER (PARTITION BY agg.destination_service) AS svc_b_req,
    ${q("r_sketch", "0.5")} AS r_p50,
    ${q("r_sketch", "0.99")} AS r_p99,
    ${q("b_sketch", "0.5")} AS b_p50,
    ${q("b_sketch", "0.99")} AS b_p99,
    ${q("b_sketch", hiRank(0.5))} AS b_p50_hi,
    ${q("b_sketch", hiRank(0.99))} AS b_p99_hi
  FROM agg LEFT JOIN sketches ON ${keys.map((k) => `agg.${k} = sketches.${k}`).join(" AND ")}
  WHERE r_req > 0 OR b_req > 0
),
judged AS (
  SELECT measured.*,
    ${expected} AS expected,
    CASE WHEN r_req > 0 THEN ${wilson("r_err", "r_req", z, -1)} END AS r_lo,
    CASE WHEN b_req > 0 THEN ${wilson("b_err", "b_req", z, 1)} END AS b_hi
  FROM measured
)
${selects.join("\nUNION ALL\n")}
ORDER BY score DESC`;
}

/** Bound values for detectionSql, in placeholder order. */
export function detectionParams(t: OutlierThresholds, w: Windows): (string | number)[] {
  const ts = sqlTimestamp;
  return [
    t.reporter,
    ts(w.recentStart),
    ts(w.recentEnd),
    t.reporter,
    ts(w.hourCutoff),
    ts(w.recentStart),
    t.reporter,
    ts(w.baselineStart),
    ts(w.hourCutoff),
    t.reporter,
    ts(w.historyStart),
    ts(w.baselineStart),
    t.reporter,
    ...w.seasonalHours.map(ts),
    w.baselineMinutes,
  ];
}

/** The statements a run needs before detection: where the hourly rollup ends, and the oldest minute held. */
export const WINDOW_SQL = {
  compactedThrough: `SELECT MAX(hour) AS h FROM ${HOUR_TABLE.name}`,
  firstData: `SELECT MIN(t) AS t FROM (SELECT MIN(minute) AS t FROM ${FACT_TABLE.name} UNION ALL SELECT MIN(hour) FROM ${HOUR_TABLE.name}) x`,
};
