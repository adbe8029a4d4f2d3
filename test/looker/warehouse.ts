// An embedded warehouse filled with generated mesh traffic the way production fills it: requests are
// aggregated per series with the filter's SeriesStats, encoded with the wire codec, decoded by the
// collector's decoder and loaded by the real DuckDB sink (migrations, rollup, ledger). Next to it, the
// generator's exact ground truth for the same requests.
//
// Each (minute, series) is delivered in two summaries by two producers, and the second producer's
// summaries are loaded in a later batch: the fact table then holds several rows per (minute, series),
// as it does when summaries arrive late, so every measure has to aggregate and merge sketches.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { decodeSummary, type DecodedSummary } from "../../collector/summary.ts";
import { DIMENSIONS } from "../../shared/schema.ts";
import { DEFAULT_SCALE, SeriesStats, encodeSummary, seriesOf } from "../../shared/node.ts";
import { GroundTruth, TrafficGenerator, expectedSeries, isError, mixed, seriesKey, type Reporter, type SeriesDims } from "../../sim/traffic/index.ts";

const MINUTE_MS = 60_000;
const DAY_MS = 24 * 60 * MINUTE_MS;

/** What one loaded summary reported its sidecar lost (the truth for mesh_sidecar_loss). */
export interface LossReport {
  namespace: string;
  minuteMs: number;
  droppedRequests: number;
  droppedWindows: number;
  overflowKeys: number;
}

export interface Warehouse {
  sink: DuckDBSink;
  truth: GroundTruth;
  /** Every loss the loaded summaries report. */
  losses: LossReport[];
  /** First and one-past-last minute with traffic, Unix ms. */
  fromMs: number;
  toMs: number;
  /** The DuckDB catalog and schema the tables live in (the DATABASE and SCHEMA constants here). */
  database: string;
  schema: string;
  close(): Promise<void>;
}

export interface SeriesInput {
  dims: SeriesDims;
  stats: SeriesStats;
}

/**
 * One summary for the minute starting at `minuteMs`, through the wire: encoded as a sidecar would send
 * it and decoded as the collector does, so the sink loads exactly what it loads in production.
 */
export function minuteSummary(
  producerId: string,
  seq: number,
  minuteMs: number,
  series: SeriesInput[],
  loss: Partial<Pick<DecodedSummary, "droppedRequests" | "droppedWindows" | "overflowKeys">> = {},
): DecodedSummary {
  const bytes = encodeSummary({
    ...loss,
    producerId,
    seq,
    windowStartMs: minuteMs,
    windowEndMs: minuteMs + MINUTE_MS,
    reported: [...DIMENSIONS],
    series: series.map(({ dims, stats }) => seriesOf(dims, stats)),
  });
  const decoded = decodeSummary(bytes);
  if (!decoded.ok) throw new Error(`generated summary does not decode: ${decoded.reason} ${decoded.message}`);
  return decoded.summary;
}

/** Per producer: minute → series key → aggregate; one summary per (producer, minute). */
type Producer = Map<number, Map<string, SeriesInput>>;

/**
 * The producer's summaries, one per minute. Some report a loss in their header (windows dropped before
 * them, overflowed keys), as a sidecar does after an outage; the facts are unaffected. The producer id
 * is an Istio sidecar's, naming its pod's namespace, which the loss rows carry.
 */
function summaries(index: number, namespace: string, producer: Producer, losses: LossReport[]): DecodedSummary[] {
  const producerId = `sidecar~10.0.0.${index + 1}~looker-check-${index}.${namespace}~${namespace}.svc.cluster.local/1/1/${index}`;
  return [...producer.entries()]
    .sort(([a], [b]) => a - b)
    .map(([minuteMs, series], i) => {
      const loss = { droppedRequests: 0, droppedWindows: 0, overflowKeys: 0 };
      if (i % 3 === 1) Object.assign(loss, { droppedRequests: 37 * i + index, droppedWindows: 1 + (i % 2) });
      if (i % 4 === 2) loss.overflowKeys = 5 + i;
      if (loss.droppedWindows + loss.overflowKeys > 0) losses.push({ namespace, minuteMs, ...loss });
      return minuteSummary(producerId, i + 1, minuteMs, [...series.values()], loss);
    });
}

/** The namespaces of the two producers' pods: one inside and one outside the access tests' namespaces. */
export const PRODUCER_NAMESPACES = ["shop", "search"] as const;

export interface WarehouseOptions {
  seed?: string;
  requests?: number;
  requestsPerSecond?: number;
}

/** Generates traffic, loads it through the DuckDB sink in two batches, and returns it with its truth. */
export async function loadWarehouse(options: WarehouseOptions = {}): Promise<Warehouse> {
  const seriesOptions = { endUserPrincipal: true };
  const gen = new TrafficGenerator(mixed(), { seed: options.seed ?? "looker-check", requestsPerSecond: options.requestsPerSecond ?? 250 });
  const truth = new GroundTruth(seriesOptions);
  const producers: [Producer, Producer] = [new Map(), new Map()];
  const n = options.requests ?? 30_000;
  for (let i = 0; i < n; i++) {
    const req = gen.next();
    truth.record(req);
    const observe = (reporter: Reporter, durationNs: number) => {
      const dims = expectedSeries(req, reporter, seriesOptions);
      const key = seriesKey(dims);
      const producer = producers[i % 3 === 0 ? 1 : 0];
      let minute = producer.get(req.minuteMs);
      if (!minute) producer.set(req.minuteMs, (minute = new Map()));
      let entry = minute.get(key);
      if (!entry) minute.set(key, (entry = { dims, stats: new SeriesStats(DEFAULT_SCALE) }));
      entry.stats.record(
        Math.floor(durationNs / 1000),
        req.requestHeaderBytes + req.requestBodyBytes,
        req.responseHeaderBytes + req.responseBodyBytes,
        isError(req.responseCode, req.grpcStatus, req.responseFlags),
      );
    };
    if (req.sourceReports) observe("source", req.sourceDurationNs);
    if (req.destinationReports) observe("destination", req.destinationDurationNs);
  }

  const minutes = truth.minuteList();
  const toMs = minutes[minutes.length - 1] + MINUTE_MS;
  const dir = mkdtempSync(join(tmpdir(), "meshlook-looker-"));
  // The catalog of an attached DuckDB file is named after the file. The sink's clock stands a day after
  // the generated traffic (which starts 2026-01-01), not at the wall clock: compaction looks back a bounded
  // week from now for closed hours, so on the wall clock it would find none of the traffic's hours.
  const sink = new DuckDBSink(join(dir, "meshlook.duckdb"), undefined, { now: () => toMs + DAY_MS });
  await sink.open();
  const losses: LossReport[] = [];
  for (const [i, producer] of producers.entries()) await sink.load(summaries(i, PRODUCER_NAMESPACES[i], producer, losses));
  return {
    sink,
    truth,
    losses,
    fromMs: minutes[0],
    toMs,
    database: "meshlook",
    schema: "main",
    async close() {
      await sink.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs SQL on the warehouse; rows as objects keyed by column name, numbers as JS numbers. */
export async function query(w: Warehouse, sql: string): Promise<Record<string, unknown>[]> {
  const reader = await w.sink.connection.runAndReadAll(sql);
  return reader.getRowObjectsJS().map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v])));
}
