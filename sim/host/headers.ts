// An Envoy header map as the ABI sees it: ordered entries, lower-cased keys, repeated keys allowed,
// get returns the first value; byteSize is what Envoy's HeaderMap::byteSize() reports (sum of key
// and value lengths), which the ABI's get_header_map_size returns and request.total_size adds.
import { encodePairs } from "./values.ts";

export type HeaderInput = Iterable<readonly [string, string]> | Record<string, string | readonly string[]>;

export class HeaderMap {
  /** Flat [key0, value0, key1, value1, …]. */
  private kv: string[] = [];
  private encoded: Uint8Array | null = null;
  private bytes = -1;

  constructor(input?: HeaderInput) {
    if (!input) return;
    if (Array.isArray(input)) {
      // The common input, read without an iterator and a destructured pair per header.
      for (let i = 0; i < input.length; i++) this.kv.push(input[i][0].toLowerCase(), input[i][1]);
    } else if (Symbol.iterator in input) {
      for (const [k, v] of input as Iterable<readonly [string, string]>) this.kv.push(k.toLowerCase(), v);
    } else {
      for (const [k, v] of Object.entries(input)) {
        for (const x of typeof v === "string" ? [v] : v) this.kv.push(k.toLowerCase(), x);
      }
    }
  }

  private touch() {
    this.encoded = null;
    this.bytes = -1;
  }

  get size(): number {
    return this.kv.length >> 1;
  }

  get(key: string): string | undefined {
    const k = key.toLowerCase();
    for (let i = 0; i < this.kv.length; i += 2) if (this.kv[i] === k) return this.kv[i + 1];
    return undefined;
  }

  add(key: string, value: string) {
    this.kv.push(key.toLowerCase(), value);
    this.touch();
  }

  /** Envoy's setCopy: replaces the first entry with the key and drops the others, or appends. */
  replace(key: string, value: string) {
    const k = key.toLowerCase();
    let at = -1;
    for (let j = 0; j < this.kv.length && at < 0; j += 2) if (this.kv[j] === k) at = j;
    if (at === -1) {
      this.kv.push(k, value);
    } else {
      this.kv[at + 1] = value;
      for (let j = this.kv.length - 2; j > at; j -= 2) if (this.kv[j] === k) this.kv.splice(j, 2);
    }
    this.touch();
  }

  remove(key: string) {
    const k = key.toLowerCase();
    for (let j = this.kv.length - 2; j >= 0; j -= 2) if (this.kv[j] === k) this.kv.splice(j, 2);
    this.touch();
  }

  setAll(pairs: [string, string][]) {
    this.kv = [];
    for (const [k, v] of pairs) this.kv.push(k.toLowerCase(), v);
    this.touch();
  }

  byteSize(): number {
    if (this.bytes < 0) {
      let n = 0;
      for (const s of this.kv) n += Buffer.byteLength(s);
      this.bytes = n;
    }
    return this.bytes;
  }

  /** The map in the ABI's pairs format, cached until the map changes. */
  pairs(): Uint8Array {
    if (!this.encoded) {
      const p: [string, string][] = [];
      for (let i = 0; i < this.kv.length; i += 2) p.push([this.kv[i], this.kv[i + 1]]);
      this.encoded = encodePairs(p);
    }
    return this.encoded;
  }

  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (let i = 0; i < this.kv.length; i += 2) out.push([this.kv[i], this.kv[i + 1]]);
    return out;
  }

  /** One entry of toMap() without building the map: the values under exactly `key`, joined with ",". */
  joined(key: string): string | undefined {
    let out: string | undefined;
    for (let i = 0; i < this.kv.length; i += 2) {
      if (this.kv[i] === key) out = out === undefined ? this.kv[i + 1] : `${out},${this.kv[i + 1]}`;
    }
    return out;
  }

  /** Header values as the CEL map request.headers is: repeated keys joined with ",". */
  toMap(): Record<string, string> {
    const out: Record<string, string> = {};
    for (let i = 0; i < this.kv.length; i += 2) {
      const k = this.kv[i];
      out[k] = Object.hasOwn(out, k) ? `${out[k]},${this.kv[i + 1]}` : this.kv[i + 1];
    }
    return out;
  }
}
