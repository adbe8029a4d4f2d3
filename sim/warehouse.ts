/**
 * Reading a meshlook DuckDB warehouse back, the way an analyst (or Looker) would: SQL over
 * `mesh_traffic_minute` and `mesh_load_ledger`, percentiles through `MESH_QUANTILE`. Used by the demo's
 * report, the end-to-end tests and the freshness benchmark, and compared there with the traffic
 * generator's ground truth — so nothing here reuses the filter's or the collector's aggregation code.
 */
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { registerMeshQuantile, registerMeshSketchMerge } from "../shared/quantile-duckdb.ts";
import type { DecodedSeries } from "../shared/node.ts";
import { DIMENSIONS, FACT_TABLE, LEDGER_TABLE, LOSS_TABLE } from "../shared/schema.ts";
import { seriesKey, type GroundTruth, type SeriesDims, type Stats } from "./traffic/index.ts";

/**
 * The measures of one group of fact rows, summed (min/max over rows) — named as the decoded wire series and
 * the ground truth's Stats name them — plus the requested quantiles (µs).
 */
export type Measures = Omit<DecodedSeries, "dimensions" | "sketch"> & { quantilesUs: number[] };

/** One line of the demo report: who called which service, as one reporter saw it. */
export interface EdgeRow extends Measures {
  reporter: string;
  sourcePrincipal: string;
  sourceWorkload: string;
  destinationService: string;
}

export interface LedgerTotals {
  /** Ledger rows: summaries loaded. */
  summaries: number;
  /** Distinct (producer_id, seq) among them — equal to `summaries` unless the ledger holds a duplicate. */
  distinct: number;
  producers: number;
  /** Requests the ledger says were loaded (audits the fact table). */
  requests: number;
}

/** The fact table's measures, aggregated as docs/schema.md requires (rows are per minute, series and load). */
const MEASURES_SQL = `SUM(requests), SUM(errors), SUM(request_bytes), SUM(response_bytes), SUM(latency_sum_us),
  MIN(latency_min_us), MAX(latency_max_us)`;

const quantileSql = (quantiles: readonly number[]) => quantiles.map((q) => `, MESH_QUANTILE(ARRAY_AGG(latency_sketch), ${Number(q)})`).join("");

function measures(values: readonly unknown[], quantileCount: number): Measures {
  const n = values.map((v) => (v === null ? NaN : Number(v)));
  return {
    requests: n[0],
    errors: n[1],
    requestBytes: n[2],
    responseBytes: n[3],
    latencySumUs: n[4],
    latencyMinUs: n[5],
    latencyMaxUs: n[6],
    quantilesUs: n.slice(7, 7 + quantileCount),
  };
}

export class Warehouse {
  private constructor(
    private readonly instance: DuckDBInstance,
    readonly connection: DuckDBConnection,
  ) {}

  /**
   * Opens a DuckDB file read-only (the collector must have stopped: DuckDB admits one writing process,
   * and a reader in another process needs the writer gone) and registers MESH_QUANTILE and MESH_SKETCH_MERGE on the connection.
   */
  static async open(path: string): Promise<Warehouse> {
    const instance = await DuckDBInstance.create(path, { access_mode: "READ_ONLY" });
    const connection = await instance.connect();
    registerMeshQuantile(connection);
    registerMeshSketchMerge(connection);
    return new Warehouse(instance, connection);
  }

  async rows(sql: string): Promise<unknown[][]> {
    return (await this.connection.runAndReadAll(sql)).getRows() as unknown[][];
  }

  /** Measures per series over the whole table, keyed like the ground truth (`seriesKey`). */
  async series(quantiles: readonly number[] = []): Promise<Map<string, Measures>> {
    const dims = DIMENSIONS.join(", ");
    const out = new Map<string, Measures>();
    for (const row of await this.rows(`SELECT ${dims}, ${MEASURES_SQL}${quantileSql(quantiles)} FROM ${FACT_TABLE.name} GROUP BY ALL`)) {
      const d = Object.fromEntries(DIMENSIONS.map((name, i) => [name, name === "response_code" ? Number(row[i]) : String(row[i])]));
      out.set(seriesKey(d as SeriesDims), measures(row.slice(DIMENSIONS.length), quantiles.length));
    }
    return out;
  }

