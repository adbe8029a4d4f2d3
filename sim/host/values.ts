// Typed attribute values and Envoy's byte encodings for them (source/extensions/common/wasm/context.cc,
// serializeValue): strings and bytes raw; int64/uint64/double as 8 bytes little-endian; bool as 1 byte;
// durations and timestamps as int64 nanoseconds; maps and lists in the proxy-wasm pairs format.
// Callers build attribute trees from plain JS values; the helpers below pin a type where a plain
// value would be ambiguous (a number is an int64 when integral, else a double).

export type Kind = "string" | "bytes" | "int" | "uint" | "double" | "bool" | "duration" | "timestamp";

/** A scalar with an explicit CEL type. */
export class Typed {
  constructor(
    readonly kind: Kind,
    readonly value: string | Uint8Array | bigint | number | boolean,
  ) {}
}

/**
 * A protobuf message (e.g. Envoy's Node): fields are reachable by name; read whole, it serializes
 * to protobuf wire format, as Envoy does for CEL message values.
 */
export class Message {
  constructor(
    readonly fields: Record<string, Attr>,
    readonly encode: () => Uint8Array,
  ) {}
}

/**
 * A filter-state object with field support (Envoy's FilterStateObjectWrapper): fields are readable,
 * but the object itself lists no keys, so reading it whole yields an empty map.
 */
export class FieldObject {
  constructor(readonly fields: Record<string, Attr>) {}
}

/**
 * A FlatBuffers CelState (Istio 1.22/1.23's FlatNode peer): its fields walk as a map, and read whole
 * under its top-level name (`downstream_peer`, the filter state `wasm.downstream_peer`) it is the raw
 * FlatBuffer, because Envoy's findValue passes `last` to CelState::exprValue, which then returns the
 * bytes instead of the FlatBuffers-backed map (envoy source/extensions/common/wasm/context.cc
 * Context::findValue; source/extensions/filters/common/expr/cel_state.cc CelState::exprValue).
 */
export class FlatBufferState {
  constructor(
    readonly fields: Record<string, Attr>,
    readonly bytes: Uint8Array,
  ) {}
}

/** CEL null (a google.protobuf.Value null): present, but Envoy cannot serialize it. */
export const NULL_VALUE = Object.freeze({ null: true as const });

export type Attr =
  | typeof NULL_VALUE
  | string
  | boolean
  | number
  | bigint
  | Uint8Array
  | Date
  | Typed
  | Message
  | FieldObject
  | FlatBufferState
  | Attr[]
  | { [key: string]: Attr | undefined };

export const str = (v: string) => new Typed("string", v);
export const bytes = (v: Uint8Array | string) => new Typed("bytes", typeof v === "string" ? new TextEncoder().encode(v) : v);
export const int = (v: number | bigint) => new Typed("int", BigInt(v));
export const uint = (v: number | bigint) => new Typed("uint", BigInt(v));
export const double = (v: number) => new Typed("double", v);
export const bool = (v: boolean) => new Typed("bool", v);
/** A duration given in nanoseconds. */
export const duration = (ns: number | bigint) => new Typed("duration", BigInt(ns));
/** A timestamp given as a Date or as nanoseconds since the Unix epoch. */
export const timestamp = (t: Date | number | bigint) => new Typed("timestamp", t instanceof Date ? BigInt(t.getTime()) * 1_000_000n : BigInt(t));

/** Encoded property bytes; a string stands for its UTF-8 bytes and is written without a copy. */
export type Encoded = Uint8Array | string;

const enc = new TextEncoder();
// One 8-byte scratch word viewed as each fixed-width type; results are copied out of it (slice(), or
// straight into the module's memory by the property path).
const scratchF64 = new Float64Array(1);
const scratchI64 = new BigInt64Array(scratchF64.buffer);
const scratchBytes = new Uint8Array(scratchF64.buffer);
const scratchWords = new Int32Array(scratchF64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!LITTLE_ENDIAN) throw new Error("the proxy-wasm host assumes a little-endian platform, as WebAssembly memory is");

