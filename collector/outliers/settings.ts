// Outlier settings from the environment (MESHLOOK_OUTLIER_*, MESHLOOK_LOOKER_URL; docs/outliers.md has
// the reference table). Every threshold of shared/outliers.ts is a setting named after it:
// errorMinRequests ↔ MESHLOOK_OUTLIER_ERROR_MIN_REQUESTS. Problems are gathered, each naming its setting.
import { DEFAULT_THRESHOLDS, GRAINS, type Grain, type OutlierThresholds } from "../../shared/outliers.ts";
import type { WebhookSettings } from "./notify.ts";

export interface OutlierSettings {
  enabled: boolean;
  /** Least time between two detection runs (runs follow loads). */
  intervalMs: number;
  /** The recent window ends this long before now, so minutes still being loaded are not judged. */
  settleMs: number;
  grains: Grain[];
  maxFindings: number;
  lookerUrl: string;
  /** Label Prometheus gauges with identities (one series per finding: cardinality). */
  metricIdentities: boolean;
  thresholds: OutlierThresholds;
  webhook?: WebhookSettings;
}

const envName = (key: string) => `MESHLOOK_OUTLIER_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

/** Every threshold's environment name and default, for the reference table and the check below. */
export const THRESHOLD_SETTINGS = Object.entries(DEFAULT_THRESHOLDS).map(([key, value]) => ({ key: key as keyof OutlierThresholds, env: envName(key), default: value }));

export class OutlierSettingsError extends Error {}

/**
 * Reads the settings; `loadIntervalS` (the collector's) sets the default settle time: a load interval
 * plus a minute, so the recent window only holds minutes that have been loaded.
 */
export function outlierSettings(env: NodeJS.ProcessEnv, loadIntervalS: number): OutlierSettings {
  const problems: string[] = [];
  const number = (name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const raw = env[name];
    if (raw === undefined || raw.trim() === "") return def;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) {
      problems.push(`${name}: must be a number between ${min} and ${max}, got ${JSON.stringify(raw)}`);
      return def;
    }
    return n;
  };
  const bool = (name: string, def: boolean): boolean => {
    const raw = env[name]?.trim().toLowerCase();
    if (raw === undefined || raw === "") return def;
    if (raw === "true" || raw === "1") return true;
    if (raw === "false" || raw === "0") return false;
    problems.push(`${name}: must be true or false, got ${JSON.stringify(env[name])}`);
    return def;
  };
  const thresholds = { ...DEFAULT_THRESHOLDS };
  for (const s of THRESHOLD_SETTINGS) {
    if (s.key === "reporter") {
      const raw = env[s.env]?.trim();
      if (raw === undefined || raw === "") continue;
      if (raw !== "destination" && raw !== "source") problems.push(`${s.env}: must be destination or source, got ${JSON.stringify(raw)}`);
      else thresholds.reporter = raw;
      continue;
    }
    (thresholds as Record<string, unknown>)[s.key] = number(s.env, s.default as number, 0);
  }
  if (thresholds.recentMinutes < 1 || !Number.isInteger(thresholds.recentMinutes)) problems.push(`${envName("recentMinutes")}: must be a whole number of minutes ≥ 1`);
  if (thresholds.baselineHours < 1 || !Number.isInteger(thresholds.baselineHours)) problems.push(`${envName("baselineHours")}: must be a whole number of hours ≥ 1`);
  if (!Number.isInteger(thresholds.seasonalWeeks) || thresholds.seasonalWeeks > 12) problems.push(`${envName("seasonalWeeks")}: must be a whole number from 0 to 12`);
  if (thresholds.trafficDropRatio >= 1) problems.push(`${envName("trafficDropRatio")}: must be below 1`);
  if (thresholds.trafficSurgeRatio <= 1) problems.push(`${envName("trafficSurgeRatio")}: must be above 1`);
  const grainsRaw = env.MESHLOOK_OUTLIER_GRAINS;
  const grains = (grainsRaw ?? GRAINS.join(","))
    .split(",")
    .map((g) => g.trim())
    .filter((g) => g !== "");
  const unknownGrain = grains.filter((g) => !(GRAINS as readonly string[]).includes(g));
  if (unknownGrain.length > 0 || grains.length === 0) problems.push(`MESHLOOK_OUTLIER_GRAINS: a comma list of ${GRAINS.join(", ")}, got ${JSON.stringify(grainsRaw)}`);
  const webhookUrl = env.MESHLOOK_OUTLIER_WEBHOOK_URL?.trim();
  let webhook: WebhookSettings | undefined;
  if (webhookUrl) {
    try {
      const u = new URL(webhookUrl);
      if (u.protocol !== "https:" && u.protocol !== "http:") throw new Error("not http(s)");
    } catch {
      problems.push("MESHLOOK_OUTLIER_WEBHOOK_URL: must be an http(s) URL");
    }
    const format = env.MESHLOOK_OUTLIER_WEBHOOK_FORMAT?.trim() || "json";
    if (format !== "json" && format !== "slack") problems.push(`MESHLOOK_OUTLIER_WEBHOOK_FORMAT: must be json or slack, got ${JSON.stringify(format)}`);
    webhook = {
      url: webhookUrl,
      format: format === "slack" ? "slack" : "json",
      cooldownMs: number("MESHLOOK_OUTLIER_WEBHOOK_COOLDOWN_S", 3600, 0) * 1000,
      retries: number("MESHLOOK_OUTLIER_WEBHOOK_RETRIES", 3, 0, 10),
      retryDelayMs: number("MESHLOOK_OUTLIER_WEBHOOK_RETRY_DELAY_MS", 1000, 1),
    };
  }
  const settings: OutlierSettings = {
    enabled: bool("MESHLOOK_OUTLIERS", true),
    intervalMs: number("MESHLOOK_OUTLIER_INTERVAL_S", 300, 0) * 1000,
    settleMs: number("MESHLOOK_OUTLIER_SETTLE_S", loadIntervalS + 60, 0) * 1000,
    grains: grains as Grain[],
    maxFindings: number("MESHLOOK_OUTLIER_MAX_FINDINGS", 200, 1, 10_000),
    lookerUrl: env.MESHLOOK_LOOKER_URL?.trim() ?? "",
    metricIdentities: bool("MESHLOOK_OUTLIER_METRIC_IDENTITIES", false),
    thresholds,
    webhook,
  };
  if (problems.length > 0) throw new OutlierSettingsError(`invalid outlier settings:\n  - ${problems.join("\n  - ")}`);
  return settings;
}
