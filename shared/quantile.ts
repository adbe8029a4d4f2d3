// Node-side handle on shared/quantile-core.js, the single source of MESH_QUANTILE.
// The core file is evaluated as text (not imported) so that exactly the same bytes become the Snowflake
// JavaScript UDF body; see the header of quantile-core.js.
import { readFileSync } from "node:fs";

/** Sketch JSON as stored in `mesh_traffic_minute.latency_sketch` (docs/schema.md). */
export interface SketchJson {
  s: number;
  z: number;
  o: number;
  c: number[];
}

/** The verbatim text of shared/quantile-core.js. */
export const MESH_QUANTILE_SOURCE: string = readFileSync(new URL("./quantile-core.js", import.meta.url), "utf8");

const core = new Function(
  `${MESH_QUANTILE_SOURCE}\nreturn { meshRank: meshRank, meshBucketValue: meshBucketValue, meshQuantile: meshQuantile, meshSketchMerge: meshSketchMerge, meshSketchMergeJson: meshSketchMergeJson, meshSketchAddInto: meshSketchAddInto };`,
)() as {
  meshRank(q: number, n: number): number;
  meshBucketValue(index: number, scale: number): number;
  meshQuantile(sketches: ReadonlyArray<string | SketchJson | null>, q: number | null): number | null;
  meshSketchMerge(sketches: ReadonlyArray<string | SketchJson | null>): SketchJson | null;
  meshSketchMergeJson(sketches: ReadonlyArray<string | SketchJson | null> | null): string | null;
  meshSketchAddInto(acc: SketchJson, sketch: string | SketchJson | null): SketchJson;
};

/** Nearest rank max(1, ceil(q·n)) with q read as the decimal it prints as, computed exactly. */
export const meshRank = core.meshRank;
/** The value a quantile reports for bucket `index` at `scale`: 2·base^(index+1)/(1+base). */
export const meshBucketValue = core.meshBucketValue;
/** Largest relative error of a quantile read from sketches at `scale`: (b − 1)/(b + 1), b = 2^(2^-scale). */
export function sketchErrorBound(scale: number): number {
  const b = 2 ** (2 ** -scale);
  return (b - 1) / (b + 1);
}
/** MESH_QUANTILE(sketches, q): nearest-rank quantile (µs) over the merged sketches; null when empty. */
export const meshQuantile = core.meshQuantile;
/** Exact merge (to the smallest scale, then bucket-wise add); null when given no sketch. */
export const meshSketchMerge = core.meshSketchMerge;
/** MESH_SKETCH_MERGE(sketches): the merged sketch as stored JSON text; null when given no sketch. */
export const meshSketchMergeJson = core.meshSketchMergeJson;
/** Adds a sketch into an accumulator the caller owns, in place; same result as merging the two. */
export const meshSketchAddInto = core.meshSketchAddInto;

/**
 * Body of the Snowflake UDF
 * `CREATE FUNCTION MESH_QUANTILE(SKETCHES ARRAY, Q DOUBLE) RETURNS DOUBLE LANGUAGE JAVASCRIPT AS $$<body>$$`:
 * Snowflake passes the arguments as upper-case variables and runs the body as a function.
 */
export function snowflakeQuantileUdfBody(): string {
  return `${MESH_QUANTILE_SOURCE}\nreturn meshQuantile(SKETCHES, Q);\n`;
}

/**
 * Body of the Snowflake UDF
 * `CREATE FUNCTION MESH_SKETCH_MERGE(SKETCHES ARRAY) RETURNS VARCHAR LANGUAGE JAVASCRIPT AS $$<body>$$`.
 */
export function snowflakeSketchMergeUdfBody(): string {
  return `${MESH_QUANTILE_SOURCE}\nreturn meshSketchMergeJson(SKETCHES);\n`;
}
