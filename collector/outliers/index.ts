// The outlier stage as the collector wires it: settings from the environment, a query handle on the
// sink's own connection (DuckDB) or session (Snowflake), the monitor and its read route.
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { CollectorConfig } from "../config.ts";
import type { DuckDBSink } from "../sink/duckdb.ts";
import type { SnowflakeSink } from "../sink/snowflake.ts";
import type { Sink } from "../sink/types.ts";
import { OutlierMonitor } from "./monitor.ts";
import { outlierRoutes } from "./routes.ts";
import { outlierSettings } from "./settings.ts";
import { duckdbQuery, snowflakeQuery, type WarehouseQuery } from "./warehouse.ts";

export { OutlierMonitor } from "./monitor.ts";

// Told apart by shape, not instanceof, so the DuckDB collector never loads snowflake-sdk.
function queryOf(sink: Sink): WarehouseQuery | undefined {
  if (sink.kind === "duckdb" && "connection" in sink) return duckdbQuery(() => (sink as DuckDBSink).connection);
  if (sink.kind === "snowflake" && "query" in sink) return snowflakeQuery((sql, params) => (sink as SnowflakeSink).query(sql, params));
  return undefined;
}

/** The monitor and its routes, or undefined when outliers are turned off (MESHLOOK_OUTLIERS=false) or the sink cannot be queried. */
export function outlierStage(sink: Sink, config: CollectorConfig, registry: Registry, log: Logger, env: NodeJS.ProcessEnv = process.env) {
  const settings = outlierSettings(env, config.loadIntervalS);
  if (!settings.enabled) return undefined;
  const q = queryOf(sink);
  if (!q) {
    log.warn("outlier detection is off: this sink offers no query access");
    return undefined;
  }
  return { monitor: new OutlierMonitor(q, settings, registry, log.child({ component: "outliers" })), routes: outlierRoutes };
}
