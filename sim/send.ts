/**
 * `meshlook send`: drives the simulated bookinfo mesh (the release filter in simulated Envoy sidecars) against a
 * collector that is already running — `npm start`, the image, a port-forwarded cluster collector — so a new
 * user sees summaries arrive without a cluster. Prints what the filters sent and what the collector
 * acknowledged; the rows show up in the warehouse after its next load (MESHLOOK_LOAD_INTERVAL_S).
 *
 *   npx meshlook send --url http://127.0.0.1:8080 --token-file data/ingest-token --duration 60
 */
import { existsSync, readFileSync } from "node:fs";
import { numberOption, parseCommandLine } from "../scripts/args.ts";
import { driveMesh, RELEASE_WASM } from "./pipeline.ts";
import { int } from "./report.ts";
import { GroundTruth, TrafficGenerator, bookinfo } from "./traffic/index.ts";

const USAGE = `usage: meshlook send --url URL (--token TOKEN | --token-file FILE) [--duration S] [--rps N] [--seed N] [--workers N]
  --url         the collector, plain http://host:port (in a mesh the sidecar adds mTLS; the filter itself speaks HTTP)
  --token       an ingest token the collector accepts (or MESHLOOK_INGEST_TOKEN in the environment)
  --token-file  read the token from a file, e.g. data/ingest-token written by \`npm start\`
  --duration    simulated seconds of traffic (default 60; the clock runs accelerated)
  --rps         requests per simulated second across the mesh (default 100)
  --seed        traffic seed (default 42)
  --workers     filter VMs per sidecar (default 2)`;

const { values } = parseCommandLine(USAGE, {
  url: { type: "string" },
  token: { type: "string" },
  "token-file": { type: "string" },
  duration: { type: "string", default: "60" },
  rps: { type: "string", default: "100" },
  seed: { type: "string", default: "42" },
  workers: { type: "string", default: "2" },
});
const fail = (message: string): never => {
  console.error(`send: ${message}\n${USAGE}`);
  process.exit(2);
};
if (!values.url) fail("--url is required");
let url: URL;
try {
  url = new URL(values.url!);
} catch {
  fail(`--url: not a URL: "${values.url}"`);
}
if (url!.protocol !== "http:") fail(`--url: only http:// is supported, got ${url!.protocol}`);
const token = values.token ?? (values["token-file"] ? readFileSync(values["token-file"], "utf8").trim() : process.env.MESHLOOK_INGEST_TOKEN);
if (!token) fail("no token: pass --token, --token-file or MESHLOOK_INGEST_TOKEN");
if (!existsSync(RELEASE_WASM)) fail(`${RELEASE_WASM} is missing: run \`npm run build\` (\`meshlook send\` builds it)`);

const durationS = numberOption(USAGE, "duration", values.duration!, 0, 86_400);
const rps = numberOption(USAGE, "rps", values.rps!, 0, 1_000_000);
const seed = Math.trunc(numberOption(USAGE, "seed", values.seed!, -1, 2 ** 31));
const workers = Math.trunc(numberOption(USAGE, "workers", values.workers!, 0, 64));
const address = `${url!.hostname.replace(/^\[|\]$/g, "")}:${url!.port || 80}`;

// Simulated time ends now, so the rows land in the minutes just past.
const startMs = Math.floor((Date.now() - durationS * 1000) / 60_000) * 60_000;
const model = bookinfo({ durationS });
const generator = new TrafficGenerator(model, { seed, requestsPerSecond: rps, startTimeMs: startMs, requestsPerConnection: 10 });
const truth = new GroundTruth();
console.log(`send: ${model.name} mesh, ${durationS} s simulated at ${int(rps)} req/s (seed ${seed}) to ${url!.origin}`);
const result = await driveMesh({ model, generator, truth, workers, durationS, address, token: token! });
const p = result.progress;
console.log(
  `${int(p.requests)} requests (${int(p.streams)} sidecar streams) in ${result.wallS.toFixed(1)} s wall; ` +
    `${int(result.sent.size)} summaries sent (${int(result.callouts)} calls), ${int(result.acknowledged.size)} acknowledged, ` +
    `${int(result.failedCalls)} calls failed; ${p.trapped} traps`,
);
if (result.failedCalls > 0) {
  // The collector logs no refusal: its answers are what tells a sender why (docs/collector.md, "Ingest responses").
  const answers = [...result.refusals].sort((a, b) => b[1] - a[1]).map(([why, n]) => `${why} (${int(n)})`);
  console.error(`send: calls not acknowledged, by answer: ${answers.join(", ")}`);
}
if (result.acknowledged.size < result.sent.size) {
  console.error(`send: ${result.sent.size - result.acknowledged.size} summaries were not acknowledged`);
  process.exitCode = 1;
}
