// Freshness in real time with default settings (filter flush_interval_s 10, collector load interval 10 s):
// a request ends in a sidecar at t; how long until a SQL query on the warehouse sees it. The collector
// runs in this process so its own DuckDB connection can be queried while it holds the file (DuckDB admits
// one writing process). Baseline, measured on the same probes: how long until the summary carrying the
// request is acknowledged (durable in the collector's spool), i.e. what the warehouse load adds on top.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { startCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import type { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { FACT_TABLE } from "../../shared/schema.ts";
import { compileModule, createSidecar, RealClock, type Sidecar } from "../../sim/host/index.ts";
import { COLLECTOR_CLUSTER, RELEASE_WASM } from "../../sim/pipeline.ts";
import { LOCAL_NODE, syntheticStream } from "../../test/filter/fixtures.ts";

export interface Freshness {
  /** Seconds from each probe request to its row being queryable, and to its summary being acknowledged. */
  queryableS: number[];
  acknowledgedS: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The filter's default flush interval and the DuckDB collector's default load interval, ms. */
const INTERVAL_MS = 10_000;

/**
 * A probe's wait for the load after its summary is acknowledged depends on the phase of the collector's
 * load timer against the sidecar's flush timer, which one sidecar would fix for the whole run (it came out
 * 0.1 s in one run, 9.9 s in another). So each probe has a sidecar of its own, started a `1/probes` of the
 * interval after the previous one, and all probes are sent at once after the last start: the probes fall at
 * different points of their flush windows and their summaries at different points of the load interval.
 */
export async function measureFreshness(probes = 3): Promise<Freshness> {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-bench-fresh-"));
  const token = "bench-freshness";
  const config = loadConfig({ MESHLOOK_HOST: "127.0.0.1", MESHLOOK_PORT: "0", MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: token });
  const collector = await startCollector(config, pino({ level: "silent" }));
  await collector.loader.loadNow(); // the start-up cycle opens the warehouse (the collector listens first)
  const connection = (collector.sink as DuckDBSink).connection;
  const wasm = await compileModule(RELEASE_WASM);
  const sidecars: Sidecar[] = [];
  try {
    for (let i = 0; i < probes; i++) {
      if (i > 0) await sleep(INTERVAL_MS / probes);
      sidecars.push(
        await createSidecar({
          wasm,
          rootId: "meshlook",
          pluginConfig: JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: INTERVAL_MS / 1000 }),
          clusters: { [COLLECTOR_CLUSTER]: new URL(collector.url).host },
          env: { MESHLOOK_INGEST_TOKEN: token },
          node: LOCAL_NODE,
          clock: new RealClock(),
          workers: 1,
          canary: false,
        }),
      );
    }
    const queryable: number[] = [];
    const acknowledged: number[] = [];
    const principal = (i: number) => `spiffe://cluster.local/ns/bench/sa/probe-${i}`;
    // Under load a sidecar may have closed a window (empty) before the probes go out: only later calls count.
    const firstCallout = sidecars.map((s) => s.callouts.length);
    sidecars.forEach((s, i) => s.stream(syntheticStream({ principal: principal(i), durationNs: 1_000_000 })));
    const sentAt = performance.now();
    const deadline = performance.now() + 60_000;
    const done = (xs: number[]) => xs.filter((t) => t !== undefined).length === probes;
    while (!done(queryable) || !done(acknowledged)) {
      if (performance.now() > deadline) throw new Error("freshness probes did not reach the warehouse within 60 s");
      const rows = (await connection.runAndReadAll(`SELECT DISTINCT source_principal FROM ${FACT_TABLE.name}`)).getRows();
      const seen = new Set(rows.map((r) => String(r[0])));
      const now = performance.now();
      for (let i = 0; i < probes; i++) if (queryable[i] === undefined && seen.has(principal(i))) queryable[i] = (now - sentAt) / 1000;
      // A probe is acknowledged once a 2xx answered a summary its sidecar POSTed after it was sent.
      for (let i = 0; i < probes; i++) {
        if (acknowledged[i] === undefined && sidecars[i].callouts.slice(firstCallout[i]).some((c) => c.outcome?.status === 200)) acknowledged[i] = (now - sentAt) / 1000;
      }
      await sleep(50);
    }
    return { queryableS: queryable, acknowledgedS: acknowledged };
  } finally {
    for (const s of sidecars) await s.close();
    await collector.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
