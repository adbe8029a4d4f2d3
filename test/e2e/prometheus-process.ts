// A real Prometheus server (Debian's `prometheus` package) for the remote-write tests and benchmark: on
// loopback, a temporary data directory, the remote-write receiver and native histograms switched on.
// Flags as Prometheus 2.42 (Debian 12) takes them: `--web.enable-remote-write-receiver` (since 2.33) and
// `--enable-feature=native-histograms` (2.40 to 2.x; 3.x ingests them without the flag).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

/** The prometheus binary, or undefined when it is not installed (`.ci/run` installs it). */
export function prometheusBinary(): string | undefined {
  const bin = process.env.PROMETHEUS_BIN ?? "prometheus";
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  return r.status === 0 ? bin : undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

export class PrometheusProcess {
  private child?: ChildProcess;
  private log = "";
  readonly url: string;

  private constructor(
    readonly bin: string,
    readonly dir: string,
    readonly port: number,
  ) {
    this.url = `http://127.0.0.1:${port}`;
  }

  static async start(bin: string, dir: string): Promise<PrometheusProcess> {
    mkdirSync(dir, { recursive: true });
    // No scrape targets: everything it holds arrives by remote write.
    writeFileSync(join(dir, "prometheus.yml"), "global:\n  scrape_interval: 1h\n");
    const p = new PrometheusProcess(bin, dir, await freePort());
    await p.resume();
    return p;
  }

  get remoteWriteUrl(): string {
    return `${this.url}/api/v1/write`;
  }

  /** (Re)starts the server on the same port and data directory; resolves once it is ready. */
  async resume(): Promise<void> {
    this.child = spawn(
      this.bin,
      [
        `--config.file=${join(this.dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(this.dir, "data")}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        "--web.enable-remote-write-receiver",
        "--enable-feature=native-histograms",
        "--log.level=warn",
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    this.child.stderr?.on("data", (c: Buffer) => (this.log = (this.log + c.toString()).slice(-4000)));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`prometheus exited with ${this.child.exitCode}:\n${this.log}`);
      try {
        if ((await fetch(`${this.url}/-/ready`)).ok) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`prometheus not ready after 30 s:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Stops the server (SIGTERM, waits for the exit); its data stays for resume(). */
  async pause(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }

  /** An instant query at `timeS` (seconds, millisecond precision); the vector result. */
  async query(promql: string, timeS?: number): Promise<PromSample[]> {
    const params = new URLSearchParams({ query: promql });
    if (timeS !== undefined) params.set("time", timeS.toFixed(3));
    const res = await fetch(`${this.url}/api/v1/query?${params}`);
    const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] } };
    if (body.status !== "success") throw new Error(`query ${promql} failed: ${body.error}`);
    if (body.data!.resultType !== "vector") throw new Error(`query ${promql} returned a ${body.data!.resultType}`);
    return body.data!.result;
  }
}
