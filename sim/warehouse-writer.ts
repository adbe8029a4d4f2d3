/**
 * Long scenarios straight into a warehouse sink: the generator's requests, as the destination sidecars
 * would report them (`expectedSeries`), folded per minute into summaries with the sidecar's own series
 * statistics and latency sketch (shared/series.ts SeriesStats, the code the filter compiles), then loaded with the
 * sink's ordinary `load()` — the collector's rollup, ledger and hourly compaction included. Skips the
 * wasm filter and HTTP so that a day of traffic loads in seconds; the detection tests and the outlier
 * benchmark use it.
 */
import { SeriesStats, seriesOf, type DecodedSummary } from "../shared/node.ts";
import { DIMENSIONS } from "../shared/schema.ts";
import { expectedSeries, isError, type SeriesDims, type TrafficGenerator } from "./traffic/index.ts";

const MINUTE_MS = 60_000;

/**
 * The destination-side summaries of every minute the generator produces before `untilS`, one summary
 * per minute (producer `producerId`, seq = minute index), in time order.
 */
export function* minuteSummaries(gen: TrafficGenerator, untilS: number, producerId = "sim-destination"): Generator<DecodedSummary> {
  let minute = -1;
  let acc = new Map<string, { dims: SeriesDims; stats: SeriesStats }>();
  const flush = (): DecodedSummary => {
    const summary: DecodedSummary = {
      producerId,
      seq: (minute - gen.startTimeMs) / MINUTE_MS,
      windowStartMs: minute,
      windowEndMs: minute + MINUTE_MS,
      flags: 0,
      droppedRequests: 0,
      droppedWindows: 0,
      overflowKeys: 0,
      reported: [...DIMENSIONS],
      series: [...acc.values()].map((a) => seriesOf(a.dims, a.stats)),
    };
    acc = new Map();
    return summary;
  };
  // What expectedSeries reads of a destination-reported request, as a cheap key: its call (source,
  // service), backend, response code, gRPC status and flags; the dimensions are worked out once per key.
  const dimsOf = new Map<string, SeriesDims>();
  const untilNs = untilS * 1e9;
  for (;;) {
    const r = gen.next();
    if (r.offsetNs >= untilNs) break;
    if (r.minuteMs !== minute) {
      if (minute >= 0 && acc.size > 0) yield flush();
      minute = r.minuteMs;
    }
    if (!r.destinationReports) continue;
    const key = `${r.call.id}|${r.destination.id}|${r.responseCode}|${r.grpcStatus}|${r.responseFlags}`;
    let a = acc.get(key);
    if (!a) {
      let dims = dimsOf.get(key);
      if (!dims) dimsOf.set(key, (dims = expectedSeries(r, "destination")));
      acc.set(key, (a = { dims, stats: new SeriesStats() }));
    }
    a.stats.record(
      Math.floor(r.destinationDurationNs / 1000),
      r.requestHeaderBytes + r.requestBodyBytes,
      r.responseHeaderBytes + r.responseBodyBytes,
      isError(r.responseCode, r.grpcStatus, r.responseFlags),
    );
  }
  if (acc.size > 0) yield flush();
}

/** What writeScenario needs of a sink: its ordinary load(). */
export interface Loadable {
  load(summaries: DecodedSummary[]): Promise<unknown>;
}

/**
 * Loads the generator's traffic up to `untilS` into `sink`, `minutesPerLoad` summaries per load (an
 * hour by default, so the hourly rollup runs as it would after the collector's loads); `onLoad` is told
 * the end of each loaded stretch (tests and benchmarks move the sink's clock with it). Returns the
 * number of summaries loaded.
 */
export async function writeScenario(
  sink: Loadable,
  gen: TrafficGenerator,
  untilS: number,
  opts: { minutesPerLoad?: number; onLoad?: (endMs: number) => void | Promise<void> } = {},
): Promise<number> {
  const per = opts.minutesPerLoad ?? 60;
  let batch: DecodedSummary[] = [];
  let n = 0;
  const load = async () => {
    if (batch.length === 0) return;
    await opts.onLoad?.(batch[batch.length - 1].windowEndMs);
    await sink.load(batch);
    n += batch.length;
    batch = [];
  };
  for (const s of minuteSummaries(gen, untilS)) {
    batch.push(s);
    if (batch.length >= per) await load();
  }
  await load();
  return n;
}
