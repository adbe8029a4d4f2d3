// The plugin's root context: owns the configuration, the window's aggregates and the outbox, and
// drives the flush on ticks. Stream contexts own nothing: at stream end they call onStreamLog.
import { Root } from "./sdk/exports";
import { HostBytes, HeaderList, LogLevel, defineCounter, finishShutdown, httpCall, incrementCounter, log, nowNanos, readHttpCallResponseHeader, setTickPeriodMs } from "./sdk/host";
import { getEnv, randomU64 } from "./sdk/wasi";
import { Config, ConfigResult, parseConfig } from "./config";
import { Interner } from "./interner";
import { LocalNode, Observation, Observer } from "./observe";
import { SeriesTable } from "./table";
import { DropTally, Outbox, Pending } from "./outbox";
import { SummaryWriter, WindowInfo } from "./summary";
import { parseDecimal } from "./decimal";
import { CONTENT_TYPE } from "../shared";

const TOKEN_ENV = "MESHLOOK_INGEST_TOKEN";
const TICK_MS: u32 = 1000;
// Ticks are not exact; a window closes at the first tick no earlier than this before its end.
const TICK_SLACK_NS: u64 = 500_000_000;
const BASE_BACKOFF_MS: f64 = 1000;
const MAX_BACKOFF_MS: f64 = 300_000;
// A call the host never answers (it always should, at the latest after its timeout) frees the slot.
const CALL_GRACE_MS: f64 = 5000;
const MAX_RETRY_AFTER_S: f64 = 3600;
// At VM stop the open window and the outbox are sent before the root context completes; this bounds
// how long Envoy waits for it (each call's timeout is capped to what is left).
const STOP_DEADLINE_MS: u64 = 5000;
// A refusal or a drop repeats on every retry or summary while its cause lasts: each is counted, but
// logged at most this often (like Envoy's own ENVOY_LOG_PERIODIC, source/common/common/logger.h).
const LOG_INTERVAL_MS: f64 = 60_000;

class LogThrottle {
  private lastMs: f64 = -LOG_INTERVAL_MS;

  /** True at most once per LOG_INTERVAL_MS: the caller logs then. */
  due(nowMs: f64): bool {
    if (nowMs - this.lastMs < LOG_INTERVAL_MS) return false;
    this.lastMs = nowMs;
    return true;
  }
}

/**
 * Summaries the outbox dropped for one reason: counted in two proxy stats as they happen, and logged as
 * one warning per LOG_INTERVAL_MS with the counts since the previous one, so a collector down for hours
 * writes a line a minute, not one per window, and no drop goes unlogged (the stop logs what is left).
 */
class DropLog {
  private unlogged: DropTally = new DropTally();
  private throttle: LogThrottle = new LogThrottle();

  constructor(private reason: string) {}

  /** Takes `dropped` (the outbox's tally for this reason) into the stats and the next line. */
  note(dropped: DropTally, summariesMetric: i64, requestsMetric: i64): void {
    if (dropped.summaries == 0) return;
    incrementCounter(summariesMetric, <i64>dropped.summaries);
    incrementCounter(requestsMetric, <i64>dropped.requests);
    this.unlogged.take(dropped);
  }

  /** Logs the drops not yet logged when a line is due, or at once with `force`. */
  flush(nowMs: f64, budget: i32, force: bool): void {
    let u = this.unlogged;
    if (u.summaries == 0 || (!force && !this.throttle.due(nowMs))) return;
    log(
      LogLevel.warn,
      "meshlook: dropped " +
        (<i64>u.summaries).toString() +
        " summaries (" +
        (<i64>u.series).toString() +
        " series, " +
        (<i64>u.requests).toString() +
        " requests) unsent: " +
        this.reason +
        "; max_pending_bytes is " +
        budget.toString() +
        ", and the next summary reports them as dropped (docs/filter-config.md, Summaries, retries and producer ids)",
    );
    u.clear();
  }
}

// The proxy's stats (Envoy prefixes them `wasmcustom.`): defined once per VM, shared by name.
let metricsDefined = false;
let configErrorsMetric: i64 = -1;
let callRefusedMetric: i64 = -1;
let lostSummariesMetric: i64 = -1;
let lostRequestsMetric: i64 = -1;
let refusedMetric: i64 = -1;
let tooLargeSummariesMetric: i64 = -1;
let tooLargeRequestsMetric: i64 = -1;
let evictedSummariesMetric: i64 = -1;
let evictedRequestsMetric: i64 = -1;

