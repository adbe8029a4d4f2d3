// The network side of proxy_http_call: a real HTTP/1.1 request to the address a cluster resolves to,
// with the outcomes Envoy's async client delivers. Failures before response headers arrive become
// Envoy's router local replies (503 on connect failure or reset, 504 on timeout) and reach the filter
// as ordinary responses; a failure after the headers is a stream reset, which Envoy delivers as a
// call with zero headers, zero body and zero trailers.
import http from "node:http";
import type { Clock } from "./clock.ts";

export interface CallTarget {
  host: string;
  port: number;
}

export type CallOutcome = { kind: "response"; headers: [string, string][]; body: Uint8Array; trailers: [string, string][] } | { kind: "reset" };

function localReply(status: number, body: string): CallOutcome {
  const b = new TextEncoder().encode(body);
  return {
    kind: "response",
    headers: [
      [":status", String(status)],
      ["content-length", String(b.length)],
      ["content-type", "text/plain"],
    ],
    body: b,
    trailers: [],
  };
}

const CONNECT_FAILURE =
  "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, " + "transport failure reason: delayed connect error: Connection refused";
const CONNECTION_TERMINATION = "upstream connect error or disconnect/reset before headers. reset reason: connection termination";
const TIMEOUT = "upstream request timeout";

/**
 * Sends the request and resolves with what Envoy would hand to proxy_on_http_call_response.
 * `headers` are the call's pairs; :method, :path and :authority become the request line and Host.
 */
export function sendHttpCall(
  target: CallTarget,
  headers: [string, string][],
  body: Uint8Array,
  timeoutMs: number,
  clock: Clock,
  agent: http.Agent,
): { done: Promise<CallOutcome>; cancel: () => void } {
  let method = "GET";
  let path = "/";
  const out: [string, string][] = [];
  for (const [k, v] of headers) {
    if (k === ":method") method = v;
    else if (k === ":path") path = v;
    else if (k === ":authority") out.push(["host", v]);
    // Envoy sets content-length from a non-empty body, replacing any the filter gave.
    else if (!k.startsWith(":") && !(k === "content-length" && body.length > 0)) out.push([k, v]);
  }
  if (body.length > 0) out.push(["content-length", String(body.length)]);

  let settle!: (o: CallOutcome) => void;
  const done = new Promise<CallOutcome>((resolve) => (settle = resolve));
  let finished = false;
  let gotHeaders = false;
  const finish = (o: CallOutcome) => {
    if (finished) return;
    finished = true;
    timer?.cancel();
    settle(o);
  };

  const req = http.request({ host: target.host, port: target.port, method, path, agent, setHost: false });
  for (const [k, v] of out) req.appendHeader(k, v);
  req.on("error", (err: NodeJS.ErrnoException) => {
    if (gotHeaders) finish({ kind: "reset" });
    else if (err.code === "ECONNREFUSED" || err.code === "ENOTFOUND" || err.code === "EHOSTUNREACH") {
      finish(localReply(503, CONNECT_FAILURE));
    } else finish(localReply(503, CONNECTION_TERMINATION));
  });
  req.on("response", (res) => {
    gotHeaders = true;
    const respHeaders: [string, string][] = [[":status", String(res.statusCode ?? 0)]];
    for (let i = 0; i < res.rawHeaders.length; i += 2) {
      respHeaders.push([res.rawHeaders[i].toLowerCase(), res.rawHeaders[i + 1]]);
    }
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("error", () => finish({ kind: "reset" }));
    res.on("aborted", () => finish({ kind: "reset" }));
    res.on("end", () => {
      if (!res.complete) return finish({ kind: "reset" });
      const trailers: [string, string][] = [];
      for (let i = 0; i < res.rawTrailers.length; i += 2) {
        trailers.push([res.rawTrailers[i].toLowerCase(), res.rawTrailers[i + 1]]);
      }
      finish({ kind: "response", headers: respHeaders, body: new Uint8Array(Buffer.concat(chunks)), trailers });
    });
    res.on("close", () => finish({ kind: "reset" }));
  });
  const timer =
    timeoutMs > 0
      ? clock.setTimer(timeoutMs, () => {
          finish(gotHeaders ? { kind: "reset" } : localReply(504, TIMEOUT));
          req.destroy();
        })
      : undefined;
  req.end(body.length > 0 ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : undefined);
  return {
    done,
    cancel: () => {
      finished = true;
      timer?.cancel();
      req.destroy();
      settle({ kind: "reset" });
    },
  };
}

/** Parses a cluster address "host:port" (or "[v6]:port"). */
export function parseTarget(address: string | CallTarget): CallTarget {
  if (typeof address !== "string") return address;
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!m) throw new Error(`cluster address "${address}" is not host:port`);
  return { host: m[1], port: Number(m[2]) };
}
