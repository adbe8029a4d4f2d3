// One detection run: pick the windows from what the warehouse holds, run the shared detection statement
// (shared/outliers.ts) for each grain, and turn its rows into findings with a stable identity, a
// one-line summary and a Looker explore URL.
import { DETECTED_COLUMNS, WINDOW_SQL, detectionParams, detectionSql, windows, type DetectedRow, type Grain, type OutlierThresholds, type Windows } from "../../shared/outliers.ts";
import { exploreUrl } from "./explore-url.ts";
import { epochMs, type WarehouseQuery } from "./warehouse.ts";

export interface Finding extends DetectedRow {
  /** Stable identity: the same series and kind keep it across runs. */
  id: string;
  grain: Grain;
  recentStart: number;
  recentEnd: number;
  baselineStart: number;
  summary: string;
  exploreUrl: string;
}

export const findingId = (grain: Grain, kind: string, sourcePrincipal: string | null, service: string) => `${grain}|${kind}|${sourcePrincipal ?? "*"}|${service}`;

const pct = (v: number | null) => (v === null ? "?" : `${(v * 100).toFixed(v < 0.01 ? 2 : 1)} %`);
const ms = (us: number | null) => (us === null ? "?" : `${(us / 1000).toFixed(us < 10_000 ? 2 : 0)} ms`);

function summarize(r: DetectedRow, recentMinutes: number): string {
  const who = r.source_principal === null ? r.destination_service : `${r.source_principal} → ${r.destination_service}`;
  switch (r.kind) {
    case "error_rate":
      return `${who}: error rate ${pct(r.recent_value)} (${r.recent_errors}/${r.recent_requests}) in the last ${recentMinutes} min vs ${pct(r.baseline_value)} (${r.baseline_errors}/${r.baseline_requests}) before`;
    case "latency":
      return `${who}: p99 ${ms(r.recent_p99_us)} (p50 ${ms(r.recent_p50_us)}) over ${r.recent_requests} requests vs p99 ${ms(r.baseline_p99_us)} (p50 ${ms(r.baseline_p50_us)}) before`;
    case "traffic_drop":
      return `${who}: ${r.recent_requests} requests in the last ${recentMinutes} min, about ${Math.round(r.baseline_value ?? 0)} expected`;
    case "traffic_surge":
      return `${who}: ${r.recent_requests} requests in the last ${recentMinutes} min, about ${Math.round(r.baseline_value ?? 0)} expected`;
    case "new_edge":
      return `${who}: first calls from this identity (${r.recent_requests} in the last ${recentMinutes} min; never seen before)`;
    case "plaintext":
      // The rule admits a baseline up to PLAINTEXT_MAX_BASELINE_SHARE plaintext, so say what it was rather than "mTLS-only".
      return `${who}: ${r.recent_value} plaintext requests in the last ${recentMinutes} min vs ${pct(r.baseline_value)} plaintext before (${r.baseline_requests} requests)`;
  }
}

export interface DetectOptions {
  thresholds: OutlierThresholds;
  grains: readonly Grain[];
  /** Looker host for explore URLs ("" → path only). */
  lookerUrl: string;
  /** Keep at most this many findings per run, best scores first. */
  maxFindings: number;
}

/** The windows of a run ending at `recentEnd`, from where the hourly rollup ends and the oldest data. */
export async function runWindows(q: WarehouseQuery, t: OutlierThresholds, recentEnd: number): Promise<Windows | undefined> {
  const [through] = await q.query(WINDOW_SQL.compactedThrough);
  const [first] = await q.query(WINDOW_SQL.firstData);
  const lastHour = epochMs(through?.h);
  return windows(t, recentEnd, lastHour === undefined ? undefined : lastHour + 3_600_000, epochMs(first?.t));
}

const numberOrNull = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** Findings of one run ending at `recentEnd` (a whole minute), best first; empty when the baseline is too short. */
export async function detect(q: WarehouseQuery, o: DetectOptions, recentEnd: number): Promise<{ windows?: Windows; findings: Finding[] }> {
  const t = o.thresholds;
  const w = await runWindows(q, t, recentEnd);
  if (!w) return { findings: [] };
  const findings: Finding[] = [];
  for (const grain of o.grains) {
    const rows = await q.query(detectionSql(q.dialect, grain, t), detectionParams(t, w));
    for (const raw of rows) {
      const r = Object.fromEntries(DETECTED_COLUMNS.map((c) => [c, raw[c]])) as unknown as DetectedRow;
      const row: DetectedRow = {
        ...r,
        source_principal: r.source_principal === null || r.source_principal === undefined ? null : String(r.source_principal),
        destination_service: String(r.destination_service),
        score: Number(r.score),
        recent_requests: Number(r.recent_requests),
        baseline_requests: Number(r.baseline_requests),
        recent_errors: Number(r.recent_errors),
        baseline_errors: Number(r.baseline_errors),
        recent_value: numberOrNull(r.recent_value),
        baseline_value: numberOrNull(r.baseline_value),
        recent_p50_us: numberOrNull(r.recent_p50_us),
        baseline_p50_us: numberOrNull(r.baseline_p50_us),
        recent_p99_us: numberOrNull(r.recent_p99_us),
        baseline_p99_us: numberOrNull(r.baseline_p99_us),
      };
      findings.push({
        ...row,
        id: findingId(grain, row.kind, row.source_principal, row.destination_service),
        grain,
        recentStart: w.recentStart,
        recentEnd: w.recentEnd,
        baselineStart: w.baselineStart,
        summary: summarize(row, t.recentMinutes),
        exploreUrl: exploreUrl(o.lookerUrl, {
          kind: row.kind,
          grain,
          sourcePrincipal: row.source_principal,
          destinationService: row.destination_service,
          reporter: t.reporter,
          fromMs: w.recentStart - 2 * 3_600_000,
          toMs: w.recentEnd,
        }),
      });
    }
  }
  findings.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id));
  return { windows: w, findings: findings.slice(0, o.maxFindings) };
}
