// MESH_QUANTILE and MESH_SKETCH_MERGE as DuckDB scalar functions (node-api), backed by
// shared/quantile-core.js. Scalar functions live in the connection's process, not in the database file:
// every process that queries a meshlook DuckDB file registers them on its connection (the collector
// does; so can a notebook or test with these helpers).
import { DOUBLE, DuckDBScalarFunction, LIST, VARCHAR, type DuckDBConnection, type DuckDBListValue, type DuckDBType } from "@duckdb/node-api";
import { meshQuantile, meshSketchMergeJson } from "./quantile.ts";

/** A scalar function whose first argument is a list of sketches and whose NULLs reach `fn` as null. */
function registerSketchListFunction(
  connection: DuckDBConnection,
  name: string,
  returnType: DuckDBType,
  extra: DuckDBType[],
  fn: (sketches: (string | null)[], ...rest: unknown[]) => unknown,
): void {
  connection.registerScalarFunction(
    DuckDBScalarFunction.create({
      name,
      returnType,
      parameterTypes: [LIST(VARCHAR), ...extra],
      specialHandling: true, // NULL arguments reach the function, which answers NULL itself
      mainFunction: (info, input, output) => {
        const vectors = [0, ...extra.map((_, k) => k + 1)].map((k) => input.getColumnVector(k));
        try {
          for (let i = 0; i < input.rowCount; i++) {
            const list = vectors[0].getItem(i) as DuckDBListValue | null;
            const rest = vectors.slice(1).map((v) => v.getItem(i));
            output.setItem(i, (list === null ? null : fn(list.items as (string | null)[], ...rest)) as never);
          }
          output.flush();
        } catch (err) {
          info.setError((err as Error).message);
        }
      },
    }),
  );
}

/** Registers `MESH_QUANTILE(sketches VARCHAR[], q DOUBLE) → DOUBLE` on the connection. */
export function registerMeshQuantile(connection: DuckDBConnection): void {
  registerSketchListFunction(connection, "mesh_quantile", DOUBLE, [DOUBLE], (sketches, q) => meshQuantile(sketches, q as number | null));
}

/** Registers `MESH_SKETCH_MERGE(sketches VARCHAR[]) → VARCHAR` (merged sketch JSON) on the connection. */
export function registerMeshSketchMerge(connection: DuckDBConnection): void {
  registerSketchListFunction(connection, "mesh_sketch_merge", VARCHAR, [], (sketches) => meshSketchMergeJson(sketches));
}
