// The fault rig: the release filter in simulated sidecars, collector replicas as real child processes
// (`collector/main.ts`, configured by environment as in a deployment), a loopback front proxy that plays
// the Kubernetes Service in front of them (and can lose acknowledgements or be unreachable), and the
// comparison of a warehouse with the traffic generator's ground truth. Shared by the short fault tests
// and `npm run soak`.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { DuckDBInstance } from "@duckdb/node-api";
import { ManualClock } from "../../sim/host/index.ts";
import { Mesh, type MeshProgress } from "../../sim/mesh.ts";
import { GroundTruth, TrafficGenerator, bookinfo, seriesKey, type SeriesDims } from "../../sim/traffic/index.ts";
import { decodeSummary } from "../../shared/node.ts";
import { DIMENSIONS, FACT_TABLE, LOSS_TABLE } from "../../shared/schema.ts";

export const ROOT = join(import.meta.dirname, "..", "..");
export const RELEASE_WASM = join(ROOT, "dist", "meshlook.wasm");
export const CLUSTER = "outbound|8080||meshlook-collector.meshlook.svc.cluster.local";
export const INGEST_PATH = "/v1/summaries";
export const SUMMARY_TYPE = "application/x-meshlook-summary";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Undo actions of a test file (processes, proxies, temporary directories), run last-in first-out. */
export function cleanupList(prefix: string) {
  const actions: (() => unknown)[] = [];
  return {
    add(action: () => unknown): void {
      actions.push(action);
    },
    /** A fresh temporary directory, removed at cleanup. */
    tempDir(): string {
      const dir = mkdtempSync(join(tmpdir(), prefix));
      actions.push(() => rmSync(dir, { recursive: true, force: true }));
      return dir;
    },
    async run(): Promise<void> {
      while (actions.length) await actions.pop()!();
    },
  };
}

/** One collector process that can be SIGKILLed and started again on the same data directory. */
export class CollectorReplica {
  child?: ChildProcess;
  url?: string;
  kills = 0;
  starts = 0;
  private exited?: Promise<number | null>;
  private stderr = "";

  constructor(
    readonly name: string,
    readonly env: Record<string, string>,
  ) {}

  get up(): boolean {
    return this.url !== undefined;
  }

