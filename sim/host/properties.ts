// proxy_get_property as Envoy answers it: top-level names from Envoy's CEL activation
// (source/extensions/filters/common/expr/context.cc: request, response, connection, upstream, source,
// destination, metadata, filter_state, upstream_filter_state, xds) plus the Wasm-only plugin_name,
// plugin_root_id, plugin_vm_id and connection_id (source/extensions/common/wasm/context.cc,
// findValue). Any other top-level name is looked up as the filter-state key "wasm.<name>". Values
// derived from the stream (request.path, request.total_size, response.code, …) come from the live
// header maps and byte counts, so they change when the filter changes headers, as in Envoy.
import type { HeaderMap } from "./headers.ts";
import { child, FlatBufferState, Message, serializeShared, type Attr, type Encoded, type Kind, isPlainObject, NULL_VALUE } from "./values.ts";

/** Per-stream attribute tree, keyed by Envoy's top-level attribute names. */
export interface StreamAttributes {
  request?: Record<string, Attr | undefined>;
  response?: Record<string, Attr | undefined>;
  connection?: Record<string, Attr | undefined>;
  upstream?: Record<string, Attr | undefined>;
  source?: Record<string, Attr | undefined>;
  destination?: Record<string, Attr | undefined>;
  /** Stream-dependent xds attributes: cluster_name, route_name, listener_direction, …; node comes from the sidecar. */
  xds?: Record<string, Attr | undefined>;
  /** Dynamic metadata (envoy.config.core.v3.Metadata); build it with metadataMessage(). */
  metadata?: Attr;
  /** Filter state objects by key, e.g. downstream_peer (see peerInfo()). */
  filter_state?: Record<string, Attr | undefined>;
  upstream_filter_state?: Record<string, Attr | undefined>;
}

/** Envoy's CEL types for the well-known leaves, so plain JS numbers encode with the right width and meaning. */
export const ATTRIBUTE_KINDS: Record<string, Kind> = {
  "request.time": "timestamp",
  "request.duration": "duration",
  "request.size": "int",
  "request.total_size": "int",
  "response.code": "int",
  "response.flags": "int",
  "response.grpc_status": "int",
  "response.size": "int",
  "response.total_size": "int",
  "response.backend_latency": "duration",
  "connection.mtls": "bool",
  "connection.id": "uint",
  connection_id: "uint",
  "source.port": "int",
  "destination.port": "int",
  "upstream.port": "int",
  "upstream.request_attempt_count": "uint",
  "upstream.upstream_connection_pool_ready_duration": "duration",
  "xds.listener_direction": "int",
};

/** Stream phases in the order Envoy runs them; properties that Envoy only knows later answer NotFound before. */
export const enum Phase {
  Created,
  RequestHeaders,
  RequestBody,
  RequestTrailers,
  ResponseHeaders,
  ResponseBody,
  ResponseTrailers,
  Done,
  Log,
}

/** What the property resolver needs to know about a live stream. */
export interface StreamView {
  phase: Phase;
  attrs: StreamAttributes;
  requestHeaders: HeaderMap;
  requestTrailers: HeaderMap | null;
  responseHeaders: HeaderMap | null;
  responseTrailers: HeaderMap | null;
  bytesReceived: number;
  bytesSent: number;
  startNs: bigint;
  nowNs: () => bigint;
  /** Set when the response came from a local reply (send_local_response or fail-close). */
  localReplyDetails: string | null;
  /** Values written with proxy_set_property, keyed "wasm.<path>". */
  wasmState: Map<string, Uint8Array>;
}

/** Sidecar-wide values: the plugin identity and the bootstrap node. */
export interface PluginView {
  pluginName: string;
  rootId: string;
  vmId: string;
  node: Message;
  /** Serve the Wasm-specific names Envoy removed in 1.33 (node, cluster_name, route_name, …). */
  legacyAttributes: boolean;
  /** Answers for paths that depend only on the plugin (xds.node…, plugin_*). */
  cache: Map<string, PropertyResult>;
}

