// Checked wrappers over the host functions. None of them throws: every failure is a return value,
// because an AssemblyScript exception aborts the VM and Envoy would stop running the plugin.
import {
  proxy_log,
  proxy_get_property,
  proxy_get_buffer_bytes,
  proxy_get_header_map_value,
  proxy_get_current_time_nanoseconds,
  proxy_set_tick_period_milliseconds,
  proxy_http_call,
  proxy_define_metric,
  proxy_increment_metric,
  proxy_done,
  LogLevelValues,
  WasmResultValues,
  BufferTypeValues,
  HeaderMapTypeValues,
  MetricTypeValues,
} from "./abi";
import { free } from "./memory";

export { LogLevelValues as LogLevel };

// Out-parameters for host calls: [0] data pointer, [4] size / token / u64 low half, [8] u64 high half.
// A global buffer, so the per-request path allocates nothing to receive a result.
const outSlots = new ArrayBuffer(16);
const OUT: usize = changetype<usize>(outSlots);

/**
 * A value the host copied into our memory (with our exported malloc). `ptr`/`len` are valid until
 * `release()`; `release()` must be called exactly once per successful `read*` call.
 */
export class HostBytes {
  ptr: usize = 0;
  len: i32 = 0;

  release(): void {
    if (this.ptr != 0) free(this.ptr);
    this.ptr = 0;
    this.len = 0;
  }

  /** The value as a little-endian int64, or `fallback` when it is not exactly 8 bytes. */
  asI64(fallback: i64): i64 {
    return this.len == 8 ? load<i64>(this.ptr) : fallback;
  }

  /** Copies the value into a new string when it is valid UTF-8, else returns `fallback`. */
  asString(fallback: string): string {
    if (!isValidUtf8(this.ptr, this.len)) return fallback;
    return String.UTF8.decodeUnsafe(this.ptr, this.len);
  }

  /**
   * Reads a property by its path, given as pre-encoded path segments joined by NUL bytes (Envoy's
   * encoding). Returns false when the property is absent or the call failed. A method rather than a
   * function of (path, into): `this` is not reference-counted.
   */
  read(path: ArrayBuffer): bool {
    return this.readAt(changetype<usize>(path));
  }

  /**
   * `read` of a path made by `constantPath`. The per-request reads take the path as a pointer: an
   * ArrayBuffer argument is retained and released on every call, which across a request's reads cost
   * as much as the filter's own bookkeeping.
   */
  readAt(path: usize): bool {
    store<usize>(OUT, 0);
    store<u32>(OUT, 0, 4);
    return this.take(proxy_get_property(path, changetype<ArrayBuffer>(path).byteLength, OUT, OUT + 4));
  }

  /** Holds the value a host call left in the out-slots; false (and nothing held) when it failed. */
  take(status: u32): bool {
    let ptr = load<usize>(OUT);
    let len = load<u32>(OUT, 4);
    if (status != WasmResultValues.Ok) {
      // A host that allocated before failing still handed the block to us.
      if (ptr != 0) free(ptr);
      return false;
    }
    this.ptr = ptr;
    this.len = ptr == 0 ? 0 : <i32>len;
    return true;
  }
}

/** Reads `length` bytes of a host buffer (e.g. the plugin configuration). */
export function readBuffer(kind: BufferTypeValues, length: u32, into: HostBytes): bool {
  store<usize>(OUT, 0);
  store<u32>(OUT, 0, 4);
  // The SDK's default onConfigure passes `length` where the size pointer belongs; here the host gets
  // the address of a real out-slot.
  return into.take(proxy_get_buffer_bytes(kind, 0, length, OUT, OUT + 4));
}

/** Reads one header of the response to an outgoing HTTP call. */
export function readHttpCallResponseHeader(name: ArrayBuffer, into: HostBytes): bool {
  store<usize>(OUT, 0);
  store<u32>(OUT, 0, 4);
  return into.take(proxy_get_header_map_value(HeaderMapTypeValues.HttpCallResponseHeaders, changetype<usize>(name), name.byteLength, OUT, OUT + 4));
}

/** Host clock in nanoseconds since the epoch; 0 if the host refuses. */
export function nowNanos(): u64 {
  store<u64>(OUT, 0);
  if (proxy_get_current_time_nanoseconds(OUT) != WasmResultValues.Ok) return 0;
  return load<u64>(OUT);
}

export function setTickPeriodMs(ms: u32): bool {
  return proxy_set_tick_period_milliseconds(ms) == WasmResultValues.Ok;
}

export function log(level: LogLevelValues, message: string): void {
  let bytes = String.UTF8.encode(message);
  proxy_log(level, changetype<usize>(bytes), bytes.byteLength);
}

/**
 * Header list in the proxy-wasm pair encoding: u32 count, then (u32 key size, u32 value size) per
 * pair, then each key and value NUL-terminated.
 */
export class HeaderList {
  private keys: Array<ArrayBuffer> = [];
  private values: Array<ArrayBuffer> = [];

