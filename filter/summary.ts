// Encodes a closed window into wire format v1 with the shared encoder: the table's series keys become
// dimension values (UTF-8 bytes from the window's string table), its aggregates the series records.
// The encoder copies each distinct value once into its own string table, reading it straight from the
// window's string table; its buffers are sized at configure time for a full window, so a flush at the
// series cap allocates no large block (docs/filter-config.md, "Cardinality guard and memory bound").
import { FLAG_OVERFLOW, SummaryEncoder } from "../shared";
import { Config } from "./config";
import { DIM_COUNT, Dim } from "./dimensions";
import { Interner } from "./interner";
import { SeriesTable } from "./table";

// Series record bytes reserved per series: the dimension references and counters (about 40 bytes with
// 20 dimensions) and a sketch of a few buckets; a window whose sketches need more grows the buffer.
const RECORD_BYTES_PER_SERIES: i32 = 64;

export class WindowInfo {
  producerId: Uint8Array = new Uint8Array(0);
  seq: f64 = 0;
  windowStartNs: u64 = 0;
  windowEndNs: u64 = 0;
  droppedRequests: f64 = 0;
  droppedWindows: f64 = 0;
}

export class SummaryWriter {
  private encoder: SummaryEncoder;
  /** Dimension codes reported (schema order = Dim index), as the encoder's column order. */
  private reported: Array<i32> = [];
  private refs: Int32Array;
  // Per string of the window: its reference in the summary being encoded, -1 until first used.
  private refOf: Int32Array;
  private codes: Map<i32, Uint8Array> = new Map();

  /** `strings`: the window string table this writer reads (its capacity sizes the encoder). */
  constructor(config: Config, strings: Interner) {
    for (let i = 0; i < DIM_COUNT; i++) if (config.dimensions[i]) this.reported.push(i);
    // Every value of the window at most once, each behind a varint length of at most 2 bytes (values are
    // at most 512 bytes), plus the response codes.
    let stringBytes = strings.maxBytes + 2 * strings.maxStrings + 4096;
    this.encoder = new SummaryEncoder(this.reported, stringBytes, config.maxSeries * RECORD_BYTES_PER_SERIES);
    this.refs = new Int32Array(this.reported.length);
    this.refOf = new Int32Array(strings.maxStrings);
  }

  /** Encodes the window; then encodedLength() and writeTo() hand out the summary. */
  encode(info: WindowInfo, table: SeriesTable, strings: Interner): void {
    let e = this.encoder;
    let overflowKeys = table.overflowKeysEstimate();
    e.begin(
      info.producerId,
      info.seq,
      Math.floor(<f64>info.windowStartNs / 1e6),
      Math.floor(<f64>info.windowEndNs / 1e6),
      overflowKeys > 0 ? FLAG_OVERFLOW : 0,
      info.droppedRequests,
      info.droppedWindows,
      overflowKeys,
    );
    let refOf = this.refOf;
    refOf.fill(-1, 0, strings.count);
    let text = strings.text;
    let k = this.reported.length;
    for (let s = 0; s < table.count; s++) {
      let stats = table.stats[s];
      if (!e.accepts(stats)) continue;
      let base = s * DIM_COUNT;
      for (let j = 0; j < k; j++) {
        let d = this.reported[j];
        let v = table.keys[base + d];
        let ref: i32;
        if (d == Dim.ResponseCode) {
          let code = this.code(v);
          ref = e.value(code, 0, code.length);
        } else {
          ref = refOf[v];
          if (ref < 0) {
            ref = e.value(text, strings.offset(v), strings.length(v));
            refOf[v] = ref;
          }
        }
        this.refs[j] = ref;
      }
      e.addRefs(this.refs, stats);
    }
  }

  encodedLength(): i32 {
    return this.encoder.encodedLength();
  }

  /** Writes the summary encoded last into dest[at, at + encodedLength()). */
  writeTo(dest: Uint8Array, at: i32): void {
    this.encoder.writeTo(dest, at);
  }

  private code(v: i32): Uint8Array {
    if (this.codes.has(v)) return this.codes.get(v);
    let b = Uint8Array.wrap(String.UTF8.encode(v.toString()));
    this.codes.set(v, b);
    return b;
  }
}