/**
 * The value's bytes, or the WasmResult of a failed read (NotFound, SerializationFailure). A fixed-width
 * value may be in a buffer shared by all reads: copy it before the next read.
 */
export type PropertyResult = Encoded | 1 | 3;
const NOT_FOUND = 1;
const SERIALIZATION_FAILURE = 3;

function httpToGrpcStatus(code: number): number {
  switch (code) {
    case 400:
      return 13;
    case 401:
      return 16;
    case 403:
      return 7;
    case 404:
      return 12;
    case 429:
    case 502:
    case 503:
    case 504:
      return 14;
    default:
      return 2;
  }
}

function grpcStatusOf(map: HeaderMap | null): number | undefined {
  const v = map?.get("grpc-status");
  if (v === undefined) return undefined;
  return /^\d+$/.test(v) && Number(v) <= 16 ? Number(v) : -1;
}

function responseCode(s: StreamView): number | undefined {
  const given = s.attrs.response?.code;
  if (given !== undefined) return Number(given instanceof Object && "value" in given ? given.value : given);
  const status = s.responseHeaders?.get(":status");
  return status !== undefined && /^\d+$/.test(status) ? Number(status) : undefined;
}

/** request.* as Envoy's RequestWrapper computes it. */
function requestField(s: StreamView, key: string): Attr | undefined {
  const h = s.requestHeaders;
  const path = key === "path" || key === "url_path" || key === "query" ? h.get(":path") : undefined;
  switch (key) {
    case "headers":
      return h.toMap();
    case "time":
      return s.startNs;
    case "size": {
      const cl = h.get("content-length");
      if (cl !== undefined) return /^\d+$/.test(cl) ? BigInt(cl) : undefined;
      return s.bytesReceived;
    }
    case "total_size":
      return s.bytesReceived + h.byteSize();
    case "duration":
      return s.phase >= Phase.Done ? s.nowNs() - s.startNs : undefined;
    case "protocol":
      return "HTTP/1.1";
    case "path":
      return path;
    case "url_path":
      return path === undefined ? undefined : path.split("?")[0];
    case "query": {
      if (path === undefined) return undefined;
      const q = path.indexOf("?");
      return q < 0 ? "" : path.slice(q + 1).split("#")[0];
    }
    case "host":
      return h.get(":authority");
    case "scheme":
      return h.get(":scheme");
    case "method":
      return h.get(":method");
    case "referer":
      return h.get("referer");
    case "id":
      return h.get("x-request-id");
    case "useragent":
      return h.get("user-agent");
  }
  return undefined;
}

/** response.* as Envoy's ResponseWrapper computes it. */
function responseField(s: StreamView, key: string): Attr | undefined {
  const started = s.phase >= Phase.ResponseHeaders && s.responseHeaders !== null;
  switch (key) {
    case "code":
      return started ? responseCode(s) : undefined;
    case "code_details":
      return started ? (s.localReplyDetails ?? "via_upstream") : undefined;
    case "flags":
      return 0;
    case "grpc_status": {
      const fromMaps = grpcStatusOf(s.responseTrailers) ?? grpcStatusOf(s.responseHeaders);
      if (fromMaps !== undefined) return fromMaps;
      const code = started ? responseCode(s) : undefined;
      return code === undefined ? undefined : httpToGrpcStatus(code);
    }
    case "size":
      return s.bytesSent;
    case "total_size":
      return s.bytesSent + (s.responseHeaders?.byteSize() ?? 0) + (s.responseTrailers?.byteSize() ?? 0);
    case "headers":
      return s.responseHeaders?.toMap() ?? {};
    case "trailers":
      return s.responseTrailers?.toMap() ?? {};
  }
  return undefined;
}

/** Attributes Envoy always has a value for on a stream. */
const ALWAYS: Record<string, Record<string, Attr>> = {
  connection: { mtls: false, requested_server_name: "" },
  upstream: { request_attempt_count: 0n },
};

