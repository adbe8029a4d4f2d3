// Byte-level helpers of the wire format: a growable writer of LEB128 varints, CRC-32, and UTF-8
// repair for dimension values. Portable AssemblyScript (integers above 2^31 are handled as f64).

/** A signed whole number mapped to an unsigned one: 0, -1, 1, -2, … -> 0, 1, 2, 3, … */
export function zigzag(v: f64): f64 {
  return v < 0.0 ? -2.0 * v - 1.0 : 2.0 * v;
}

/** Appends bytes to a growable buffer; reused across summaries via reset(). */
export class ByteWriter {
  buf: Uint8Array;
  length: i32 = 0;

  constructor(capacity: i32 = 1024) {
    this.buf = new Uint8Array(capacity > 16 ? capacity : 16);
  }

  reset(): void {
    this.length = 0;
  }

  private ensure(extra: i32): void {
    const need = this.length + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size = size * 2;
    const next = new Uint8Array(size);
    for (let i: i32 = 0; i < this.length; i++) unchecked((next[i] = this.buf[i]));
    this.buf = next;
  }

  byte(b: i32): void {
    this.ensure(1);
    unchecked((this.buf[this.length] = u8(b)));
    this.length++;
  }

  /** Unsigned LEB128 of a whole number in [0, 2^53 - 1] (callers guarantee the range). */
  varint(v: f64): void {
    this.ensure(8);
    this.length = putVarint(this.buf, this.length, v);
  }

  /** Signed integer as zigzag varint. */
  zigzag(v: f64): void {
    this.varint(zigzag(v));
  }

  /** Appends b[start, start + n). */
  range(b: Uint8Array, start: i32, n: i32): void {
    this.ensure(n);
    this.length = putBytes(this.buf, this.length, b, start, n);
  }

  /** A copy of what was written. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

// Writers into a buffer with room for what they write; each returns the index after what it wrote.

/** Unsigned LEB128 of a whole number in [0, 2^53 - 1] at buf[at] (at most 8 bytes). */
export function putVarint(buf: Uint8Array, at: i32, v: f64): i32 {
  let i = at;
  let x = v;
  while (x >= 2147483648.0) {
    const q = Math.floor(x / 128.0);
    unchecked((buf[i] = u8(i32(x - q * 128.0) | 0x80)));
    i++;
    x = q;
  }
  let n = i32(x);
  while (n >= 0x80) {
    unchecked((buf[i] = u8((n & 0x7f) | 0x80)));
    i++;
    n = n >>> 7;
  }
  unchecked((buf[i] = u8(n)));
  return i + 1;
}

/** src[start, start + n) at buf[at]. */
export function putBytes(buf: Uint8Array, at: i32, src: Uint8Array, start: i32, n: i32): i32 {
  for (let i: i32 = 0; i < n; i++) unchecked((buf[at + i] = src[start + i]));
  return at + n;
}

/** 32-bit little-endian at buf[at]. */
export function putU32le(buf: Uint8Array, at: i32, v: i32): i32 {
  buf[at] = u8(v & 0xff);
  buf[at + 1] = u8((v >>> 8) & 0xff);
  buf[at + 2] = u8((v >>> 16) & 0xff);
  buf[at + 3] = u8((v >>> 24) & 0xff);
  return at + 4;
}

/** Writes bits, most significant first, into a ByteWriter; flush() pads the last byte with zero bits. */
export class BitWriter {
  private acc: i32 = 0;
  private count: i32 = 0;

  constructor(public out: ByteWriter) {}

  bit(b: i32): void {
    this.acc = (this.acc << 1) | (b & 1);
    this.count++;
    if (this.count == 8) {
      this.out.byte(this.acc);
      this.acc = 0;
      this.count = 0;
    }
  }

  /** The low `n` bits of `v` (n <= 31), most significant first. */
  bits(v: i32, n: i32): void {
    for (let i = n - 1; i >= 0; i--) this.bit((v >>> i) & 1);
  }

