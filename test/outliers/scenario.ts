// The planted-incident scenario the outlier tests share: three hours of the `incidents` mesh (or its
// clean twin), as destination-side minute summaries, and the detection settings the tests use (a 2-hour
// baseline instead of 24 hours, so the data stays small; every other threshold at its default).
import type { DecodedSummary } from "../../shared/node.ts";
import { DEFAULT_THRESHOLDS, type OutlierThresholds } from "../../shared/outliers.ts";
import { TrafficGenerator, incidents, type Incidents } from "../../sim/traffic/index.ts";
import { minuteSummaries } from "../../sim/warehouse-writer.ts";
import type { Finding } from "../../collector/outliers/detect.ts";
import type { PlantedIncident } from "../../sim/traffic/index.ts";

export const DURATION_S = 3 * 3600;
export const RPS = 60;
export const TEST_THRESHOLDS: OutlierThresholds = { ...DEFAULT_THRESHOLDS, baselineHours: 2 };

export interface Scenario extends Incidents {
  summaries: DecodedSummary[];
  startMs: number;
  /** End of the run: the recent window ends here. */
  endMs: number;
}

export function scenario(planted: boolean, seed = 7, durationS = DURATION_S): Scenario {
  const inc = incidents({ durationS, incidents: planted });
  const gen = new TrafficGenerator(inc.model, { seed, requestsPerSecond: RPS });
  return { ...inc, summaries: [...minuteSummaries(gen, durationS)], startMs: gen.startTimeMs, endMs: gen.startTimeMs + durationS * 1000 };
}

/** Loads the summaries an hour at a time, moving `clock` to each load's end (the hourly rollup's "now"). */
export async function loadHourly(sink: { load(s: DecodedSummary[]): Promise<unknown> }, summaries: DecodedSummary[], clock: { now: number }): Promise<void> {
  for (let i = 0; i < summaries.length; i += 60) {
    const batch = summaries.slice(i, i + 60);
    clock.now = batch[batch.length - 1].windowEndMs;
    await sink.load(batch);
  }
}

/** Whether a finding is about a planted incident's series (service-wide incidents cover the service's edges too). */
export function explains(p: PlantedIncident, f: Finding): boolean {
  if (f.destination_service !== p.destinationService) return false;
  return p.sourcePrincipal === undefined || f.source_principal === p.sourcePrincipal || f.source_principal === null;
}
