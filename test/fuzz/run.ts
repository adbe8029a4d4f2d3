// `npm run fuzz`: the long form of the fuzz tests. Defaults: 1 000 000 bodies through the wire decoder
// and the ingest route, 100 000 hostile streams through the release filter. Sizes and seed are options:
//   npm run fuzz -- --wire 1000000 --filter 100000 --attacks 20000 --seed 1
// Prints the figures (case counts, status and reason histograms, traps) and exits 1 on any violation.
import { numberOption, parseCommandLine } from "../../scripts/args.ts";
import { fuzzAttacks } from "./attack-fuzz.ts";
import { fuzzFilter } from "./filter-fuzz.ts";
import { fuzzIngest } from "./ingest-fuzz.ts";

const USAGE = `usage: npm run fuzz -- [--wire N] [--filter N] [--attacks N] [--seed N]
  --wire    bodies through the wire decoder and the ingest route (default 1000000)
  --filter  hostile streams through the release filter (default 100000)
  --attacks hostile-but-authenticated summaries: overflow, foreign namespace, backdated, late-but-honest (default 20000)
  --seed    seed of the generated cases (default 1)`;
const { values } = parseCommandLine(USAGE, {
  wire: { type: "string", default: "1000000" },
  filter: { type: "string", default: "100000" },
  attacks: { type: "string", default: "20000" },
  seed: { type: "string", default: "1" },
});
const wireCases = numberOption(USAGE, "wire", values.wire!, -1, 1e9);
const filterStreams = numberOption(USAGE, "filter", values.filter!, -1, 1e9);
const attackCases = numberOption(USAGE, "attacks", values.attacks!, -1, 1e9);
const seed = numberOption(USAGE, "seed", values.seed!, -1, 2 ** 31);
const log = (line: string) => process.stdout.write(line + "\n");
let failed = false;

let t = Date.now();
log(`wire decoder + ingest route: ${wireCases} cases, seed ${seed}`);
const wire = await fuzzIngest(wireCases, seed, (n) => log(`  ${n} cases, ${Math.round((Date.now() - t) / 1000)} s`));
log(`  final statuses ${JSON.stringify(wire.statuses)}; shed for event-loop pressure and re-sent: ${wire.overloadRetries}`);
log(`  refusal reasons (${Object.keys(wire.reasons).length}) ${JSON.stringify(wire.reasons)}`);
log(`  acknowledged ${wire.acknowledged} distinct summaries; ledger rows ${wire.ledgerRows}; requests acknowledged ${wire.acknowledgedRequests}, loaded ${wire.loadedRequests}`);
log(`  ${Math.round((Date.now() - t) / 1000)} s`);
if (wire.failures.length || wire.ledgerRows !== wire.acknowledged || wire.loadedRequests !== wire.acknowledgedRequests) {
  failed = true;
  for (const f of wire.failures) log(`  FAIL ${f}`);
}

t = Date.now();
log(`attacks (overflow, foreign namespace, backdated, late-but-honest): ${attackCases} cases, seed ${seed}`);
const attacks = await fuzzAttacks(attackCases, seed, (n) => log(`  ${n} cases, ${Math.round((Date.now() - t) / 1000)} s`));
log(`  final statuses ${JSON.stringify(attacks.statuses)}; refusal reasons ${JSON.stringify(attacks.reasons)}`);
log(`  acknowledged ${attacks.acknowledged}; ledger rows ${attacks.ledgerRows}; requests acknowledged ${attacks.acknowledgedRequests}, loaded ${attacks.loadedRequests}`);
if (attacks.failures.length || attacks.ledgerRows !== attacks.acknowledged || attacks.loadedRequests !== attacks.acknowledgedRequests) {
  failed = true;
  for (const f of attacks.failures) log(`  FAIL ${f}`);
}

t = Date.now();
log(`filter: ${filterStreams} hostile streams, seed ${seed}`);
const filter = await fuzzFilter(filterStreams, seed, (n) => log(`  ${n} streams, ${Math.round((Date.now() - t) / 1000)} s`));
log(`  traps ${filter.traps}; streams touched ${filter.touched}; hostile principals stored intact ${filter.principalsStored}/${filter.principalsSent}`);
log(`  ${Math.round((Date.now() - t) / 1000)} s`);
if (filter.traps || filter.touched || filter.missing.length) {
  failed = true;
  for (const m of filter.missing) log(`  MISSING ${m}`);
}

log(failed ? "FUZZ FAILED" : "fuzz passed: no 5xx, no crash, no trap, nothing acknowledged and not loaded");
process.exit(failed ? 1 : 0);