/** Which response.* leaves may be given by the caller (the rest follow from the maps). */
const RESPONSE_GIVEN_AFTER_START = new Set(["code", "code_details"]);

function streamTop(s: StreamView, top: string, key: string | undefined): Attr | undefined {
  switch (top) {
    case "request": {
      if (key === undefined) return undefined;
      const given = s.attrs.request?.[key];
      if (given !== undefined && !(key === "duration" && s.phase < Phase.Done)) return given;
      return requestField(s, key);
    }
    case "response": {
      if (key === undefined) return undefined;
      const given = s.attrs.response?.[key];
      if (given !== undefined) {
        const started = s.phase >= Phase.ResponseHeaders && s.responseHeaders !== null;
        if (!RESPONSE_GIVEN_AFTER_START.has(key) || started) return given;
        return undefined;
      }
      return responseField(s, key);
    }
    case "connection":
    case "upstream":
    case "source":
    case "destination": {
      const group = s.attrs[top];
      if (key === undefined) return { ...ALWAYS[top], ...group };
      return group?.[key] ?? ALWAYS[top]?.[key];
    }
    case "metadata":
      return key === undefined ? s.attrs.metadata : child(s.attrs.metadata, key);
    case "filter_state": {
      if (key === undefined) return undefined;
      const w = s.wasmState.get(key);
      return w ?? peerState(s, key);
    }
    case "upstream_filter_state":
      return key === undefined ? undefined : s.attrs.upstream_filter_state?.[key];
  }
  return undefined;
}

// Filter-state keys of the upstream peer: Istio 1.24+ (`upstream_peer`) and the 1.22/1.23 FlatNode.
const UPSTREAM_PEER_KEYS = new Set(["upstream_peer", "wasm.upstream_peer"]);

/**
 * A filter-state object as Istio leaves it. Istio's peer_metadata filter records the upstream peer in
 * encodeHeaders, from the upstream's response (istio/proxy source/extensions/filters/http/peer_metadata/
 * filter.cc, Filter::encodeHeaders, release-1.22 … 1.28): a stream that never got response headers from
 * the upstream (a failed connect UF/URX answered by Envoy's local reply, a reset before headers DC/UC)
 * has none, whatever the scenario attached.
 */
function peerState(s: StreamView, key: string): Attr | undefined {
  const value = s.attrs.filter_state?.[key];
  if (value === undefined || !UPSTREAM_PEER_KEYS.has(key)) return value;
  return fromUpstream(s) ? value : undefined;
}

/** Whether the response headers came from the upstream (Envoy's response code details `via_upstream`). */
function fromUpstream(s: StreamView): boolean {
  if (s.phase < Phase.ResponseHeaders || s.responseHeaders === null || s.localReplyDetails !== null) return false;
  const details = s.attrs.response?.code_details;
  return details === undefined || details === "via_upstream";
}

/** Wasm-only top-level names Envoy removed in 1.33; served from attributes.xds when enabled. */
const LEGACY = new Set(["cluster_name", "cluster_metadata", "route_name", "route_metadata", "listener_direction", "listener_metadata", "upstream_host_metadata"]);

const STREAM_TOPS = new Set(["request", "response", "connection", "upstream", "source", "destination", "metadata", "filter_state", "upstream_filter_state"]);

export interface ParsedPath {
  path: string;
  parts: string[];
  /** How many leading segments the top-level lookup consumes (the rest walk into the value). */
  consumed: number;
  /** Envoy's CEL type for the leaf when it is a well-known attribute. */
  kind: Kind | undefined;
  /** The answer depends only on the plugin (xds.node…, plugin_*), so it can be cached per sidecar. */
  static: boolean;
  /** request.headers.<name>, response.headers.<name>, response.trailers.<name>: looked up without building the map. */
  headerEntry: boolean;
}

const parsedPaths = new Map<string, ParsedPath>();