// The last configuration of this VM that had a usable collector cluster. A plugin update is a new root
// context in the same VM; one without a usable cluster keeps reporting under this instead of stopping.
let lastUsable: Config | null = null;

function defineMetrics(): void {
  if (metricsDefined) return;
  metricsDefined = true;
  configErrorsMetric = defineCounter("meshlook_config_errors");
  callRefusedMetric = defineCounter("meshlook_collector_calls_refused");
  lostSummariesMetric = defineCounter("meshlook_summaries_lost_at_stop");
  lostRequestsMetric = defineCounter("meshlook_requests_lost_at_stop");
  refusedMetric = defineCounter("meshlook_summaries_refused");
  tooLargeSummariesMetric = defineCounter("meshlook_summaries_dropped_too_large");
  tooLargeRequestsMetric = defineCounter("meshlook_requests_dropped_too_large");
  evictedSummariesMetric = defineCounter("meshlook_summaries_evicted");
  evictedRequestsMetric = defineCounter("meshlook_requests_evicted");
}

/** Time the VM started, ns: part of every producer id, so a restarted VM is a new producer. */
let vmStartNs: u64 = 0;
// Envoy starts one VM per worker thread at once, and their start times can be equal (they are in the
// simulated sidecar), as are their root context ids: a random nonce per VM keeps producer ids apart.
let vmNonce: u64 = 0;

function markVmStart(now: u64): void {
  if (vmStartNs == 0) vmStartNs = now;
  if (vmNonce == 0) vmNonce = randomU64();
}

const STATUS_HEADER = String.UTF8.encode(":status");
const RETRY_AFTER_HEADER = String.UTF8.encode("retry-after");

export class MeshlookRoot extends Root {
  private config: Config | null = null;
  private strings: Interner | null = null;
  private table: SeriesTable | null = null;
  private observer: Observer | null = null;
  private outbox: Outbox | null = null;
  private observation: Observation = new Observation();
  private writer: SummaryWriter | null = null;
  private producerId: Uint8Array = new Uint8Array(0);
  private seq: f64 = 0;
  private windowStartNs: u64 = 0;
  private cluster: ArrayBuffer = new ArrayBuffer(0);
  private headers: ArrayBuffer = new ArrayBuffer(0);
  private callToken: i64 = -1;
  private tokenWarned: bool = false;
  private callRefusedLog: LogThrottle = new LogThrottle();
  private summaryRefusedLog: LogThrottle = new LogThrottle();
  private tooLargeLog: DropLog = new DropLog("summary larger than max_pending_bytes");
  private evictedLog: DropLog = new DropLog("pending budget full, oldest dropped (the collector is down or slow)");
  private stopping: bool = false;
  private stopDeadlineNs: u64 = 0;

  onVmStart(): bool {
    markVmStart(nowNanos());
    return true;
  }

