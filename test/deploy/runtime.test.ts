// How the collector is run outside the test harness: the built JavaScript on production dependencies
// alone (what the image holds), and `npm start` stopped the way supervisors stop it — SIGTERM to its
// process group, or to npm alone. Each run posts a real summary that only the final load can bring to the
// warehouse (the load interval is an hour), so a clean stop is one whose last log line reports it loaded.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildCollector } from "../../scripts/build-collector.mjs";
import { encode, latencies, series, summary } from "../collector/helpers.ts";
import { fetchRetryingShed } from "../shared/shed-retry.ts";

const root = join(import.meta.dirname, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "meshlook-runtime-"));
const children: ChildProcess[] = [];
beforeAll(() => buildCollector({ quiet: true }));
afterAll(() => {
  // Each child leads its own process group, so a test that failed midway leaves no collector behind npm.
  for (const c of children) {
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      // the group is gone already
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Started {
  child: ChildProcess;
  line: string;
  port: number;
  exited: Promise<number | null>;
  stderr(): string;
}

/** Spawns a collector command and waits for its startup line (npm prints its own lines first). */
async function startCollector(command: string, args: string[], cwd: string, env: Record<string, string>): Promise<Started> {
  const child = spawn(command, args, {
    cwd,
    detached: true,
    // Retention off: the summary posted is from 1970, which the loader would drop as older than the ledger horizon.
    env: { ...process.env, MESHLOOK_PORT: "0", MESHLOOK_LOG_LEVEL: "info", MESHLOOK_LOAD_INTERVAL_S: "3600", MESHLOOK_RETENTION_MINUTE_DAYS: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stdout = "";
  let stderr = "";
  child.stderr!.on("data", (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d) => {
      stdout += d;
      const found = stdout.split("\n").find((l) => l.startsWith("meshlook collector listening on "));
      if (found) resolve(found);
    });
    void exited.then((code) => reject(new Error(`${command} exited (${code}) before listening:\n${stdout}\n${stderr}`)));
  });
  const port = Number(/listening on http:\/\/[^ ;]+:(\d+)[ ;]/.exec(line)?.[1]);
  return { child, line, port, exited, stderr: () => stderr };
}

async function postOneSummary(port: number, dataDir: string) {
  const token = readFileSync(join(dataDir, "ingest-token"), "utf8").trim();
  const body = Buffer.from(encode(summary(1, 120_000, [series("reviews", latencies(25))], "runtime-test")));
  const res = await fetchRetryingShed(() =>
    fetch(`http://127.0.0.1:${port}/v1/summaries`, {
      method: "POST",
      headers: { "content-type": "application/x-meshlook-summary", authorization: `Bearer ${token}` },
      body,
    }),
  );
  expect(res.status).toBe(200);
}

/** The collector's last log line, parsed (logs are JSON lines on stderr). */
function lastLog(stderr: string): Record<string, unknown> {
  const lines = stderr.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

function expectStoppedAfterFinalLoad(stderr: string, signal: string) {
  const last = lastLog(stderr);
  expect(last).toMatchObject({ signal, summariesAccepted: 1, summariesLoaded: 1, spoolBytesLeft: 0 });
  expect(last.rowsLoaded).toBeGreaterThan(0);
  expect(last.msg).toMatch(/^stopped: 1 summaries \(\d+ rows\) loaded since start, 1 accepted; spool empty$/);
}

const portClosed = (port: number) =>
  fetch(`http://127.0.0.1:${port}/healthz`).then(
    () => false,
    () => true,
  );

describe("collector runtime", () => {
  it("runs from dist/collector on `npm ci --omit=dev` dependencies alone", async () => {
    const app = join(dir, "app");
    mkdirSync(join(app, "scripts"), { recursive: true });
    for (const f of ["package.json", "package-lock.json", "scripts/meshlook.mjs"]) cpSync(join(root, f), join(app, f));
    cpSync(join(root, "dist", "collector"), join(app, "dist", "collector"), { recursive: true });
    // --ignore-scripts as in the image: the collector needs no install script (nor the `node` dev dependency's).
    await promisify(execFile)("npm", ["ci", "--omit=dev", "--ignore-scripts", "--prefer-offline", "--no-audit", "--no-fund"], { cwd: app });
    for (const devOnly of ["tsx", "esbuild", "typescript", "vitest", "node"]) expect(existsSync(join(app, "node_modules", devOnly)), devOnly).toBe(false);

    const data = join(dir, "prod-data");
    const c = await startCollector(process.execPath, ["scripts/meshlook.mjs", "start"], app, { MESHLOOK_HOST: "127.0.0.1", MESHLOOK_DATA_DIR: data });
    expect(c.line).toMatch(new RegExp(`^meshlook collector listening on http://127\\.0\\.0\\.1:${c.port}; `));
    expect((await fetch(`http://127.0.0.1:${c.port}/healthz`)).status).toBe(200);
    await postOneSummary(c.port, data);
    c.child.kill("SIGTERM");
    expect(await c.exited).toBe(0);
    expectStoppedAfterFinalLoad(c.stderr(), "SIGTERM");
  });

  it("`npm start` stops cleanly on SIGTERM to its process group, and names the address it listens on", async () => {
    const data = join(dir, "group-data");
    const c = await startCollector("npm", ["start"], root, { MESHLOOK_HOST: "0.0.0.0", MESHLOOK_DATA_DIR: data });
    expect(c.line).toMatch(new RegExp(`^meshlook collector listening on http://0\\.0\\.0\\.0:${c.port} \\(all IPv4 interfaces\\); `));
    expect((await fetch(`http://127.0.0.1:${c.port}/healthz`)).status).toBe(200);
    await postOneSummary(c.port, data);
    process.kill(-c.child.pid!, "SIGTERM");
    expect(await c.exited).toBe(0);
    expectStoppedAfterFinalLoad(c.stderr(), "SIGTERM");
    expect(await portClosed(c.port)).toBe(true);
  });

  it("`npm start` stops cleanly when SIGTERM or SIGINT reaches npm alone", async () => {
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      const data = join(dir, `npm-${signal}`);
      const c = await startCollector("npm", ["start"], root, { MESHLOOK_HOST: "127.0.0.1", MESHLOOK_DATA_DIR: data });
      await postOneSummary(c.port, data);
      c.child.kill(signal);
      await c.exited;
      // npm forwards the signal to the collector and waits for it: once npm is gone, so is the collector.
      expect(await portClosed(c.port)).toBe(true);
      expectStoppedAfterFinalLoad(c.stderr(), signal);
    }
  });
});
