// An embedded warehouse filled with generated mesh traffic through the real DuckDB sink (migrations,
// rollup, ledger), next to the generator's exact ground truth for the same requests.
//
// Each (minute, series) is delivered in two summaries by two producers, and the second producer's
// summaries are loaded in a later batch: the fact table then holds several rows per (minute, series),
// as it does when summaries arrive late, so every measure has to aggregate and merge sketches.
import "assemblyscript/std/portable/index";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SketchJson } from "../../shared/quantile.ts";
import { DEFAULT_SCALE, Sketch } from "../../shared/sketch.ts";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import type { DecodedSeries, DecodedSummary } from "../../collector/summary.ts";
import {
  GroundTruth,
  TrafficGenerator,
  expectedSeries,
  isError,
  mixed,
  seriesKey,
  type Reporter,
  type SeriesDims,
} from "../../sim/traffic/index.ts";

const MINUTE_MS = 60_000;

export interface Warehouse {
  sink: DuckDBSink;
  truth: GroundTruth;
  /** First and one-past-last minute with traffic, Unix ms. */
  fromMs: number;
  toMs: number;
  /** The DuckDB catalog and schema the tables live in (the DATABASE and SCHEMA constants here). */
  database: string;
  schema: string;
  close(): Promise<void>;
}

interface Acc {
  dims: SeriesDims;
  requests: number;
  errors: number;
  requestBytes: number;
  responseBytes: number;
  latencySumUs: number;
  latencyMinUs: number;
  latencyMaxUs: number;
  sketch: Sketch;
}

function sketchJson(s: Sketch): SketchJson {
  const c: number[] = [];
  for (let i = s.lo; i <= s.hi; i++) c.push(s.bucket(i));
  return { s: s.scale, z: s.zeroCount, o: c.length ? s.lo : 0, c };
}

function toSeries(a: Acc): DecodedSeries {
  return {
    dimensions: a.dims,
    requests: a.requests,
    errors: a.errors,
    requestBytes: a.requestBytes,
    responseBytes: a.responseBytes,
    latencySumUs: a.latencySumUs,
    latencyMinUs: a.latencyMinUs,
    latencyMaxUs: a.latencyMaxUs,
    sketch: sketchJson(a.sketch),
  };
}

/** Per producer: minute → series key → accumulator; one summary per (producer, minute). */
type Producer = Map<number, Map<string, Acc>>;

function summaries(producerId: string, producer: Producer): DecodedSummary[] {
  return [...producer.entries()]
    .sort(([a], [b]) => a - b)
    .map(([minuteMs, series], i) => ({
      producerId,
      seq: i + 1,
      windowStartMs: minuteMs,
      windowEndMs: minuteMs + MINUTE_MS,
      series: [...series.values()].map(toSeries),
    }));
}

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
      let acc = minute.get(key);
      if (!acc) {
        acc = {
          dims,
          requests: 0,
          errors: 0,
          requestBytes: 0,
          responseBytes: 0,
          latencySumUs: 0,
          latencyMinUs: Infinity,
          latencyMaxUs: -Infinity,
          sketch: new Sketch(DEFAULT_SCALE),
        };
        minute.set(key, acc);
      }
      const us = Math.floor(durationNs / 1000);
      acc.requests++;
      if (isError(req.responseCode, req.grpcStatus, req.responseFlags)) acc.errors++;
      acc.requestBytes += req.requestHeaderBytes + req.requestBodyBytes;
      acc.responseBytes += req.responseHeaderBytes + req.responseBodyBytes;
      acc.latencySumUs += us;
      acc.latencyMinUs = Math.min(acc.latencyMinUs, us);
      acc.latencyMaxUs = Math.max(acc.latencyMaxUs, us);
      acc.sketch.record(us);
    };
    if (req.sourceReports) observe("source", req.sourceDurationNs);
    if (req.destinationReports) observe("destination", req.destinationDurationNs);
  }

  const dir = mkdtempSync(join(tmpdir(), "meshlook-looker-"));
  // The catalog of an attached DuckDB file is named after the file.
  const sink = new DuckDBSink(join(dir, "meshlook.duckdb"));
  await sink.open();
  for (const [i, producer] of producers.entries()) await sink.load(summaries(`looker-check-${i}`, producer));
  const minutes = truth.minuteList();
  return {
    sink,
    truth,
    fromMs: minutes[0],
    toMs: minutes[minutes.length - 1] + MINUTE_MS,
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
  return reader.getRowObjectsJS().map((row) =>
    Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v])),
  );
}
