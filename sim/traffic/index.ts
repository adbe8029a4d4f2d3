/**
 * The seeded traffic generator and its exact ground truth. Pure: no I/O, no wall clock.
 *
 *   const model = bookinfo({ durationS: 60 });
 *   const gen = new TrafficGenerator(model, { seed: 42, requestsPerSecond: 2000 });
 *   const truth = new GroundTruth();
 *   for (let i = 0; i < 100_000; i++) truth.record(gen.next());
 *   truth.rows(); truth.totals({ reporter: "destination" }).quantile(0.99);
 */
export { Rng, WeightedPicker } from "./prng.ts";
export { RESPONSE_FLAGS, flagBit, flagMask, flagsToString, type ResponseFlagName } from "./flags.ts";
export { FAILURE_FLAGS_MASK, isError } from "./errors.ts";
export * from "./model.ts";
export { TrafficGenerator, DEFAULT_START_TIME_MS, type SimRequest, type GeneratorOptions } from "./generator.ts";
export {
  DIMENSIONS,
  UNKNOWN,
  expectedSeries,
  seriesKey,
  type Dimension,
  type Reporter,
  type SeriesDims,
  type SeriesOptions,
} from "./series.ts";
export { GroundTruth, Stats, exactQuantile, type TruthRow, type TruthOptions, type TotalsFilter } from "./truth.ts";
export { PRESETS, bookinfo, mixed, cardinalityAttack, type PresetName } from "./presets.ts";
export { incidents, type Incidents, type IncidentsOptions, type PlantedIncident } from "./incidents.ts";
