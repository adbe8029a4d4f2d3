// Hostile request bodies for the wire decoder and the ingest route: the golden vectors mutated (bytes
// flipped with and without a resealed checksum, bodies re-framed after inserting or deleting bytes,
// truncated, spliced, wrong versions), and summaries written field by field with huge counts, long or
// odd strings and impossible claims. Deterministic for a seed, so a failing case replays.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { body, frame, reseal, sketchBuckets, validRaw, varint, type RawSummary } from "../shared/wire-builder.ts";

const WIRE = join(import.meta.dirname, "..", "fixtures", "wire");
const read = (p: string) => new Uint8Array(readFileSync(p));

export const GOLDEN = ["mesh.bin", "edges.bin", "minimal.bin"].map((f) => read(join(WIRE, f)));
export const REJECTS = readdirSync(join(WIRE, "reject")).map((f) => read(join(WIRE, "reject", f)));

export type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)];

/** Values at the edges of what a varint or a field may hold. */
const EDGE_NUMBERS = [0, 1, 127, 128, 2048, 2049, 65535, 65536, 65537, 2 ** 20, 2 ** 20 + 1, 2 ** 31, 2 ** 32, 2 ** 53 - 1];

/** Strings an attacker or a confused proxy could send: quotes, SQL, control bytes, NUL, 4-byte UTF-8, invalid UTF-8. */
const ODD_STRINGS: (string | Uint8Array)[] = [
  "",
  "it's",
  '"; DROP TABLE mesh_load_ledger; --',
  "$$ return 1 $$",
  "back\\slash\\",
  "nul\u0000inside",
  "\u0001\u0007\u001b[31m\u007f",
  "𝄞😀🀄",
  "x".repeat(2048),
  "é".repeat(1024),
  new Uint8Array([0xc0, 0x80]), // overlong NUL
  new Uint8Array([0xed, 0xa0, 0x80]), // surrogate
  new Uint8Array([0xf4, 0x90, 0x80, 0x80]), // above U+10FFFF
  new Uint8Array([0xff, 0xfe]),
];

/** Splits a framed summary into its body (for re-framing after a structural change). */
function bodyOf(framed: Uint8Array): Uint8Array | undefined {
  let at = 5;
  let len = 0;
  for (let shift = 0; at < framed.length && shift < 56; shift += 7) {
    const b = framed[at++];
    len += (b & 0x7f) * 2 ** shift;
    if (b < 0x80) return framed.subarray(at, Math.min(framed.length, at + len));
  }
  return undefined;
}

function randomBytes(r: Rand, n: number): number[] {
  return Array.from({ length: n }, () => int(r, 256));
}

/** A summary written field by field with one or more fields pushed to (or past) their limits. */
function extremeRaw(r: Rand): Uint8Array {
  const s: RawSummary = validRaw();
  const edge = () => pick(r, EDGE_NUMBERS);
  switch (int(r, 12)) {
    case 0:
      s.seq = edge();
      s.start = edge();
      s.length = edge();
      break;
    case 1:
      s.droppedRequests = edge();
      s.droppedWindows = edge();
      s.overflowKeys = edge();
      s.flags = int(r, 8);
      break;
    case 2: {
      const x = s.series[0];
      x.requests = edge();
      x.errors = edge();
      x.sum = edge();
      x.max = edge();
      x.zero = edge();
      break;
    }
    case 3:
      s.series[0].requestBytes = 2 ** 53 - 1;
      s.series[0].responseBytes = 2 ** 53 - 1;
      break;
    case 4:
      s.producerId = pick(r, ODD_STRINGS);
      break;
    case 5:
      s.strings = [pick(r, ODD_STRINGS), pick(r, ODD_STRINGS)];
      break;
    case 6:
      s.strings = ["destination", "200", "x".repeat(2049 + int(r, 70_000))];
      break;
    case 7: {
      // Claims far more strings (or series) than the body holds: must fail without allocating for the claim.
      const empty = body({ ...s, strings: [], series: [] }); // ends with string count 0, series count 0
      const claim = varint(pick(r, [2 ** 20, 2 ** 20 + 1, 2 ** 40, 2 ** 53 - 1]));
      return frame(r() < 0.5 ? [...empty.slice(0, -2), ...claim] : [...empty.slice(0, -1), ...claim]);
    }
    case 8:
      s.dims = Array.from({ length: 1 + int(r, 25) }, () => int(r, 24));
      break;
    case 9:
      s.series[0].scale = pick(r, [-11, -10, 9, 20, 2 ** 20]);
      break;
    case 10: {
      // A sketch far wider than any real one (the decoder bounds the span), counts not matching requests.
      let index = int(r, 2000) - 1000;
      const buckets = Array.from({ length: 1 + int(r, 6000) }, (): [number, number] => [(index += 1 + int(r, 3)), 1 + int(r, 3)]);
      s.series[0].buckets = sketchBuckets(buckets);
      break;
    }
    default:
      s.series = Array.from({ length: 1 + int(r, 300) }, () => ({ ...s.series[0], refs: [int(r, 3), int(r, 3)] }));
  }
  return frame(body(s), r() < 0.1 ? { version: pick(r, [0, 2, 255]) } : {});
}

/** One hostile body. */
export function wireCase(r: Rand): Uint8Array {
  const base = pick(r, GOLDEN);
  switch (int(r, 10)) {
    case 0:
    case 1: {
      const b = base.slice();
      for (let k = 1 + int(r, 4); k > 0; k--) b[int(r, b.length)] = int(r, 256);
      return r() < 0.85 ? reseal(b) : b;
    }
    case 2: {
      // Insert or delete bytes inside the body and frame it again, so the parser walks shifted fields.
      const inner = [...(bodyOf(base) ?? base)];
      const at = int(r, inner.length);
      if (r() < 0.5) inner.splice(at, 1 + int(r, 8));
      else inner.splice(at, 0, ...randomBytes(r, 1 + int(r, 8)));
      return frame(inner);
    }
    case 3: {
      const cut = base.subarray(0, int(r, base.length));
      return r() < 0.5 ? reseal(cut) : cut;
    }
    case 4: {
      const b = base.slice();
      b[4] = pick(r, [0, 2, 3, 127, 255]);
      return reseal(b);
    }
    case 5: {
      const other = pick(r, GOLDEN);
      return reseal(Uint8Array.from([...base.subarray(0, int(r, base.length)), ...other.subarray(int(r, other.length))]));
    }
    case 6: {
      const rej = pick(r, REJECTS).slice();
      if (r() < 0.5 && rej.length > 0) rej[int(r, rej.length)] ^= 1 << int(r, 8);
      return rej;
    }
    case 7:
      return Uint8Array.from(randomBytes(r, pick(r, [0, 1, 4, 9, 64, 4096])));
    default: {
      // Writing a summary field by field is slow (BigInt varints, bit strings); after a pool of them is
      // built, reuse it with a byte changed.
      if (extremePool.length < EXTREME_POOL) {
        extremePool.push(extremeRaw(r));
        return extremePool[extremePool.length - 1];
      }
      const b = pick(r, extremePool).slice();
      b[int(r, b.length)] = int(r, 256);
      return reseal(b);
    }
  }
}

const EXTREME_POOL = 500;
const extremePool: Uint8Array[] = [];
