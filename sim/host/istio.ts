// Builders for the Istio- and Envoy-specific attribute values a mesh stream carries: Istio's peer
// metadata filter state, Envoy's response flag bits, and dynamic metadata.
import { encodeStringMap, encodeStruct, FieldObject, FlatBufferState, Message, structToAttr, type Attr } from "./values.ts";

/**
 * Peer workload metadata as Istio's peer_metadata filter stores it under the filter-state keys
 * downstream_peer / upstream_peer (istio/proxy: a CelState holding WorkloadMetadataObject's
 * serializeAsProto() Struct). Field names are Istio's: type, workload, name, cluster, namespace,
 * service (canonical name), revision (canonical revision), app, version, identity, region,
 * availability_zone, labels. Empty fields are left out, as Istio leaves them out.
 */
export interface PeerInfo {
  workload?: string;
  namespace?: string;
  cluster?: string;
  service?: string;
  revision?: string;
  app?: string;
  version?: string;
  identity?: string;
  type?: "pod" | "deployment" | "job" | "cronjob";
  name?: string;
  region?: string;
  availability_zone?: string;
  labels?: Record<string, string>;
}

/**
 * The filter-state value for a peer: a map a filter reads field by field (filter_state → downstream_peer
 * → workload) or whole (the pairs of its fields; `labels` the pairs of the labels). Frozen, as the
 * CelState is immutable once set (its prototype is read-only).
 */
export function peerInfo(p: PeerInfo): Attr {
  const out: Record<string, Attr> = {};
  for (const [k, v] of Object.entries(p)) {
    if (k === "labels") {
      if (v && Object.keys(v).length > 0) out.labels = Object.freeze({ ...(v as Record<string, string>) });
    } else if (typeof v === "string" && v !== "") out[k] = v;
  }
  return Object.freeze(out);
}

/**
 * The same peer as Istio 1.24's peer_metadata filter stores it: a WorkloadMetadataObject, a filter-state
 * object with field support (readable field by field, empty when read whole). Its getField answers only
 * the baggage tokens, and answers each of them even when empty (`""`, not absent): a peer without a
 * workload name still has its namespace read. `type` of an unknown workload type falls through to the
 * instance name, as the switch does; `labels`, `identity` and the rest are not fields. Source: istio/proxy
 * extensions/common/metadata_object.cc, release-1.24: ALL_BAGGAGE_TOKENS, WorkloadMetadataObject::getField.
 */
export function peerFieldObject(p: PeerInfo): FieldObject {
  return new FieldObject({
    namespace: p.namespace ?? "",
    cluster: p.cluster ?? "",
    service: p.service ?? "",
    revision: p.revision ?? "",
    app: p.app ?? "",
    version: p.version ?? "",
    workload: p.workload ?? "",
    type: p.type ?? p.name ?? "",
    name: p.name ?? "",
  });
}

/**
 * The peer as Istio 1.22/1.23's metadata exchange stores it under the filter-state key
 * `wasm.downstream_peer` / `wasm.upstream_peer`: a FlatBuffers FlatNode (istio/proxy
 * extensions/common/node_info.fbs: name, namespace, labels, owner, workload_name, istio_version,
 * mesh_id, cluster_id, …) read through cel-cpp's FlatBuffers-backed map. `labels` is a vector of KeyVal
 * tables keyed by `key` (flatbuffers_backed_impl.cc, ObjectStringIndexedMapImpl): a label name
 * answers with the whole KeyVal record, `{key, value}`, so its text is at `labels.<name>.value`.
 * A string field the FlatNode does not hold still answers, with "" (FlatBuffersBackedCelMap returns an
 * empty string view for an absent string), and Istio writes name, namespace, workload_name and
 * cluster_id even when empty (metadata_object.cc, convertWorkloadMetadataToFlatNode), so those four
 * are always present here.
 */
export function flatNodePeer(p: PeerInfo & { labels?: Record<string, string> }): FlatBufferState {
  const labels: Record<string, Attr> = {};
  const given: Record<string, string> = { ...(p.labels ?? {}) };
  if (p.service) given["service.istio.io/canonical-name"] = p.service;
  if (p.revision) given["service.istio.io/canonical-revision"] = p.revision;
  for (const [key, value] of Object.entries(given)) labels[key] = { key, value };
  const out: Record<string, Attr> = {
    name: p.name ?? "",
    namespace: p.namespace ?? "",
    workload_name: p.workload ?? "",
    cluster_id: p.cluster ?? "",
  };
  if (Object.keys(labels).length > 0) out.labels = labels;
  const strings: [number, string][] = [
    [0, p.name ?? ""],
    [1, p.namespace ?? ""],
    [4, p.workload ?? ""],
    [9, p.cluster ?? ""],
  ];
  return new FlatBufferState(out, encodeFlatNode(strings, Object.entries(given)));
}

