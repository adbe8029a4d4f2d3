// mesh_outlier upkeep after each detection run, in one transaction: the findings of this run are
// (re)written under their stable ids — an ongoing finding keeps its first_detected_at, one that comes
// back after being resolved starts a new episode — and open findings this run did not find are
// resolved. The table so always holds one row per finding ever made, never a duplicate.
import { OUTLIER_TABLE } from "../../shared/schema.ts";
import { sqlTimestamp } from "../../shared/outliers.ts";
import type { Finding } from "./detect.ts";
import { epochMs, type WarehouseQuery } from "./warehouse.ts";

const T = OUTLIER_TABLE.name;
const COLUMNS = OUTLIER_TABLE.columns.map((c) => c.name);

/** A finding as the table holds it after a refresh. */
export interface StoredFinding extends Finding {
  status: "open";
  firstDetectedAt: number;
  lastDetectedAt: number;
  notifiedAt?: number;
  /** This run opened the finding (it was not open before). */
  opened: boolean;
}

const placeholders = (n: number) => Array.from({ length: n }, () => "?").join(", ");

/**
 * Writes this run's findings and resolves the rest. `notified` holds webhook deliveries made since the
 * last refresh (finding id → when), recorded in notified_at here so they survive a restart.
 */
export async function refreshFindings(q: WarehouseQuery, findings: readonly Finding[], nowMs: number, notified: ReadonlyMap<string, number> = new Map()): Promise<StoredFinding[]> {
  const ts = `CAST(? AS ${q.dialect === "duckdb" ? "TIMESTAMP" : "TIMESTAMP_NTZ"})`;
  const ids = findings.map((f) => f.id);
  const inIds = ids.length > 0 ? `finding_id IN (${placeholders(ids.length)})` : "1 = 0";
  await q.query("BEGIN TRANSACTION");
  try {
    const before = new Map(
      (await q.query(`SELECT finding_id, status, first_detected_at, notified_at FROM ${T} WHERE status = 'open' OR ${inIds}`, ids)).map((r) => [String(r.finding_id), r]),
    );
    const stored = findings.map((f): StoredFinding => {
      const prev = before.get(f.id);
      const opened = prev?.status !== "open";
      const notifiedAt = Math.max(notified.get(f.id) ?? -Infinity, epochMs(prev?.notified_at) ?? -Infinity);
      return {
        ...f,
        status: "open",
        firstDetectedAt: opened ? nowMs : (epochMs(prev?.first_detected_at) ?? nowMs),
        lastDetectedAt: nowMs,
        notifiedAt: Number.isFinite(notifiedAt) ? notifiedAt : undefined,
        opened,
      };
    });
    if (ids.length > 0) await q.query(`DELETE FROM ${T} WHERE ${inIds}`, ids);
    const valueSql = (c: string) => (OUTLIER_TABLE.columns.find((x) => x.name === c)!.type === "timestamp" ? ts : "?");
    const rowSql = `(${COLUMNS.map(valueSql).join(", ")})`;
    for (let i = 0; i < stored.length; i += 100) {
      const chunk = stored.slice(i, i + 100);
      await q.query(`INSERT INTO ${T} (${COLUMNS.join(", ")}) VALUES ${chunk.map(() => rowSql).join(", ")}`, chunk.flatMap(rowValues));
    }
    await q.query(`UPDATE ${T} SET status = 'resolved', resolved_at = ${ts} WHERE status = 'open'${ids.length > 0 ? ` AND NOT ${inIds}` : ""}`, [sqlTimestamp(nowMs), ...ids]);
    for (const [id, at] of notified) {
      if (!ids.includes(id)) await q.query(`UPDATE ${T} SET notified_at = ${ts} WHERE finding_id = ?`, [sqlTimestamp(at), id]);
    }
    await q.query("COMMIT");
    return stored;
  } catch (err) {
    await q.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

function rowValues(f: StoredFinding): unknown[] {
  const t = (ms: number | undefined) => (ms === undefined ? null : sqlTimestamp(ms));
  const values: Record<string, unknown> = {
    finding_id: f.id,
    kind: f.kind,
    grain: f.grain,
    source_principal: f.source_principal,
    destination_service: f.destination_service,
    status: f.status,
    score: f.score,
    summary: f.summary,
    recent_start: t(f.recentStart),
    recent_end: t(f.recentEnd),
    baseline_start: t(f.baselineStart),
    recent_requests: f.recent_requests,
    baseline_requests: f.baseline_requests,
    recent_errors: f.recent_errors,
    baseline_errors: f.baseline_errors,
    recent_value: f.recent_value,
    baseline_value: f.baseline_value,
    recent_p50_us: f.recent_p50_us,
    baseline_p50_us: f.baseline_p50_us,
    recent_p99_us: f.recent_p99_us,
    baseline_p99_us: f.baseline_p99_us,
    explore_url: f.exploreUrl,
    first_detected_at: t(f.firstDetectedAt),
    last_detected_at: t(f.lastDetectedAt),
    resolved_at: null,
    notified_at: t(f.notifiedAt),
  };
  return COLUMNS.map((c) => values[c]);
}

/** Open findings as the table holds them, best score first (the read API and the demo use it). */
export async function openFindings(q: WarehouseQuery): Promise<Record<string, unknown>[]> {
  return q.query(`SELECT ${COLUMNS.join(", ")} FROM ${T} WHERE status = 'open' ORDER BY score DESC, finding_id`);
}

/** A finding as the read API and the webhook present it (JSON, camelCase, ISO times). */
export function findingJson(f: StoredFinding) {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: f.id,
    kind: f.kind,
    grain: f.grain,
    sourcePrincipal: f.source_principal,
    destinationService: f.destination_service,
    score: f.score,
    summary: f.summary,
    recentStart: iso(f.recentStart),
    recentEnd: iso(f.recentEnd),
    baselineStart: iso(f.baselineStart),
    recentRequests: f.recent_requests,
    baselineRequests: f.baseline_requests,
    recentErrors: f.recent_errors,
    baselineErrors: f.baseline_errors,
    recentValue: f.recent_value,
    baselineValue: f.baseline_value,
    recentP50Us: f.recent_p50_us,
    baselineP50Us: f.baseline_p50_us,
    recentP99Us: f.recent_p99_us,
    baselineP99Us: f.baseline_p99_us,
    exploreUrl: f.exploreUrl,
    firstDetectedAt: iso(f.firstDetectedAt),
    lastDetectedAt: iso(f.lastDetectedAt),
  };
}
