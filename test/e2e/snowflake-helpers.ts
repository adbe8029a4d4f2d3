/**
 * The Snowflake stand-in in a process of its own, as the real service is remote. The end-to-end test's
 * own process runs the simulated mesh flat out and paces it by blocking; a stand-in sharing that event
 * loop would answer the collector's loads only between simulated seconds and so bunch them together.
 *
 * Run as a script (forked by `startRemoteStand`), this module starts `stand()` from the Snowflake tests'
 * helpers, with a READER user for queries, and answers the parent over IPC.
 */
import { fork } from "node:child_process";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { CapturedStatement } from "../snowflake/standin/server.ts";

export const READER = { user: "READER", password: "reader-password" };

export interface RemoteStand {
  /** http://127.0.0.1:PORT, for snowflake-sdk's accessUrl. */
  url: string;
  account: string;
  /** `MESHLOOK_*` settings for a collector process loading as LOADER with its key pair. */
  env: Record<string, string>;
  /** Every statement the stand-in has received so far, in arrival order. */
  statements(): Promise<CapturedStatement[]>;
  /** SQL straight on the stand-in's DuckDB, bypassing the protocol (for tampering in negative controls). */
  query(sql: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

type Call = { op: "statements" } | { op: "query"; sql: string } | { op: "stop" };
type Request = Call & { id: number };
type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };
type Ready = { ready: { url: string; account: string; env: Record<string, string> } };

export async function startRemoteStand(): Promise<RemoteStand> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    execArgv: ["--import", "tsx"],
    serialization: "advanced",
    stdio: ["ignore", "ignore", "pipe", "ipc"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code) => {
      for (const p of pending.values()) p.reject(new Error(`stand-in process exited (${code}):\n${stderr}`));
      resolve();
    }),
  );
  const ready = await new Promise<Ready["ready"]>((resolve, reject) => {
    child.once("message", (m) => resolve((m as Ready).ready));
    child.once("exit", (code) => reject(new Error(`stand-in process exited (${code}) before it was ready:\n${stderr}`)));
  });
  child.on("message", (m) => {
    const reply = m as Reply;
    const p = pending.get(reply.id);
    pending.delete(reply.id);
    if (reply.ok) p?.resolve(reply.value);
    else p?.reject(new Error(reply.error));
  });
  let next = 0;
  const call = <T>(req: Call): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = ++next;
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...req, id });
    });
  return {
    ...ready,
    statements: () => call({ op: "statements" }),
    query: (sql) => call({ op: "query", sql }),
    async stop() {
      if (child.exitCode === null) await call({ op: "stop" });
      await exited;
    },
  };
}

async function serve(): Promise<void> {
  const { stand } = await import("../snowflake/helpers.ts");
  const s = await stand({ users: { [READER.user]: { password: READER.password } } });
  // Orphaned (the test process died): nothing will stop it otherwise.
  process.once("disconnect", () => void s.sf.stop().finally(() => process.exit(0)));
  process.send!({ ready: { url: s.sf.url, account: s.sf.account, env: s.env() } } satisfies Ready);
  process.on("message", (m: Request) => {
    const answer = async (): Promise<unknown> => {
      if (m.op === "statements") return s.sf.statements;
      if (m.op === "query") return s.sf.query(m.sql);
      await s.sf.stop();
      return null;
    };
    answer().then(
      (value) => {
        process.send!({ id: m.id, ok: true, value } satisfies Reply);
        if (m.op === "stop") process.exit(0);
      },
      (err: unknown) => process.send!({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) } satisfies Reply),
    );
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await serve();
