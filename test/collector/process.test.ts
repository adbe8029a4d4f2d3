// The collector as a real process over real HTTP: crash safety (SIGKILL between acknowledgement and
// load), graceful SIGTERM, and one process taking over the DuckDB file from another without counting a
// re-sent summary twice.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, describe, expect, it } from "vitest";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { registerMeshQuantile } from "../../shared/quantile-duckdb.ts";
import { encode, latencies, series, summary, totals } from "./helpers.ts";
import type { DecodedSummary } from "../../collector/summary.ts";
import { fetchRetryingShed } from "../shared/shed-retry.ts";

const root = new URL("../..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "meshlook-process-"));
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

async function startProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", "collector/main.ts"], {
    cwd: root,
    env: {
      ...process.env,
      MESHLOOK_HOST: "127.0.0.1",
      MESHLOOK_PORT: "0",
      MESHLOOK_DATA_DIR: dir,
      MESHLOOK_LOG_LEVEL: "warn",
      // The windows here are from 1970: with retention on the loader drops them as older than the ledger horizon.
      MESHLOOK_RETENTION_MINUTE_DAYS: "0",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    void exited.then((code) => reject(new Error(`collector exited (${code}) before listening:\n${stderr}`)));
  });
  const url = /listening on (http:\/\/\S+);/.exec(line)![1];
  return { child, line, url, exited, stderr: () => stderr };
}

const token = () => readFileSync(join(dir, "ingest-token"), "utf8").trim();

async function postAll(url: string, summaries: DecodedSummary[]) {
  const statuses = await Promise.all(
    summaries.map(async (s) => {
      // Sent again after 503 overloaded, as a sidecar does: a starved machine sheds, and that is not what this tests.
      const res = await fetchRetryingShed(() =>
        fetch(`${url}/v1/summaries`, {
          method: "POST",
          headers: { "content-type": "application/x-meshlook-summary", authorization: `Bearer ${token()}` },
          body: Buffer.from(encode(s)),
        }),
      );
      await res.arrayBuffer();
      return res.status;
    }),
  );
  expect(statuses).toEqual(summaries.map(() => 200));
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
}

