// The collector image, built from deploy/image/Containerfile by `npm run image` and run. No registry is
// reachable here, so the official Node.js base cannot be pulled: the test assembles a local base the way
// one is made from scratch — a minimal Debian rootfs (mmdebstrap), this run's Node.js binary (the `node`
// package's, the LTS the project pins) and npm, and the machine's CA bundle — and passes it as BASE.
// It then checks the image's configuration (user, stop signal, labels, health check), runs its collector
// with `buildah run --isolation chroot` (user namespaces, which podman run needs, may be refused on build
// machines), posts a real summary with a token, sees it loaded, stops it with SIGTERM and reads the
// warehouse back with the image's own `meshlook query`.
// Needs buildah and mmdebstrap (`.ci/run` installs them); skipped with a message where they are missing.
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { encode, latencies, series, summary } from "../collector/helpers.ts";
import { fetchRetryingShed } from "../shared/shed-retry.ts";

const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);
const has = (cmd: string) => spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;
const missing = ["buildah", "mmdebstrap"].filter((c) => !has(c));
if (missing.length) console.warn(`image test SKIPPED: ${missing.join(" and ")} not installed (apt-get install buildah mmdebstrap; .ci/run does)`);

const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string;
const BASE = `localhost/meshlook-test-base:${process.versions.node}`;
const IMAGE = "localhost/meshlook-collector:test";
const dir = mkdtempSync(join(tmpdir(), "meshlook-image-"));
const containers: string[] = [];
afterAll(async () => {
  for (const c of containers) await run("buildah", ["rm", c]).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const buildah = async (...args: string[]) => (await run("buildah", args, { maxBuffer: 64 << 20 })).stdout.trim();
const imageExists = (ref: string) => spawnSync("buildah", ["inspect", "--type", "image", ref], { stdio: "ignore" }).status === 0;

/** A minimal Debian with this process's Node.js and the machine's npm and CA bundle, as an image named BASE. */
async function assembleBase() {
  const rootfs = join(dir, "rootfs.tar");
  await run("mmdebstrap", ["--variant=minbase", "--mode=root", "--include=ca-certificates", "--quiet", "bookworm", rootfs], { maxBuffer: 64 << 20 });
  // The npm running this test (npm sets npm_execpath to its npm-cli.js), else the one on PATH. Not
  // `npm root -g`: npm derives that from the Node.js running it, and the Node.js .ci/run puts first on
  // PATH (the `node` package) has no npm beside it.
  const npmCli = process.env.npm_execpath ?? execFileSync("sh", ["-c", "command -v npm"], { encoding: "utf8" }).trim();
  const npmDir = dirname(dirname(realpathSync(npmCli)));
  const ctr = await buildah("from", "scratch");
  containers.push(ctr);
  await buildah("add", ctr, rootfs, "/");
  await buildah("copy", ctr, realpathSync(process.execPath), "/usr/local/bin/node");
  await buildah("copy", ctr, npmDir, "/usr/local/lib/node_modules/npm");
  // The registry is reached through this machine's TLS setup: its CA bundle, trusted as Node.js trusts it here.
  await buildah("copy", ctr, "/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt");
  await buildah("run", "--isolation", "chroot", ctr, "--", "ln", "-s", "../lib/node_modules/npm/bin/npm-cli.js", "/usr/local/bin/npm");
  await buildah("config", "--env", "NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt", "--cmd", "node", ctr);
  await buildah("commit", "--quiet", ctr, BASE);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Every process below `pid`, from /proc. */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The command name may contain spaces and parentheses: the fields after its closing parenthesis are fixed.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [child, ppid] of parent) if (ppid === p) out.push(child), walk(child);
  };
  walk(pid);
  return out;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
}

