// Cumulative series for Prometheus from per-window summaries (docs/prometheus.md, "From windows to
// counters"). Summaries are deltas from many producers; Prometheus wants one monotonic series per label
// set and writer. This collector instance is the writer: it adds every summary, once, into a running
// total per label set, and writes the totals. The totals, the per-producer high sequence number that
// makes a retried summary count once, and the exporter's spool cursor are one snapshot, persisted
// together, so a restart resumes exactly where the totals stand.
import { Sketch, sketchFromJson, sketchToJson, type SketchJson } from "../../shared/node.ts";
import { DIMENSIONS } from "../../shared/schema.ts";
import type { DecodedSummary } from "../summary.ts";
import { INSTANCE_LABEL, LABEL_OF } from "./labels.ts";
import { encodeSeriesPart, nativeHistogram, type Label, type MetricMetadata, type WriteRequestWriter } from "./protocol.ts";

export const OVERFLOW = "__overflow__";

/** Metric names; every one carries the same labels. */
export const METRIC = {
  requests: "meshlook_requests_total",
  errors: "meshlook_request_errors_total",
  requestBytes: "meshlook_request_bytes_total",
  responseBytes: "meshlook_response_bytes_total",
  latency: "meshlook_request_duration_microseconds",
} as const;

export const METADATA: MetricMetadata[] = [
  { type: "COUNTER", metricFamilyName: METRIC.requests, help: "Requests, as the reporting sidecar saw them" },
  { type: "COUNTER", metricFamilyName: METRIC.errors, help: "Requests meshlook counts as errors (docs/schema.md)" },
  { type: "COUNTER", metricFamilyName: METRIC.requestBytes, help: "Request body bytes", unit: "bytes" },
  { type: "COUNTER", metricFamilyName: METRIC.responseBytes, help: "Response body bytes", unit: "bytes" },
  { type: "HISTOGRAM", metricFamilyName: METRIC.latency, help: "Request duration (native histogram of the sidecar's latency sketch)", unit: "microseconds" },
];

/**
 * A producer not heard from for this long is forgotten. It outlasts the filter's longest wait before a
 * retry (1 h, docs/filter-config.md), so a retry of its last summary is still recognised.
 */
export const PRODUCER_TTL_MS = 2 * 3600_000;

interface SeriesState {
  /** Dimension values in DIMENSIONS order, as label values. */
  values: string[];
  /** requests, errors, request bytes, response bytes, latency sum (µs): cumulative. */
  totals: number[];
  sketch: Sketch;
  /** Export time of the last summary that touched it (idle series are dropped). */
  touchedMs: number;
  /** Created, and its zero sample (the start of the counter) not yet confirmed written. */
  pendingZero: boolean;
  /** Its labels but `__name__`, encoded: those sorting before `__name__` and those after. */
  encodedLabels?: [Uint8Array, Uint8Array];
}

const COUNTERS = [METRIC.requests, METRIC.errors, METRIC.requestBytes, METRIC.responseBytes] as const;

export interface Cursor {
  segment: number;
  offset: number;
}

type SeriesSnapshot = [values: string[], totals: number[], sketch: SketchJson, touchedMs: number, pendingZero: boolean];

export interface Snapshot {
  version: 1;
  instance: string;
  cursor: Cursor;
  lastTs: number;
  producers: [id: string, seq: number, seenMs: number][];
  series: SeriesSnapshot[];
}

export interface ApplyResult {
  duplicate: boolean;
  /** Series updates folded into an overflow series by the cap. */
  overflowed: number;
  created: number;
}

export class ExportState {
  readonly series = new Map<string, SeriesState>();
  private readonly producers = new Map<string, { seq: number; seenMs: number }>();
  cursor: Cursor = { segment: 0, offset: 0 };
  /** Highest sample timestamp chosen so far: every new sample goes after it. */
  lastTs = 0;
  /** Label names (sorted) and, for each, where its value comes from: a dimension index or a fixed value. */
  private readonly labelPlan: { name: string; dim: number; fixed: string }[];
  /** The encoded `__name__` label of each counter, then of the latency histogram. */
  private readonly nameParts = [...COUNTERS, METRIC.latency].map((value) => encodeSeriesPart({ labels: [{ name: "__name__", value }] }));

