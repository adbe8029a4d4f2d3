// Remote-write stage: reads the spool behind its own durable cursor, adds each summary into the
// cumulative series (state.ts) and writes them to a Prometheus remote-write endpoint. It never sits on
// the ingest path (it reads what is already durable) and never holds up the warehouse load: the spool
// keeps a loaded segment only while this cursor still needs it, and at most maxLagBytes of them
// (beyond that the exporter adds the backlog into its totals without sending it, losing no count).
//
// Order of durable steps, which is what keeps Prometheus' totals exact across crashes and retries
// (docs/prometheus.md):
//   1. apply a batch to the totals, then persist totals + cursor together (the spool may then drop it);
//   2. if the batch created series, write their zero samples, then persist that they are written;
//   3. write every series' totals. Repeating 2 before 3 is harmless (0 then 0); repeating 3 is harmless
//      (the same total again, later); 3 never happens before 2 is persisted, so a counter never goes
//      total → 0 → total, which Prometheus would read as a reset and count twice.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { readFileSync } from "node:fs";
import { open, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "pino";
import { Counter, Gauge, type Registry } from "prom-client";
import { Agent, request } from "undici";
import { parseSegment, type Spool, type SpoolRecord } from "../spool.ts";
import type { DecodeResult } from "../summary.ts";
import { Yielder } from "../yielder.ts";
import { REMOTE_WRITE_HEADERS, WriteRequestWriter } from "./protocol.ts";
import { ExportState, METADATA, type Cursor, type Snapshot } from "./state.ts";

export interface RemoteWriteSettings {
  /** Endpoint, e.g. http://prometheus:9090/api/v1/write; empty: the exporter is off. */
  url: string;
  headers: Record<string, string>;
  bearerTokenFile?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  insecureSkipVerify: boolean;
  timeoutS: number;
  intervalS: number;
  maxSeries: number;
  seriesIdleS: number;
  maxLagBytes: number;
  /** Value of the meshlook_collector label; empty: the one stored with the state (hostname at first start). */
  instance: string;
  externalLabels: Record<string, string>;
  /** /readyz fails while the exporter is this far behind (seconds); 0: readiness ignores remote write. */
  readyMaxLagS: number;
}

const STATE_FILE = "remote-write.json";
/** Prometheus' own remote-write queue backs off from 30 ms to 5 s (queue_config min/max_backoff); so do we, from 500 ms. */
const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 5_000;
/** A batch spans at most this much spool data, so a catch-up proceeds in bounded requests. */
const MAX_BATCH_BYTES = 8 << 20;

export type FailureReason = "network" | "timeout" | "http_429" | "http_5xx" | "http_4xx";

export class SendError extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
  get retryable(): boolean {
    return this.reason !== "http_4xx";
  }
}

function exporterMetrics(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: "meshlook_remote_write_requests_total",
      help: "Remote-write requests the endpoint accepted, by kind (values, zeros)",
      labelNames: ["kind"] as const,
      registers,
    }),
    samples: new Counter({ name: "meshlook_remote_write_samples_total", help: "Samples and native histograms the endpoint accepted", registers }),
    failures: new Counter({
      name: "meshlook_remote_write_failures_total",
      help: "Remote-write attempts that failed, by reason: network, timeout, http_429, http_5xx (retried with backoff), http_4xx (dropped)",
      labelNames: ["reason"] as const,
      registers,
    }),
    dropped: new Counter({
      name: "meshlook_remote_write_dropped_requests_total",
      help: "Requests the endpoint refused with a 4xx other than 429 (not retried; later totals still carry their counts)",
      registers,
    }),
    summaries: new Counter({ name: "meshlook_remote_write_summaries_total", help: "Summaries added into the exported totals", registers }),
    duplicates: new Counter({
      name: "meshlook_remote_write_duplicates_total",
      help: "Summaries skipped because their producer had already delivered that sequence number",
      registers,
    }),
    undecodable: new Counter({ name: "meshlook_remote_write_undecodable_total", help: "Spooled records the exporter could not decode (skipped)", registers }),
    overflowed: new Counter({
      name: "meshlook_remote_write_overflow_updates_total",
      help: "Series updates folded into an overflow series (MESHLOOK_REMOTE_WRITE_MAX_SERIES reached)",
      registers,
    }),
    fastForwarded: new Counter({
      name: "meshlook_remote_write_unsent_summaries_total",
      help: "Summaries added into the totals without their own request because the backlog passed MESHLOOK_REMOTE_WRITE_MAX_LAG_BYTES (counts kept, time resolution lost)",
      registers,
    }),
    series: new Gauge({ name: "meshlook_remote_write_series", help: "Label sets the exporter keeps totals for", registers }),
    lagBytes: new Gauge({ name: "meshlook_remote_write_lag_bytes", help: "Spool bytes not yet added into the exported totals", registers }),
    lagSeconds: new Gauge({
      name: "meshlook_remote_write_lag_seconds",
      help: "Age of the oldest received summary whose counts the endpoint has not accepted yet (0 when caught up)",
      registers,
    }),
    lastSuccess: new Gauge({ name: "meshlook_remote_write_last_success_timestamp_seconds", help: "Time of the last request the endpoint accepted", registers }),
  };
}

