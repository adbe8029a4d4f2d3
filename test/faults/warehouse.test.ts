// The warehouse goes away while the mesh keeps sending: the collector keeps acknowledging into its spool,
// /readyz says not ready, and once the warehouse is back the spool drains and the warehouse equals the
// ground truth. Snowflake (the stand-in, reached through a proxy that can be cut) and DuckDB (its file
// locked by another process).
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { LEDGER_TABLE } from "../../shared/schema.ts";
import { stand } from "../snowflake/helpers.ts";
import { CollectorReplica, Front, ROOT, WAREHOUSE_SQL, cleanupList, compare, readDuckDB, runTraffic, sleep, warehouseRows } from "./rig.ts";

const TOKEN = "faults-token";
const cleanups = cleanupList("meshlook-wh-");
afterAll(() => cleanups.run());
const tempDir = () => cleanups.tempDir();

async function readyz(url: string): Promise<{ status: number; error?: string }> {
  const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(60_000) });
  const body = (await res.json()) as { error?: string };
  return { status: res.status, error: body.error };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

describe("warehouse unavailable", () => {
  it("Snowflake unreachable for many load intervals: the spool grows, /readyz is not ready, then it drains exactly", async () => {
    const s = await stand();
    cleanups.add(() => s.sf.stop());
    // While cut, every Snowflake request (login, query, heartbeat) is answered 403, as by a proxy or
    // network policy denying egress. Network errors and 5xx would be retried inside snowflake-sdk for
    // up to its retry timeout (minutes) before the collector sees a failure; the collector's handling
    // after that is the same.
    const network = new Front([{ up: true, url: s.sf.url }], { unreachableStatus: 403 });
    const gate = await network.listen();
    cleanups.add(() => network.close());
    const replica = new CollectorReplica("sf", {
      ...s.env(),
      MESHLOOK_SNOWFLAKE_ACCESS_URL: `http://${gate}`,
      MESHLOOK_DATA_DIR: tempDir(),
      MESHLOOK_INGEST_TOKENS: TOKEN,
      MESHLOOK_LOAD_INTERVAL_S: "1",
    });
    await replica.start();
    cleanups.add(() => replica.kill());
    const ingest = new Front([replica]);
    const address = await ingest.listen();
    cleanups.add(() => ingest.close());

    let spoolAtCut = 0;
    let outage: { readyz: { status: number; error?: string }; spoolBytes: number } | undefined;
    const run = await runTraffic({
      seed: 12,
      durationS: 40,
      requestsPerSecond: 60,
      flushS: 5,
      collector: address,
      token: TOKEN,
      onSecond: async (sec) => {
        if (sec === 10) {
          network.unreachable = true;
          spoolAtCut = await replica.metric("meshlook_spool_bytes");
        }
        if (sec === 30) {
          // Wall time passes here with simulated time stopped, until the collector notices.
          let ready = await readyz(replica.url!);
          await until("/readyz to report the warehouse", async () => (ready = await readyz(replica.url!)).status === 503);
          outage = { readyz: ready, spoolBytes: await replica.metric("meshlook_spool_bytes") };
          network.unreachable = false;
        }
      },
      drainS: 60,
    });
    expect(outage!.readyz).toEqual({ status: 503, error: "warehouse_unreachable" });
    expect(outage!.spoolBytes).toBeGreaterThan(spoolAtCut);
    expect(ingest.cut).toBe(0); // every summary was acknowledged during the outage
    await until("the spool to drain", async () => (await replica.metric("meshlook_spool_bytes")) === 0);
    expect(await readyz(replica.url!)).toEqual({ status: 200, error: undefined });
    await replica.stop();

    const c = compare(warehouseRows(await s.sf.query(WAREHOUSE_SQL)), run.truth);
    expect(c.mismatched).toBe(0);
    expect(c.warehouseRequests).toBe(c.truthRequests);
    const [ledger] = await s.sf.query(`SELECT COUNT(*) AS n FROM ${LEDGER_TABLE.name}`);
    expect(Number(ledger.n)).toBe(ingest.acked.size);
  });

  it("DuckDB file locked by another process: the collector still spools, reports not ready, and loads once released", async () => {
    const dir = tempDir();
    const duckdbPath = join(dir, "meshlook.duckdb");
    // The instance is kept referenced: once collected, DuckDB closes the file and releases its lock.
    const holder = spawn(
      process.execPath,
      [
        "-e",
        `const {DuckDBInstance}=require("@duckdb/node-api");DuckDBInstance.create(${JSON.stringify(duckdbPath)}).then((db)=>{globalThis.held=db;console.log("locked")});setInterval(()=>{},1e6)`,
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    cleanups.add(() => holder.kill("SIGKILL"));
    await new Promise((r) => createInterface({ input: holder.stdout! }).once("line", r));
    const replica = new CollectorReplica("duck", { MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: TOKEN, MESHLOOK_LOAD_INTERVAL_S: "1" });
    cleanups.add(() => replica.kill());
    await replica.start();
    expect(await readyz(replica.url!)).toEqual({ status: 503, error: "warehouse_unreachable" });
    const ingest = new Front([replica]);
    const address = await ingest.listen();
    cleanups.add(() => ingest.close());
    const run = await runTraffic({ seed: 13, durationS: 20, requestsPerSecond: 40, flushS: 5, collector: address, token: TOKEN, drainS: 30 });
    expect(ingest.cut).toBe(0);
    holder.kill("SIGKILL");
    await until("the spool to drain", async () => (await replica.metric("meshlook_spool_bytes")) === 0);
    await replica.stop();
    const c = compare(await readDuckDB(duckdbPath), run.truth);
    expect(c.mismatched).toBe(0);
  });
});