  /** Measures per reporter → source principal → destination service (with the source workload). */
  async edges(quantiles: readonly number[]): Promise<EdgeRow[]> {
    const rows = await this.rows(
      `SELECT reporter, source_principal, string_agg(DISTINCT source_workload, ',' ORDER BY source_workload), destination_service,
         ${MEASURES_SQL}${quantileSql(quantiles)}
       FROM ${FACT_TABLE.name} GROUP BY reporter, source_principal, destination_service
       ORDER BY reporter DESC, destination_service, source_principal`,
    );
    return rows.map((r) => ({
      reporter: String(r[0]),
      sourcePrincipal: String(r[1]),
      sourceWorkload: String(r[2]),
      destinationService: String(r[3]),
      ...measures(r.slice(4), quantiles.length),
    }));
  }

  /** Totals over the whole fact table. */
  async totals(quantiles: readonly number[] = []): Promise<Measures> {
    const [row] = await this.rows(`SELECT ${MEASURES_SQL}${quantileSql(quantiles)} FROM ${FACT_TABLE.name}`);
    return measures(row, quantiles.length);
  }

  async ledger(): Promise<LedgerTotals> {
    const [row] = await this.rows(`SELECT COUNT(*), COUNT(DISTINCT (producer_id, seq)), COUNT(DISTINCT producer_id), COALESCE(SUM(requests), 0) FROM ${LEDGER_TABLE.name}`);
    const [summaries, distinct, producers, requests] = row.map(Number);
    return { summaries, distinct, producers, requests };
  }

  /** What the sidecars reported losing (docs/schema.md, mesh_sidecar_loss): dropped requests and windows, folded keys. */
  async sidecarLoss(): Promise<{ requests: number; windows: number; overflowKeys: number }> {
    const [row] = await this.rows(`SELECT COALESCE(SUM(dropped_requests), 0), COALESCE(SUM(dropped_windows), 0), COALESCE(SUM(overflow_keys), 0) FROM ${LOSS_TABLE.name}`);
    const [requests, windows, overflowKeys] = row.map(Number);
    return { requests, windows, overflowKeys };
  }

  close(): void {
    this.connection.closeSync();
    this.instance.closeSync();
  }
}

/** The exactly-comparable measures (everything but quantiles), in a fixed order; of the warehouse or the truth. */
export const exactFields = (m: Omit<Measures, "quantilesUs"> | Stats): number[] => [
  m.requests,
  m.errors,
  m.requestBytes,
  m.responseBytes,
  m.latencySumUs,
  m.latencyMinUs,
  m.latencyMaxUs,
];

export interface TruthComparison {
  /** Series in the ground truth, and in the warehouse. */
  truthSeries: number;
  warehouseSeries: number;
  /** Series whose exact measures differ, or that are on one side only (with what differs). */
  mismatches: string[];
}

/** Compares every series of the warehouse with the ground truth, exactly (counters, bytes, latency sum/min/max). */
export function compareSeries(warehouse: Map<string, Measures>, truth: GroundTruth): TruthComparison {
  const expected = truth.aggregate((row) => row.key);
  const mismatches: string[] = [];
  const show = (key: string) => key.split("\u0001").join("|");
  for (const [key, stats] of expected) {
    const got = warehouse.get(key);
    const want = exactFields(stats);
    if (!got) mismatches.push(`missing in warehouse: ${show(key)}`);
    else if (exactFields(got).some((v, i) => v !== want[i])) {
      mismatches.push(`${show(key)}: warehouse ${exactFields(got).join(",")} vs truth ${want.join(",")}`);
    }
  }
  for (const key of warehouse.keys()) if (!expected.has(key)) mismatches.push(`not in ground truth: ${show(key)}`);
  return { truthSeries: expected.size, warehouseSeries: warehouse.size, mismatches };
}

/** Ground-truth statistics in the warehouse's shape (quantiles exact, nearest rank). */
export function truthMeasures(stats: Stats, quantiles: readonly number[] = []): Measures {
  const [requests, errors, requestBytes, responseBytes, latencySumUs, latencyMinUs, latencyMaxUs] = exactFields(stats);
  return { requests, errors, requestBytes, responseBytes, latencySumUs, latencyMinUs, latencyMaxUs, quantilesUs: quantiles.map((q) => stats.quantile(q)) };
}
