import { isError } from "./errors.ts";
import type { SimRequest } from "./generator.ts";
import { expectedSeries, seriesKey, type Reporter, type SeriesDims, type SeriesOptions } from "./series.ts";

/**
 * q as the exact fraction num/den of the decimal it prints as (0.55 → 55/100), from the definition of
 * a decimal numeral; BigInt so no product below loses a digit.
 */
export function decimalFraction(q: number): { num: bigint; den: bigint } {
  const m = /^(\d+)(?:\.(\d+))?(?:e([-+]\d+))?$/.exec(String(q));
  if (!m) throw new Error(`not a decimal in [0, 1]: ${q}`);
  const frac = m[2] ?? "";
  const exp = Number(m[3] ?? 0) - frac.length;
  const num = BigInt(m[1] + frac);
  return exp >= 0 ? { num: num * 10n ** BigInt(exp), den: 1n } : { num, den: 10n ** BigInt(-exp) };
}

/**
 * Nearest-rank quantile of an ascending array (the schema's definition): the smallest value v such that
 * at least a fraction q of the n values are <= v, i.e. the k-th with k >= 1 the least whole number for
 * which k/n >= q. Found by comparing k·den >= num·n in exact integers (binary search over k), not by a
 * rounding formula, so it shares nothing with MESH_QUANTILE's rank. NaN for an empty array.
 */