export class RemoteWriteExporter {
  readonly state: ExportState;
  private readonly metrics: ReturnType<typeof exporterMetrics>;
  private readonly dispatcher: Agent;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  /** Totals changed (or were restored) since the endpoint last accepted them. */
  private pendingValues = true;
  /** Receive time of the oldest summary in the totals the endpoint has not accepted; lag's reference. */
  private undeliveredSinceMs?: number;
  private backoffMs = 0;
  private lastSendMs = 0;
  private lastError?: string;
  /** Records read from the cursor's segment but not yet applied. */
  private buffered: { segment: number; records: SpoolRecord[]; readTo: number } | undefined;
  /** The cursor as last persisted: the spool keeps every segment it has not passed. */
  private durable: Cursor;

  private constructor(
    private readonly spool: Spool,
    private readonly settings: RemoteWriteSettings,
    private readonly decode: (body: Uint8Array) => DecodeResult,
    registry: Registry,
    private readonly log: Logger,
    snapshot: Snapshot | undefined,
    instance: string,
  ) {
    this.state = new ExportState(instance, settings.maxSeries, settings.externalLabels);
    if (snapshot) this.state.restore(snapshot);
    else this.state.cursor = { segment: spool.segmentIds()[0] ?? 0, offset: 0 };
    // Timestamps written before a crash may be later than the state says; now is later than all of them.
    this.state.lastTs = Math.max(this.state.lastTs, Date.now());
    this.metrics = exporterMetrics(registry);
    for (const reason of ["network", "timeout", "http_429", "http_5xx", "http_4xx"]) this.metrics.failures.inc({ reason }, 0);
    for (const kind of ["values", "zeros"]) this.metrics.requests.inc({ kind }, 0);
    this.dispatcher = new Agent({
      headersTimeout: settings.timeoutS * 1000,
      bodyTimeout: settings.timeoutS * 1000,
      connect: {
        timeout: settings.timeoutS * 1000,
        rejectUnauthorized: !settings.insecureSkipVerify,
        ...(settings.caFile ? { ca: [readFileSyncText(settings.caFile)] } : {}),
        ...(settings.certFile ? { cert: readFileSyncText(settings.certFile) } : {}),
        ...(settings.keyFile ? { key: readFileSyncText(settings.keyFile) } : {}),
      },
    });
    spool.skipIdsThrough(this.state.cursor.segment);
    this.durable = { ...this.state.cursor };
    // Only sealed segments are offered (the loader loads those), so their size is final.
    spool.retain((id) => id > this.durable.segment || (id === this.durable.segment && this.durable.offset < spool.sizeOf(id)));
  }