export function parsePath(path: string): ParsedPath {
  let p = parsedPaths.get(path);
  if (p) return p;
  const parts = path.split("\0");
  if (parts[parts.length - 1] === "") parts.pop();
  const top = parts[0] ?? "";
  const two = top === "xds" || STREAM_TOPS.has(top);
  const consumed = two && parts.length > 1 ? 2 : 1;
  const kindPath = parts.length === consumed ? parts.slice(0, consumed).join(".") : "";
  p = {
    path,
    parts,
    consumed,
    kind: ATTRIBUTE_KINDS[kindPath],
    static: top.startsWith("plugin_") || (top === "xds" && parts[1] === "node"),
    headerEntry: parts.length >= 3 && ((top === "request" && parts[1] === "headers") || (top === "response" && (parts[1] === "headers" || parts[1] === "trailers"))),
  };
  if (parsedPaths.size < 10_000) parsedPaths.set(path, p);
  return p;
}

/** One entry of request.headers, response.headers or response.trailers (the CEL maps of streamTop). */
function headerEntry(s: StreamView, top: string, field: string, name: string): Attr | undefined {
  const given = top === "request" ? s.attrs.request?.[field] : s.attrs.response?.[field];
  if (given !== undefined) return child(given, name);
  if (top === "request") return s.requestHeaders.joined(name);
  return (field === "headers" ? s.responseHeaders : s.responseTrailers)?.joined(name);
}

/**
 * Resolves a NUL-separated property path for a context: `stream` is null for root contexts, which,
 * as in Envoy, see only xds.node and the plugin_* names.
 */
export function getProperty(path: string | ParsedPath, plugin: PluginView, stream: StreamView | null): PropertyResult {
  const parsed = typeof path === "string" ? parsePath(path) : path;
  if (parsed.static) {
    const cached = plugin.cache.get(parsed.path);
    if (cached !== undefined) return cached;
  }
  const { parts, consumed } = parsed;
  if (parts.length === 0) return NOT_FOUND;
  const top = parts[0];
  let value: Attr | undefined;
  let walkFrom = consumed;
  switch (top) {
    case "plugin_name":
      value = plugin.pluginName;
      break;
    case "plugin_root_id":
      value = plugin.rootId;
      break;
    case "plugin_vm_id":
      value = plugin.vmId;
      break;
    case "connection_id":
      value = stream?.attrs.connection?.id;
      break;
    case "xds":
      if (parts[1] === "node") {
        value = plugin.node;
        walkFrom = 2;
      } else if (stream && parts.length > 1) value = stream.attrs.xds?.[parts[1]];
      break;
    case "request":
    case "response":
    case "connection":
    case "upstream":
    case "source":
    case "destination":
    case "metadata":
    case "filter_state":
    case "upstream_filter_state":
      if (!stream) return NOT_FOUND;
      if (parsed.headerEntry) {
        value = headerEntry(stream, top, parts[1], parts[2]);
        walkFrom = 3;
      } else value = streamTop(stream, top, parts[1]);
      break;
    default:
      if (plugin.legacyAttributes && top === "node") value = plugin.node;
      else if (plugin.legacyAttributes && LEGACY.has(top)) value = stream?.attrs.xds?.[top];
      else if (stream) value = stream.wasmState.get(`wasm.${top}`) ?? peerState(stream, `wasm.${top}`);
      // The top-level name read whole: findValue(name, arena, last = true), so a FlatBuffers CelState
      // answers with its bytes (see FlatBufferState).
      if (value instanceof FlatBufferState && parts.length === 1) return value.bytes;
  }
  for (let i = walkFrom; i < parts.length && value !== undefined; i++) value = child(value, parts[i]);
  let result: PropertyResult;
  if (value === undefined || value === null) result = NOT_FOUND;
  else if (value === NULL_VALUE) result = SERIALIZATION_FAILURE;
  else {
    const kind = parsed.kind && !(isPlainObject(value) || Array.isArray(value)) ? parsed.kind : undefined;
    result = serializeShared(value, kind) ?? SERIALIZATION_FAILURE;
  }
  if (parsed.static) {
    if (result instanceof Uint8Array) result = result.slice();
    plugin.cache.set(parsed.path, result);
  }
  return result;
}