  add(key: string, value: string): void {
    this.keys.push(String.UTF8.encode(key));
    this.values.push(String.UTF8.encode(value));
  }

  serialize(): ArrayBuffer {
    let n = this.keys.length;
    let size = 4 + 8 * n;
    for (let i = 0; i < n; i++) size += this.keys[i].byteLength + this.values[i].byteLength + 2;
    let out = new ArrayBuffer(size);
    let base = changetype<usize>(out);
    store<u32>(base, n);
    let data = base + 4 + 8 * n;
    for (let i = 0; i < n; i++) {
      let k = this.keys[i];
      let v = this.values[i];
      store<u32>(base + 4 + 8 * i, k.byteLength);
      store<u32>(base + 8 + 8 * i, v.byteLength);
      memory.copy(data, changetype<usize>(k), k.byteLength);
      data += k.byteLength + 1; // the NUL is already there: ArrayBuffer memory starts zeroed
      memory.copy(data, changetype<usize>(v), v.byteLength);
      data += v.byteLength + 1;
    }
    return out;
  }
}

const noTrailers = new HeaderList().serialize();

/**
 * Starts an HTTP call to an Envoy cluster. Returns the call's token, or -1 when the host refused it
 * (unknown cluster, bad headers).
 */
export function httpCall(cluster: ArrayBuffer, headers: ArrayBuffer, body: Uint8Array, timeoutMs: u32): i64 {
  store<u32>(OUT, 0, 4);
  let status = proxy_http_call(
    changetype<usize>(cluster),
    cluster.byteLength,
    changetype<usize>(headers),
    headers.byteLength,
    body.dataStart,
    body.byteLength,
    changetype<usize>(noTrailers),
    noTrailers.byteLength,
    timeoutMs,
    OUT + 4,
  );
  if (status != WasmResultValues.Ok) return -1;
  return <i64>load<u32>(OUT, 4);
}

/** Defines (or finds: Envoy shares metrics by name) a counter in the proxy's stats; -1 when refused. */
export function defineCounter(name: string): i64 {
  let bytes = String.UTF8.encode(name);
  store<u32>(OUT, 0, 4);
  if (proxy_define_metric(MetricTypeValues.Counter, changetype<usize>(bytes), bytes.byteLength, OUT + 4) != WasmResultValues.Ok) return -1;
  return <i64>load<u32>(OUT, 4);
}

/** Adds `delta` to a counter from defineCounter (nothing for a refused counter or delta 0). */
export function incrementCounter(id: i64, delta: i64): void {
  if (id >= 0 && delta > 0) proxy_increment_metric(<u32>id, delta);
}

/** Completes a root context's shutdown that its proxy_on_done deferred (answered false). */
export function finishShutdown(): bool {
  return proxy_done() == WasmResultValues.Ok;
}

/** Strict UTF-8 check (no overlongs, no surrogates, nothing above U+10FFFF). */
export function isValidUtf8(ptr: usize, len: i32): bool {
  let i = 0;
  while (i < len) {
    // Identities and labels are ASCII: eight bytes without a high bit are eight valid characters.
    if (i + 8 <= len && (load<u64>(ptr + i) & 0x8080_8080_8080_8080) == 0) {
      i += 8;
      continue;
    }
    let b0 = <u32>load<u8>(ptr + i);
    if (b0 < 0x80) {
      i++;
      continue;
    }
    let need = 0;
    let min: u32 = 0;
    let cp: u32 = 0;
    if ((b0 & 0xe0) == 0xc0) {
      need = 1;
      min = 0x80;
      cp = b0 & 0x1f;
    } else if ((b0 & 0xf0) == 0xe0) {
      need = 2;
      min = 0x800;
      cp = b0 & 0x0f;
    } else if ((b0 & 0xf8) == 0xf0) {
      need = 3;
      min = 0x10000;
      cp = b0 & 0x07;
    } else return false;
    if (i + need >= len) return false;
    for (let k = 1; k <= need; k++) {
      let b = <u32>load<u8>(ptr + i + k);
      if ((b & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += need + 1;
  }
  return true;
}

/** Encodes a property path: segments joined by NUL, as Envoy's proxy_get_property expects. */
export function propertyPath(segments: Array<string>): ArrayBuffer {
  let joined = segments.join("\0");
  return String.UTF8.encode(joined);
}

// The paths of constantPath, held for the VM's lifetime so that their pointers stay valid.
const constantPaths: Array<ArrayBuffer> = [];

/** A property path (see propertyPath) for `HostBytes.readAt`, valid for the VM's lifetime. */
export function constantPath(segments: Array<string>): usize {
  let path = propertyPath(segments);
  constantPaths.push(path);
  return changetype<usize>(path);
}

/** Reads the plugin configuration buffer; returns null when the host has none. */
export function readPluginConfiguration(size: u32): HostBytes | null {
  let bytes = new HostBytes();
  if (size == 0 || !readBuffer(BufferTypeValues.PluginConfiguration, size, bytes)) return null;
  return bytes;
}