  /** Restores the state persisted next to the spool (if any) and registers the exporter's cursor. */
  static async open(spool: Spool, settings: RemoteWriteSettings, decode: (body: Uint8Array) => DecodeResult, registry: Registry, log: Logger): Promise<RemoteWriteExporter> {
    let snapshot: Snapshot | undefined;
    const path = join(spool.dir, STATE_FILE);
    try {
      snapshot = JSON.parse(await readFile(path, "utf8")) as Snapshot;
      if (snapshot.version !== 1) throw new Error(`version ${String(snapshot.version)} is not supported`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        // Ingest and the warehouse must not stop over it: keep the file for inspection and start afresh
        // (Prometheus reads the restart from zero as a counter reset).
        const aside = `${path}.unreadable-${Date.now()}`;
        await rename(path, aside);
        log.error({ err, movedTo: aside }, "remote-write state unreadable; exporting from fresh totals (summaries still in the spool may count twice in Prometheus)");
      }
      snapshot = undefined;
    }
    const instance = settings.instance || snapshot?.instance || `${hostname()}-${randomBytes(3).toString("hex")}`;
    return new RemoteWriteExporter(spool, settings, decode, registry, log, snapshot, instance);
  }

  /** For /readyz when MESHLOOK_REMOTE_WRITE_READY_MAX_LAG_S is set: why the exporter is not ready, if it is not. */
  notReady(): string | undefined {
    if (this.settings.readyMaxLagS <= 0) return undefined;
    const lag = this.lagSeconds();
    return lag > this.settings.readyMaxLagS
      ? `remote write is ${Math.round(lag)} s behind (limit ${this.settings.readyMaxLagS} s)${this.lastError ? `: ${this.lastError}` : ""}`
      : undefined;
  }

  private lagSeconds(): number {
    return this.undeliveredSinceMs === undefined ? 0 : Math.max(0, (Date.now() - this.undeliveredSinceMs) / 1000);
  }