describe.skipIf(missing.length > 0)("collector image", () => {
  it("builds on a locally assembled base, runs its collector as configured, and loads a posted summary", async () => {
    let started = performance.now();
    if (!imageExists(BASE)) await assembleBase();
    const baseS = (performance.now() - started) / 1000;

    started = performance.now();
    await run(process.execPath, [join(root, "scripts", "image.mjs"), "--tool", "buildah", "--base", BASE, "--tag", IMAGE, "--isolation", "chroot"], {
      cwd: root,
      maxBuffer: 256 << 20,
    });
    const buildS = (performance.now() - started) / 1000;
    const size = JSON.parse(await buildah("images", "--json", IMAGE))[0].size as string;
    console.log(`image test: base ${baseS.toFixed(0)} s, image build ${buildS.toFixed(0)} s, image ${IMAGE} ${size}`);

    const [inspect] = [JSON.parse(await buildah("inspect", "--type", "image", IMAGE))];
    const config = inspect.Docker.config;
    expect(config.User).toBe("10001:10001");
    expect(config.StopSignal).toBe("SIGTERM");
    expect(config.Labels).toMatchObject({
      "org.opencontainers.image.version": version,
      "org.opencontainers.image.revision": execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).trim(),
    });
    expect(config.Healthcheck?.Test?.join(" ")).toContain("/healthz");
    expect(Object.keys(config.Volumes ?? {})).toEqual(["/var/lib/meshlook"]);
    const command: string[] = [...config.Entrypoint, ...config.Cmd];
    expect(command).toEqual(["node", "scripts/meshlook.mjs", "start"]);

    const ctr = await buildah("from", IMAGE);
    containers.push(ctr);
    expect(await buildah("run", "--isolation", "chroot", ctr, "--", "id", "-u")).toBe("10001");
    // The runtime carries no development tooling: production dependencies only.
    const modules = await buildah("run", "--isolation", "chroot", ctr, "--", "ls", "node_modules");
    for (const devOnly of ["tsx", "esbuild", "typescript", "vitest"]) expect(modules.split("\n")).not.toContain(devOnly);

    // Chroot isolation shares the host's network: the collector's port is this machine's.
    const port = await freePort();
    const token = "image-test-token-0123456789abcdef";
    // Retention off: the summary posted below is from 1970, which the loader would drop as older than the ledger horizon.
    const env = {
      MESHLOOK_PORT: String(port),
      MESHLOOK_INGEST_TOKENS: token,
      MESHLOOK_LOAD_INTERVAL_S: "1",
      MESHLOOK_LOG_LEVEL: "info",
      MESHLOOK_RETENTION_MINUTE_DAYS: "0",
    };
    const envArgs = Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
    const collector = spawn("buildah", ["run", "--isolation", "chroot", ...envArgs, ctr, "--", ...command], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    collector.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => collector.on("exit", (code) => resolve(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = "";
        collector.stdout.on("data", (d) => {
          out += d;
          if (out.includes("\n")) resolve(out.split("\n")[0]);
        });
        void exited.then((code) => reject(new Error(`the image's collector exited (${code}) before listening:\n${stderr}`)));
      });
      expect(line).toMatch(
        new RegExp(
          `^meshlook collector listening on http://0\\.0\\.0\\.0:${port} \\(all IPv4 interfaces\\); spool /var/lib/meshlook/spool; warehouse DuckDB /var/lib/meshlook/meshlook.duckdb`,
        ),
      );
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

      const values = latencies(30);
      const body = Buffer.from(encode(summary(1, 180_000, [series("ratings", values)], "image-test")));
      const post = (auth: string) =>
        fetchRetryingShed(() =>
          fetch(`http://127.0.0.1:${port}/v1/summaries`, { method: "POST", headers: { "content-type": "application/x-meshlook-summary", authorization: auth }, body }),
        );
      expect((await post("Bearer wrong-token")).status).toBe(401);
      expect((await post(`Bearer ${token}`)).status).toBe(200);
      const deadline = Date.now() + 60_000;
      while ((await metric(port, "meshlook_summaries_loaded_total")) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await metric(port, "meshlook_summaries_loaded_total")).toBe(1);

      // What a runtime does on stop (STOPSIGNAL to the container's process); `buildah run` itself would
      // SIGKILL its command when signalled, so the signal goes to the collector process directly.
      const node = descendants(collector.pid!).find((pid) => {
        const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        return argv[0].endsWith("node") && argv[1] === "scripts/meshlook.mjs" && argv[2] === "start";
      });
      expect(node).toBeDefined();
      process.kill(node!, "SIGTERM");
      expect(await exited, stderr).toBe(0);
      const last = JSON.parse(stderr.trim().split("\n").pop()!);
      expect(last).toMatchObject({ signal: "SIGTERM", summariesLoaded: 1 });

      const sql = "SELECT SUM(requests) AS requests FROM mesh_traffic_minute WHERE destination_service = 'ratings'";
      const out = await buildah("run", "--isolation", "chroot", ctr, "--", "node", "scripts/meshlook.mjs", "query", "/var/lib/meshlook/meshlook.duckdb", sql);
      expect(out).toMatch(new RegExp(`\\b${values.length}\\b`));
    } finally {
      if (collector.exitCode === null) collector.kill("SIGKILL");
    }
  }, 1_500_000); // a fresh machine downloads a Debian rootfs and every dependency, and compiles the release filter
});