  constructor(
    readonly instance: string,
    private readonly maxSeries: number,
    externalLabels: Record<string, string> = {},
  ) {
    const plan = DIMENSIONS.map((d, dim) => ({ name: LABEL_OF[d], dim, fixed: "" }));
    plan.push({ name: INSTANCE_LABEL, dim: -1, fixed: instance });
    for (const [name, value] of Object.entries(externalLabels)) plan.push({ name, dim: -1, fixed: value });
    this.labelPlan = plan.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get pendingZeros(): number {
    let n = 0;
    for (const s of this.series.values()) if (s.pendingZero) n++;
    return n;
  }

  /**
   * Adds a summary to the totals unless its producer already delivered this sequence number or a later
   * one: the filter sends a producer's summaries oldest first, one at a time, and only retries the one in
   * flight (docs/filter-config.md), so seq <= the highest seen means a retry already counted.
   */
  apply(summary: DecodedSummary, nowMs: number): ApplyResult {
    const res: ApplyResult = { duplicate: false, overflowed: 0, created: 0 };
    const p = this.producers.get(summary.producerId);
    if (p && summary.seq <= p.seq) {
      p.seenMs = nowMs;
      res.duplicate = true;
      return res;
    }
    this.producers.set(summary.producerId, { seq: summary.seq, seenMs: nowMs });
    for (const s of summary.series) {
      let values = DIMENSIONS.map((d) => String(s.dimensions[d]));
      let key = values.join("\u0001");
      let state = this.series.get(key);
      if (!state && this.series.size >= this.maxSeries) {
        values = overflowValues(values);
        key = values.join("\u0001");
        state = this.series.get(key);
        res.overflowed++;
      }
      if (!state) {
        state = { values, totals: [0, 0, 0, 0, 0], sketch: new Sketch(s.sketch.s), touchedMs: nowMs, pendingZero: true };
        this.series.set(key, state);
        res.created++;
      }
      const t = state.totals;
      t[0] += s.requests;
      t[1] += s.errors;
      t[2] += s.requestBytes;
      t[3] += s.responseBytes;
      t[4] += s.latencySumUs;
      state.sketch.merge(sketchFromJson(s.sketch));
      state.touchedMs = nowMs;
    }
    return res;
  }

  /**
   * Forgets series no summary touched for `idleMs` and producers past PRODUCER_TTL_MS. A forgotten series
   * that comes back starts again from a zero sample, which Prometheus reads as a counter reset.
   */
  expire(nowMs: number, idleMs: number): number {
    let dropped = 0;
    for (const [key, s] of this.series) {
      if (nowMs - s.touchedMs > idleMs) {
        this.series.delete(key);
        dropped++;
      }
    }
    for (const [id, p] of this.producers) if (nowMs - p.seenMs > PRODUCER_TTL_MS) this.producers.delete(id);
    return dropped;
  }

  private encodeLabels(values: string[]): [Uint8Array, Uint8Array] {
    const labels: Label[] = this.labelPlan.map((l) => ({ name: l.name, value: l.dim >= 0 ? values[l.dim] : l.fixed }));
    const split = labels.findIndex((l) => l.name > "__name__");
    const cut = split < 0 ? labels.length : split;
    return [encodeSeriesPart({ labels: labels.slice(0, cut) }), encodeSeriesPart({ labels: labels.slice(cut) })];
  }

  /**
   * Adds to `out`, at `ts`, either the zero samples that start the counters of series created since the
   * last confirmed zero request ("zeros"), or every series' totals ("values": a sample per series and
   * interval, as a scrape would give).
   */
  encode(kind: "zeros" | "values", ts: number, out: WriteRequestWriter): void {
    const zero = kind === "zeros";
    for (const s of this.series.values()) {
      if (zero && !s.pendingZero) continue;
      const [before, after] = (s.encodedLabels ??= this.encodeLabels(s.values));
      for (let i = 0; i < COUNTERS.length; i++) {
        out.add([before, this.nameParts[i], after, encodeSeriesPart({ samples: [{ value: zero ? 0 : s.totals[i], timestamp: ts }] })]);
      }
      const histogram = nativeHistogram(zero ? new Sketch(s.sketch.scale) : s.sketch, zero ? 0 : s.totals[4], ts);
      out.add([before, this.nameParts[COUNTERS.length], after, encodeSeriesPart({ histograms: [histogram] })]);
    }
  }

  confirmZeros(): void {
    for (const s of this.series.values()) s.pendingZero = false;
  }

  snapshot(): Snapshot {
    return {
      version: 1,
      instance: this.instance,
      cursor: { ...this.cursor },
      lastTs: this.lastTs,
      producers: [...this.producers].map(([id, p]) => [id, p.seq, p.seenMs]),
      series: [...this.series.values()].map((s) => [s.values, s.totals, sketchToJson(s.sketch), s.touchedMs, s.pendingZero]),
    };
  }

  /**
   * Restores a snapshot. Written under another instance name, its series are new series to Prometheus,
   * so each starts again from a zero sample.
   */
  restore(snap: Snapshot): void {
    const renamed = snap.instance !== this.instance;
    this.cursor = { ...snap.cursor };
    this.lastTs = snap.lastTs;
    this.producers.clear();
    for (const [id, seq, seenMs] of snap.producers) this.producers.set(id, { seq, seenMs });
    this.series.clear();
    for (const [values, totals, sketch, touchedMs, pendingZero] of snap.series) {
      this.series.set(values.join("\u0001"), { values, totals, sketch: sketchFromJson(sketch), touchedMs, pendingZero: pendingZero || renamed });
    }
  }
}

/**
 * The overflow series a capped series folds into: the reporter stays, response_code reads 0 and every
 * other dimension `__overflow__` — the filter's own overflow series (docs/schema.md), so the two merge —
 * except an end-user principal that was not reported (`unknown`), as the filter leaves it.
 */
export function overflowValues(values: string[]): string[] {
  return DIMENSIONS.map((d, i) => {
    if (d === "reporter") return values[i];
    if (d === "response_code") return "0";
    if (d === "end_user_principal" && values[i] === "unknown") return "unknown";
    return OVERFLOW;
  });
}
