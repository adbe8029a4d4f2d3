// One malformed summary per rejection reason of docs/wire-format.md, each built from the valid
// summary of wire-builder.ts with a single defect. Used by the codec tests and written out as
// test/fixtures/wire/reject/<reason>.bin for the collector's rejection tests.
import { body, frame, sketchBuckets, validRaw, varint, type RawSummary } from "./wire-builder.ts";

function withRaw(change: (s: RawSummary) => void): Uint8Array {
  const s = validRaw();
  change(s);
  return frame(body(s));
}

const valid = () => frame(body(validRaw()));

export const REJECTIONS: Record<string, () => Uint8Array> = {
  bad_magic: () => frame(body(validRaw()), { magic: [0x4d, 0x4c, 0x53, 0x58] }),
  unsupported_version: () => frame(body(validRaw()), { version: 2 }),
  truncated: () => valid().subarray(0, valid().length - 5),
  bad_varint: () => {
    // seq written as 0x83 0x00: a non-minimal form of 3
    const b = body(validRaw());
    const at = 1 + 29; // after the producer id (length byte + 29 bytes)
    return frame([...b.slice(0, at), 0x83, 0x00, ...b.slice(at + 1)]);
  },
  bad_checksum: () => {
    const b = valid();
    b[10] ^= 0x01;
    return b;
  },
  trailing_bytes: () => withRaw((s) => (s.extra = [0])),
  bad_producer_id: () => withRaw((s) => (s.producerId = "")),
  bad_flags: () => withRaw((s) => (s.flags = 4)),
  too_many_dimensions: () => withRaw((s) => (s.dims = Array.from({ length: 21 }, (_, i) => i))),
  unknown_dimension: () => withRaw((s) => (s.dims = [0, 20])),
  duplicate_dimension: () => withRaw((s) => (s.dims = [15, 15])),
  too_many_strings: () => {
    // the header, then 2^20 + 1 as the string count
    const head = body({ ...validRaw(), strings: [], series: [] }).slice(0, -2);
    return frame([...head, ...varint(1048577), 0]);
  },
  string_too_long: () => withRaw((s) => (s.strings[1] = "2".repeat(2049))),
  too_many_series: () => {
    const s = validRaw();
    const head = body({ ...s, series: [] }).slice(0, -1);
    return frame([...head, ...varint(65537)]);
  },
  bad_dimension_mask: () => withRaw((s) => ((s.series[0].mask = 1), (s.series[0].refs = [0]))),
  bad_string_ref: () => withRaw((s) => (s.series[0].refs = [0, 2])),
  empty_series: () => withRaw((s) => (s.series[0].requests = 0)),
  errors_exceed_requests: () => withRaw((s) => (s.series[0].errors = 4)),
  bad_scale: () => withRaw((s) => (s.series[0].scale = 9)),
  bad_sketch: () => withRaw((s) => (s.series[0].buckets = sketchBuckets([[40 * 64, 2]]))),
  count_mismatch: () => withRaw((s) => (s.series[0].buckets = sketchBuckets([[637, 1]]))),
  bad_latency: () => withRaw((s) => (s.series[0].max = 2000)),
  sketch_too_wide: () =>
    withRaw((s) => {
      // two values at the ends of the scale-8 range: 10,241 buckets in series of about 26 bytes each
      const one = { ...s.series[0], mask: 0, refs: [], requests: 2, errors: 0, zero: 0, min: 1, max: 2 ** 40 - 1, sum: 2 ** 40, scale: 8 };
      one.buckets = sketchBuckets([
        [-1, 1],
        [40 * 256 - 1, 1],
      ]);
      s.series = [s.series[0], ...Array.from({ length: 10 }, () => one)];
    }),
  bad_utf8: () => withRaw((s) => (s.strings[0] = Uint8Array.from([0x64, 0xff, 0x65]))),
  bad_dimension_value: () => withRaw((s) => (s.strings[1] = "20x")),
};
