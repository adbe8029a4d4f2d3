// The one thing outlier detection needs from a warehouse: run a statement with `?` parameters and get
// rows back as objects with lower-case column names and plain JS values (numbers, epoch-ms timestamps).
import { DuckDBTimestampValue, type DuckDBConnection } from "@duckdb/node-api";
import type { Dialect } from "../../shared/schema.ts";

export type Row = Record<string, unknown>;

export interface WarehouseQuery {
  readonly dialect: Dialect;
  query(sql: string, params?: readonly unknown[]): Promise<Row[]>;
}

function plain(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (v instanceof DuckDBTimestampValue) return Number(v.micros / 1000n);
  if (v instanceof Date) return v.getTime();
  return v;
}

/** Queries over an open DuckDB connection (the DuckDB sink's, or a reader's with the mesh UDFs registered). */
export function duckdbQuery(connection: () => DuckDBConnection): WarehouseQuery {
  return {
    dialect: "duckdb",
    async query(sql, params = []) {
      const res = await connection().runAndReadAll(sql, [...params] as never);
      const names = res.columnNames().map((n) => n.toLowerCase());
      return res.getRows().map((r) => Object.fromEntries(r.map((v, i) => [names[i], plain(v)])));
    },
  };
}

/** Queries through a function that returns Snowflake rows (upper-case column names). */
export function snowflakeQuery(run: (sql: string, params: readonly unknown[]) => Promise<Row[]>): WarehouseQuery {
  return {
    dialect: "snowflake",
    async query(sql, params = []) {
      const rows = await run(sql, params);
      return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k.toLowerCase(), plain(v)])));
    },
  };
}

/** Epoch ms of a timestamp value as either warehouse returns it (number, or `YYYY-MM-DD HH:MM:SS` text in UTC). */
export function epochMs(v: unknown): number | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === "number") return v;
  const ms = Date.parse(`${String(v).replace(" ", "T")}${/Z|[+-]\d\d:?\d\d$/.test(String(v)) ? "" : "Z"}`);
  return Number.isNaN(ms) ? undefined : ms;
}
