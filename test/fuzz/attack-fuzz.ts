// Drives attack bodies (attack-cases.ts: counter overflow, another namespace's producer, backdated
// windows, mixed with late-but-honest summaries) through a collector in process that runs with the
// production controls (namespace-scoped token, window bounds), and checks each answer against what the
// case owes: never a 5xx, the refusal it names, and at the end every acknowledged summary in the
// warehouse once, with the requests it carried — the overflowing ones included.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { startCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import { mulberry32 } from "../shared/random.ts";
import { attackCase } from "./attack-cases.ts";
import { inGroups, type IngestFuzzResult } from "./ingest-fuzz.ts";

const SHOP_TOKEN = "fuzz-shop-token-0123456789abcdef";
const LOAD_EVERY = 500;
const CONCURRENCY = 8;

/** As the wire fuzz reports (ingest-fuzz.ts); nothing is shed and re-sent here but on overload. */
export type AttackFuzzResult = Omit<IngestFuzzResult, "overloadRetries">;

export async function fuzzAttacks(cases: number, seed: number, onProgress?: (done: number) => void): Promise<AttackFuzzResult> {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-attack-fuzz-"));
  const tokens = join(dir, "tokens");
  writeFileSync(tokens, `${SHOP_TOKEN} namespaces=shop\n`);
  const config = loadConfig({
    MESHLOOK_DATA_DIR: dir,
    MESHLOOK_INGEST_TOKENS_FILE: tokens,
    MESHLOOK_LOAD_INTERVAL_S: "3600",
    MESHLOOK_MAX_WINDOW_AGE_S: "3600",
    MESHLOOK_MAX_WINDOW_AHEAD_S: "300",
    MESHLOOK_RATE_LIMIT_PER_MIN: "0",
  });
  const collector = await startCollector(config, pino({ level: "silent" }), { listen: false });
  const rnd = mulberry32(seed);
  const out: AttackFuzzResult = { cases, statuses: {}, reasons: {}, acknowledged: 0, ledgerRows: 0, acknowledgedRequests: 0, loadedRequests: 0, failures: [] };
  const fail = (i: number, what: string) => {
    if (out.failures.length < 20) out.failures.push(`attack case ${i}: ${what}`);
  };
  let seq = 0;
  const check = async (i: number) => {
    const c = attackCase(rnd, ++seq, Date.now());
    const send = () =>
      collector.app.inject({
        method: "POST",
        url: "/v1/summaries",
        headers: { "content-type": "application/x-meshlook-summary", authorization: `Bearer ${SHOP_TOKEN}` },
        payload: Buffer.from(c.body),
      });
    let res = await send();
    // Load shedding answers the machine, not the body: resend, as a sidecar does.
    for (let tries = 0; res.statusCode === 503 && res.json().error === "overloaded" && tries < 30; tries++) {
      await new Promise((r) => setTimeout(r, 1000));
      res = await send();
    }
    out.statuses[res.statusCode] = (out.statuses[res.statusCode] ?? 0) + 1;
    if (res.statusCode >= 500) return fail(i, `HTTP ${res.statusCode} ${res.body}`);
    if (res.statusCode !== 200) {
      const err = res.json() as { error?: string };
      out.reasons[err.error ?? "?"] = (out.reasons[err.error ?? "?"] ?? 0) + 1;
    }
    if (!c.expect) {
      if (res.statusCode !== 200) return fail(i, `refused an honest or saturating summary: ${res.statusCode} ${res.body}`);
      out.acknowledged++;
      out.acknowledgedRequests += c.requests;
      return;
    }
    if (res.statusCode !== c.expect.status || res.json().error !== c.expect.error) fail(i, `expected ${c.expect.status} ${c.expect.error}, got ${res.statusCode} ${res.body}`);
  };
  try {
    Object.assign(out, await inGroups(collector, cases, { concurrency: CONCURRENCY, loadEvery: LOAD_EVERY, onProgress }, check));
  } finally {
    await collector.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
