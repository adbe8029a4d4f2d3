// Encodes a closed window into wire format v1 with the shared encoder: the table's series keys become
// dimension values (UTF-8 bytes from the window's string table), its aggregates the series records.
import { FLAG_OVERFLOW, SummaryEncoder } from "../shared";
import { Config } from "./config";
import { DIM_COUNT, Dim } from "./dimensions";
import { Interner } from "./interner";
import { SeriesTable } from "./table";

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
  private values: Array<Uint8Array> = [];
  private codes: Map<i32, Uint8Array> = new Map();

  constructor(config: Config) {
    for (let i = 0; i < DIM_COUNT; i++) if (config.dimensions[i]) this.reported.push(i);
    this.encoder = new SummaryEncoder(this.reported);
    for (let j = 0; j < this.reported.length; j++) this.values.push(new Uint8Array(0));
  }

  encode(info: WindowInfo, table: SeriesTable, strings: Interner): Uint8Array {
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
    // One view of each distinct value a series uses, shared by every series that uses it.
    let texts = new Array<Uint8Array | null>(strings.count);
    let k = this.reported.length;
    for (let s = 0; s < table.count; s++) {
      let base = s * DIM_COUNT;
      for (let j = 0; j < k; j++) {
        let d = this.reported[j];
        let v = table.keys[base + d];
        if (d == Dim.ResponseCode) this.values[j] = this.code(v);
        else {
          let text = texts[v];
          if (text === null) {
            text = strings.bytes(v);
            texts[v] = text;
          }
          this.values[j] = text;
        }
      }
      e.addSeries(this.values, table.stats[s]);
    }
    return e.finish();
  }

  private code(v: i32): Uint8Array {
    if (this.codes.has(v)) return this.codes.get(v);
    let b = Uint8Array.wrap(String.UTF8.encode(v.toString()));
    this.codes.set(v, b);
    return b;
  }
}
