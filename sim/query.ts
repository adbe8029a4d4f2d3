/**
 * `meshlook query FILE SQL`: runs SQL on a meshlook DuckDB file with MESH_QUANTILE and MESH_SKETCH_MERGE registered
 * (DuckDB keeps no JavaScript in the file, so a plain DuckDB client lacks it). Opens the file read-only: stop the
 * collector first. Built into dist/collector/query.js, so it runs in the collector image too.
 *
 *   npx meshlook query data/meshlook.duckdb "SELECT reporter, SUM(requests) FROM mesh_traffic_minute GROUP BY 1"
 */
import { parseCommandLine } from "../scripts/args.ts";
import { formatTable } from "./report.ts";
import { Warehouse } from "./warehouse.ts";

const USAGE = `usage: meshlook query <file.duckdb> "<SQL>"
  runs the SQL on the file, opened read-only (stop the collector that writes it first), and prints the rows;
  MESH_QUANTILE(sketches, q) and MESH_SKETCH_MERGE(sketches) are registered (docs/collector.md)`;

const { positionals } = parseCommandLine(USAGE, {}, process.argv.slice(2), true);
const [file, sql] = positionals;
if (!file || !sql || positionals.length > 2) {
  console.error(USAGE);
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
