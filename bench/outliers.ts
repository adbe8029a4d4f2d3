// Outlier detection figures (docs/outliers.md):
//  1. false-positive rate of a clean day: the incidents mesh without incidents, with a ±30 % daily swing
//     of traffic and the generator's usual error and latency noise, 30 simulated hours loaded through
//     the DuckDB sink; detection with the default settings (24 h baseline) every 30 minutes over the
//     last 6 hours; every finding is a false positive;
//  2. planted incidents at the end of a 25-hour run: found or not, and their ranks;
//  3. the cost of one detection run at 10 000 edges with a full 24 h baseline (synthetic rows written
//     straight into the tables), next to a plain SUM … GROUP BY over the same rows as the baseline.
//   npx tsx bench/outliers.ts [--quick]
import { detect, type Finding } from "../collector/outliers/detect.ts";
import { duckdbQuery } from "../collector/outliers/warehouse.ts";
import { DuckDBSink } from "../collector/sink/duckdb.ts";
import { DEFAULT_THRESHOLDS } from "../shared/outliers.ts";
import { DIMENSIONS, FACT_TABLE, HOUR_TABLE } from "../shared/schema.ts";
import { TrafficGenerator, incidents } from "../sim/traffic/index.ts";
import { writeScenario } from "../sim/warehouse-writer.ts";

const quick = process.argv.includes("--quick");
const H = 3_600_000;
const RPS = quick ? 20 : 30;
const options = { thresholds: DEFAULT_THRESHOLDS, grains: ["edge" as const, "service" as const], lookerUrl: "", maxFindings: 1000 };

async function loadedSink(hours: number, planted: boolean, seed: number) {
  const inc = incidents({ durationS: hours * 3600, incidents: planted });
  const gen = new TrafficGenerator(inc.model, { seed, requestsPerSecond: RPS, diurnalAmplitude: 0.3 });
  let now = gen.startTimeMs;
  const sink = new DuckDBSink(":memory:", undefined, { now: () => now });
  await sink.open();
  const t0 = performance.now();
  await writeScenario(sink, gen, hours * 3600, { onLoad: (end) => void (now = end) });
  return { sink, inc, start: gen.startTimeMs, requests: gen.generated, loadS: (performance.now() - t0) / 1000 };
}

async function falsePositives() {
  const hours = quick ? 27 : 30;
  const { sink, start, requests, loadS } = await loadedSink(hours, false, 1);
  const q = duckdbQuery(() => sink.connection);
  let runs = 0;
  let judged = 0;
  const found: Finding[] = [];
  for (let end = start + 25 * H; end <= start + hours * H; end += 30 * 60_000) {
    const res = await detect(q, options, end);
    const [n] = await q.query(
      `SELECT COUNT(DISTINCT source_principal || '|' || destination_service) AS edges, COUNT(DISTINCT destination_service) AS services
       FROM ${FACT_TABLE.name} WHERE reporter = 'destination' AND minute >= ? AND minute < ?`,
      [new Date(end - 15 * 60_000).toISOString().replace("T", " ").replace("Z", ""), new Date(end).toISOString().replace("T", " ").replace("Z", "")],
    );
    runs++;
    judged += Number(n.edges) + Number(n.services);
    found.push(...res.findings);
  }
  await sink.close();
  console.log(`clean run: ${hours} h, ${requests.toLocaleString()} requests (${RPS}/s mean, ±30 % daily swing), loaded in ${loadS.toFixed(1)} s`);
  console.log(`  ${runs} detection runs × ~${Math.round(judged / runs)} series (edges + services) = ${judged} series judged`);
  console.log(`  findings: ${found.length}  → false-positive rate ${((100 * found.length) / judged).toFixed(3)} % per series per run`);
  // With no finding, the rule of three gives the 95 % upper bound of the rate.
  if (found.length === 0) console.log(`  95 % upper bound (rule of three): ${((100 * 3) / judged).toFixed(2)} % per series per run`);
  for (const f of found) console.log(`    ${f.score.toFixed(2)} ${f.kind} ${f.summary}`);
}