  /** Always accepts: a refused configuration would take the proxy's traffic down (see config.ts). */
  onConfigure(bytes: HostBytes | null): bool {
    defineMetrics();
    let result: ConfigResult;
    if (bytes === null) result = parseConfig(0, 0);
    else result = parseConfig(bytes.ptr, bytes.len);
    let errors = result.errors;
    for (let i = 0; i < errors.length; i++) log(LogLevel.error, "meshlook: " + errors[i]);
    incrementCounter(configErrorsMetric, errors.length);
    let now = nowNanos();
    markVmStart(now);
    let c = result.config;
    if (!c.reporting) {
      let previous = lastUsable;
      if (previous === null) {
        log(LogLevel.error, "meshlook: safe mode: configuration has no usable collector cluster; reporting nothing");
        return true;
      }
      log(LogLevel.error, "meshlook: configuration has no usable collector cluster; keeping the previous configuration");
      c = previous;
    } else if (errors.length > 0) {
      log(LogLevel.warn, "meshlook: configuration applied with " + errors.length.toString() + " problem(s); the fields named above keep their defaults");
    }
    // A reconfiguration closes the running window under the old settings; nothing is lost.
    if (this.config !== null) this.closeWindow(now);

    let directions = (c.inbound ? 1 : 0) + (c.outbound ? 1 : 0);
    // Strings: the window's distinct values. Typical series share most of them; the byte budget
    // allows every series a distinct 64-byte value plus the constant ones.
    let strings = new Interner(c.maxSeries * 4 + 64, c.maxSeries * 64 + 16384, randomU64());
    let observer = new Observer(c, strings);
    observer.local = LocalNode.read();
    let table = new SeriesTable(c.maxSeries, directions, c.sketchScale);
    strings.reset();
    observer.startWindow();

    let outbox = this.outbox;
    let deadline = <f64>c.timeoutMs + CALL_GRACE_MS;
    if (outbox === null) outbox = new Outbox(c.maxPendingBytes, BASE_BACKOFF_MS, MAX_BACKOFF_MS, deadline);
    outbox.resize(c.maxPendingBytes);
    outbox.callDeadlineMs = deadline;
    this.noteDrops(outbox);

    this.producerId = producerId(observer.local.id, vmStartNs, this.id, vmNonce);
    this.writer = new SummaryWriter(c, strings);
    this.cluster = String.UTF8.encode(c.cluster);
    this.headers = this.requestHeaders(c);
    this.config = c;
    lastUsable = c;
    this.strings = strings;
    this.observer = observer;
    this.table = table;
    this.outbox = outbox;
    this.windowStartNs = now;
    setTickPeriodMs(TICK_MS);
    return true;
  }

  onStreamLog(): void {
    let observer = this.observer;
    let table = this.table;
    if (observer === null || table === null) return;
    let o = this.observation;
    if (observer.observe(o)) table.record(o, observer.sentinels.overflow);
  }

  onTick(): void {
    let c = this.config;
    if (c === null || this.stopping) return;
    let now = nowNanos();
    if (now + TICK_SLACK_NS >= this.windowStartNs + <u64>c.flushIntervalS * 1_000_000_000) this.closeWindow(now);
    this.send(now);
    this.logDrops(now, false);
  }

  onHttpCallResponse(token: u32, headers: u32, _bodySize: u32, _trailers: u32): void {
    let outbox = this.outbox;
    if (outbox === null || <i64>token != this.callToken) return;
    this.callToken = -1;
    let now = nowNanos();
    let nowMs = <f64>(now / 1_000_000);
    let status = headers == 0 ? -1 : headerInt(STATUS_HEADER);
    if (this.stopping) {
      if (status >= 200 && status <= 299) outbox.acknowledged();
      else outbox.failed(nowMs, 0);
      // No retries at stop: a failure ends the attempt, and what is left is counted as lost.
      if (status < 200 || status > 299 || !this.sendAtStop(now)) this.finishStop();
      return;
    }
    if (status >= 200 && status <= 299) {
      outbox.acknowledged();
      this.send(now); // drain a backlog without waiting for the next tick
      return;
    }
    // 400 (the decoder's reason, window_out_of_range, too_many_requests) and 413 judge these bytes: a
    // resend gets the same answer, so the summary is dropped and reported as lost by the next one.
    // 401/403 judge the deployment (token, mTLS, scope), which ops fix: those are kept and retried.
    if (status == 400 || status == 413) {
      incrementCounter(refusedMetric, 1);
      if (this.summaryRefusedLog.due(nowMs)) {
        log(LogLevel.warn, "meshlook: collector refused a summary for good (HTTP " + status.toString() + "); dropped and reported as lost (docs/collector.md, Ingest responses)");
      }
      outbox.refused();
      this.send(now);
      return;
    }
    let retryAfterMs: f64 = -1;
    if (status == 429 || status == 503) {
      let s = headerInt(RETRY_AFTER_HEADER);
      if (s >= 0) retryAfterMs = Math.min(<f64>s, MAX_RETRY_AFTER_S) * 1000;
    }
    if (status == 401) log(LogLevel.warn, "meshlook: collector refused the ingest token (HTTP 401)");
    // Not the token: the caller's mTLS identity was missing or the summary spoke for another namespace.
    else if (status == 403) log(LogLevel.warn, "meshlook: collector refused this sidecar's identity (HTTP 403; docs/collector.md, Ingest responses)");
    outbox.failed(nowMs, retryAfterMs);
  }

