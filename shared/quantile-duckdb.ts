// MESH_QUANTILE as a DuckDB scalar function (node-api), backed by shared/quantile-core.js.
// Scalar functions live in the connection's process, not in the database file: every process that
// queries a meshlook DuckDB file registers it on its connection (the collector does; so can a
// notebook or test with this helper).
import { DOUBLE, DuckDBScalarFunction, LIST, VARCHAR, type DuckDBConnection, type DuckDBListValue } from "@duckdb/node-api";
import { meshQuantile } from "./quantile.ts";

/** Registers `MESH_QUANTILE(sketches VARCHAR[], q DOUBLE) → DOUBLE` on the connection. */
export function registerMeshQuantile(connection: DuckDBConnection): void {
  connection.registerScalarFunction(
    DuckDBScalarFunction.create({
      name: "mesh_quantile",
      returnType: DOUBLE,
      parameterTypes: [LIST(VARCHAR), DOUBLE],
      specialHandling: true, // NULL arguments reach the function, which answers NULL itself
      mainFunction: (info, input, output) => {
        const sketches = input.getColumnVector(0);
        const qs = input.getColumnVector(1);
        try {
          for (let i = 0; i < input.rowCount; i++) {
            const list = sketches.getItem(i) as DuckDBListValue | null;
            const q = qs.getItem(i) as number | null;
            output.setItem(i, list === null ? null : meshQuantile(list.items as (string | null)[], q));
          }
          output.flush();
        } catch (err) {
          info.setError((err as Error).message);
        }
      },
    }),
  );
}
