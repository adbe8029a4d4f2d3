// Several collector processes against one Snowflake (the stand-in): concurrent loads of overlapping
// summaries count each once, and a load whose COMMIT succeeded but whose process died before hearing
// so is retried by another process without double counting.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { SnowflakeSettings } from "../../collector/config.ts";
import { SnowflakeSink } from "../../collector/sink/snowflake.ts";
import type { DecodedSummary } from "../../collector/summary.ts";
import { FACT_TABLE, LEDGER_TABLE } from "../../shared/schema.ts";
import { mulberry32 } from "../shared/random.ts";
import { standForSuite, traffic } from "./helpers.ts";

interface Worker {
  child: ChildProcessWithoutNullStreams;
  ready: Promise<void>;
  exited: Promise<number | null>;
  results: { loaded: number; duplicates: number; rows: number; conflicts: number }[];
}

function startWorker(dir: string, name: string, settings: SnowflakeSettings, batches: DecodedSummary[][]): Worker {
  const jobFile = join(dir, `${name}.json`);
  writeFileSync(jobFile, JSON.stringify({ settings, batches }));
  const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "load-worker.ts"), jobFile], { stdio: "pipe" });
  const results: Worker["results"] = [];
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += String(d)));
  let out = "";
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  child.stdout.on("data", (d) => {
    out += String(d);
    let nl: number;
    while ((nl = out.indexOf("\n")) >= 0) {
      const line = out.slice(0, nl);
      out = out.slice(nl + 1);
      if (line === "READY") onReady();
      else if (line.startsWith("RESULT ")) results.push(JSON.parse(line.slice(7)));
    }
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on("exit", (code) => {
      if (code !== 0 && code !== null) console.error(`${name} failed:\n${stderr}`);
      resolve(code);
    }),
  );
  return { child, ready, exited, results };
}

describe("Snowflake sink across collector processes", () => {
  // A little latency per statement keeps both processes' transactions overlapping.
  const s = standForSuite({ statementDelayMs: 5, migrate: true });

  const totals = async () => (await s.sf.query(`SELECT COALESCE(SUM(requests), 0) AS requests, COUNT(*) AS rows FROM ${FACT_TABLE.name}`))[0];
  const ledger = async () => (await s.sf.query(`SELECT COUNT(*) AS n, COUNT(DISTINCT producer_id || '/' || seq) AS distinct_keys FROM ${LEDGER_TABLE.name}`))[0];

  it("counts each summary once when two processes load overlapping batches at the same time", async () => {
    const t = traffic(21, 4, 12);
    const rnd = mulberry32(7);
    const batchesOf = (xs: DecodedSummary[], size: number) => Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size));
    // Replica A sees every summary in order; replica B sees every summary again (a sidecar's retries
    // landing on the other replica), shuffled and batched differently.
    const shuffled = [...t.summaries].sort(() => rnd() - 0.5);
    const a = startWorker(s.dir, "a", s.settings(), batchesOf(t.summaries, 6));
    const b = startWorker(s.dir, "b", s.settings(), batchesOf(shuffled, 8));
    await Promise.all([a.ready, b.ready]);
    const waitsBefore = s.sf.lockWaits;
    a.child.stdin.write("GO\n");
    b.child.stdin.write("GO\n");
    expect(await a.exited).toBe(0);
    expect(await b.exited).toBe(0);

    const loaded = [...a.results, ...b.results].reduce((n, r) => n + r.loaded, 0);
    const duplicates = [...a.results, ...b.results].reduce((n, r) => n + r.duplicates, 0);
    expect(loaded).toBe(t.summaries.length);
    expect(duplicates).toBe(t.summaries.length);
    expect(Number((await totals()).requests)).toBe(t.requests);
    expect(await ledger()).toEqual({ n: BigInt(t.summaries.length), distinct_keys: BigInt(t.summaries.length) });
    // The run really contended: one replica's ledger MERGE waited for the other's transaction.
    expect(s.sf.lockWaits - waitsBefore).toBeGreaterThan(0);
  });

  it("retries a load whose COMMIT landed after the loading process died, without double counting", async () => {
    const t = traffic(22, 3, 5);
    const before = await totals();
    const w = startWorker(s.dir, "killed", s.settings(), [t.summaries]);
    await w.ready;
    // The warehouse commits; the answer never reaches the collector, which is killed meanwhile.
    s.sf.inject({ kind: "hold-after", match: /^COMMIT/, onHeld: () => w.child.kill("SIGKILL") });
    w.child.stdin.write("GO\n");
    expect(await w.exited).toBe(null);
    expect(w.results).toEqual([]);
    const committed = await totals();
    expect(Number(committed.requests) - Number(before.requests)).toBe(t.requests);

    // The spool still holds the batch; the next process (or the restarted one) loads it again.
    const sink = new SnowflakeSink(s.settings(), undefined, { backoffMs: 10 });
    await sink.open();
    expect(await sink.load(t.summaries)).toEqual({ loaded: 0, duplicates: t.summaries.length, rows: 0 });
    await sink.close();
    expect(await totals()).toEqual(committed);
  });
});
