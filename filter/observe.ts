// Per request, at stream end: reads what Envoy knows about the request and turns it into a series
// key (dimension value ids, see interner.ts) and the request's measures. This is the per-request
// path: it reads only the properties its dimensions need, and copies nothing it does not keep.
import { HostBytes, constantPath, isValidUtf8, propertyPath } from "./sdk/host";
import { Config } from "./config";
import { Dim, DIM_COUNT, NONE, UNKNOWN } from "./dimensions";
import { Interner, hashBytes, mix64, sameBytes } from "./interner";
import { FAILURE_FLAGS, KNOWN_MASK, flagsToString } from "./flags";
import { DOWNSTREAM_DIMS, FactCache, UPSTREAM_DIMS } from "./fact-cache";
import { parseDecimal } from "./decimal";

/** Values longer than this are not identities but garbage (or an attack); they read as `unknown`. */
export const MAX_VALUE_BYTES = 512;

// Which naming this proxy serves (0 = `xds.<name>`, 1 = the old top-level name), learned from the first
// read either form answered. It decides which name a property that keeps being absent (e.g. a cluster
// without Istio service metadata) is still read under, so such a property costs one NotFound read per
// request instead of two once it has missed under both names DOUBLE_MISS_LIMIT times.
let xdsForm: i32 = -1;
const DOUBLE_MISS_LIMIT: i32 = 32;

// Receives every value this file reads (one at a time: each is released before the next read).
const hb = new HostBytes();

/**
 * A property Envoy serves under `xds.<name>` since 1.33 removed the Wasm-only top-level names
 * (`listener_direction`, `cluster_name`, `node`); older proxies serve only the old name. Once one name
 * answered, only that one is read.
 */
class XdsPath {
  // The two encoded names, owned here, and their pointers, which the reads take (HostBytes.readAt).
  private owned: Array<ArrayBuffer>;
  private paths: StaticArray<usize> = new StaticArray<usize>(2);
  private form: i32 = -1;
  private doubleMisses: i32 = 0;
  constructor(segments: Array<string>) {
    this.owned = [propertyPath(["xds"].concat(segments)), propertyPath(segments)];
    for (let i = 0; i < 2; i++) this.paths[i] = changetype<usize>(this.owned[i]);
  }
  /** Reads into `hb`. */
  read(): bool {
    if (this.form >= 0) return hb.readAt(unchecked(this.paths[this.form]));
    let first = xdsForm >= 0 ? xdsForm : 0;
    if (this.answered(first)) return true;
    if (this.doubleMisses >= DOUBLE_MISS_LIMIT && xdsForm >= 0) return false;
    if (this.answered(first ^ 1)) return true;
    this.doubleMisses++;
    return false;
  }
  private answered(form: i32): bool {
    if (!hb.readAt(unchecked(this.paths[form]))) return false;
    this.form = form;
    if (xdsForm < 0) xdsForm = form;
    return true;
  }
}

