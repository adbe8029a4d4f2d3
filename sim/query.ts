/**
 * Runs SQL on a meshlook DuckDB file with MESH_QUANTILE and MESH_SKETCH_MERGE registered (DuckDB keeps no JavaScript in the
 * file, so a plain DuckDB client lacks it). Opens the file read-only: stop the collector first.
 *
 *   npx tsx sim/query.ts data/meshlook.duckdb "SELECT reporter, SUM(requests) FROM mesh_traffic_minute GROUP BY 1"
 */
import { formatTable } from "./report.ts";
import { Warehouse } from "./warehouse.ts";

const [file, sql] = process.argv.slice(2);
if (!file || !sql) {
  console.error('usage: npx tsx sim/query.ts <file.duckdb> "<SQL>"');
  process.exit(2);
}
const warehouse = await Warehouse.open(file);
try {
  const result = await warehouse.connection.runAndReadAll(sql);
  const rows = result.getRows().map((r) => r.map((v) => (v === null ? "NULL" : String(v))));
  console.log(formatTable(result.columnNames(), rows));
} finally {
  warehouse.close();
}
