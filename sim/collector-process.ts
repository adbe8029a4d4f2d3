/**
 * The collector as its own process (`collector/main.ts`, exactly what `npm start` runs), for the demo,
 * the end-to-end tests and the benchmarks: the filter's summaries then cross a real process boundary,
 * and a graceful stop (SIGTERM) performs the collector's final load, after which the DuckDB file can be
 * opened by this process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";

const ROOT = join(import.meta.dirname, "..");

export interface CollectorProcessOptions {
  /** `MESHLOOK_DATA_DIR`: spool and (unless `settings` names another) the DuckDB file live here. */
  dataDir: string;
  /** Bearer token the collector accepts (`MESHLOOK_INGEST_TOKENS`). */
  token: string;
  /** Further `MESHLOOK_*` settings (docs/collector.md), e.g. `{ MESHLOOK_LOAD_INTERVAL_S: "1" }`. */
  settings?: Record<string, string>;
  /** Where the collector's JSON logs go; default: discarded unless it fails to start. */
  logs?: "inherit" | "ignore";
}

export interface CollectorProcess {
  child: ChildProcess;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `127.0.0.1:<port>`, the form the host's cluster map takes. */
  address: string;
  /** The DuckDB file the collector loads. */
  duckdbPath: string;
  /** SIGTERM and wait for the exit: in-flight requests finish and the spool is loaded one last time. */
  stop(): Promise<number | null>;
}

/** Starts `collector/main.ts` on a free loopback port; resolves once it printed its startup line. */
export async function startCollectorProcess(options: CollectorProcessOptions): Promise<CollectorProcess> {
  const duckdbPath = options.settings?.MESHLOOK_DUCKDB_PATH ?? join(options.dataDir, "meshlook.duckdb");
  const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "collector", "main.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      MESHLOOK_HOST: "127.0.0.1",
      MESHLOOK_PORT: "0",
      MESHLOOK_DATA_DIR: options.dataDir,
      MESHLOOK_INGEST_TOKENS: options.token,
      MESHLOOK_LOG_LEVEL: "warn",
      // The simulated mesh's clock starts on 2026-01-01 unless told otherwise (reproducible runs), and
      // with retention on the collector refuses windows older than the ledger horizon (35 days): keep it
      // off unless the caller turns it on.
      MESHLOOK_RETENTION_MINUTE_DAYS: "0",
      ...options.settings,
    },
    stdio: ["ignore", "pipe", options.logs === "inherit" ? "inherit" : "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const line = await Promise.race([
    new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once("line", resolve)),
    exited.then((code) => {
      throw new Error(`collector exited with code ${code} before listening:\n${stderr}`);
    }),
  ]);
  const url = /listening on (http:\/\/\S+);/.exec(line)?.[1];
  if (!url) {
    child.kill("SIGTERM");
    throw new Error(`unexpected collector startup line: ${line}`);
  }
  return {
    child,
    url,
    address: new URL(url).host,
    duckdbPath,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const code = await exited;
      if (code !== 0) throw new Error(`collector exited with code ${code} on SIGTERM:\n${stderr}`);
      return code;
    },
  };
}