const P_DIRECTION = new XdsPath(["listener_direction"]);
const P_CLUSTER_NAME = new XdsPath(["cluster_name"]);
// Where Istio's own stats read the service host from.
const P_SERVICE_HOST = new XdsPath(["cluster_metadata", "filter_metadata", "istio", "services", "0", "host"]);
const P_DURATION = constantPath(["request", "duration"]);
const P_REQUEST_SIZE = constantPath(["request", "total_size"]);
const P_RESPONSE_SIZE = constantPath(["response", "total_size"]);
const P_RESPONSE_CODE = constantPath(["response", "code"]);
const P_GRPC_STATUS = constantPath(["response", "grpc_status"]);
const P_RESPONSE_FLAGS = constantPath(["response", "flags"]);
const P_CONTENT_TYPE = constantPath(["request", "headers", "content-type"]);
const P_HOST = constantPath(["request", "host"]);
const P_MTLS = constantPath(["connection", "mtls"]);
const P_CONNECTION_ID = constantPath(["connection", "id"]);
const P_UP_ADDRESS = constantPath(["upstream", "address"]);
const P_DOWN_PEER_SAN = constantPath(["connection", "uri_san_peer_certificate"]);
const P_DOWN_LOCAL_SAN = constantPath(["connection", "uri_san_local_certificate"]);
const P_UP_PEER_SAN = constantPath(["upstream", "uri_san_peer_certificate"]);
const P_UP_LOCAL_SAN = constantPath(["upstream", "uri_san_local_certificate"]);
// Istio >= 1.21 no longer installs istio_authn: RequestAuthentication configures Envoy's jwt_authn with
// payload_in_metadata "payload" (pilot/pkg/security/authn policy_applier.go, convertToEnvoyJwtConfig;
// filters.EnvoyJwtFilterPayload), and Istio's request.auth.principal is `<iss>/<sub>` of that payload.
const P_JWT_ISS = constantPath(["metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "payload", "iss"]);
const P_JWT_SUB = constantPath(["metadata", "filter_metadata", "envoy.filters.http.jwt_authn", "payload", "sub"]);
const P_END_USER = constantPath(["metadata", "filter_metadata", "istio_authn", "request.auth.principal"]);
const P_RESPONSE_GRPC_STATUS_HEADER = constantPath(["response", "headers", "grpc-status"]);
const P_RESPONSE_GRPC_STATUS_TRAILER = constantPath(["response", "trailers", "grpc-status"]);

/**
 * Where a peer's workload labels come from, by the Istio version that stored them:
 * - 1.25+: a CelState holding WorkloadMetadataObject::serializeAsProto(), a google.protobuf.Struct
 *   (istio/proxy release-1.25..1.28 peer_metadata/filter.cc, FilterConfig::setFilterState). Envoy's
 *   FilterStateWrapper hands a CelState out with exprValue(arena, false), which unpacks the Struct into
 *   a CEL map, and getProperty serializes a map as pairs (envoy source/extensions/common/wasm/context.cc,
 *   serializeValue kMap), so `filter_state.<side>` read whole gives every field in one call.
 * - 1.24: a WorkloadMetadataObject with field support: Envoy's FilterStateObjectWrapper lists no keys, so
 *   read whole it is an empty map; its fields (`filter_state.<side>.workload`, …) are read one by one.
 * - 1.22/1.23: the metadata-exchange FlatNode under `wasm.<side>`, read field by field
 *   (`<side>.workload_name`, …). A FlatNode's `labels` is a vector of KeyVal tables keyed by `key`;
 *   cel-cpp's FlatBuffers-backed map (flatbuffers_backed_impl.cc, ObjectStringIndexedMapImpl) answers
 *   a label name with the whole KeyVal record, so the label's text is its `value` field. (Read whole
 *   under its top-level name it is the raw FlatBuffer, CelState::exprValue with last = true.)
 */
class PeerPaths {
  whole: usize;
  // Order: workload, namespace, canonical service, canonical revision, cluster.
  current: StaticArray<usize> = new StaticArray<usize>(5);
  legacy: StaticArray<usize> = new StaticArray<usize>(5);
  constructor(side: string) {
    this.whole = constantPath(["filter_state", side]);
    let fields = ["workload", "namespace", "service", "revision", "cluster"];
    let legacy = [
      [side, "workload_name"],
      [side, "namespace"],
      [side, "labels", "service.istio.io/canonical-name", "value"],
      [side, "labels", "service.istio.io/canonical-revision", "value"],
      [side, "cluster_id"],
    ];
    for (let i = 0; i < 5; i++) {
      this.current[i] = constantPath(["filter_state", side, fields[i]]);
      this.legacy[i] = constantPath(legacy[i]);
    }
  }
}
// The Struct's field names of the five labels (istio/proxy metadata_object.h: WorkloadNameToken,
// NamespaceNameToken, ServiceNameToken, ServiceVersionToken, ClusterNameToken) as little-endian words of
// their first 8 bytes, zero-padded: a peer Struct has a dozen fields, and matching each key against five
// names byte by byte cost more than the read that brought them.
const W_WORKLOAD = nameWord("workload", 0);
const W_NAMESPACE = nameWord("namespace", 0);
const W_NAMESPACE_TAIL = nameWord("namespace", 8);
const W_SERVICE = nameWord("service", 0);
const W_REVISION = nameWord("revision", 0);
const W_CLUSTER = nameWord("cluster", 0);
// Which form this proxy stores peer metadata in, learned from the first peer that answered in one: an
// Envoy serves one Istio version for the VM's lifetime, so after that a peer costs the reads of its
// form only (one for a Struct) and a caller without metadata one NotFound.
const PEER_UNKNOWN: i32 = -1;
const PEER_STRUCT: i32 = 0;
const PEER_FIELD_OBJECT: i32 = 1;
const PEER_FLATNODE: i32 = 2;
let peerForm: i32 = PEER_UNKNOWN;
const DOWNSTREAM_PEER = new PeerPaths("downstream_peer");
const UPSTREAM_PEER = new PeerPaths("upstream_peer");

// Peer objects remembered (PeerMemo), in sets of two, and the largest one remembered: a peer Struct of
// Istio's fields is a few hundred bytes; 64 slots hold the callers and upstream pods of a busy sidecar's
// recent new connections in 32 KiB.
const MEMO_SETS: i32 = 32;
const MEMO_BYTES: i32 = 512;

/**
 * The five label ids of peer objects (Struct pairs, Istio 1.25+) read lately in this window, by their
 * bytes: every new connection reads its peer's object, and nearly always one a recent connection
 * brought (the same caller, the same upstream pod), whose fields were already parsed, checked and
 * interned. Found here, it costs one comparison of the bytes. The set is picked from the length and
 * two words (the middle one and the last, where the workload's name and version sit); a slot's bytes
 * are compared in full, so objects made to share a set only miss it, each miss costing the ordinary parse.
 */
class PeerMemo {
  private bytes: ArrayBuffer = new ArrayBuffer(MEMO_SETS * 2 * MEMO_BYTES);
  private lengths: StaticArray<i32> = new StaticArray<i32>(MEMO_SETS * 2); // 0 = empty
  // Which peer a slot holds: the caller's (downstream) and the upstream's labels go to different dimensions.
  private downstream: StaticArray<bool> = new StaticArray<bool>(MEMO_SETS * 2);
  private ids: StaticArray<i32> = new StaticArray<i32>(MEMO_SETS * 2 * 5);
  // Per set, the way found or stored last; a store replaces the other one.
  private recent: StaticArray<i32> = new StaticArray<i32>(MEMO_SETS);

  /** Forgets every object (their ids belong to the closed window). */
  clear(): void {
    memory.fill(changetype<usize>(this.lengths), 0, (<usize>(MEMO_SETS * 2)) << 2);
  }

  /** The set the object at [ptr, ptr + len) is looked up and stored in (0 when shorter than the two words read). */
  setOf(ptr: usize, len: i32): i32 {
    if (len < 16) return 0;
    let w = load<u64>(ptr + <usize>((len >> 1) & ~7)) ^ rotl<u64>(load<u64>(ptr + <usize>len - 8), 29) ^ <u64>len;
    return <i32>((w * 0x9e3779b97f4a7c15) >> 59); // the product's best-mixed top 5 bits, for MEMO_SETS = 32
  }

  /** Copies the remembered label ids of the object at [ptr, ptr + len) to `key` from `base`; false when set `set` does not hold it. */
  restore(set: i32, downstream: bool, ptr: usize, len: i32, key: usize, base: i32): bool {
    // Length 0 marks an empty slot, and a slot emptied at a window's end keeps that window's ids: an
    // empty value (a null pointer from the host) would match it. No object of pairs is that short.
    if (len == 0) return false;
    for (let way = 0; way < 2; way++) {
      let slot = (set << 1) | way;
      if (unchecked(this.lengths[slot]) != len || unchecked(this.downstream[slot]) != downstream) continue;
      if (!sameBytes(changetype<usize>(this.bytes) + <usize>(slot * MEMO_BYTES), ptr, len)) continue;
      memory.copy(key + ((<usize>base) << 2), changetype<usize>(this.ids) + ((<usize>slot * 5) << 2), 20);
      unchecked((this.recent[set] = way));
      return true;
    }
    return false;
  }

  /** Remembers in `set` the object at [ptr, ptr + len) and the label ids `key` holds from `base`. */
  store(set: i32, downstream: bool, ptr: usize, len: i32, key: usize, base: i32): void {
    if (len > MEMO_BYTES) return;
    let way = unchecked(this.recent[set]) ^ 1;
    let slot = (set << 1) | way;
    memory.copy(changetype<usize>(this.bytes) + <usize>(slot * MEMO_BYTES), ptr, <usize>len);
    unchecked((this.lengths[slot] = len));
    unchecked((this.downstream[slot] = downstream));
    memory.copy(changetype<usize>(this.ids) + ((<usize>slot * 5) << 2), key + ((<usize>base) << 2), 20);
    unchecked((this.recent[set] = way));
  }
}

/** This proxy's own labels (node metadata), read once per configuration. Values are UTF-8 bytes. */
export class LocalNode {
  id: string = "";
  labels: Array<ArrayBuffer> = []; // same order as PeerPaths

  static read(): LocalNode {
    let n = new LocalNode();
    // Assignments, not `cond ? a : b` over strings: AssemblyScript 0.17 retains such a ternary's result
    // once but releases it on both arms, leaving a dangling reference (a trap in proxy_on_delete).
    if (new XdsPath(["node", "id"]).read()) {
      if (hb.len <= MAX_VALUE_BYTES) n.id = hb.asString("");
      hb.release();
    }
    n.labels.push(firstOf([["node", "metadata", "WORKLOAD_NAME"]]));
    n.labels.push(firstOf([["node", "metadata", "NAMESPACE"]]));
    n.labels.push(
      firstOf([
        ["node", "metadata", "LABELS", "service.istio.io/canonical-name"],
        ["node", "metadata", "LABELS", "app.kubernetes.io/name"],
        ["node", "metadata", "LABELS", "app"],
        ["node", "metadata", "WORKLOAD_NAME"],
      ]),
    );
    n.labels.push(
      firstOf(
        [
          ["node", "metadata", "LABELS", "service.istio.io/canonical-revision"],
          ["node", "metadata", "LABELS", "app.kubernetes.io/version"],
          ["node", "metadata", "LABELS", "version"],
        ],
        "latest",
      ),
    );
    n.labels.push(firstOf([["node", "metadata", "CLUSTER_ID"]]));
    return n;
  }
}

/** The first of `paths` that holds a usable string, as bytes; `fallback` when none does. */
function firstOf(paths: Array<Array<string>>, fallback: string = UNKNOWN): ArrayBuffer {
  for (let i = 0; i < paths.length; i++) {
    if (!new XdsPath(paths[i]).read()) continue;
    if (hb.len > 0 && hb.len <= MAX_VALUE_BYTES && isValidUtf8(hb.ptr, hb.len)) {
      let out = String.UTF8.encode(String.UTF8.decodeUnsafe(hb.ptr, hb.len));
      hb.release();
      return out;
    }
    hb.release();
  }
  return String.UTF8.encode(fallback);
}

/** Ids of the strings every window needs; interned first at each window start. */
export class Sentinels {
  unknown: i32 = 0;
  none: i32 = 0;
  source: i32 = 0;
  destination: i32 = 0;
  http: i32 = 0;
  grpc: i32 = 0;
  mutualTls: i32 = 0;
  plaintext: i32 = 0;
  overflow: i32 = 0;

  intern(t: Interner): void {
    this.unknown = t.internString(UNKNOWN);
    this.none = t.internString(NONE);
    this.source = t.internString("source");
    this.destination = t.internString("destination");
    this.http = t.internString("http");
    this.grpc = t.internString("grpc");
    this.mutualTls = t.internString("mutual_tls");
    this.plaintext = t.internString("none");
    this.overflow = t.internString("__overflow__");
  }
}

/** One observed request: its key and measures. Reused for every request (no allocation). */
export class Observation {
  /** Dimension value ids; `response_code` holds the code itself. */
  key: StaticArray<i32> = new StaticArray<i32>(DIM_COUNT);
  /** Hash of the key's value bytes; stable within a window even for keys that did not fit. */
  keyHash: u64 = 0;
  /** A value could not be interned (string table full): the request goes to the overflow series. */
  spilled: bool = false;
  inbound: bool = false;
  error: bool = false;
  latencyUs: u64 = 0;
  requestBytes: u64 = 0;
  responseBytes: u64 = 0;
}

function readInt(path: usize, fallback: i64): i64 {
  if (!hb.readAt(path)) return fallback;
  let v = hb.asI64(fallback);
  hb.release();
  return v;
}

/** Envoy's TrafficDirection: 1 inbound, 2 outbound. */
export const enum Direction {
  Unspecified = 0,
  Inbound = 1,
  Outbound = 2,
}

// The per-request methods below pass the key and the dimension flags as raw pointers (Observer.key,
// Observer.dims) and the peer side as a flag: AssemblyScript retains and releases every managed
// argument and local, which on a request's path cost about as much as the work itself. Both arrays
// live as long as the Observer (the Observation's key, the configuration's flags).
export class Observer {
  local: LocalNode = new LocalNode();
  sentinels: Sentinels = new Sentinels();
  private localIds: StaticArray<i32> = new StaticArray<i32>(5);
  private flagCacheMask: u64 = 0;
  private flagCacheId: i32 = -1;
  // Ids of "0".."16" in this window, -1 until first seen.
  private grpcIds: StaticArray<i32> = new StaticArray<i32>(17);

  private connections: FactCache = new FactCache(DOWNSTREAM_DIMS);
  private upstreams: FactCache = new FactCache(UPSTREAM_DIMS);
  private peers: PeerMemo = new PeerMemo();

  /** The configuration's dimension flags (StaticArray<bool> data). */
  private dims: usize;
  /** The key of the request being observed (StaticArray<i32> data). */
  private key: usize = 0;
  // Whether any of the caller's (downstream) or the upstream peer's five labels is reported: fixed by
  // the configuration, so not worked out again for every request.
  private downstreamPeerWanted: bool = false;
  private upstreamPeerWanted: bool = false;

  constructor(
    private config: Config,
    private strings: Interner,
  ) {
    this.dims = changetype<usize>(config.dimensions);
    for (let i = 0; i < 5; i++) {
      this.downstreamPeerWanted = this.downstreamPeerWanted || this.wants(Dim.SourceWorkload + i);
      this.upstreamPeerWanted = this.upstreamPeerWanted || this.wants(Dim.DestinationWorkload + i);
    }
  }

  @inline private wants(d: i32): bool {
    return load<bool>(this.dims + <usize>d);
  }
  @inline private set(d: i32, id: i32): void {
    store<i32>(this.key + ((<usize>d) << 2), id);
  }
  @inline private get(d: i32): i32 {
    return load<i32>(this.key + ((<usize>d) << 2));
  }

  /** Call after `strings.reset()`: interns the sentinels and this node's labels. */
  startWindow(): void {
    this.sentinels.intern(this.strings);
    for (let i = 0; i < 5; i++) {
      let b = this.local.labels[i];
      let id = this.strings.intern(changetype<usize>(b), b.byteLength, hashBytes(changetype<usize>(b), b.byteLength, this.strings.seed));
      this.localIds[i] = id < 0 ? this.sentinels.unknown : id;
    }
    this.flagCacheId = -1;
    for (let i = 0; i < 17; i++) this.grpcIds[i] = -1;
    this.connections.clear();
    this.upstreams.clear();
    this.peers.clear();
  }

  /** Reads the request; false when its direction is not reported. */
  observe(o: Observation): bool {
    let slot = -1;
    let haveId = false;
    let connId: u64 = 0;
    if (hb.readAt(P_CONNECTION_ID)) {
      if (hb.len == 8) {
        connId = load<u64>(hb.ptr);
        haveId = true;
        slot = this.connections.find(connId);
      }
      hb.release();
    }
    // The listener, hence the direction, is fixed by the downstream connection.
    let direction: i64 = Direction.Unspecified;
    if (slot >= 0) direction = this.connections.direction(slot);
    else if (P_DIRECTION.read()) {
      direction = hb.asI64(Direction.Unspecified);
      hb.release();
    }
    // Envoy leaves the direction unspecified on listeners that are neither; Istio's gateways and
    // sidecar outbound listeners act as clients, so anything but inbound reports as the source.
    let inbound = direction == Direction.Inbound;
    if (inbound ? !this.config.inbound : !this.config.outbound) {
      if (haveId && slot < 0) this.connections.store(connId, direction, 0);
      return false;
    }
    o.inbound = inbound;
    this.spill = false;
    this.spillHash = 0;
    this.key = changetype<usize>(o.key);
    let unknown = this.sentinels.unknown;
    for (let i = 0; i < DIM_COUNT; i++) this.set(i, unknown);
    this.set(Dim.Reporter, inbound ? this.sentinels.destination : this.sentinels.source);

    let localBase = inbound ? Dim.DestinationWorkload : Dim.SourceWorkload;
    for (let i = 0; i < 5; i++) if (this.wants(localBase + i)) this.set(localBase + i, unchecked(this.localIds[i]));
    // Facts are cached only when complete: a stream that never had its request headers decoded (an
    // HTTP/2 stream-level local reply) has no peer metadata, and caching that absence would report the
    // connection's later requests as `unknown`.
    let flags = <u64>readInt(P_RESPONSE_FLAGS, 0);
    if (inbound) {
      if (slot >= 0 && this.connections.hasFactsAt(slot)) this.restoreFacts(true, slot);
      else {
        let complete = this.readDownstreamFacts();
        if (haveId && complete) this.connections.store(connId, direction, this.key, this.spill, this.spillHash);
        else if (haveId && slot < 0) this.connections.store(connId, direction, 0);
      }
    } else {
      if (haveId && slot < 0) this.connections.store(connId, direction, 0);
      this.readUpstreamFacts(haveId && slot >= 0, connId, (flags & KNOWN_MASK) == 0);
    }
    if (this.wants(Dim.DestinationService)) this.set(Dim.DestinationService, this.destinationService());

    let grpc = false;
    let grpcWeb = false;
    if (hb.readAt(P_CONTENT_TYPE)) {
      grpc = startsWithGrpc(hb.ptr, hb.len);
      grpcWeb = grpc && isGrpcWeb(hb.ptr, hb.len);
      hb.release();
    }
    if (this.wants(Dim.RequestProtocol)) this.set(Dim.RequestProtocol, grpc ? this.sentinels.grpc : this.sentinels.http);

    let code = readInt(P_RESPONSE_CODE, 0);
    if (code < 0 || code > 999) code = 0;
    this.set(Dim.ResponseCode, this.wants(Dim.ResponseCode) ? <i32>code : 0);

    let grpcStatus: i64 = -1;
    // gRPC-Web carries its status in the response body, which Envoy does not parse: without a
    // grpc-status header or trailer, response.grpc_status is inferred from the HTTP code (200 → 2,
    // UNKNOWN), so for gRPC-Web only a status the response really carried counts.
    if (grpcWeb) {
      grpcStatus = readDecimal(P_RESPONSE_GRPC_STATUS_TRAILER);
      if (grpcStatus < 0) grpcStatus = readDecimal(P_RESPONSE_GRPC_STATUS_HEADER);
    } else if (grpc) grpcStatus = readInt(P_GRPC_STATUS, -1);
    if (grpcStatus > 16) grpcStatus = 2; // not a gRPC code: UNKNOWN, as gRPC maps it
    if (grpcStatus < -1) grpcStatus = -1;
    if (this.wants(Dim.GrpcStatus)) this.set(Dim.GrpcStatus, grpcStatus < 0 ? this.sentinels.none : this.decimal(<i32>grpcStatus));

    if (this.wants(Dim.ResponseFlags)) this.set(Dim.ResponseFlags, this.flagsId(flags));

    if (this.wants(Dim.EndUserPrincipal) && inbound) this.set(Dim.EndUserPrincipal, this.endUserPrincipal());

    o.error = (code >= 500 && code <= 599) || grpcStatus > 0 || (flags & FAILURE_FLAGS) != 0;
    let ns = readInt(P_DURATION, 0);
    o.latencyUs = ns > 0 ? <u64>(ns / 1000) : 0;
    let reqSize = readInt(P_REQUEST_SIZE, 0);
    let respSize = readInt(P_RESPONSE_SIZE, 0);
    o.requestBytes = reqSize > 0 ? <u64>reqSize : 0;
    o.responseBytes = respSize > 0 ? <u64>respSize : 0;

    // Ids identify values within the window; values that did not fit have no id, so their bytes'
    // hashes go in instead, keeping distinct overflowed keys distinct for the estimate. One bijective
    // step per dimension and one finalizer, as in hashBytes: a finalizer per dimension was 20 per request.
    let h: u64 = this.spillHash;
    for (let i = 0; i < DIM_COUNT; i++) h = rotl<u64>((h ^ (((<u64>i) << 32) | <u64>(<u32>this.get(i)))) * 0x9e3779b97f4a7c15, 31);
    o.keyHash = mix64(h);
    o.spilled = this.spill;
    return true;
  }

  /**
   * The upstream endpoint's facts (its principal and peer metadata, our principal). Cached per
   * downstream connection and upstream address, so an entry never outlives the connection it came
   * from, and only when every fact was present. A request Envoy flagged (a failed connect UF/URX still
   * carries upstream.address; a reset before response headers, DC/UC, never got upstream_peer, which
   * Istio's peer_metadata filter sets in encodeHeaders) neither uses nor fills the cache. Nor does a
   * connection's first request (`seen` false: the connection cache does not hold it): an entry for a
   * connection not seen yet could only outlive an evicted one, and the address read that would key it
   * is what a request on a new connection can least afford; a connection that carries more requests
   * fills the cache from its second.
   */
  private readUpstreamFacts(seen: bool, connId: u64, clean: bool): void {
    let haveAddress = false;
    let address: u64 = 0;
    if (seen && clean && hb.readAt(P_UP_ADDRESS)) {
      if (hb.len > 0 && hb.len <= MAX_VALUE_BYTES) {
        address = mix64(hashBytes(hb.ptr, hb.len, this.strings.seed) ^ mix64(connId));
        haveAddress = true;
      }
      hb.release();
    }
    let slot = -1;
    if (haveAddress) slot = this.upstreams.find(address);
    if (slot >= 0) {
      this.restoreFacts(false, slot);
      return;
    }
    let unknown = this.sentinels.unknown;
    let complete = this.readPeer(false, Dim.DestinationWorkload);
    if (this.wants(Dim.SourcePrincipal)) {
      let id = this.stringOf(P_UP_LOCAL_SAN, unknown);
      this.set(Dim.SourcePrincipal, id);
      complete = complete && id != unknown;
    }
    if (this.wants(Dim.DestinationPrincipal)) {
      let id = this.stringOf(P_UP_PEER_SAN, unknown);
      this.set(Dim.DestinationPrincipal, id);
      complete = complete && id != unknown;
    }
    if (haveAddress && complete) this.upstreams.store(address, 0, this.key, this.spill, this.spillHash);
  }

  /**
   * Istio's request.auth.principal: `<iss>/<sub>` of the JWT payload Envoy's jwt_authn filter stored
   * (Istio >= 1.21), else the principal the istio_authn filter of older proxies recorded.
   */
  private endUserPrincipal(): i32 {
    let u = this.sentinels.unknown;
    if (hb.readAt(P_JWT_ISS)) {
      let ok = hb.len > 0 && hb.len <= MAX_VALUE_BYTES && isValidUtf8(hb.ptr, hb.len);
      let iss = "";
      if (ok) iss = String.UTF8.decodeUnsafe(hb.ptr, hb.len);
      hb.release();
      if (ok && hb.readAt(P_JWT_SUB)) {
        let id = u;
        if (hb.len > 0 && hb.len <= MAX_VALUE_BYTES && isValidUtf8(hb.ptr, hb.len)) {
          let b = String.UTF8.encode(iss + "/" + String.UTF8.decodeUnsafe(hb.ptr, hb.len));
          if (b.byteLength <= MAX_VALUE_BYTES) id = this.internRange(changetype<usize>(b), b.byteLength, u);
        }
        hb.release();
        if (id != u) return id;
      }
    }
    return this.stringOf(P_END_USER, u);
  }

  /**
   * Cached facts (of the downstream connection, else of the upstream endpoint) as their reads would
   * have left the key and the spill state: they are read first for a request (spill state still
   * clear), so the cached spill hash is the one the reads would give.
   */
  private restoreFacts(downstream: bool, slot: i32): void {
    let spilled = false;
    let spillHash: u64 = 0;
    if (downstream) {
      this.connections.restore(slot, this.key);
      spilled = this.connections.spilledAt(slot);
      spillHash = this.connections.spillHashAt(slot);
    } else {
      this.upstreams.restore(slot, this.key);
      spilled = this.upstreams.spilledAt(slot);
      spillHash = this.upstreams.spillHashAt(slot);
    }
    if (spilled) {
      this.spill = true;
      this.spillHash = spillHash;
    }
  }

  /**
   * The downstream connection's facts: caller principal and peer metadata, own principal, mTLS.
   * True when the peer metadata (if read at all) was present.
   */
  private readDownstreamFacts(): bool {
    let complete = this.readPeer(true, Dim.SourceWorkload);
    let unknown = this.sentinels.unknown;
    // A URI SAN in the caller's certificate means the caller presented a certificate, which is what
    // connection.mtls says (Envoy expr context.cc: `mtls` is ssl()->peerCertificatePresented(),
    // `uri_san_peer_certificate` the first URI SAN of that certificate), so it answers both.
    let peerSan = false;
    if (this.wants(Dim.SourcePrincipal) && hb.readAt(P_DOWN_PEER_SAN)) {
      peerSan = hb.len > 0;
      this.set(Dim.SourcePrincipal, this.internHeld(unknown));
      hb.release();
    }
    if (this.wants(Dim.DestinationPrincipal)) this.set(Dim.DestinationPrincipal, this.stringOf(P_DOWN_LOCAL_SAN, unknown));
    if (this.wants(Dim.ConnectionSecurityPolicy)) {
      let policy = unknown;
      if (peerSan) policy = this.sentinels.mutualTls;
      else if (hb.readAt(P_MTLS)) {
        if (hb.len == 1) policy = load<u8>(hb.ptr) != 0 ? this.sentinels.mutualTls : this.sentinels.plaintext;
        hb.release();
      }
      this.set(Dim.ConnectionSecurityPolicy, policy);
    }
    return complete;
  }

  /** Id of the string at `path`, `fallback` when absent or unusable; marks a spill when full. */
  private stringOf(path: usize, fallback: i32): i32 {
    if (!hb.readAt(path)) return fallback;
    let id = this.internHeld(fallback);
    hb.release();
    return id;
  }

  private internHeld(fallback: i32): i32 {
    return this.internAt(hb.ptr, hb.len, fallback);
  }

  /** Id of the UTF-8 value at [ptr, ptr + len), `fallback` when it is empty, too long or not UTF-8. */
  private internAt(ptr: usize, len: i32, fallback: i32): i32 {
    if (len == 0 || len > MAX_VALUE_BYTES) return fallback;
    let id = this.strings.recent(ptr, len);
    if (id >= 0) return id;
    if (!isValidUtf8(ptr, len)) return fallback;
    return this.internRange(ptr, len, fallback);
  }

  private spill: bool = false;
  private spillHash: u64 = 0;

  private internRange(ptr: usize, len: i32, fallback: i32): i32 {
    let id = this.strings.intern(ptr, len, hashBytes(ptr, len, this.strings.seed));
    if (id < 0) {
      // Unkeyed: the estimate of distinct overflowed keys is then the same for the same requests in
      // every VM. A value only spills once the table is full, so this second hash is rare.
      this.spill = true;
      this.spillHash = mix64(this.spillHash ^ hashBytes(ptr, len, 0));
      return fallback;
    }
    return id;
  }

  /**
   * Reads the five labels of the caller (`downstream`) or of the upstream peer into the key from
   * `base`; false when they were wanted but the peer has no metadata.
   */
  private readPeer(downstream: bool, base: i32): bool {
    if (!(downstream ? this.downstreamPeerWanted : this.upstreamPeerWanted)) return true;
    let form = peerForm;
    let emptyWhole = false;
    if (form == PEER_UNKNOWN || form == PEER_STRUCT) {
      if (hb.readAt(downstream ? DOWNSTREAM_PEER.whole : UPSTREAM_PEER.whole)) {
        let set = this.peers.setOf(hb.ptr, hb.len);
        if (this.peers.restore(set, downstream, hb.ptr, hb.len, this.key, base)) {
          hb.release();
          return true;
        }
        let fields = pairsCount(hb.ptr, hb.len);
        if (fields > 0) {
          this.peerFromPairs(base);
          // An object with a label that did not fit stays out: each read of it must add to the spill state.
          if (!this.spill) this.peers.store(set, downstream, hb.ptr, hb.len, this.key, base);
          hb.release();
          peerForm = PEER_STRUCT;
          return true;
        }
        hb.release();
        emptyWhole = fields == 0;
      }
      if (form == PEER_STRUCT) return false;
    }
    // One read decides which source holds the peer's labels, so a request from a caller without
    // peer metadata (plaintext, proxyless) costs at most two reads, not ten.
    let legacy = false;
    if (form != PEER_FLATNODE && (form == PEER_FIELD_OBJECT || emptyWhole) && hb.readAt(this.peerPath(downstream, false, 0))) {
      peerForm = PEER_FIELD_OBJECT;
    } else if (form != PEER_FIELD_OBJECT && hb.readAt(this.peerPath(downstream, true, 0))) {
      legacy = true;
      peerForm = PEER_FLATNODE;
    } else return false;
    let unknown = this.sentinels.unknown;
    if (this.wants(base)) this.set(base, this.internHeld(unknown));
    hb.release();
    for (let i = 1; i < 5; i++) if (this.wants(base + i)) this.set(base + i, this.stringOf(this.peerPath(downstream, legacy, i), unknown));
    return true;
  }

  /** Path of label `i` (PeerPaths order) of a peer stored field by field (1.24) or as a FlatNode. */
  private peerPath(downstream: bool, legacy: bool, i: i32): usize {
    if (downstream) return legacy ? DOWNSTREAM_PEER.legacy[i] : DOWNSTREAM_PEER.current[i];
    return legacy ? UPSTREAM_PEER.legacy[i] : UPSTREAM_PEER.current[i];
  }

  /** The wanted labels out of the pairs `hb` holds (checked well-formed by pairsCount). */
  private peerFromPairs(base: i32): void {
    let ptr = hb.ptr;
    let n = <usize>load<u32>(ptr);
    let data = ptr + 4 + n * 8;
    let unknown = this.sentinels.unknown;
    for (let i: usize = 0; i < n; i++) {
      let kl = <usize>load<u32>(ptr + 4 + i * 8);
      let vl = <usize>load<u32>(ptr + 8 + i * 8);
      let value = data + kl + 1;
      let field = peerField(data, kl);
      if (field >= 0 && this.wants(base + field)) this.set(base + field, this.internAt(value, <i32>vl, unknown));
      data = value + vl + 1;
    }
  }

  /**
   * The service host: Istio's cluster metadata, else the host of an Istio cluster name
   * `dir|port|subset|host` (inbound clusters have none), else the request's host.
   */
  private destinationService(): i32 {
    let u = this.sentinels.unknown;
    if (P_SERVICE_HOST.read()) {
      let id = this.internHeld(u);
      hb.release();
      if (id != u) return id;
    }
    if (P_CLUSTER_NAME.read()) {
      let ptr = hb.ptr;
      let len = hb.len;
      let bars = 0;
      let start = -1;
      for (let i = 0; i < len; i++) {
        if (load<u8>(ptr + i) == 0x7c) {
          bars++;
          if (bars == 3) start = i + 1;
        }
      }
      let id = -1;
      if (bars == 3 && start < len && len <= MAX_VALUE_BYTES && isValidUtf8(ptr + start, len - start)) {
        id = this.internRange(ptr + start, len - start, u);
      }
      hb.release();
      if (id >= 0 && id != u) return id;
    }
    if (!hb.readAt(P_HOST)) return u;
    let len = hostWithoutPort(hb.ptr, hb.len);
    let id = this.internAt(hb.ptr, len, u);
    hb.release();
    return id;
  }

  /** Id of a gRPC status code (0..16) as a decimal string. */
  private decimal(v: i32): i32 {
    let id = this.grpcIds[v];
    if (id >= 0) return id;
    let b = String.UTF8.encode(v.toString());
    id = this.internRange(changetype<usize>(b), b.byteLength, this.sentinels.unknown);
    if (!this.spill) this.grpcIds[v] = id;
    return id;
  }

  private flagsId(flags: u64): i32 {
    if ((flags & KNOWN_MASK) == 0) return this.sentinels.none;
    if (flags == this.flagCacheMask && this.flagCacheId >= 0) return this.flagCacheId;
    let b = String.UTF8.encode(flagsToString(flags));
    let id = this.internRange(changetype<usize>(b), b.byteLength, this.sentinels.unknown);
    if (!this.spill) {
      this.flagCacheMask = flags;
      this.flagCacheId = id;
    }
    return id;
  }
}

/**
 * Number of pairs in a proxy-wasm pairs map (u32 count, a u32 key and value length per pair, then
 * each key and value followed by a NUL byte: proxy-wasm-cpp-host PairsUtil::marshalPairs), or -1 when
 * the bytes are not one: the lengths must account for the buffer exactly.
 */
function pairsCount(ptr: usize, len: i32): i32 {
  if (len < 4) return -1;
  let size = <u64>len;
  let n = <u64>load<u32>(ptr);
  if (4 + n * 8 > size) return -1;
  let at = 4 + n * 8;
  for (let i: u64 = 0; i < n; i++) {
    at += <u64>load<u32>(ptr + <usize>(4 + i * 8)) + <u64>load<u32>(ptr + <usize>(8 + i * 8)) + 2;
    if (at > size) return -1;
  }
  return at == size ? <i32>n : -1;
}

/** Up to 8 bytes of `name` from `from` as a little-endian word, zero-padded. */
function nameWord(name: string, from: i32): u64 {
  let b = String.UTF8.encode(name);
  let w: u64 = 0;
  for (let i = min(b.byteLength, from + 8) - 1; i >= from; i--) w = (w << 8) | <u64>load<u8>(changetype<usize>(b) + i);
  return w;
}

/**
 * Position in PeerPaths order of the pairs key at [ptr, ptr + len), or -1. Reading 8 bytes of a
 * 7-byte key stays inside the pairs: every key is followed by its NUL (checked by pairsCount), which
 * the mask drops.
 */
function peerField(ptr: usize, len: usize): i32 {
  if (len == 8) {
    let w = load<u64>(ptr);
    if (w == W_WORKLOAD) return 0;
    if (w == W_REVISION) return 3;
  } else if (len == 7) {
    let w = load<u64>(ptr) & 0x00ff_ffff_ffff_ffff;
    if (w == W_SERVICE) return 2;
    if (w == W_CLUSTER) return 4;
  } else if (len == 9 && load<u64>(ptr) == W_NAMESPACE && <u64>load<u8>(ptr + 8) == W_NAMESPACE_TAIL) return 1;
  return -1;
}

const GRPC = "application/grpc";

// "application/grpc" (also +proto, +json, -web variants), case-insensitive as media types are.
function startsWithGrpc(ptr: usize, len: i32): bool {
  return asciiCaselessAt(ptr, len, 0, GRPC);
}

/** Whether a gRPC content type is gRPC-Web (`application/grpc-web`, `-web+proto`, `-web-text`, …). */
function isGrpcWeb(ptr: usize, len: i32): bool {
  return asciiCaselessAt(ptr, len, GRPC.length, "-web");
}

/** Whether the bytes at [ptr + at, ptr + len) start with lower-case ASCII `text`, ignoring ASCII case. */
function asciiCaselessAt(ptr: usize, len: i32, at: i32, text: string): bool {
  if (len < at + text.length) return false;
  for (let i = 0; i < text.length; i++) {
    let c = <i32>load<u8>(ptr + at + i);
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c != text.charCodeAt(i)) return false;
  }
  return true;
}

/** A decimal header value read at `path` (0–999), else -1. */
function readDecimal(path: usize): i64 {
  if (!hb.readAt(path)) return -1;
  let v = parseDecimal(hb.ptr, hb.len, 3);
  hb.release();
  return v;
}

/** Length of `host[:port]` without the port (IPv6 literals in brackets keep their colons). */
function hostWithoutPort(ptr: usize, len: i32): i32 {
  for (let i = len - 1; i >= 0; i--) {
    let c = load<u8>(ptr + i);
    if (c == 0x3a) return i;
    if (c < 0x30 || c > 0x39) return len;
  }
  return len;
}