  /**
   * Envoy is stopping this VM (pod deletion, rollout, plugin update): the open window is closed and the
   * outbox sent, one call at a time, within STOP_DEADLINE_MS; then the root context completes with
   * proxy_done. What was not delivered by then is logged and counted as lost.
   */
  onDone(): bool {
    let c = this.config;
    let outbox = this.outbox;
    if (c === null || outbox === null || this.stopping) return true;
    let now = nowNanos();
    this.stopping = true;
    this.stopDeadlineNs = now + STOP_DEADLINE_MS * 1_000_000;
    this.closeWindow(now);
    // A call in flight may have been cancelled with the VM's other callouts: its summary is sent again
    // (the collector keeps one copy per producer and sequence number).
    if (this.callToken >= 0) {
      this.callToken = -1;
      outbox.failed(<f64>(now / 1_000_000), 0);
    }
    if (this.sendAtStop(now)) return false;
    this.reportLoss();
    return true;
  }

  /** Encodes the running window into the outbox (if it holds anything to report) and starts a new one. */
  private closeWindow(now: u64): void {
    let c = this.config;
    let table = this.table;
    let strings = this.strings;
    let observer = this.observer;
    let outbox = this.outbox;
    let writer = this.writer;
    if (c === null || table === null || strings === null || observer === null || outbox === null || writer === null) return;
    if (table.count > 0 || outbox.droppedWindows > 0) {
      let drops = outbox.takeDrops();
      let info = new WindowInfo();
      info.producerId = this.producerId;
      info.seq = this.seq;
      info.windowStartNs = this.windowStartNs;
      info.windowEndNs = now;
      info.droppedRequests = drops[0];
      info.droppedWindows = drops[1];
      writer.encode(info, table, strings);
      let requests: f64 = 0;
      for (let i = 0; i < table.count; i++) requests += table.stats[i].requests;
      let at = outbox.push(new Pending(this.seq, writer.encodedLength(), requests, <f64>table.count, drops[0], drops[1]));
      if (at >= 0) writer.writeTo(outbox.arena, at);
      this.noteDrops(outbox);
      this.seq += 1;
    }
    table.reset();
    strings.reset();
    observer.startWindow();
    this.windowStartNs = now;
  }

  /** Moves the outbox's drop tallies into the stats and the pending log lines: after a push or a resize, which may drop. */
  private noteDrops(outbox: Outbox): void {
    this.tooLargeLog.note(outbox.tooLarge, tooLargeSummariesMetric, tooLargeRequestsMetric);
    this.evictedLog.note(outbox.evicted, evictedSummariesMetric, evictedRequestsMetric);
  }

  /** Logs the drops not yet logged, when a line is due or at once with `force`. */
  private logDrops(now: u64, force: bool): void {
    let c = this.config;
    if (c === null) return;
    let nowMs = <f64>(now / 1_000_000);
    this.tooLargeLog.flush(nowMs, c.maxPendingBytes, force);
    this.evictedLog.flush(nowMs, c.maxPendingBytes, force);
  }

  private send(now: u64): void {
    let c = this.config;
    let outbox = this.outbox;
    if (c === null || outbox === null || this.stopping) return;
    let nowMs = <f64>(now / 1_000_000);
    let p = outbox.next(nowMs);
    if (p === null) return;
    this.call(p, c.timeoutMs, nowMs);
  }

  /** Hands `p` to the host; false (the outbox told) when the host refused the call. */
  private call(p: Pending, timeoutMs: u32, nowMs: f64): bool {
    let outbox = this.outbox;
    if (outbox === null) return false;
    let token = httpCall(this.cluster, this.headers, outbox.body(p), timeoutMs);
    outbox.sent(nowMs);
    if (token >= 0) {
      this.callToken = token;
      return true;
    }
    outbox.failed(nowMs, -1);
    // Envoy answers BadArgument for a cluster it does not know: a gateway with
    // PILOT_FILTER_GATEWAY_CLUSTER_CONFIG, or a Sidecar / exportTo hiding the collector's service.
    incrementCounter(callRefusedMetric, 1);
    if (this.callRefusedLog.due(nowMs)) {
      log(
        LogLevel.error,
        'meshlook: the proxy refused the call to cluster "' + this.clusterName() + '" (unknown cluster? see docs/operations.md); summaries stay queued within max_pending_bytes',
      );
    }
    return false;
  }