/** Opens the DuckDB file in this process (no collector may be running) and reads what was loaded. */
async function warehouse() {
  const instance = await DuckDBInstance.create(join(dir, "meshlook.duckdb"));
  const conn = await instance.connect();
  registerMeshQuantile(conn);
  try {
    const byService = (
      await conn.runAndReadAll("SELECT destination_service AS s, SUM(requests) AS n, SUM(latency_sum_us) AS l FROM mesh_traffic_minute GROUP BY 1 ORDER BY 1")
    ).getRowObjectsJS();
    const [ledger] = (await conn.runAndReadAll("SELECT COUNT(*) AS n FROM mesh_load_ledger")).getRowObjectsJS();
    const [p99] = (await conn.runAndReadAll("SELECT MESH_QUANTILE(ARRAY_AGG(latency_sketch), 0.99) AS v FROM mesh_traffic_minute")).getRowObjectsJS();
    return {
      totals: Object.fromEntries(byService.map((r) => [r.s, { requests: Number(r.n), latencySumUs: Number(r.l) }])),
      ledger: Number(ledger.n),
      p99: p99.v as number | null,
    };
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

describe("collector process", () => {
  it("loses nothing and doubles nothing across SIGKILL, restart, re-sends and a second process taking over the file", async () => {
    const values: number[] = []; // every latency behind the fleet-wide p99 below
    const input = Array.from({ length: 24 }, (_, i) => {
      const v = latencies(40);
      values.push(...v);
      return summary(i + 1, 60_000 * (1 + (i % 3)), [series(`svc-${i % 4}`, v)], `pod-${i % 2}`);
    });

    // 1. Acknowledged, then killed before any load (the load interval is an hour). The collector listens
    // before its startup load cycle, which would load what arrived by then: this process holds the
    // (migrated) file meanwhile.
    const holder = new DuckDBSink(join(dir, "meshlook.duckdb"));
    await holder.open();
    const a = await startProcess({ MESHLOOK_LOAD_INTERVAL_S: "3600" });
    expect(a.line).toContain(`ingest token generated in ${join(dir, "ingest-token")}`);
    expect(a.line).not.toContain(token());
    await postAll(a.url, input);
    a.child.kill("SIGKILL");
    await a.exited;
    await holder.close();
    expect((await warehouse()).ledger).toBe(0);
    expect(readdirSync(join(dir, "spool")).some((f) => f.endsWith(".seg"))).toBe(true);

    // 2. Restart: the spool is replayed into the warehouse; re-sends are acknowledged; SIGTERM loads them.
    const b = await startProcess({ MESHLOOK_LOAD_INTERVAL_S: "3600" });
    expect(b.line).toContain(`ingest token read from ${join(dir, "ingest-token")}`);
    while ((await metric(b.url, "meshlook_summaries_loaded_total")) < input.length) await new Promise((r) => setTimeout(r, 50));
    await postAll(b.url, input.slice(0, 6));
    const lateValues = latencies(10);
    values.push(...lateValues);
    const late = summary(1000, 240_000, [series("svc-late", lateValues)], "pod-late");
    await postAll(b.url, [late]); // only the final load at SIGTERM can bring this one to the warehouse
    b.child.kill("SIGTERM");
    expect(await b.exited).toBe(0);

    // 3. Another process takes the file over; everything is re-sent to it.
    const c = await startProcess({ MESHLOOK_LOAD_INTERVAL_S: "1" });
    await postAll(c.url, input);
    while ((await metric(c.url, 'meshlook_dedup_hits_total{stage="load"}')) < input.length) await new Promise((r) => setTimeout(r, 50));
    c.child.kill("SIGTERM");
    expect(await c.exited).toBe(0);

    const w = await warehouse();
    expect(w.ledger).toBe(input.length + 1);
    expect(w.totals).toEqual(totals([...input, late]));
    const sorted = values.sort((x, y) => x - y);
    const exact = sorted[Math.ceil(0.99 * sorted.length) - 1];
    expect(Math.abs(w.p99! - exact) / exact).toBeLessThan(0.01);
    expect(readdirSync(join(dir, "spool")).filter((f) => f.endsWith(".seg"))).toEqual([]);
  });

  it("spools while another process holds the DuckDB file, says why, and loads once it is released", async () => {
    const a = await startProcess({ MESHLOOK_LOAD_INTERVAL_S: "3600" });
    // a listens before it opens (and locks) the file: ready means it holds it.
    while ((await fetch(`${a.url}/readyz`)).status !== 200) await new Promise((r) => setTimeout(r, 50));
    const b = await startProcess({ MESHLOOK_LOAD_INTERVAL_S: "1", MESHLOOK_SPOOL_DIR: join(dir, "spool-b"), MESHLOOK_LOG_LEVEL: "info" });
    const ready = await fetch(`${b.url}/readyz`);
    expect([ready.status, ((await ready.json()) as { error: string }).error]).toEqual([503, "warehouse_unreachable"]);
    const held = summary(1, 60_000, [series("svc-held", latencies(20))], "pod-held");
    await postAll(b.url, [held]);
    // One clear log line naming the lock, although the open was tried at start and by every load since.
    const lines = b
      .stderr()
      .split("\n")
      .filter((l) => /warehouse cannot be opened: .*lock/i.test(l));
    expect(lines).toHaveLength(1);
    a.child.kill("SIGTERM");
    expect(await a.exited).toBe(0);
    while ((await metric(b.url, "meshlook_summaries_loaded_total")) < 1) await new Promise((r) => setTimeout(r, 100));
    expect((await fetch(`${b.url}/readyz`)).status).toBe(200);
    b.child.kill("SIGTERM");
    expect(await b.exited).toBe(0);
    expect((await warehouse()).totals).toMatchObject(totals([held]));
  });

  it("exits with one clear line when its port is taken", async () => {
    const a = await startProcess({ MESHLOOK_LOAD_INTERVAL_S: "3600" });
    const b = spawn(process.execPath, ["--import", "tsx", "collector/main.ts"], {
      cwd: root,
      env: { ...process.env, MESHLOOK_HOST: "127.0.0.1", MESHLOOK_PORT: new URL(a.url).port, MESHLOOK_DATA_DIR: join(dir, "b"), MESHLOOK_LOG_LEVEL: "silent" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    b.stderr.on("data", (d) => (err += d));
    expect(await new Promise((resolve) => b.on("exit", resolve))).toBe(1);
    expect(err).toMatch(/meshlook collector failed to start: .*EADDRINUSE/);
    a.child.kill("SIGTERM");
    expect(await a.exited).toBe(0);
  });

  it("refuses to start on invalid settings, naming each one", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "collector/main.ts"], {
      cwd: root,
      env: { ...process.env, MESHLOOK_DATA_DIR: dir, MESHLOOK_PORT: "http", MESHLOOK_SINK: "oracle" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const code = await new Promise((resolve) => child.on("exit", resolve));
    expect(code).toBe(2);
    expect(err).toContain('MESHLOOK_PORT: must be an integer, got "http"');
    expect(err).toContain('MESHLOOK_SINK: must be one of duckdb, snowflake, got "oracle"');
  });
});