const toBigInt = (v: unknown) => (typeof v === "bigint" ? v : BigInt(v as number));

export function isPlainObject(v: unknown): v is { [key: string]: Attr | undefined } {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}

/**
 * Writes a JS safe integer into the scratch word as a little-endian int64 without going through BigInt
 * (most integer attributes are numbers; the BigInt round trip was the costliest part of a read).
 */
function setSafeInteger(value: unknown): boolean {
  if (typeof value !== "number" || !Number.isSafeInteger(value)) return false;
  const high = Math.floor(value / 2 ** 32);
  scratchWords[0] = value - high * 2 ** 32;
  scratchWords[1] = high;
  return true;
}

// Shared answers of encodeScalarShared for bool.
const FALSE_BYTE = new Uint8Array([0]);
const TRUE_BYTE = new Uint8Array([1]);

/**
 * Encodes a scalar of a known kind; `value` may be a plain JS value of a compatible type. A fixed-width
 * value comes back in a buffer shared by every call (valid until the next one): the property path copies
 * the bytes into the module at once, so a read allocates no array of its own; serialize() copies them.
 */
function encodeScalarShared(kind: Kind, value: unknown): Encoded {
  switch (kind) {
    case "string":
      return String(value);
    case "bytes":
      return value instanceof Uint8Array ? value : enc.encode(String(value));
    case "int":
    case "duration":
    case "uint":
      // A BigInt64Array store wraps modulo 2^64, so signed and unsigned values take the same bytes
      // as BigInt.asIntN/asUintN would give them, without allocating the wrapped BigInt.
      if (typeof value === "bigint") scratchI64[0] = value;
      else if (!setSafeInteger(value)) scratchI64[0] = toBigInt(value);
      return scratchBytes;
    case "timestamp":
      scratchI64[0] = value instanceof Date ? BigInt(value.getTime()) * 1_000_000n : toBigInt(value);
      return scratchBytes;
    case "double":
      scratchF64[0] = Number(value);
      return scratchBytes;
    case "bool":
      return value ? TRUE_BYTE : FALSE_BYTE;
  }
}

// Encodings of frozen maps (a workload's peer object, shared by all its streams), computed once: a frozen
// value cannot change, so neither can its encoding. Envoy serializes on every read; this only keeps the
// host's own JavaScript out of the figures of a filter that reads such an object whole.
const frozenEncodings = new WeakMap<object, Uint8Array>();
const cachedEncodings = new WeakSet<Uint8Array>();

const isShared = (e: Encoded) => e === scratchBytes || e === TRUE_BYTE || e === FALSE_BYTE || (typeof e !== "string" && cachedEncodings.has(e));

/** The CEL kind a plain value takes when no schema says otherwise. */
function inferKind(v: unknown): Kind | undefined {
  switch (typeof v) {
    case "string":
      return "string";
    case "boolean":
      return "bool";
    case "bigint":
      return "int";
    case "number":
      return Number.isInteger(v) ? "int" : "double";
  }
  if (v instanceof Uint8Array) return "bytes";
  if (v instanceof Date) return "timestamp";
  return undefined;
}

export const byteLength = (e: Encoded) => (typeof e === "string" ? Buffer.byteLength(e) : e.length);

/**
 * The proxy-wasm pairs format: u32 count, then u32 key length and u32 value length per pair, then
 * every key and value followed by a NUL byte; all integers little-endian.
 */
export function encodePairs(pairs: [Encoded, Encoded][]): Uint8Array {
  // Sized first, then written in place into one buffer: a whole-object read (a peer's Struct) is on the
  // per-request path of a filter, and a TextEncoder copy per key and value cost more than the rest.
  const n = pairs.length;
  let size = 4 + n * 8;
  for (let i = 0; i < n; i++) size += byteLength(pairs[i][0]) + byteLength(pairs[i][1]) + 2;
  const buf = Buffer.allocUnsafe(size);
  buf.writeUInt32LE(n, 0);
  let off = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    const kl = writeEncoded(buf, pairs[i][0], off);
    buf[off + kl] = 0;
    off += kl + 1;
    const vl = writeEncoded(buf, pairs[i][1], off);
    buf[off + vl] = 0;
    off += vl + 1;
    buf.writeUInt32LE(kl, 4 + i * 8);
    buf.writeUInt32LE(vl, 8 + i * 8);
  }
  // A plain view (Buffer's slice() would share memory where callers expect a copy).
  return new Uint8Array(buf.buffer, buf.byteOffset, size);
}

