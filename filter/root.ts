// The plugin's root context: owns the configuration, the window's aggregates and the outbox, and
// drives the flush on ticks. Stream contexts own nothing: at stream end they call onStreamLog.
import { Root } from "./sdk/exports";
import { HostBytes, HeaderList, LogLevel, httpCall, log, nowNanos, readHttpCallResponseHeader, setTickPeriodMs } from "./sdk/host";
import { getEnv, randomU64 } from "./sdk/wasi";
import { Config, parseConfig } from "./config";
import { Interner } from "./interner";
import { LocalNode, Observation, Observer } from "./observe";
import { SeriesTable } from "./table";
import { Outbox, Pending } from "./outbox";
import { SummaryWriter, WindowInfo } from "./summary";
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

  onVmStart(): bool {
    markVmStart(nowNanos());
    return true;
  }

  onConfigure(bytes: HostBytes | null): bool {
    let result = bytes === null ? parseConfig(0, 0) : parseConfig(bytes.ptr, bytes.len);
    let c = result.config;
    if (c === null) {
      log(LogLevel.error, "meshlook: configuration refused: " + result.error);
      return false;
    }
    let now = nowNanos();
    markVmStart(now);
    // A reconfiguration closes the running window under the old settings; nothing is lost.
    if (this.config !== null) this.closeWindow(now);

    let directions = (c.inbound ? 1 : 0) + (c.outbound ? 1 : 0);
    // Strings: the window's distinct values. Typical series share most of them; the byte budget
    // allows every series a distinct 64-byte value plus the constant ones.
    let strings = new Interner(c.maxSeries * 4 + 64, c.maxSeries * 64 + 16384);
    let observer = new Observer(c, strings);
    observer.local = LocalNode.read();
    let table = new SeriesTable(c.maxSeries, directions, c.sketchScale);
    strings.reset();
    observer.startWindow();

    let outbox = this.outbox;
    let deadline = <f64>c.timeoutMs + CALL_GRACE_MS;
    if (outbox === null) outbox = new Outbox(c.maxPendingBytes, BASE_BACKOFF_MS, MAX_BACKOFF_MS, deadline);
    outbox.maxBytes = c.maxPendingBytes;
    outbox.callDeadlineMs = deadline;

    this.producerId = producerId(observer.local.id, vmStartNs, this.id, vmNonce);
    this.writer = new SummaryWriter(c);
    this.cluster = String.UTF8.encode(c.cluster);
    this.headers = this.requestHeaders(c);
    this.config = c;
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
    if (c === null) return;
    let now = nowNanos();
    if (now + TICK_SLACK_NS >= this.windowStartNs + <u64>c.flushIntervalS * 1_000_000_000) this.closeWindow(now);
    this.send(now);
  }

  onHttpCallResponse(token: u32, headers: u32, _bodySize: u32, _trailers: u32): void {
    let outbox = this.outbox;
    if (outbox === null || <i64>token != this.callToken) return;
    this.callToken = -1;
    let now = nowNanos();
    let nowMs = <f64>(now / 1_000_000);
    let status = headers == 0 ? -1 : headerInt(STATUS_HEADER);
    if (status >= 200 && status <= 299) {
      outbox.acknowledged();
      this.send(now); // drain a backlog without waiting for the next tick
      return;
    }
    let retryAfterMs: f64 = -1;
    if (status == 429 || status == 503) {
      let s = headerInt(RETRY_AFTER_HEADER);
      if (s >= 0) retryAfterMs = Math.min(<f64>s, MAX_RETRY_AFTER_S) * 1000;
    }
    if (status == 401 || status == 403) log(LogLevel.warn, "meshlook: collector refused the ingest token (HTTP " + status.toString() + ")");
    outbox.failed(nowMs, retryAfterMs);
  }

  onDone(): void {
    // Envoy is stopping this VM: whatever the outbox holds cannot be delivered any more.
    let outbox = this.outbox;
    if (outbox !== null && outbox.length > 0) {
      log(LogLevel.warn, "meshlook: VM stopping with " + outbox.length.toString() + " unsent summaries");
    }
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
      let body = writer.encode(info, table, strings);
      let requests: f64 = 0;
      for (let i = 0; i < table.count; i++) requests += table.stats[i].requests;
      outbox.push(new Pending(this.seq, body, requests, drops[0], drops[1]));
      this.seq += 1;
    }
    table.reset();
    strings.reset();
    observer.startWindow();
    this.windowStartNs = now;
  }

  private send(now: u64): void {
    let c = this.config;
    let outbox = this.outbox;
    if (c === null || outbox === null) return;
    let nowMs = <f64>(now / 1_000_000);
    let p = outbox.next(nowMs);
    if (p === null) return;
    let token = httpCall(this.cluster, this.headers, p.body, c.timeoutMs);
    outbox.sent(nowMs);
    if (token < 0) {
      outbox.failed(nowMs, -1);
      return;
    }
    this.callToken = token;
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
  let node = Uint8Array.wrap(String.UTF8.encode(nodeId.length > 0 ? nodeId : "unknown"));
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
  let v: i32 = -1;
  if (hb.len > 0 && hb.len <= 9) {
    v = 0;
    for (let i = 0; i < hb.len; i++) {
      let d = <i32>load<u8>(hb.ptr + i) - 0x30;
      if (d < 0 || d > 9) { v = -1; break; }
      v = v * 10 + d;
    }
  }
  hb.release();
  return v;
}
