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
    let x = v;
    while (x >= 2147483648.0) {
      const q = Math.floor(x / 128.0);
      unchecked((this.buf[this.length] = u8(i32(x - q * 128.0) | 0x80)));
      this.length++;
      x = q;
    }
    let n = i32(x);
    while (n >= 0x80) {
      unchecked((this.buf[this.length] = u8((n & 0x7f) | 0x80)));
      this.length++;
      n = n >>> 7;
    }
    unchecked((this.buf[this.length] = u8(n)));
    this.length++;
  }

  /** Signed integer as zigzag varint. */
  zigzag(v: f64): void {
    this.varint(zigzag(v));
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    for (let i: i32 = 0; i < b.length; i++) unchecked((this.buf[this.length + i] = b[i]));
    this.length += b.length;
  }

  /** 32-bit little-endian. */
  u32le(v: i32): void {
    this.ensure(4);
    this.byte(v & 0xff);
    this.byte((v >>> 8) & 0xff);
    this.byte((v >>> 16) & 0xff);
    this.byte((v >>> 24) & 0xff);
  }

  /** A copy of what was written. */
  toBytes(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
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

const CRC_TABLE: Int32Array = new Int32Array(256);
initCrcTable();

function initCrcTable(): void {
  for (let n: i32 = 0; n < 256; n++) {
    let c = n;
    // -306674912 is 0xEDB88320, the reflected CRC-32 (IEEE 802.3) polynomial, as an i32.
    for (let k = 0; k < 8; k++) c = (c & 1) != 0 ? -306674912 ^ (c >>> 1) : c >>> 1;
    CRC_TABLE[n] = c;
  }
}

/** CRC-32 (IEEE 802.3, as zlib's crc32) of buf[start, end), as a signed i32 (same bits as the u32). */
export function crc32(buf: Uint8Array, start: i32, end: i32): i32 {
  let c: i32 = -1;
  for (let i = start; i < end; i++) c = unchecked(CRC_TABLE[(c ^ unchecked(buf[i])) & 0xff]) ^ (c >>> 8);
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
 * `value` as valid UTF-8 of at most `maxBytes` bytes: every byte that does not start a valid sequence
 * becomes U+FFFD, and the result is cut at a character boundary. Returns `value` itself (no copy) when it
 * already qualifies. Dimension values come from request data, so the encoder passes them all through this
 * and the collector can reject any invalid UTF-8 outright.
 */
export function toValidUtf8(value: Uint8Array, maxBytes: i32): Uint8Array {
  const len = value.length;
  let i: i32 = 0;
  while (i < len) {
    const n = utf8SequenceLength(value, i, len);
    if (n == 0 || i + n > maxBytes) break;
    i += n;
  }
  if (i == len) return value;
  const out = new ByteWriter(len < maxBytes ? len + 16 : maxBytes + 4);
  for (let k: i32 = 0; k < i; k++) out.byte(value[k]);
  while (i < len) {
    let n = utf8SequenceLength(value, i, len);
    const width = n == 0 ? 3 : n;
    if (out.length + width > maxBytes) break;
    if (n == 0) {
      out.byte(0xef);
      out.byte(0xbf);
      out.byte(0xbd);
      n = 1;
    } else {
      for (let k: i32 = 0; k < n; k++) out.byte(value[i + k]);
    }
    i += n;
  }
  return out.toBytes();
}