function writeEncoded(buf: Buffer, e: Encoded, at: number): number {
  if (typeof e === "string") return buf.write(e, at, "utf8");
  buf.set(e, at);
  return e.length;
}

/** Decodes the pairs format (the inverse of encodePairs), as Envoy's toPairs does. */
export function decodePairs(buf: Uint8Array): [string, string][] {
  if (buf.length < 4) return [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = dv.getUint32(0, true);
  if (4 + n * 8 > buf.length) return [];
  const dec = new TextDecoder();
  const out: [string, string][] = [];
  let off = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    const kl = dv.getUint32(4 + i * 8, true);
    const vl = dv.getUint32(8 + i * 8, true);
    if (off + kl + vl + 2 > buf.length) return [];
    const k = dec.decode(buf.subarray(off, off + kl));
    off += kl + 1;
    const v = dec.decode(buf.subarray(off, off + vl));
    off += vl + 1;
    out.push([k, v]);
  }
  return out;
}

/**
 * Envoy's serializeValue for any attribute value. Returns undefined for a value that cannot be
 * serialized (Envoy answers SerializationFailure).
 */
export function serialize(v: Attr | undefined, kind?: Kind): Encoded | undefined {
  const e = serializeShared(v, kind);
  return e !== undefined && isShared(e) ? (e as Uint8Array).slice() : e;
}

/** serialize, except that a scalar may come back in a shared buffer (see encodeScalarShared). */
export function serializeShared(v: Attr | undefined, kind?: Kind): Encoded | undefined {
  if (v === undefined || v === null || v === NULL_VALUE) return undefined;
  if (typeof v === "string" && kind === undefined) return v;
  if (v instanceof Typed) return encodeScalarShared(v.kind, v.value);
  if (v instanceof Message) return v.encode();
  if (v instanceof FieldObject) return encodePairs([]);
  // Reached through filter_state.<key>: FilterStateWrapper calls exprValue(arena, false), the map.
  if (v instanceof FlatBufferState) return serializeShared(v.fields);
  const k = kind ?? inferKind(v);
  if (k) return encodeScalarShared(k, v);
  if (Array.isArray(v)) {
    const items: [Encoded, Encoded][] = [];
    for (const item of v) {
      const e = serialize(item);
      if (e === undefined) return undefined;
      items.push([e, ""]);
    }
    return encodePairs(items);
  }
  if (isPlainObject(v)) {
    const frozen = Object.isFrozen(v);
    const cached = frozen ? frozenEncodings.get(v) : undefined;
    if (cached) return cached;
    const pairs: [Encoded, Encoded][] = [];
    for (const [key, item] of Object.entries(v)) {
      if (item === undefined) continue;
      const e = serialize(item);
      if (e === undefined) return undefined;
      pairs.push([key, e]);
    }
    const out = encodePairs(pairs);
    if (frozen) {
      frozenEncodings.set(v, out);
      cachedEncodings.add(out);
    }
    return out;
  }
  return undefined;
}

/** One step of a property path into a value: map key, message field, or list index. */
export function child(v: Attr | undefined, key: string): Attr | undefined {
  if (v === undefined || v === null || v === NULL_VALUE) return undefined;
  if (v instanceof Message || v instanceof FieldObject || v instanceof FlatBufferState) return v.fields[key];
  if (Array.isArray(v)) {
    if (!/^-?\d+$/.test(key)) return undefined;
    return v[Number(key)];
  }
  if (isPlainObject(v)) return Object.hasOwn(v, key) ? (v as Record<string, Attr>)[key] : undefined;
  return undefined;
}

// ---- protobuf wire format, for message values read whole (xds.node) ----