export function exactQuantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile must be in [0, 1], got ${q}`);
  const { num, den } = decimalFraction(q);
  const enough = (k: number) => BigInt(k) * den >= num * BigInt(n);
  let lo = 1;
  let hi = n; // k = n always has k/n = 1 >= q
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (enough(mid)) hi = mid;
    else lo = mid + 1;
  }
  return sorted[lo - 1];
}

/**
 * Exact statistics of a set of requests: the measures of `mesh_traffic_minute` plus every latency value, so
 * quantiles are exact. Latencies live in a growable Float64Array (8 bytes per request, no per-value objects).
 */
export class Stats {
  requests = 0;
  errors = 0;
  requestBytes = 0;
  responseBytes = 0;
  latencySumUs = 0;
  latencyMinUs = Infinity;
  latencyMaxUs = -Infinity;
  private values = new Float64Array(8);
  private sortedView: Float64Array | null = null;

  add(latencyUs: number, error: boolean, requestBytes: number, responseBytes: number): void {
    if (this.requests === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.requests++] = latencyUs;
    if (error) this.errors++;
    this.requestBytes += requestBytes;
    this.responseBytes += responseBytes;
    this.latencySumUs += latencyUs;
    if (latencyUs < this.latencyMinUs) this.latencyMinUs = latencyUs;
    if (latencyUs > this.latencyMaxUs) this.latencyMaxUs = latencyUs;
    this.sortedView = null;
  }

  merge(other: Stats): void {
    if (other.requests === 0) return;
    const need = this.requests + other.requests;
    if (need > this.values.length) {
      const grown = new Float64Array(Math.max(need, this.values.length * 2));
      grown.set(this.values.subarray(0, this.requests));
      this.values = grown;
    }
    this.values.set(other.values.subarray(0, other.requests), this.requests);
    this.requests = need;
    this.errors += other.errors;
    this.requestBytes += other.requestBytes;
    this.responseBytes += other.responseBytes;
    this.latencySumUs += other.latencySumUs;
    this.latencyMinUs = Math.min(this.latencyMinUs, other.latencyMinUs);
    this.latencyMaxUs = Math.max(this.latencyMaxUs, other.latencyMaxUs);
    this.sortedView = null;
  }

  /** Latencies in µs in arrival order (a view; do not keep across `add`). */
  latencies(): Float64Array {
    return this.values.subarray(0, this.requests);
  }

  /** Latencies in µs, ascending (computed once, until the next `add`). */
  sortedLatencies(): Float64Array {
    if (!this.sortedView) this.sortedView = Float64Array.from(this.latencies()).sort();
    return this.sortedView;
  }

  /** Exact nearest-rank quantile in µs. */
  quantile(q: number): number {
    return exactQuantile(this.sortedLatencies(), q);
  }
}

export interface TruthRow {
  /** Start of the UTC minute, Unix ms. */
  minuteMs: number;
  /** `seriesKey(dims)` */
  key: string;
  dims: SeriesDims;
  stats: Stats;
}

export interface TruthOptions extends SeriesOptions {
  /** Record only these reporters (the filter's `directions`: inbound = destination, outbound = source). */
  reporters?: Reporter[];
}

export interface TotalsFilter {
  reporter?: Reporter;
  /** Inclusive lower bound on the minute, Unix ms. */
  fromMinuteMs?: number;
  /** Exclusive upper bound on the minute, Unix ms. */
  toMinuteMs?: number;
}

interface SeriesEntry {
  key: string;
  dims: SeriesDims;
}

/**
 * Exact ground truth per (minute, series) and reporter, computed from the generator's facts with
 * `expectedSeries` and `isError` — never with the filter's code.
 */
export class GroundTruth {
  readonly options: TruthOptions;
  /** Observations recorded (a request seen by both sidecars counts twice). */
  observations = 0;
  private readonly recordSource: boolean;
  private readonly recordDestination: boolean;
  /**
   * Per-request facts → series index, in two numeric levels (edge: workloads, service, reporter; outcome:
   * code, gRPC status, flags, TLS, connection) so the hot path builds no strings. Requests whose key holds
   * an end user go through a string-keyed map instead. The dimension key is built once per new series.
   */
  private readonly byFacts = new Map<number, Map<number, number>>();
  private readonly byUserFacts = new Map<string, number>();
  private readonly byKey = new Map<string, number>();
  private readonly series: SeriesEntry[] = [];
  /** Per minute, stats by series index (sparse). */
  private readonly minutes = new Map<number, Stats[]>();
  private lastMinuteMs = NaN;
  private lastMinute: Stats[] = [];

  constructor(options: TruthOptions = {}) {
    this.options = options;
    const reporters = options.reporters ?? ["source", "destination"];
    this.recordSource = reporters.includes("source");
    this.recordDestination = reporters.includes("destination");
  }

  record(request: SimRequest): void {
    if (request.sourceReports && this.recordSource) this.observe(request, "source", request.sourceDurationNs);
    if (request.destinationReports && this.recordDestination) {
      this.observe(request, "destination", request.destinationDurationNs);
    }
  }

  private seriesIndex(request: SimRequest, reporter: Reporter): number {
    // Ids stay below 2^16 and services below 2^12 in any mesh this simulator builds; the products are
    // exact integers well under 2^53.
    const edge = ((request.source.id * 65536 + request.destination.id) * 4096 + request.service.id) * 2 + (reporter === "source" ? 0 : 1);
    const outcome = ((request.responseCode * 32 + request.grpcStatus + 1) * 4 + (request.mtls ? 2 : 0) + (request.upstreamConnected ? 1 : 0)) * 0x8000000 + request.responseFlags;
    if (request.endUser !== null && reporter === "destination" && this.options.endUserPrincipal) {
      const facts = `${edge}:${outcome}:${request.endUser}`;
      let index = this.byUserFacts.get(facts);
      if (index === undefined) {
        index = this.intern(request, reporter);
        this.byUserFacts.set(facts, index);
      }
      return index;
    }
    let outcomes = this.byFacts.get(edge);
    if (!outcomes) {
      outcomes = new Map();
      this.byFacts.set(edge, outcomes);
    }
    let index = outcomes.get(outcome);
    if (index === undefined) {
      index = this.intern(request, reporter);
      outcomes.set(outcome, index);
    }
    return index;
  }

  private intern(request: SimRequest, reporter: Reporter): number {
    const dims = expectedSeries(request, reporter, this.options);
    const key = seriesKey(dims);
    let index = this.byKey.get(key);
    if (index === undefined) {
      index = this.series.length;
      this.series.push({ key, dims });
      this.byKey.set(key, index);
    }
    return index;
  }

  private observe(request: SimRequest, reporter: Reporter, durationNs: number): void {
    const index = this.seriesIndex(request, reporter);
    if (request.minuteMs !== this.lastMinuteMs) {
      let minute = this.minutes.get(request.minuteMs);
      if (!minute) {
        minute = [];
        this.minutes.set(request.minuteMs, minute);
      }
      this.lastMinuteMs = request.minuteMs;
      this.lastMinute = minute;
    }
    let stats = this.lastMinute[index];
    if (!stats) {
      stats = new Stats();
      this.lastMinute[index] = stats;
    }
    stats.add(
      Math.floor(durationNs / 1000),
      isError(request.responseCode, request.grpcStatus, request.responseFlags),
      request.requestHeaderBytes + request.requestBodyBytes,
      request.responseHeaderBytes + request.responseBodyBytes,
    );
    this.observations++;
  }

  /** Number of distinct series (over all minutes). */
  get seriesCount(): number {
    return this.series.length;
  }

  /** Minutes that have data, ascending, Unix ms. */
  minuteList(): number[] {
    return [...this.minutes.keys()].sort((a, b) => a - b);
  }

  /** One row per (minute, series), ordered by minute then series key. */
  rows(): TruthRow[] {
    const rows: TruthRow[] = [];
    for (const minuteMs of this.minuteList()) {
      this.minutes.get(minuteMs)!.forEach((stats, index) => {
        const { key, dims } = this.series[index];
        rows.push({ minuteMs, key, dims, stats });
      });
    }
    return rows.sort((a, b) => a.minuteMs - b.minuteMs || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  /**
   * Rows merged by an arbitrary grouping, e.g. per source principal → destination service for a report,
   * or per series over the whole run (`(row) => row.key`).
   */
  aggregate(groupBy: (row: TruthRow) => string): Map<string, Stats> {
    const groups = new Map<string, Stats>();
    for (const row of this.rows()) {
      const g = groupBy(row);
      let stats = groups.get(g);
      if (!stats) {
        stats = new Stats();
        groups.set(g, stats);
      }
      stats.merge(row.stats);
    }
    return groups;
  }

  /** Everything recorded, optionally for one reporter and a range of minutes. */
  totals(filter: TotalsFilter = {}): Stats {
    const total = new Stats();
    for (const [minuteMs, series] of this.minutes) {
      if (filter.fromMinuteMs !== undefined && minuteMs < filter.fromMinuteMs) continue;
      if (filter.toMinuteMs !== undefined && minuteMs >= filter.toMinuteMs) continue;
      series.forEach((stats, index) => {
        if (!filter.reporter || this.series[index].dims.reporter === filter.reporter) total.merge(stats);
      });
    }
    return total;
  }
}