  start(): void {
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.runCycle().then((more) => this.schedule(more ? 0 : this.backoffMs || this.settings.intervalS * 1000));
    }, delayMs);
  }

  /** One cycle at a time; resolves with whether more spool data is waiting. Failures are logged and counted. */
  runCycle(): Promise<boolean> {
    const run = (this.running ?? Promise.resolve()).then(() => this.cycle());
    this.running = run.then(
      () => undefined,
      () => undefined,
    );
    return run.catch((err) => {
      this.log.error({ err }, "remote write cycle failed");
      return false;
    });
  }

  private async cycle(): Promise<boolean> {
    try {
      return await this.step();
    } finally {
      this.updateGauges();
    }
  }

  private async step(): Promise<boolean> {
    const applied = await this.applyBatch();
    if (applied > 0 || this.state.pendingZeros > 0) await this.persist();
    await this.spool.release();
    const delivered = await this.deliver();
    if (!delivered) {
      // Keep the spool within bounds however long the endpoint is away: add the backlog into the totals.
      let skipped = 0;
      while (this.lagBytes() > this.settings.maxLagBytes) {
        const n = await this.applyBatch();
        if (n === 0) break;
        skipped += n;
      }
      if (skipped > 0) {
        this.metrics.fastForwarded.inc(skipped);
        await this.persist();
        await this.spool.release();
        this.log.warn({ summaries: skipped }, "remote-write backlog over MESHLOOK_REMOTE_WRITE_MAX_LAG_BYTES: summaries added into the totals without their own request");
      }
      return false;
    }
    return this.lagBytes() > 0;
  }

  /** Sends what is pending: zero samples of new series first, then every series' totals. */
  private async deliver(): Promise<boolean> {
    const now = Date.now();
    if (this.state.pendingZeros > 0) {
      const ts = this.nextTs(now);
      if (!(await this.send("zeros", ts))) return false;
      this.state.confirmZeros();
      await this.persist();
    }
    if (!this.pendingValues && now - this.lastSendMs < this.settings.intervalS * 1000) return true;
    const ts = this.nextTs(now);
    if (!(await this.send("values", ts))) return false;
    this.pendingValues = false;
    this.undeliveredSinceMs = undefined;
    this.lastSendMs = now;
    const expired = this.state.expire(now, this.settings.seriesIdleS * 1000);
    if (expired > 0) this.log.info({ series: expired }, "remote write: idle series dropped");
    return true;
  }

  /** A timestamp after every one used so far (Prometheus refuses out-of-order samples). */
  private nextTs(now: number): number {
    this.state.lastTs = Math.max(now, this.state.lastTs + 1);
    return this.state.lastTs;
  }

  /** True when the endpoint accepted the request, or refused it for good (4xx: dropped and counted). */
  private async send(kind: "values" | "zeros", ts: number): Promise<boolean> {
    const request = new WriteRequestWriter();
    this.state.encode(kind, ts, request);
    if (request.series === 0) return true;
    try {
      await this.post(request.finish(METADATA));
    } catch (err) {
      const e = err instanceof SendError ? err : new SendError("network", (err as Error).message);
      this.metrics.failures.inc({ reason: e.reason });
      if (e.message !== this.lastError) this.log.error({ reason: e.reason, kind }, `remote write failed: ${e.message}`);
      this.lastError = e.message;
      if (!e.retryable) {
        this.metrics.dropped.inc();
        this.backoffMs = 0;
        return true;
      }
      this.backoffMs = e.retryAfterMs ?? Math.min(MAX_BACKOFF_MS, Math.max(MIN_BACKOFF_MS, this.backoffMs * 2));
      return false;
    }
    if (this.lastError !== undefined) this.log.warn("remote write succeeds again");
    this.lastError = undefined;
    this.backoffMs = 0;
    this.metrics.requests.inc({ kind });
    this.metrics.samples.inc(request.series);
    this.metrics.lastSuccess.set(Date.now() / 1000);
    return true;
  }

  private async post(body: Buffer): Promise<void> {
    const headers: Record<string, string> = { ...this.settings.headers, ...REMOTE_WRITE_HEADERS };
    // Read on every request, so a rotated token is picked up without a restart.
    if (this.settings.bearerTokenFile) headers.authorization = `Bearer ${(await readFile(this.settings.bearerTokenFile, "utf8")).trim()}`;
    let res;
    try {
      res = await request(this.settings.url, { method: "POST", headers, body, dispatcher: this.dispatcher });
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      throw new SendError(/TIMEOUT/.test(code) ? "timeout" : "network", `${this.settings.url}: ${(err as Error).message}`);
    }
    const text = (await res.body.text()).slice(0, 512);
    if (res.statusCode >= 200 && res.statusCode < 300) return;
    const message = `${this.settings.url} answered ${res.statusCode}: ${text.trim()}`;
    if (res.statusCode === 429 || res.statusCode >= 500) {
      const after = Number(res.headers["retry-after"]);
      const retryAfterMs = Number.isFinite(after) && after >= 0 ? Math.min(after, 3600) * 1000 : undefined;
      throw new SendError(res.statusCode === 429 ? "http_429" : "http_5xx", message, retryAfterMs);
    }
    throw new SendError("http_4xx", message);
  }

  /**
   * Adds the next stretch of spool (one segment at most, ≤ MAX_BATCH_BYTES, summaries received within one
   * interval of the first) into the totals and moves the cursor past it. Returns the summaries read.
   */
  private async applyBatch(): Promise<number> {
    const records = await this.nextRecords();
    if (records.length === 0) return 0;
    const now = Date.now();
    const yielder = new Yielder();
    for (const r of records) {
      const d = this.decode(r.body);
      if (!d.ok) {
        this.metrics.undecodable.inc();
        continue;
      }
      const res = this.state.apply(d.summary, now);
      if (res.duplicate) this.metrics.duplicates.inc();
      else this.metrics.summaries.inc();
      if (res.overflowed > 0) this.metrics.overflowed.inc(res.overflowed);
      await yielder.maybe();
    }
    this.undeliveredSinceMs ??= records[0].receivedAtMs;
    this.pendingValues = true;
    return records.length;
  }

  private async nextRecords(): Promise<SpoolRecord[]> {
    const ids = this.spool.segmentIds();
    const cursor = this.state.cursor;
    for (;;) {
      // The cursor's segment may be gone (deleted while the exporter was off): go on at the next one.
      if (!ids.includes(cursor.segment)) {
        const next = ids.find((id) => id > cursor.segment);
        if (next === undefined) return [];
        // Normal once the loader removed a segment the exporter had read to its end; otherwise summaries were lost to remote write.
        if (this.buffered?.segment !== cursor.segment)
          this.log.warn({ from: cursor.segment, to: next }, "remote write: spool segment missing at the cursor; continuing at the next one");
        this.state.cursor = { segment: next, offset: 0 };
        return this.nextRecords();
      }
      const end = this.spool.sizeOf(cursor.segment);
      if (this.buffered?.segment !== cursor.segment || (this.buffered.records.length === 0 && this.buffered.readTo < end)) {
        this.buffered = { segment: cursor.segment, ...(await this.readSegment(cursor.segment, cursor.offset, end)) };
      }
      const buf = this.buffered;
      if (buf.records.length > 0) {
        const first = buf.records[0];
        let n = 0;
        let bytes = 0;
        while (n < buf.records.length && (n === 0 || (bytes < MAX_BATCH_BYTES && buf.records[n].receivedAtMs - first.receivedAtMs < this.settings.intervalS * 1000))) {
          bytes += buf.records[n].body.length;
          n++;
        }
        const taken = buf.records.splice(0, n);
        this.state.cursor = { segment: cursor.segment, offset: buf.records.length > 0 ? taken[n - 1].end : buf.readTo };
        return taken;
      }
      this.state.cursor = { segment: cursor.segment, offset: buf.readTo };
      // Appends only ever go to the newest segment: once a newer one exists, this one is complete.
      const next = ids.find((id) => id > cursor.segment);
      if (next === undefined || buf.readTo < this.spool.sizeOf(cursor.segment)) return [];
      this.state.cursor = { segment: next, offset: 0 };
      this.buffered = undefined;
      return this.nextRecords();
    }
  }

  private async readSegment(id: number, from: number, to: number): Promise<{ records: SpoolRecord[]; readTo: number }> {
    const start = Math.max(from, 0);
    if (to <= start) return { records: [], readTo: start };
    const fh = await open(join(this.spool.dir, `${String(id).padStart(10, "0")}.seg`), "r").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    if (!fh) return { records: [], readTo: to };
    try {
      const buf = Buffer.allocUnsafe(to - start);
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      const parsed = parseSegment(`${id}`, buf.subarray(0, bytesRead), start);
      if (parsed.corruptions.length > 0) this.log.warn({ segment: id, corruptions: parsed.corruptions.length }, "remote write: damaged spool stretch skipped");
      return { records: parsed.records, readTo: start + bytesRead };
    } finally {
      await fh.close();
    }
  }

  private lagBytes(): number {
    let n = 0;
    for (const id of this.spool.segmentIds()) {
      if (id < this.state.cursor.segment) continue;
      n += this.spool.sizeOf(id) - (id === this.state.cursor.segment ? this.state.cursor.offset : 0);
    }
    return Math.max(0, n);
  }

  private updateGauges(): void {
    this.metrics.series.set(this.state.series.size);
    this.metrics.lagBytes.set(this.lagBytes());
    this.metrics.lagSeconds.set(this.lagSeconds());
  }

  /** Totals and cursor, atomically: written beside, fsynced, renamed over the last snapshot. */
  private async persist(): Promise<void> {
    const path = join(this.spool.dir, STATE_FILE);
    const tmp = `${path}.tmp`;
    await writeFile(tmp, JSON.stringify(this.state.snapshot()));
    const fh = await open(tmp, "r+");
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
    this.durable = { ...this.state.cursor };
    const dir = await open(this.spool.dir, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  /**
   * Stops the timer and exports what the spool holds, for at most `budgetMs` (an unreachable endpoint
   * must not hold up shutdown; the state on disk resumes it next start).
   */
  async stop(budgetMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    const deadline = Date.now() + budgetMs;
    this.backoffMs = 0;
    while (Date.now() < deadline) {
      const more = await this.runCycle();
      if (this.backoffMs > 0 || (!more && !this.pendingValues && this.state.pendingZeros === 0)) break;
    }
    await this.running;
    await this.dispatcher.close();
  }
}

/** TLS material is read once at start; a missing file stops the collector, naming the file. */
function readFileSyncText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as Error).message}`);
  }
}
