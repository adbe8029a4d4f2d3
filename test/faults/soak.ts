// `npm run soak`: the long form of the fault suite. Bookinfo traffic through the release filter runs for
// a number of wall-clock minutes against a collector process (DuckDB) that is SIGKILLed and restarted
// at random moments (every ~10 s), behind a front that loses some acknowledgements and, once, cuts the
// collector off for several simulated minutes. At the end the warehouse is compared, per minute and
// series, with the ground truth. Options:
//   npm run soak -- --minutes 8 --kill-every 10 --speed 4 --rps 60 --outage 300 --seed 1
// Prints the figures and exits 1 if anything was lost (beyond what the filter reported dropped) or doubled,
// or if the warehouse's own loss table does not account for exactly the requests it lacks.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { numberOption, parseCommandLine } from "../../scripts/args.ts";
import { Rng } from "../../sim/traffic/index.ts";
import { CollectorReplica, Front, compare, readDuckDB, readDuckDBLoss, runTraffic, sleep } from "./rig.ts";

const USAGE = `usage: npm run soak -- [--minutes N] [--kill-every S] [--speed X] [--rps N] [--outage S] [--seed N]
  --minutes     wall-clock minutes of traffic (default 8)
  --kill-every  mean wall seconds between collector SIGKILLs (default 10)
  --speed       simulated seconds per wall second (default 4)
  --rps         requests per simulated second (default 60)
  --outage      simulated seconds of the one planned collector outage (default 300)
  --seed        seed of the traffic and of the faults (default 1)`;
const { values } = parseCommandLine(USAGE, {
  minutes: { type: "string", default: "8" },
  "kill-every": { type: "string", default: "10" },
  speed: { type: "string", default: "4" },
  rps: { type: "string", default: "60" },
  outage: { type: "string", default: "300" },
  seed: { type: "string", default: "1" },
});
const minutes = numberOption(USAGE, "minutes", values.minutes!, 0, 24 * 60);
const killEveryS = numberOption(USAGE, "kill-every", values["kill-every"]!, 0, 86_400);
const speed = numberOption(USAGE, "speed", values.speed!, 0, 1000);
const outageS = numberOption(USAGE, "outage", values.outage!, -1, 86_400);
const seed = numberOption(USAGE, "seed", values.seed!, -1, 2 ** 31);
const log = (line: string) => process.stdout.write(line + "\n");

const TOKEN = "soak-token";
const FLUSH_S = 5;
const dir = mkdtempSync(join(tmpdir(), "meshlook-soak-"));
const replica = new CollectorReplica("soak", { MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: TOKEN, MESHLOOK_LOAD_INTERVAL_S: "2" });
const rng = new Rng(seed);
const front = new Front([replica], { loseAck: () => rng.next() < 0.05 });

await replica.start();
const address = await front.listen();
// Traffic time: the wall minutes at `speed` simulated seconds per wall second, the outage in the middle.
const durationS = Math.round(minutes * 60 * speed);
const outageFrom = Math.round(durationS / 2 - outageS / 2);
let stopKilling = false;
let downSimS = 0;
const wallStart = Date.now();
log(`soak: ${minutes} min wall, ${durationS} s simulated at ${speed}x, ${Number(values.rps)} rps, SIGKILL every ~${killEveryS} s, one ${outageS} s outage`);

const killer = (async () => {
  while (!stopKilling) {
    await sleep((0.5 + rng.next()) * killEveryS * 1000);
    if (stopKilling) break;
    await replica.kill();
    await replica.start();
  }
})();

const run = await runTraffic({
  seed,
  durationS,
  requestsPerSecond: Number(values.rps),
  flushS: FLUSH_S,
  collector: address,
  token: TOKEN,
  speed,
  onSecond: (s, p) => {
    front.unreachable = s >= outageFrom && s < outageFrom + outageS;
    if (front.unreachable || !replica.up) downSimS++;
    if (s % 300 === 0) log(`  ${s} s simulated, ${p.requests} requests, ${replica.kills} kills, ${Math.round((Date.now() - wallStart) / 1000)} s wall`);
  },
  beforeDrain: async () => {
    stopKilling = true;
    await killer;
  },
  drainS: 900,
});
await replica.stop();
await front.close();

const c = compare(await readDuckDB(join(dir, "meshlook.duckdb")), run.truth);
const loss = await readDuckDBLoss(join(dir, "meshlook.duckdb"));
const dropped = front.dropped();
rmSync(dir, { recursive: true, force: true });
const ok = c.excess === 0 && c.missingRequests === dropped.requests && loss.requests === c.truthRequests - c.warehouseRequests && run.progress.trapped === 0;
log(`collector SIGKILLs survived: ${replica.kills}`);
log(`collector unreachable: ${(downSimS / 60).toFixed(1)} simulated minutes (${outageS} s planned outage + restarts)`);
log(`acknowledgements lost on the way back (retried): ${front.lostAcks}`);
log(`requests: ${c.truthRequests} in the ground truth, ${c.warehouseRequests} in the warehouse; summaries acknowledged: ${front.acked.size}`);
log(
  `reported dropped by the filter: ${dropped.requests} requests in ${dropped.windows} windows; missing: ${c.missingRequests}; doubled rows: ${c.excess}; mismatched (minute, series) rows: ${c.mismatched}`,
);
log(`lost in sidecars according to the warehouse (mesh_sidecar_loss): ${loss.requests} requests in ${loss.windows} windows`);
log(`wall time: ${Math.round((Date.now() - wallStart) / 1000)} s`);
log(ok ? "soak passed: nothing lost beyond what was reported dropped, nothing doubled" : "SOAK FAILED");
process.exit(ok ? 0 : 1);