async function planted() {
  const hours = 25;
  const { sink, inc, start } = await loadedSink(hours, true, 2);
  const res = await detect(
    duckdbQuery(() => sink.connection),
    options,
    start + hours * H,
  );
  await sink.close();
  console.log(`planted incidents at the end of a ${hours} h run (24 h baseline):`);
  const related = (f: Finding) =>
    inc.planted.some(
      (p) => p.destinationService === f.destination_service && (p.sourcePrincipal === undefined || f.source_principal === p.sourcePrincipal || f.source_principal === null),
    );
  res.findings.forEach((f, i) => console.log(`  #${i + 1} ${f.score.toFixed(2)} ${related(f) ? "planted" : "NOISE  "} ${f.grain} ${f.kind}: ${f.summary}`));
  for (const p of inc.planted) {
    const rank = res.findings.findIndex(
      (f) =>
        f.kind === p.kind && f.destination_service === p.destinationService && (p.sourcePrincipal === undefined ? f.grain === "service" : f.source_principal === p.sourcePrincipal),
    );
    console.log(`  ${rank >= 0 ? `found, rank ${rank + 1}` : "MISSED"}: ${p.what}`);
  }
  const noise = res.findings.filter((f) => !related(f));
  console.log(`  unrelated findings: ${noise.length}${noise.length ? `, best score ${noise[0].score.toFixed(2)}` : ""}`);
}

async function cost() {
  const edges = quick ? 1_000 : 10_000;
  const sink = new DuckDBSink(":memory:");
  await sink.open();
  const c = sink.connection;
  const end = Date.UTC(2026, 0, 2, 0, 45);
  const hourStart = Date.UTC(2026, 0, 2, 0);
  const ts = (ms: number) => `TIMESTAMP '${new Date(ms).toISOString().replace("T", " ").replace("Z", "")}'`;
  const sketch = `'{"s":6,"z":0,"o":760,"c":[1,3,7,12,9,5,2,1]}'`;
  const dims = (s: string) =>
    DIMENSIONS.map((d) =>
      d === "response_code"
        ? "200"
        : d === "reporter"
          ? "'destination'"
          : d === "source_principal"
            ? `'spiffe://cluster.local/ns/n/sa/caller-' || (${s} % 500)`
            : d === "destination_service"
              ? `'svc-' || (${s} // 500) || '.n.svc.cluster.local'`
              : d === "connection_security_policy"
                ? "'mutual_tls'"
                : "'x'",
    ).join(", ");
  const measures = "40, 1, 4000, 8000, 400000, 1000, 90000, " + sketch;
  await c.run(
    `INSERT INTO ${HOUR_TABLE.name} SELECT ${ts(hourStart - 24 * H)} + to_hours(h::BIGINT), ${dims("e")}, 2400, 3, 240000, 480000, 24000000, 900, 120000, ${sketch}, 60, now()::TIMESTAMP FROM range(24) t(h), range(${edges}) u(e)`,
  );
  await c.run(
    `INSERT INTO ${FACT_TABLE.name} SELECT ${ts(hourStart)} + to_minutes(m::BIGINT), ${dims("e")}, ${measures}, now()::TIMESTAMP FROM range(45) t(m), range(${edges}) u(e)`,
  );
  const [rows] = (await c.runAndReadAll(`SELECT (SELECT COUNT(*) FROM ${HOUR_TABLE.name}), (SELECT COUNT(*) FROM ${FACT_TABLE.name})`)).getRows();
  const q = duckdbQuery(() => sink.connection);
  const time = async (f: () => Promise<unknown>) => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  // Warm-up, then the better of two runs each: with the default latency screen (no edge's mean latency
  // rose here, so no sketch is merged: the usual case), and with the screen off (every edge's sketches
  // merged and tested: the worst case, as when every series slows down at once).
  await detect(q, options, end);
  const ours = Math.min(await time(() => detect(q, options, end)), await time(() => detect(q, options, end)));
  const unscreened = { ...options, thresholds: { ...options.thresholds, latencyScreenRatio: 0 } };
  const worst = await time(() => detect(q, unscreened, end));
  const plain = `SELECT source_principal, destination_service, SUM(requests), SUM(errors) FROM (SELECT source_principal, destination_service, requests, errors FROM ${FACT_TABLE.name} UNION ALL SELECT source_principal, destination_service, requests, errors FROM ${HOUR_TABLE.name}) GROUP BY ALL`;
  const base = Math.min(await time(() => c.runAndReadAll(plain)), await time(() => c.runAndReadAll(plain)));
  await sink.close();
  console.log(
    `one detection run (edge + service grains) at ${edges.toLocaleString()} edges, 24 h baseline: ${Number(rows[0]).toLocaleString()} hourly + ${Number(rows[1]).toLocaleString()} minute rows`,
  );
  console.log(`  detection ${ours.toFixed(0)} ms; plain SUM … GROUP BY over the same rows ${base.toFixed(0)} ms; ratio ${(ours / base).toFixed(1)}×`);
  console.log(`  worst case, every edge's sketches merged (latency screen off): ${worst.toFixed(0)} ms; ratio ${(worst / base).toFixed(1)}×`);
}

await cost();
if (!process.argv.includes("--cost-only")) await planted();
if (!process.argv.includes("--cost-only")) await falsePositives();
