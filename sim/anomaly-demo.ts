/**
 * `npm run demo -- --anomaly`: three hours of the `incidents` mesh (sim/traffic/incidents.ts) with five
 * planted incidents in the last minutes, written into a DuckDB warehouse through the sink's ordinary
 * load (sim/warehouse-writer.ts), then one outlier detection run as the collector makes it after a
 * load: the findings, ranked, with their evidence and Looker explore URLs, and which incidents they found.
 * The baseline is shortened to two hours (MESHLOOK_OUTLIER_BASELINE_HOURS) so the demo loads in seconds.
 */
import { join } from "node:path";
import { detect } from "../collector/outliers/detect.ts";
import { refreshFindings } from "../collector/outliers/store.ts";
import { duckdbQuery } from "../collector/outliers/warehouse.ts";
import { DuckDBSink } from "../collector/sink/duckdb.ts";
import { DEFAULT_THRESHOLDS } from "../shared/outliers.ts";
import { formatTable } from "./report.ts";
import { TrafficGenerator, incidents } from "./traffic/index.ts";
import { writeScenario } from "./warehouse-writer.ts";

export async function runAnomalyDemo(opts: { dataDir: string; seed: number; rps: number; lookerUrl: string }): Promise<void> {
  const durationS = 3 * 3600;
  const inc = incidents({ durationS });
  // Simulated time ends at the last whole minute, so the findings are about "now".
  const startMs = Math.floor(Date.now() / 60_000) * 60_000 - durationS * 1000;
  const gen = new TrafficGenerator(inc.model, { seed: opts.seed, requestsPerSecond: opts.rps, startTimeMs: startMs, diurnalAmplitude: 0.3 });
  let now = startMs;
  const path = join(opts.dataDir, "meshlook.duckdb");
  const sink = new DuckDBSink(path, undefined, { now: () => now });
  await sink.open();
  try {
    console.log(`loading 3 h of the incidents mesh (${opts.rps} requests/s) into ${path} …`);
    await writeScenario(sink, gen, durationS, { onLoad: (end) => void (now = end) });
    const q = duckdbQuery(() => sink.connection);
    const thresholds = { ...DEFAULT_THRESHOLDS, baselineHours: 2 };
    const t0 = performance.now();
    const { findings } = await detect(q, { thresholds, grains: ["edge", "service"], lookerUrl: opts.lookerUrl, maxFindings: 50 }, startMs + durationS * 1000);
    await refreshFindings(q, findings, Date.now());
    console.log(
      `\noutlier detection: ${findings.length} findings in ${(performance.now() - t0).toFixed(0)} ms (written to mesh_outlier); the last ${thresholds.recentMinutes} min against the ${thresholds.baselineHours} h before\n`,
    );
    console.log(
      formatTable(
        ["#", "score", "kind", "grain", "evidence"],
        findings.map((f, i) => [String(i + 1), f.score.toFixed(2), f.kind, f.grain, f.summary]),
      ),
    );
    // Without a host the URLs are paths: say so, or an analyst pastes them into a browser and gets nothing.
    console.log(opts.lookerUrl ? "\nLooker explore URLs:" : "\nLooker explore URLs (paths on your Looker host; MESHLOOK_LOOKER_URL=https://<host> makes them absolute):");
    findings.forEach((f, i) => console.log(`  #${i + 1} ${f.exploreUrl}`));
    console.log("\nplanted incidents:");
    for (const p of inc.planted) {
      const rank = findings.findIndex(
        (f) =>
          f.kind === p.kind &&
          f.destination_service === p.destinationService &&
          (p.sourcePrincipal === undefined ? f.grain === "service" : f.source_principal === p.sourcePrincipal),
      );
      console.log(`  ${rank >= 0 ? `found as #${rank + 1}` : "MISSED"}: ${p.what}`);
    }
  } finally {
    await sink.close();
  }
}