  /** Spawns the collector and resolves once it printed its startup line (or rejects with its stderr). */
  async start(): Promise<void> {
    const child = spawn(process.execPath, ["--import", "tsx", join(ROOT, "collector", "main.ts")], {
      cwd: ROOT,
      env: {
        ...process.env,
        MESHLOOK_HOST: "127.0.0.1",
        MESHLOOK_PORT: "0",
        MESHLOOK_LOG_LEVEL: "warn",
        // The fault tests' windows are from 2023 and the simulated mesh's clock starts 2026-01-01: with
        // retention on, the loader drops them all as older than the ledger horizon. Off unless a test asks.
        MESHLOOK_RETENTION_MINUTE_DAYS: "0",
        ...this.env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.stderr = "";
    child.stderr!.on("data", (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-20_000)));
    this.exited = new Promise((resolve) =>
      child.once("exit", (code) => {
        if (this.child === child) this.url = undefined;
        resolve(code);
      }),
    );
    const line = await Promise.race([
      new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once("line", resolve)),
      this.exited.then((code) => {
        throw new Error(`collector ${this.name} exited (${code}) before listening:\n${this.stderr}`);
      }),
    ]);
    this.url = /listening on (http:\/\/\S+);/.exec(line)![1];
    this.starts++;
  }

  /** The collector's JSON log lines (stderr) since the last start. */
  logs(): string {
    return this.stderr;
  }

  async kill(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.url = undefined;
    this.child.kill("SIGKILL");
    await this.exited;
    this.kills++;
  }

  /** Graceful stop: the collector loads what it holds before exiting; throws on a non-zero exit. */
  async stop(): Promise<void> {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const code = await this.exited;
    this.url = undefined;
    if (code !== 0) throw new Error(`collector ${this.name} exited ${code} on SIGTERM:\n${this.stderr}`);
  }

  /**
   * What the replica is doing, for a failed or timed-out test's report: its spool and load metrics (or
   * why they could not be read) and its last log lines.
   */
  async describe(logLines = 15): Promise<string> {
    let state = "not running";
    if (this.up) {
      try {
        const text = await (await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
        state = text
          .split("\n")
          .filter((l) => /^meshlook_(spool_bytes|spool_segments|oldest_unloaded|summaries_(accepted|rejected|loaded)|load_(failures|retries)|dedup_hits)/.test(l))
          .join("; ");
      } catch (err) {
        state = `/metrics unanswered: ${(err as Error).message}`;
      }
    }
    const logs = this.stderr.trim().split("\n").slice(-logLines);
    return [`[replica ${this.name}, ${this.starts} starts, ${this.kills} kills] ${state}`, ...logs.map((l) => `  ${l}`)].join("\n");
  }

  async metric(name: string): Promise<number> {
    const text = await (await fetch(`${this.url}/metrics`)).text();
    return Number(new RegExp(`^${name.replace(/[{}"]/g, "\\$&")} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
  }
}

/** What the front proxies to: a collector replica, or any HTTP service that is up at some URL. */
export interface Upstream {
  readonly up: boolean;
  readonly url?: string;
}

export interface FrontOptions {
  /** `alternate`: each request to the next live upstream; `first`: the first live one (fail-over). */
  policy?: "alternate" | "first";
  /** Called for each upstream 2xx to ingest; true = cut the sidecar's connection instead (a lost ack). */
  loseAck?: () => boolean;
  /** While unreachable, answer with this status instead of cutting the connection. */
  unreachableStatus?: number;
}

const HOP_BY_HOP = new Set(["host", "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"]);

function forwardable(headers: http.IncomingHttpHeaders | Headers): Record<string, string> {
  const out: Record<string, string> = {};
  const entries = headers instanceof Headers ? [...headers.entries()] : Object.entries(headers);
  for (const [k, v] of entries) if (v !== undefined && !HOP_BY_HOP.has(k.toLowerCase())) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/**
 * Loopback proxy in front of collector replicas, as a Service would be (or in front of the Snowflake
 * stand-in, as the network would be). A request to no live upstream, or one whose upstream dies
 * mid-request, has its connection cut — for a sidecar, Envoy then answers the filter with its 503 local
 * reply. Every summary a replica acknowledged is decoded to record what the filter reported dropped,
 * once per (producer, seq).
 */
export class Front {
  unreachable = false;
  readonly acked = new Map<string, { droppedRequests: number; droppedWindows: number }>();
  requests = 0;
  lostAcks = 0;
  cut = 0;
  private server?: http.Server;
  private next = 0;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly upstreams: Upstream[],
    private readonly options: FrontOptions = {},
  ) {}

  async listen(): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.once("close", () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Requests the filter reported dropped, per producer, over every acknowledged summary. */
  droppedByProducer(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, d] of this.acked) {
      const producer = key.slice(0, key.indexOf("\u0000"));
      if (d.droppedRequests > 0 || out.has(producer)) out.set(producer, (out.get(producer) ?? 0) + d.droppedRequests);
    }
    return out;
  }

  /** The filter's reported drops over every acknowledged summary. */
  dropped(): { requests: number; windows: number } {
    let requests = 0;
    let windows = 0;
    for (const d of this.acked.values()) {
      requests += d.droppedRequests;
      windows += d.droppedWindows;
    }
    return { requests, windows };
  }

  private pick(): Upstream | undefined {
    const live = this.upstreams.filter((r) => r.up);
    if (live.length === 0) return undefined;
    if (this.options.policy !== "alternate") return live[0];
    return live[this.next++ % live.length];
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.requests++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    if (this.unreachable && this.options.unreachableStatus) {
      res.writeHead(this.options.unreachableStatus, { "content-type": "text/plain" }).end("unavailable");
      return;
    }
    const target = this.unreachable ? undefined : this.pick();
    if (!target) return this.cutConnection(req);
    let up: Response;
    let answer: Buffer;
    try {
      up = await fetch(target.url + (req.url ?? "/"), {
        method: req.method,
        headers: forwardable(req.headers),
        body: req.method === "GET" || req.method === "HEAD" ? undefined : body,
        signal: AbortSignal.timeout(60_000),
      });
      answer = Buffer.from(await up.arrayBuffer());
    } catch {
      return this.cutConnection(req);
    }
    if (up.ok && req.url === INGEST_PATH) {
      const d = decodeSummary(body);
      if (d.ok) {
        const s = d.summary;
        this.acked.set(`${s.producerId}\u0000${s.seq}`, { droppedRequests: s.droppedRequests, droppedWindows: s.droppedWindows });
      }
      if (this.options.loseAck?.()) {
        this.lostAcks++;
        return this.cutConnection(req);
      }
    }
    res.writeHead(up.status, forwardable(up.headers)).end(answer);
  }

  private cutConnection(req: http.IncomingMessage): void {
    this.cut++;
    req.socket.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

export interface TrafficOptions {
  seed: number;
  /** Simulated seconds of traffic. */
  durationS: number;
  requestsPerSecond: number;
  /** Filter flush interval; a divisor of 60 keeps per-minute attribution exact. */
  flushS: number;
  /** The filter's budget for unacknowledged summaries. */
  maxPendingBytes?: number;
  /** `host:port` the sidecars' collector cluster points at (the Front). */
  collector: string;
  token: string;
  /** Called after each simulated second, with its number (from 1); may be async (the run waits). */
  onSecond?: (second: number, progress: MeshProgress) => void | Promise<void>;
  /** Simulated seconds of quiet after the traffic, so the last windows (and retries) are delivered. */
  drainS?: number;
  /** Awaited after the traffic, before the quiet period (e.g. until a restarting collector is up). */
  beforeDrain?: () => Promise<void>;
  /** Simulated seconds per wall second during the traffic (default: as fast as the CPU allows). */
  speed?: number;
}

export interface TrafficRun {
  truth: GroundTruth;
  progress: MeshProgress;
  mesh: Mesh;
}

/**
 * Bookinfo traffic through the release filter (two VMs per sidecar) with exact ground truth. The mesh
 * runs in simulated time; each simulated second it waits for its callouts to be answered.
 */
export async function runTraffic(o: TrafficOptions): Promise<TrafficRun> {
  const gen = new TrafficGenerator(bookinfo({ durationS: o.durationS }), { seed: o.seed, requestsPerSecond: o.requestsPerSecond });
  const clock = new ManualClock(gen.startTimeMs);
  const truth = new GroundTruth();
  const mesh = await Mesh.create({
    model: gen.model,
    wasm: RELEASE_WASM,
    pluginConfig: {
      collector: { cluster: CLUSTER, timeout_ms: 30_000 },
      flush_interval_s: o.flushS,
      // A budget is used only when a window at the series cap could fit in it (docs/filter-config.md): a
      // small one comes with a cap that bookinfo's series stay far below.
      ...(o.maxPendingBytes ? { max_pending_bytes: o.maxPendingBytes, max_series: Math.min(2000, Math.floor(o.maxPendingBytes / 16)) } : {}),
    },
    clusters: { [CLUSTER]: o.collector },
    env: { MESHLOOK_INGEST_TOKEN: o.token },
    clock,
    workers: 2,
  });
  let second = 0;
  const pending: Promise<void>[] = [];
  // onStep is synchronous; an async handler is awaited at the next request boundary via the clock step.
  const onStep = (p: MeshProgress) => {
    second++;
    const r = o.onSecond?.(second, p);
    if (r) pending.push(r);
  };
  await runInSteps(mesh, gen, o.durationS, truth, onStep, pending, o.speed);
  await o.beforeDrain?.();
  // Quiet time one simulated second at a time, a bounded number of steps.
  for (let s = 0; s < (o.drainS ?? o.flushS + 5); s++) {
    clock.advance(1000);
    await mesh.settle();
    onStep(mesh.progress());
  }
  await Promise.all(pending);
  const progress = mesh.progress();
  await mesh.close();
  return { truth, progress, mesh };
}

/** Runs the generator one simulated second at a time so asynchronous fault actions finish in between. */
async function runInSteps(
  mesh: Mesh,
  gen: TrafficGenerator,
  durationS: number,
  truth: GroundTruth,
  onStep: (p: MeshProgress) => void,
  pending: Promise<void>[],
  speed: number | undefined,
): Promise<void> {
  const wallStart = Date.now();
  for (let s = 1; s <= durationS; s++) {
    await mesh.run(gen, { durationS: s, truth });
    onStep(mesh.progress());
    while (pending.length) await pending.shift();
    // Paced here: each call covers one simulated second, too short for the runner's own pacing.
    if (speed) await sleep(wallStart + (s * 1000) / speed - Date.now());
  }
}

export interface WarehouseRow {
  minuteMs: number;
  key: string;
  requests: number;
  errors: number;
  requestBytes: number;
  responseBytes: number;
  latencySumUs: number;
}

/** Per (minute, series) sums; the same SQL runs on DuckDB and on the Snowflake stand-in (DuckDB inside). */
export const WAREHOUSE_SQL = `SELECT epoch_ms(minute) AS minute_ms, ${DIMENSIONS.join(", ")},
  SUM(requests) AS requests, SUM(errors) AS errors, SUM(request_bytes) AS request_bytes,
  SUM(response_bytes) AS response_bytes, SUM(latency_sum_us) AS latency_sum_us
FROM ${FACT_TABLE.name} GROUP BY ALL`;

export function warehouseRows(raw: Record<string, unknown>[]): WarehouseRow[] {
  return raw.map((r) => {
    const lower = Object.fromEntries(Object.entries(r).map(([k, v]) => [k.toLowerCase(), v]));
    const dims = Object.fromEntries(DIMENSIONS.map((d) => [d, d === "response_code" ? Number(lower[d]) : String(lower[d])])) as unknown as SeriesDims;
    return {
      minuteMs: Number(lower.minute_ms),
      key: seriesKey(dims),
      requests: Number(lower.requests),
      errors: Number(lower.errors),
      requestBytes: Number(lower.request_bytes),
      responseBytes: Number(lower.response_bytes),
      latencySumUs: Number(lower.latency_sum_us),
    };
  });
}

/** Reads a DuckDB warehouse file (no collector may hold it). */
/** Rows of `sql` on the DuckDB file at `path` (opened after the collector let go of it). */
export async function queryDuckDB(path: string, sql: string): Promise<Record<string, unknown>[]> {
  const instance = await DuckDBInstance.create(path);
  const conn = await instance.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

export async function readDuckDB(path: string): Promise<WarehouseRow[]> {
  return warehouseRows(await queryDuckDB(path, WAREHOUSE_SQL));
}

/**
 * What the warehouse's mesh_sidecar_loss says the sidecars lost: in total, per producer, and how many
 * rows could not name the reporting pod and namespace.
 */
export async function readDuckDBLoss(path: string): Promise<{ requests: number; windows: number; byProducer: Map<string, number>; unnamed: number }> {
  const rows = await queryDuckDB(
    path,
    `SELECT producer_id, SUM(dropped_requests) AS requests, SUM(dropped_windows) AS windows,
       COUNT(*) FILTER (WHERE pod = 'unknown' OR namespace = 'unknown') AS unnamed
     FROM ${LOSS_TABLE.name} GROUP BY producer_id`,
  );
  const total = (k: string) => rows.reduce((n, r) => n + Number(r[k]), 0);
  return {
    requests: total("requests"),
    windows: total("windows"),
    byProducer: new Map(rows.map((r) => [String(r.producer_id), Number(r.requests)])),
    unnamed: total("unnamed"),
  };
}

export interface Comparison {
  truthRequests: number;
  warehouseRequests: number;
  /** (minute, series) rows whose sums differ from the truth, or that exist on one side only. */
  mismatched: number;
  /** Rows where the warehouse holds more than the truth (double counting): must always be 0. */
  excess: number;
  /** Requests the warehouse lacks. */
  missingRequests: number;
}

/** Compares every (minute, series) of the warehouse with the ground truth. */
export function compare(rows: WarehouseRow[], truth: GroundTruth): Comparison {
  const want = new Map(truth.rows().map((r) => [`${r.minuteMs}|${r.key}`, r.stats]));
  const got = new Map(rows.map((r) => [`${r.minuteMs}|${r.key}`, r]));
  let mismatched = 0;
  let excess = 0;
  let missingRequests = 0;
  let truthRequests = 0;
  let warehouseRequests = 0;
  for (const [k, t] of want) {
    truthRequests += t.requests;
    const w = got.get(k);
    const same =
      w !== undefined &&
      w.requests === t.requests &&
      w.errors === t.errors &&
      w.requestBytes === t.requestBytes &&
      w.responseBytes === t.responseBytes &&
      w.latencySumUs === t.latencySumUs;
    if (!same) mismatched++;
    if (w && (w.requests > t.requests || w.errors > t.errors || w.requestBytes > t.requestBytes)) excess++;
    missingRequests += t.requests - Math.min(t.requests, w?.requests ?? 0);
  }
  for (const [k, w] of got) {
    warehouseRequests += w.requests;
    if (!want.has(k)) {
      mismatched++;
      excess++;
    }
  }
  return { truthRequests, warehouseRequests, mismatched, excess, missingRequests };
}
