// The collector process started the way the DuckDB StatefulSet starts it: the rendered container's
// environment, its mount paths mapped into a temporary directory, the ingest-token Secret laid out as
// kubelet lays out a mounted Secret (a `..data` symlink swapped atomically on update). It must come up
// healthy and ready, and the runbook's token rotation must work without a restart.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { render, requireKubectl, root } from "./render.ts";

const tmp = mkdtempSync(join(tmpdir(), "meshlook-pod-"));
let child: ChildProcess;
let base: string;
let metricsBase: string;
let generation = 0;

/** Writes a Secret's files the way kubelet does: a fresh timestamped directory, then an atomic `..data` swap. */
function writeSecret(dir: string, files: Record<string, string>): void {
  const gen = `..gen_${generation++}`;
  mkdirSync(join(dir, gen), { recursive: true });
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, gen, name), content);
  symlinkSync(gen, join(dir, "..data_tmp"));
  renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
  for (const name of Object.keys(files)) {
    if (!existsSync(join(dir, name))) symlinkSync(join("..data", name), join(dir, name));
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting for ${what}`);
}

// What the pod's own sidecar adds to every mTLS request (identity.ts); the test has no sidecar.
const XFCC = 'By=spiffe://cluster.local/ns/meshlook/sa/meshlook-collector;Hash=0f;Subject="";URI=spiffe://cluster.local/ns/apps/sa/reviews';
const post = (token: string) =>
  fetch(`${base}/v1/summaries`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/x-meshlook-summary", "x-forwarded-client-cert": XFCC },
    body: new Uint8Array([1, 2, 3, 4]),
  }).then((r) => r.status);

beforeAll(async () => {
  requireKubectl();
  const sts = render(join(root, "deploy", "collector", "overlays", "duckdb")).find((r) => r.kind === "StatefulSet")!;
  const c = sts.spec.template.spec.containers[0];
  const mounts: { mountPath: string }[] = c.volumeMounts;
  const local = (p: string) => {
    const m = mounts.find((x) => p === x.mountPath || p.startsWith(x.mountPath + "/"));
    if (!m) throw new Error(`${p} is on the read-only root filesystem`);
    return join(tmp, "mnt", p);
  };
  for (const m of mounts) mkdirSync(local(m.mountPath), { recursive: true });
  const env: Record<string, string> = {};
  for (const e of c.env as { name: string; value: string }[]) env[e.name] = e.value.startsWith("/") ? local(e.value) : e.value;
  // Only the listener differs from the pod: loopback and a free port, beside other tests.
  env.MESHLOOK_HOST = "127.0.0.1";
  env.MESHLOOK_PORT = "0";
  env.MESHLOOK_METRICS_PORT = "0";
  const tokensFile = env.MESHLOOK_INGEST_TOKENS_FILE;
  writeSecret(join(tokensFile, ".."), { tokens: "old-token\n" });

  child = spawn(process.execPath, ["--import", "tsx", join(root, "collector", "main.ts")], {
    cwd: root,
    env: { PATH: process.env.PATH, HOME: tmp, TMPDIR: local("/tmp"), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  [base, metricsBase] = await until("the startup line", async () => {
    if (child.exitCode !== null) throw new Error(`collector exited ${child.exitCode}: ${stderr}`);
    const m = /listening on (http:\/\/[\d.:]+); metrics on (http:\/\/[\d.:]+)/.exec(stdout);
    return m ? [m[1], m[2]] : undefined;
  }).catch((err) => {
    throw new Error(`${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`);
  });
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  rmSync(tmp, { recursive: true, force: true });
});

describe("collector as the DuckDB StatefulSet runs it", () => {
  it("answers the probes the manifest points at", async () => {
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await until("readiness", async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined))).toBe(true);
    expect(await (await fetch(`${metricsBase}/metrics`)).text()).toContain("meshlook_summaries_accepted_total");
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
  });

  it("takes tokens from the mounted Secret and follows a rotation without restarting", async () => {
    expect(await post("old-token")).toBe(400); // authenticated; the body is not a summary
    expect(await post("new-token")).toBe(401);
    // Rotation window: both tokens, then only the new one (docs/operations.md).
    writeSecret(join(tmp, "mnt", "etc", "meshlook", "ingest"), { tokens: "old-token\nnew-token\n" });
    await until("the new token", async () => ((await post("new-token")) === 400 ? true : undefined));
    expect(await post("old-token")).toBe(400);
    writeSecret(join(tmp, "mnt", "etc", "meshlook", "ingest"), { tokens: "new-token\n" });
    await until("the old token to be dropped", async () => ((await post("old-token")) === 401 ? true : undefined));
    expect(await post("new-token")).toBe(400);
    expect(child.exitCode).toBeNull();
  });
});