  flush(): void {
    while (this.count != 0) this.bit(0);
  }
}

// Slicing-by-8 tables: entry k * 256 + n is the CRC register after byte n followed by k zero bytes, so
// eight input bytes take eight lookups and no per-byte shift chain.
const CRC_TABLE: Int32Array = new Int32Array(8 * 256);
initCrcTable();

function initCrcTable(): void {
  for (let n: i32 = 0; n < 256; n++) {
    let c = n;
    // -306674912 is 0xEDB88320, the reflected CRC-32 (IEEE 802.3) polynomial, as an i32.
    for (let k = 0; k < 8; k++) c = (c & 1) != 0 ? -306674912 ^ (c >>> 1) : c >>> 1;
    CRC_TABLE[n] = c;
  }
  for (let n: i32 = 256; n < 8 * 256; n++) {
    const previous = CRC_TABLE[n - 256];
    CRC_TABLE[n] = CRC_TABLE[previous & 0xff] ^ (previous >>> 8);
  }
}

/** CRC-32 (IEEE 802.3, as zlib's crc32) of buf[start, end), as a signed i32 (same bits as the u32). */
export function crc32(buf: Uint8Array, start: i32, end: i32): i32 {
  const t = CRC_TABLE;
  let c: i32 = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const low = c ^ (i32(unchecked(buf[i])) | (i32(unchecked(buf[i + 1])) << 8) | (i32(unchecked(buf[i + 2])) << 16) | (i32(unchecked(buf[i + 3])) << 24));
    c =
      unchecked(t[1792 + (low & 0xff)]) ^
      unchecked(t[1536 + ((low >>> 8) & 0xff)]) ^
      unchecked(t[1280 + ((low >>> 16) & 0xff)]) ^
      unchecked(t[1024 + (low >>> 24)]) ^
      unchecked(t[768 + i32(unchecked(buf[i + 4]))]) ^
      unchecked(t[512 + i32(unchecked(buf[i + 5]))]) ^
      unchecked(t[256 + i32(unchecked(buf[i + 6]))]) ^
      unchecked(t[i32(unchecked(buf[i + 7]))]);
  }
  for (; i < end; i++) c = unchecked(t[(c ^ unchecked(buf[i])) & 0xff]) ^ (c >>> 8);
  return c ^ -1;
}

// Length of the valid UTF-8 sequence starting at buf[i] (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF), or 0 when the bytes there are not one.
function utf8SequenceLength(buf: Uint8Array, i: i32, end: i32): i32 {
  const b0 = i32(buf[i]);
  if (b0 < 0x80) return 1;
  let n: i32 = 0;
  let lo: i32 = 0x80;
  let hi: i32 = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) n = 2;
  else if (b0 >= 0xe0 && b0 <= 0xef) {
    n = 3;
    if (b0 == 0xe0) lo = 0xa0;
    else if (b0 == 0xed) hi = 0x9f;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    n = 4;
    if (b0 == 0xf0) lo = 0x90;
    else if (b0 == 0xf4) hi = 0x8f;
  } else return 0;
  if (i + n > end) return 0;
  const b1 = i32(buf[i + 1]);
  if (b1 < lo || b1 > hi) return 0;
  for (let k: i32 = 2; k < n; k++) {
    const b = i32(buf[i + k]);
    if (b < 0x80 || b > 0xbf) return 0;
  }
  return n;
}

/**
 * How many bytes of buf[start, start + n) to keep as they are: the longest prefix of whole valid UTF-8
 * sequences within `maxBytes`. Equal to n when the value needs no repair.
 */
export function validUtf8Prefix(buf: Uint8Array, start: i32, n: i32, maxBytes: i32): i32 {
  const end = start + n;
  let i = start;
  while (i < end) {
    const k = utf8SequenceLength(buf, i, end);
    if (k == 0 || i + k - start > maxBytes) break;
    i += k;
  }
  return i - start;
}

/**
 * Appends buf[start, start + n) to `out` as valid UTF-8 of at most `maxBytes` bytes: every byte that does
 * not start a valid sequence becomes U+FFFD, and the value is cut at a character boundary.
 */
export function repairUtf8(buf: Uint8Array, start: i32, n: i32, maxBytes: i32, out: ByteWriter): void {
  const end = start + n;
  const first = out.length;
  const kept = validUtf8Prefix(buf, start, n, maxBytes);
  out.range(buf, start, kept);
  let i = start + kept;
  while (i < end) {
    let k = utf8SequenceLength(buf, i, end);
    const width = k == 0 ? 3 : k;
    if (out.length - first + width > maxBytes) break;
    if (k == 0) {
      out.byte(0xef);
      out.byte(0xbf);
      out.byte(0xbd);
      k = 1;
    } else out.range(buf, i, k);
    i += k;
  }
}

/**
 * `value` as valid UTF-8 of at most `maxBytes` bytes (see repairUtf8). Returns `value` itself (no copy)
 * when it already qualifies. The encoder's value() makes the same repair into its reused buffer without
 * allocating; this allocating form is how Node callers (and the wire tests) apply it to a value alone.
 */
export function toValidUtf8(value: Uint8Array, maxBytes: i32): Uint8Array {
  const len = value.length;
  if (validUtf8Prefix(value, 0, len, maxBytes) == len) return value;
  const out = new ByteWriter(len < maxBytes ? len + 16 : maxBytes + 4);
  repairUtf8(value, 0, len, maxBytes, out);
  return out.toBytes();
}