/** Minimal protobuf wire-format writer. */
class ProtoWriter {
  private chunks: number[] = [];
  varint(n: number | bigint) {
    let x = BigInt(n);
    if (x < 0n) x += 1n << 64n;
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      this.chunks.push(b);
    } while (x > 0n);
  }
  tag(field: number, wire: number) {
    this.varint((field << 3) | wire);
  }
  bytes(field: number, b: Uint8Array) {
    this.tag(field, 2);
    this.varint(b.length);
    for (const x of b) this.chunks.push(x);
  }
  string(field: number, s: string) {
    if (s !== "") this.bytes(field, enc.encode(s));
  }
  double(field: number, d: number) {
    this.tag(field, 1);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, d, true);
    for (const x of b) this.chunks.push(x);
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

/** google.protobuf.Value for a JSON-like value. */
function encodeProtoValue(v: unknown): Uint8Array {
  const w = new ProtoWriter();
  if (v === null || v === undefined) {
    w.tag(1, 0);
    w.varint(0);
  } else if (typeof v === "number") w.double(2, v);
  else if (typeof v === "string") w.bytes(3, enc.encode(v));
  else if (typeof v === "boolean") {
    w.tag(4, 0);
    w.varint(v ? 1 : 0);
  } else if (Array.isArray(v)) {
    const list = new ProtoWriter();
    for (const item of v) list.bytes(1, encodeProtoValue(item));
    w.bytes(6, list.finish());
  } else w.bytes(5, encodeStruct(v as Record<string, unknown>));
  return w.finish();
}

/**
 * A message whose field 1 is a map<string, V> (Struct.fields, Metadata.filter_metadata), keys sorted
 * for a deterministic encoding.
 */
export function encodeStringMap<V>(obj: Record<string, V>, encodeValue: (v: V) => Uint8Array): Uint8Array {
  const w = new ProtoWriter();
  for (const key of Object.keys(obj).sort()) {
    const entry = new ProtoWriter();
    entry.string(1, key);
    entry.bytes(2, encodeValue(obj[key]));
    w.bytes(1, entry.finish());
  }
  return w.finish();
}

/** google.protobuf.Struct. */
export const encodeStruct = (obj: Record<string, unknown>): Uint8Array => encodeStringMap(obj, encodeProtoValue);

/** JSON-like metadata (google.protobuf.Struct semantics: every number is a double) as attributes. */
export function structToAttr(v: unknown): Attr {
  if (typeof v === "number") return double(v);
  if (Array.isArray(v)) return v.map(structToAttr);
  if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, structToAttr(x)]));
  if (v === null || v === undefined) return NULL_VALUE;
  return v as Attr;
}

export interface NodeInfo {
  id?: string;
  cluster?: string;
  /** Node metadata as Istio sets it (NAME, NAMESPACE, WORKLOAD_NAME, CLUSTER_ID, MESH_ID, LABELS, …). */
  metadata?: Record<string, unknown>;
  locality?: { region?: string; zone?: string; sub_zone?: string };
}

/** envoy.config.core.v3.Node as a message attribute (id = 1, cluster = 2, metadata = 3, locality = 4). */
export function nodeMessage(node: NodeInfo): Message {
  const fields: Record<string, Attr> = {
    id: node.id ?? "",
    cluster: node.cluster ?? "",
    metadata: structToAttr(node.metadata ?? {}),
  };
  if (node.locality) fields.locality = { region: "", zone: "", sub_zone: "", ...node.locality };
  return new Message(fields, () => {
    const w = new ProtoWriter();
    w.string(1, node.id ?? "");
    w.string(2, node.cluster ?? "");
    if (node.metadata && Object.keys(node.metadata).length > 0) w.bytes(3, encodeStruct(node.metadata));
    if (node.locality) {
      const l = new ProtoWriter();
      l.string(1, node.locality.region ?? "");
      l.string(2, node.locality.zone ?? "");
      l.string(3, node.locality.sub_zone ?? "");
      w.bytes(4, l.finish());
    }
    return w.finish();
  });
}
