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
import { createSidecar, RealClock } from "../../sim/host/index.ts";
import { COLLECTOR_CLUSTER, RELEASE_WASM } from "../../sim/pipeline.ts";
import { LOCAL_NODE, syntheticStream } from "../../test/filter/fixtures.ts";

export interface Freshness {
  /** Seconds from each probe request to its row being queryable, and to its summary being acknowledged. */
  queryableS: number[];
  acknowledgedS: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function measureFreshness(probes = 3, spacingMs = 3_300): Promise<Freshness> {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-bench-fresh-"));
  const token = "bench-freshness";
  const config = loadConfig({ MESHLOOK_HOST: "127.0.0.1", MESHLOOK_PORT: "0", MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: token });
  const collector = await startCollector(config, pino({ level: "silent" }));
  const sidecar = await createSidecar({
    wasm: RELEASE_WASM,
    rootId: "meshlook",
    pluginConfig: JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER } }),
    clusters: { [COLLECTOR_CLUSTER]: new URL(collector.url).host },
    env: { MESHLOOK_INGEST_TOKEN: token },
    node: LOCAL_NODE,
    clock: new RealClock(),
    workers: 1,
    canary: false,
  });
  await collector.loader.loadNow(); // the start-up cycle opens the warehouse (the collector listens first)
  const connection = (collector.sink as DuckDBSink).connection;
  try {
    const sentAt: number[] = [];
    const queryable: number[] = [];
    const acknowledged: number[] = [];
    const firstCallout: number[] = [];
    const principal = (i: number) => `spiffe://cluster.local/ns/bench/sa/probe-${i}`;
    for (let i = 0; i < probes; i++) {
      if (i > 0) await sleep(spacingMs);
      sidecar.stream(syntheticStream({ principal: principal(i), durationNs: 1_000_000 }));
      sentAt.push(performance.now());
      firstCallout.push(sidecar.callouts.length);
    }
    const deadline = performance.now() + 60_000;
    const done = (xs: number[]) => xs.filter((t) => t !== undefined).length === probes;
    while (!done(queryable) || !done(acknowledged)) {
      if (performance.now() > deadline) throw new Error("freshness probes did not reach the warehouse within 60 s");
      const rows = (await connection.runAndReadAll(`SELECT DISTINCT source_principal FROM ${FACT_TABLE.name}`)).getRows();
      const seen = new Set(rows.map((r) => String(r[0])));
      const now = performance.now();
      for (let i = 0; i < probes; i++) if (queryable[i] === undefined && seen.has(principal(i))) queryable[i] = (now - sentAt[i]) / 1000;
      // A probe is acknowledged once a 2xx answered a summary POSTed after it was sent.
      for (let i = 0; i < probes; i++) {
        if (acknowledged[i] !== undefined) continue;
        if (sidecar.callouts.slice(firstCallout[i]).some((c) => c.outcome?.status === 200)) acknowledged[i] = (now - sentAt[i]) / 1000;
      }
      await sleep(50);
    }
    return { queryableS: queryable, acknowledgedS: acknowledged };
  } finally {
    await sidecar.close();
    await collector.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