/**
 * A FlatNode in FlatBuffers binary form (istio/proxy extensions/common/node_info.fbs, release-1.23:
 * field ids name 0, namespace 1, labels 2, …, cluster_id 9; KeyVal key 0, value 1; labels sorted by key,
 * as CreateVectorOfSortedTables leaves them). Laid out front to back: root offset, then each table
 * after its vtable, each string and vector after the table that points at it, as unsigned offsets must.
 */
export function encodeFlatNode(strings: [number, string][], labels: [string, string][]): Uint8Array {
  const out: number[] = [];
  const u16 = (v: number) => out.push(v & 0xff, (v >> 8) & 0xff);
  const u32 = (v: number) => out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  const set32 = (at: number, v: number) => {
    for (let i = 0; i < 4; i++) out[at + i] = (v >>> (8 * i)) & 0xff;
  };
  const align = () => {
    while (out.length % 4 !== 0) out.push(0);
  };
  // A table of offset fields (id → slot); returns the slot positions, to be pointed at what follows.
  const table = (fieldCount: number, present: number[]): Map<number, number> => {
    align();
    const vtable = out.length;
    u16(4 + 2 * fieldCount);
    u16(4 + 4 * present.length);
    for (let id = 0; id < fieldCount; id++) u16(present.includes(id) ? 4 + 4 * present.indexOf(id) : 0);
    align();
    const start = out.length;
    u32(start - vtable); // soffset: the vtable is at start - soffset
    const slots = new Map<number, number>();
    for (const id of present) {
      slots.set(id, out.length);
      u32(0);
    }
    return slots;
  };
  const string = (slot: number, text: string) => {
    align();
    set32(slot, out.length - slot);
    const b = new TextEncoder().encode(text);
    u32(b.length);
    out.push(...b, 0);
  };
  u32(0); // root offset
  const sorted = [...labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const present = [...strings.map(([id]) => id), ...(sorted.length > 0 ? [2] : [])].sort((a, b) => a - b);
  const node = table(10, present);
  set32(0, node.get(present[0])! - 4);
  for (const [id, text] of strings) string(node.get(id)!, text);
  if (sorted.length > 0) {
    align();
    const slot = node.get(2)!;
    set32(slot, out.length - slot);
    u32(sorted.length);
    const elements = sorted.map(() => {
      const at = out.length;
      u32(0);
      return at;
    });
    sorted.forEach(([key, value], i) => {
      const kv = table(2, [0, 1]);
      set32(elements[i], kv.get(0)! - 4 - elements[i]);
      string(kv.get(0)!, key);
      string(kv.get(1)!, value);
    });
  }
  return Uint8Array.from(out);
}

/**
 * Dynamic metadata as Envoy's jwt_authn filter leaves it when Istio (>= 1.21) configures it for a
 * RequestAuthentication: the verified payload under `payload` (pilot/pkg/security/authn
 * policy_applier.go, convertToEnvoyJwtConfig: PayloadInMetadata = filters.EnvoyJwtFilterPayload).
 */
export function jwtAuthnMetadata(payload: Record<string, unknown>): Message {
  return metadataMessage({ "envoy.filters.http.jwt_authn": { payload } });
}

/** Envoy's legacy response flag bits (StreamInfo::ResponseFlag), by their short access-log names. */
export const RESPONSE_FLAGS: Readonly<Record<string, number>> = {
  LH: 0x1,
  UH: 0x2,
  UT: 0x4,
  LR: 0x8,
  UR: 0x10,
  UF: 0x20,
  UC: 0x40,
  UO: 0x80,
  NR: 0x100,
  DI: 0x200,
  FI: 0x400,
  RL: 0x800,
  UAEX: 0x1000,
  RLSE: 0x2000,
  DC: 0x4000,
  URX: 0x8000,
  SI: 0x10000,
  IH: 0x20000,
  DPE: 0x40000,
  UMSDR: 0x80000,
  RFCF: 0x100000,
  NFCF: 0x200000,
  DT: 0x400000,
  UPE: 0x800000,
  NC: 0x1000000,
  OM: 0x2000000,
  DF: 0x4000000,
  DO: 0x8000000,
  DR: 0x10000000,
  UDO: 0x20000000,
};

/** The response.flags value (int64 bitmask) for a list of short flag names, e.g. ["UH", "UF"]. */
export function responseFlags(names: readonly string[]): number {
  let bits = 0;
  for (const n of names) {
    const bit = RESPONSE_FLAGS[n];
    if (bit === undefined) throw new RangeError(`unknown Envoy response flag "${n}"`);
    bits |= bit;
  }
  return bits;
}

/**
 * Dynamic metadata (envoy.config.core.v3.Metadata, filter_metadata = 1): readable field by field
 * (metadata → filter_metadata → <namespace> → <key>), protobuf-encoded when read whole.
 */
export function metadataMessage(filterMetadata: Record<string, Record<string, unknown>>): Message {
  return new Message({ filter_metadata: structToAttr(filterMetadata) }, () => encodeStringMap(filterMetadata, encodeStruct));
}
