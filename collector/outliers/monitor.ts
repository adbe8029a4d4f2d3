// The collector's outlier stage: after loads (at most once per interval) it runs detection in the
// warehouse, refreshes mesh_outlier, updates the Prometheus gauges, and hands newly opened findings to
// the webhook. A failure is logged and counted and never affects loading.
import type { Logger } from "pino";
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { OUTLIER_KINDS } from "../../shared/outliers.ts";
import { detect } from "./detect.ts";
import { Webhook, dueForNotification } from "./notify.ts";
import type { OutlierSettings } from "./settings.ts";
import { refreshFindings, type StoredFinding } from "./store.ts";
import type { WarehouseQuery } from "./warehouse.ts";

const MINUTE = 60_000;

export interface OutlierSnapshot {
  /** When the last successful run finished (epoch ms); undefined before the first. */
  ranAt?: number;
  recentStart?: number;
  recentEnd?: number;
  findings: StoredFinding[];
}

export class OutlierMonitor {
  /** Start counts as a run: the first comes one interval after start, not in the start-up load's burst. */
  private lastRunMs: number;
  private snapshot: OutlierSnapshot = { findings: [] };
  /** Webhook deliveries not yet recorded in mesh_outlier (finding id → when). */
  private readonly notified = new Map<string, number>();
  private readonly webhook?: Webhook;
  private delivering = Promise.resolve();
  private lastError?: string;
  private readonly gauge: Gauge<"kind">;
  private readonly scoreGauge?: Gauge<"kind" | "grain" | "source_principal" | "destination_service">;
  private readonly runs: Counter<"result">;
  private readonly deliveries: Counter<"result">;
  private readonly duration: Histogram;

  constructor(
    private readonly warehouse: WarehouseQuery,
    private readonly settings: OutlierSettings,
    registry: Registry,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.lastRunMs = now();
    const registers = [registry];
    this.gauge = new Gauge({ name: "meshlook_outliers", help: "Open outlier findings, by kind (docs/outliers.md)", labelNames: ["kind"] as const, registers });
    for (const kind of OUTLIER_KINDS) this.gauge.set({ kind }, 0);
    if (settings.metricIdentities) {
      this.scoreGauge = new Gauge({
        name: "meshlook_outlier_score",
        help: "Score of each open outlier finding (MESHLOOK_OUTLIER_METRIC_IDENTITIES=true: one series per finding)",
        labelNames: ["kind", "grain", "source_principal", "destination_service"] as const,
        registers,
      });
    }
    this.runs = new Counter({
      name: "meshlook_outlier_runs_total",
      help: "Outlier detection runs, by result (ok, skipped: baseline too short, failed)",
      labelNames: ["result"] as const,
      registers,
    });
    this.deliveries = new Counter({
      name: "meshlook_outlier_webhook_deliveries_total",
      help: "Webhook POSTs of new findings, by result (ok, failed after retries)",
      labelNames: ["result"] as const,
      registers,
    });
    this.duration = new Histogram({
      name: "meshlook_outlier_run_seconds",
      help: "Wall time of one detection run and table refresh",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    for (const result of ["ok", "skipped", "failed"]) this.runs.inc({ result }, 0);
    if (settings.webhook) {
      this.webhook = new Webhook(settings.webhook);
      for (const result of ["ok", "failed"]) this.deliveries.inc({ result }, 0);
    }
  }

  /** Current open findings, as of the last run. */
  current(): OutlierSnapshot {
    return this.snapshot;
  }

  /** The loader's hook: runs detection unless one ran within the interval. Never throws. */
  async afterLoad(): Promise<void> {
    const now = this.now();
    if (now - this.lastRunMs < this.settings.intervalMs) return;
    this.lastRunMs = now;
    try {
      await this.run(now);
      this.lastError = undefined;
    } catch (err) {
      this.runs.inc({ result: "failed" });
      const message = (err as Error).message;
      // A warehouse that stays down would otherwise log the same failure every interval.
      if (message !== this.lastError) this.log.error({ err }, `outlier detection failed: ${message}`);
      this.lastError = message;
    }
  }

  /** One run whose recent window ends `settleMs` before `nowMs` (rounded down to a minute). */
  async run(nowMs: number): Promise<OutlierSnapshot> {
    const end = this.duration.startTimer();
    const recentEnd = Math.floor((nowMs - this.settings.settleMs) / MINUTE) * MINUTE;
    const { windows, findings } = await detect(this.warehouse, this.settings, recentEnd);
    if (!windows) {
      this.runs.inc({ result: "skipped" });
      end();
      return this.snapshot;
    }
    const recorded = new Map(this.notified);
    const stored = await refreshFindings(this.warehouse, findings, nowMs, recorded);
    for (const id of recorded.keys()) this.notified.delete(id);
    this.snapshot = { ranAt: nowMs, recentStart: windows.recentStart, recentEnd: windows.recentEnd, findings: stored };
    this.updateGauges(stored);
    this.runs.inc({ result: "ok" });
    end();
    const opened = stored.filter((f) => f.opened);
    if (opened.length > 0) this.log.warn({ opened: opened.map((f) => f.summary) }, `${opened.length} new outlier finding(s)`);
    if (this.webhook) this.deliver(dueForNotification(stored, nowMs, this.settings.webhook!.cooldownMs), nowMs);
    return this.snapshot;
  }

  private updateGauges(findings: readonly StoredFinding[]): void {
    for (const kind of OUTLIER_KINDS) this.gauge.set({ kind }, findings.filter((f) => f.kind === kind).length);
    if (this.scoreGauge) {
      this.scoreGauge.reset();
      for (const f of findings) {
        this.scoreGauge.set({ kind: f.kind, grain: f.grain, source_principal: f.source_principal ?? "", destination_service: f.destination_service }, f.score);
      }
    }
  }

  /** Sends in the background (a slow receiver must not hold up loading); one delivery at a time. */
  private deliver(due: StoredFinding[], nowMs: number): void {
    if (due.length === 0) return;
    this.delivering = this.delivering.then(async () => {
      try {
        await this.webhook!.send(due);
        // Recorded in mesh_outlier.notified_at by the next refresh; only an opened finding is ever due,
        // so nothing is sent twice in between.
        for (const f of due) this.notified.set(f.id, nowMs);
        this.deliveries.inc({ result: "ok" });
      } catch (err) {
        this.deliveries.inc({ result: "failed" });
        this.log.error({ err, findings: due.length }, `outlier webhook failed: ${(err as Error).message}`);
      }
    });
  }

  /** Waits for a delivery in flight, then closes the webhook's connections. */
  async close(): Promise<void> {
    await this.delivering;
    await this.webhook?.close();
  }
}