  private clusterName(): string {
    let c = this.config;
    if (c === null) return "";
    return c.cluster;
  }

  /** Sends the outbox's head at VM stop; false when nothing more can be sent before the deadline. */
  private sendAtStop(now: u64): bool {
    let c = this.config;
    let outbox = this.outbox;
    if (c === null || outbox === null || outbox.length == 0 || now >= this.stopDeadlineNs) return false;
    let leftMs = <u32>((this.stopDeadlineNs - now) / 1_000_000);
    if (leftMs == 0) return false;
    let timeoutMs = c.timeoutMs;
    if (leftMs < timeoutMs) timeoutMs = leftMs;
    let p = outbox.next(f64.MAX_VALUE);
    if (p === null) return false;
    return this.call(p, timeoutMs, <f64>(now / 1_000_000));
  }

  /** Completes the deferred stop: counts what was not delivered and lets Envoy delete the context. */
  private finishStop(): void {
    this.reportLoss();
    finishShutdown();
  }

  private reportLoss(): void {
    let outbox = this.outbox;
    if (outbox === null) return;
    this.logDrops(nowNanos(), true);
    // Not only the summaries held: also the windows dropped for the budget that they (or no summary yet)
    // were to report, since no summary delivered will.
    outbox.dropAll();
    let summaries = <i64>outbox.droppedWindows;
    let requests = <i64>outbox.droppedRequests;
    if (summaries == 0 && requests == 0) return;
    incrementCounter(lostSummariesMetric, summaries);
    incrementCounter(lostRequestsMetric, requests);
    log(LogLevel.error, "meshlook: VM stopped with " + summaries.toString() + " summaries (" + requests.toString() + " requests) not delivered to the collector; they are lost");
  }

  private requestHeaders(c: Config): ArrayBuffer {
    let h = new HeaderList();
    h.add(":method", "POST");
    h.add(":path", c.path);
    h.add(":authority", c.authority);
    h.add("content-type", CONTENT_TYPE);
    let token = getEnv(TOKEN_ENV);
    if (token !== null && token.length > 0) h.add("authorization", "Bearer " + token);
    else if (!this.tokenWarned) {
      // The collector will answer 401; summaries stay queued within the budget until a token is set
      // (which takes a VM restart: Istio passes vmConfig.env at VM creation).
      log(LogLevel.error, "meshlook: environment variable " + TOKEN_ENV + " is not set; the collector will refuse summaries");
      this.tokenWarned = true;
    }
    return h.serialize();
  }
}

const MAX_NODE_ID_BYTES = 180;

/**
 * `<node id>/<VM start ns>/<root context id>/<nonce hex>`. The node id comes first for readability and
 * is cut (at a character boundary) so the unique tail always fits the wire's 256-byte producer id.
 */
function producerId(nodeId: string, startNs: u64, rootId: u32, nonce: u64): Uint8Array {
  // Not `nodeId.length > 0 ? nodeId : "unknown"`: AssemblyScript 0.17 compiles that string ternary to
  // one retain and two releases, so LocalNode.id dangles and proxy_on_delete traps.
  let name = "unknown";
  if (nodeId.length > 0) name = nodeId;
  let node = Uint8Array.wrap(String.UTF8.encode(name));
  let cut = node.length;
  if (cut > MAX_NODE_ID_BYTES) {
    cut = MAX_NODE_ID_BYTES;
    while (cut > 0 && (node[cut] & 0xc0) == 0x80) cut--;
  }
  let tail = Uint8Array.wrap(String.UTF8.encode("/" + startNs.toString() + "/" + rootId.toString() + "/" + nonce.toString(16)));
  let out = new Uint8Array(cut + tail.length);
  out.set(node.subarray(0, cut));
  out.set(tail, cut);
  return out;
}

/** A decimal header of the HTTP call response, or -1. */
function headerInt(name: ArrayBuffer): i32 {
  let hb = new HostBytes();
  if (!readHttpCallResponseHeader(name, hb)) return -1;
  let v = <i32>parseDecimal(hb.ptr, hb.len, 9);
  hb.release();
  return v;
}
