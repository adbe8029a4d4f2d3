// Rollup: decoded summaries → one row per (minute, series), plus one loss row per summary that reports
// dropped windows or overflowed keys. Pure; both sinks call it inside their load transaction after
// dropping already-ledgered summaries.
//
// Minute attribution: a summary is attributed whole to the UTC minute holding the last millisecond of
// its window (`floor((windowEnd − 1 ms) / 60 s)`). A sketch cannot be split by time, so splitting a
// window that straddles a minute boundary would have to guess; the filter aligns its flush windows to
// multiples of the flush interval, and with an interval dividing 60 s no window straddles a minute, so
// the rule is exact per minute there and exact per series over any span in every case (docs/schema.md).
import { randomBytes } from "node:crypto";
import { DIMENSIONS } from "../shared/schema.ts";
import { meshSketchAddInto, meshSketchMerge, type SketchJson } from "../shared/quantile.ts";
import { summaryCaller } from "./ledger.ts";
import {
  FIELD_ERRORS as ERRORS,
  FIELD_LATENCY_MAX as LATENCY_MAX,
  FIELD_LATENCY_MIN as LATENCY_MIN,
  FIELD_LATENCY_SUM as LATENCY_SUM,
  FIELD_REQUESTS as REQUESTS,
  FIELD_REQUEST_BYTES as REQUEST_BYTES,
  FIELD_RESPONSE_BYTES as RESPONSE_BYTES,
  FIELD_ZERO as ZERO,
  SERIES_FIELDS as FIELDS,
  absentValue,
  seriesAt,
  storedSketchOf,
  summaryColumns,
  type DecodedSeries,
  type DecodedSummary,
  type SummaryColumns,
} from "./summary.ts";

const MINUTE_MS = 60_000;
// Module-local copies of the column layout: under tsx every read of an imported binding is a getter call
// (one per re-export on the way), and the fold reads them per series.
const FIELD_REQUESTS = REQUESTS;
const FIELD_ERRORS = ERRORS;
const FIELD_REQUEST_BYTES = REQUEST_BYTES;
const FIELD_RESPONSE_BYTES = RESPONSE_BYTES;
const FIELD_LATENCY_SUM = LATENCY_SUM;
const FIELD_LATENCY_MIN = LATENCY_MIN;
const FIELD_LATENCY_MAX = LATENCY_MAX;
const FIELD_ZERO = ZERO;
const SERIES_FIELDS = FIELDS;

/**
 * Largest value a summed measure takes: sums stop there instead of growing past what the warehouse's
 * BIGINT columns and JavaScript numbers hold exactly, so a hostile summary cannot make a row unloadable
 * (docs/security.md). Honest traffic is many orders of magnitude below it.
 */
export const SATURATED = Number.MAX_SAFE_INTEGER;
// A row's fixed cost in the heap: its object, 20 dimension references and the key slot (measured order).
const ROW_BYTES = 600;
const saturatingAdd = (a: number, b: number) => Math.min(SATURATED, a + b);

/** One fact row before the sink adds `loaded_at`: a series' numbers summed over its minute. */
export interface MinuteRow extends DecodedSeries {
  /** Start of the UTC minute, epoch milliseconds. */
  minuteMs: number;
}

/**
 * What one summary reports its sidecar lost (a `mesh_sidecar_loss` row before `loaded_at`): requests and
 * windows dropped beyond the sidecar's pending-bytes budget since its previous delivered summary, and
 * series keys folded into the overflow series. Dropped windows precede the summary that reports them, so
 * the row's minute is the reporting summary's, never earlier than the gap it explains.
 */
export interface LossRow {
  minuteMs: number;
  producerId: string;
  seq: number;
  pod: string;
  namespace: string;
  workload: string;
  droppedRequests: number;
  droppedWindows: number;
  overflowKeys: number;
  /** Who sent the reporting summary (mesh_load_ledger.caller). */
  caller: string;
}

const UNKNOWN = "unknown";
const OVERFLOW = "__overflow__";
const REPORTER = DIMENSIONS.indexOf("reporter");
// The sidecar's own side of a series: the destination for inbound (server-side) rows, the source for
// outbound ones. Positions in DIMENSIONS, which are the wire's dimension codes.
const sideOf = (side: "source" | "destination") => ({
  workload: DIMENSIONS.indexOf(`${side}_workload`),
  namespace: DIMENSIONS.indexOf(`${side}_namespace`),
  principal: DIMENSIONS.indexOf(`${side}_principal`),
});
const LOCAL: Record<string, { workload: number; namespace: number; principal: number }> = { destination: sideOf("destination"), source: sideOf("source") };

export const known = (v: string | undefined): v is string => v !== undefined && v !== UNKNOWN && v !== OVERFLOW;

/**
 * Reads dimension `d` (a position in DIMENSIONS) of series `i` of a summary, from its columns when it
 * has them (no series objects built); undefined when the series lacks the dimension.
 */
export function seriesDimensions(summary: DecodedSummary): { count: number; value(i: number, d: number): string | undefined } {
  const cols = summaryColumns(summary);
  if (!cols) return { count: summary.series.length, value: (i, d) => String(summary.series[i].dimensions[DIMENSIONS[d]]) };
  const k = cols.codes.length;
  return {
    count: cols.count,
    value(i, d) {
      const j = cols.codes.indexOf(d);
      return j < 0 ? undefined : cols.strings[cols.refs[i * k + j]];
    },
  };
}

/** The sidecar's own side of series `i` (LOCAL), or undefined for a series with no known reporter. */
export function localSide(dims: ReturnType<typeof seriesDimensions>, i: number): { workload: number; namespace: number; principal: number } | undefined {
  return LOCAL[dims.value(i, REPORTER) ?? ""];
}

/**
 * The sidecar's workload and namespace as its series name them (the first series that knows each).
 * A summary with only overflow series, or none (it carries only a drop report), names neither.
 */
function localIdentity(summary: DecodedSummary): { workload?: string; namespace?: string } {
  const out: { workload?: string; namespace?: string } = {};
  const dims = seriesDimensions(summary);
  for (let i = 0; i < dims.count && !(known(out.workload) && known(out.namespace)); i++) {
    const local = localSide(dims, i);
    if (!local) continue;
    if (!known(out.workload)) out.workload = dims.value(i, local.workload);
    if (!known(out.namespace)) out.namespace = dims.value(i, local.namespace);
  }
  return out;
}

/**
 * Pod and namespace from the node id that heads a producer id (`<node id>/<start>/<root id>/<nonce>`,
 * filter/root.ts), when it has Istio's sidecar form `sidecar~<ip>~<pod>.<namespace>~<domain>`.
 */
export function istioNode(producerId: string): { pod: string; namespace: string } | undefined {
  const parts = producerId.split("/");
  if (parts.length < 4) return undefined;
  const fields = parts.slice(0, -3).join("/").split("~");
  if (fields.length !== 4) return undefined;
  const dot = fields[2].lastIndexOf(".");
  if (dot <= 0 || dot === fields[2].length - 1) return undefined;
  return { pod: fields[2].slice(0, dot), namespace: fields[2].slice(dot + 1) };
}

/** The loss a summary reports, or undefined when it reports none (a loss row is written only then). */
export function lossOf(summary: DecodedSummary): LossRow | undefined {
  const { producerId, seq, droppedRequests, droppedWindows, overflowKeys } = summary;
  if (droppedRequests === 0 && droppedWindows === 0 && overflowKeys === 0) return undefined;
  const node = istioNode(producerId);
  const local = localIdentity(summary);
  return {
    minuteMs: attributedMinute(summary.windowEndMs),
    producerId,
    seq,
    pod: node?.pod ?? UNKNOWN,
    // The node id names the pod's namespace even when no series does (only overflow, or none at all).
    namespace: node?.namespace ?? (known(local.namespace) ? local.namespace : UNKNOWN),
    workload: known(local.workload) ? local.workload : UNKNOWN,
    droppedRequests,
    droppedWindows,
    overflowKeys,
    caller: summaryCaller(summary),
  };
}

/** The minute (epoch ms of its start) a summary window is attributed to. */
export function attributedMinute(windowEndMs: number): number {
  return Math.floor((windowEndMs - 1) / MINUTE_MS) * MINUTE_MS;
}

/**
 * Incremental form of rollup(): add() summaries (or rows of another rollup) one at a time, so a caller
 * can yield to the event loop between them or keep folding as summaries arrive, then take rows().
 * Counters add, min/max take the extremes, sketches merge exactly (shared/quantile-core.js) into a
 * sketch the row owns, so the summaries folded in can be garbage-collected right away. Input order does
 * not matter. Callers dedupe by (producerId, seq) first — the rollup counts what it is given.
 */
export class MinuteRollup {
  /** Loss rows of the summaries added (add()), in the order added; written with the fact rows. */
  readonly losses: LossRow[] = [];
  private readonly list: Slot[] = [];
  // Rows by a hash of their key (the minute and the id of each dimension value, ids handed out per
  // distinct value; keyHash); rows whose hashes collide chain through Slot.next. Cheaper than a string
  // key per series update.
  private readonly slots = new Map<number, Slot>();
  private readonly ids = new Map<string, number>();
  private readonly key = new Int32Array(DIMENSIONS.length);
  private readonly absentIds = DIMENSIONS.map((d) => this.idOf(String(absentValue(d))));
  /**
   * Sketch entries held by the rows: one per non-empty bucket and one per run of empty ones (the stored
   * form, docs/schema.md), or one per bucket of a dense accumulator (Slot.dense), which is never longer
   * than the stored form could be (Slot.budget) and replaces it until rows() writes it again; so at most
   * twice the bucket entries of the summaries folded in.
   */
  private bucketSlots = 0;

  get size(): number {
    return this.list.length;
  }

  /** Approximate bytes the rows hold (per-row overhead plus 8 per sketch entry), for memory budgets. */
  get bytes(): number {
    return this.list.length * ROW_BYTES + this.bucketSlots * 8;
  }

  add(summary: DecodedSummary): void {
    const loss = lossOf(summary);
    if (loss) this.losses.push(loss);
    const minuteMs = attributedMinute(summary.windowEndMs);
    const cols = summaryColumns(summary);
    if (cols) this.addColumns(minuteMs, cols);
    else for (const s of summary.series) this.addSeries(minuteMs, s);
  }

  /** Folds in a row produced by another rollup (same minute attribution already applied). */
  addRow(row: MinuteRow): void {
    this.addSeries(row.minuteMs, row);
  }

  private idOf(value: string): number {
    let id = this.ids.get(value);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(value, id);
    }
    return id;
  }

  // The slot filed under the key in `key` for `minuteMs`, whose hash is `h`, if any.
  private find(minuteMs: number, h: number): Slot | undefined {
    const key = this.key;
    for (let s = this.slots.get(h); s !== undefined; s = s.next) {
      if (s.minuteMs !== minuteMs) continue;
      let d = 0;
      while (d < key.length && s.ids[d] === key[d]) d++;
      if (d === key.length) return s;
    }
    return undefined;
  }

  // Files a new row under the key `find` just missed.
  private file(minuteMs: number, h: number, row: MinuteRow): void {
    this.bucketSlots += row.sketch.c.length;
    const slot: Slot = { row, minuteMs, ids: this.key.slice(), next: this.slots.get(h), dense: undefined, denseFrom: 0, stale: false, budget: row.sketch.c.length };
    this.slots.set(h, slot);
    this.list.push(slot);
  }

  /**
   * Adds buckets `index[b]`/`count[b]` for b in [from, to) (indices increasing, counts positive, at the
   * row's scale) to the slot's sketch. Rows updated often are dense: a count per bucket of their span,
   * added to by index; the stored form is written back when the rows are read (rows()). A row stays
   * in the stored form (addBucketsInto) while its span exceeds Slot.budget, so a dense row is never
   * accounted more than the stored form could take (docs/security.md, "Sketch expansion").
   */
  private addBuckets(slot: Slot, index: ArrayLike<number>, count: ArrayLike<number>, from: number, to: number): void {
    if (from === to) return;
    // Two thirds of an entry per wire bit, the sparse form's bound (docs/security.md, "Sketch expansion"):
    // a bucket takes at least 2 bits, and a sketch's bucket count, first index and parameters 24.
    const n = to - from;
    slot.budget += n + ((n / 3) | 0) + 16;
    let dense = slot.dense;
    const lo = index[from];
    const hi = index[to - 1];
    if (dense === undefined || lo < slot.denseFrom || hi >= slot.denseFrom + dense.length) {
      dense = this.widen(slot, lo, hi);
      if (dense === undefined) {
        const sketch = slot.row.sketch;
        const before = sketch.c.length;
        addBucketsInto(sketch, index, count, from, to);
        this.bucketSlots += sketch.c.length - before;
        return;
      }
    }
    if (!slot.stale) this.release(slot);
    const offset = slot.denseFrom;
    for (let b = from; b < to; b++) dense[index[b] - offset] += count[b];
  }

  // A dense row's stored form is out of date from its next addition on: its entries are given back until
  // rows() or a return to the stored form writes them again, so a row holds (and is accounted) one form.
  private release(slot: Slot): void {
    this.bucketSlots -= slot.row.sketch.c.length;
    slot.row.sketch.c = [];
    slot.stale = true;
  }

  // The slot's dense accumulator grown to cover [lo, hi], or undefined (the row stays or goes back to
  // the stored form) when that would take more entries than its budget.
  private widen(slot: Slot, lo: number, hi: number): Float64Array | undefined {
    const old = slot.dense;
    const sketch = slot.row.sketch;
    let first = lo;
    let last = hi;
    if (old !== undefined) {
      first = Math.min(first, slot.denseFrom);
      last = Math.max(last, slot.denseFrom + old.length - 1);
    } else if (sketch.c.length > 0) {
      first = Math.min(first, sketch.o);
      // (the stored form's end is only looked for once the span up to `hi` fits)
      if (hi - first + 1 <= slot.budget) last = Math.max(last, storedEnd(sketch) - 1);
    }
    if (last - first + 1 > slot.budget) {
      if (old !== undefined) this.settle(slot, true);
      return undefined;
    }
    const dense = new Float64Array(last - first + 1);
    if (old !== undefined) dense.set(old, slot.denseFrom - first);
    else {
      let at = sketch.o;
      for (const v of sketch.c) {
        if (v < 0) at -= v;
        else dense[at++ - first] = v;
      }
      slot.stale = false; // the stored form still holds every count, until release()
    }
    slot.dense = dense;
    slot.denseFrom = first;
    this.bucketSlots += dense.length - (old === undefined ? 0 : old.length);
    return dense;
  }

  // Writes a dense row's counts back into its sketch in the stored form; `drop` also returns the row to
  // the stored form (its next bucket additions merge there). Until then the row holds both forms.
  private settle(slot: Slot, drop: boolean): void {
    const dense = slot.dense;
    if (dense === undefined) return;
    const sketch = slot.row.sketch;
    if (slot.stale) {
      const c: number[] = [];
      let next = 0;
      for (let j = 0; j < dense.length; j++) {
        const v = dense[j];
        if (v === 0) continue;
        if (c.length === 0) sketch.o = slot.denseFrom + j;
        else if (j > next) c.push(next - j);
        c.push(v);
        next = j + 1;
      }
      sketch.c = c;
      this.bucketSlots += c.length;
      slot.stale = false;
    }
    if (drop) {
      this.bucketSlots -= dense.length;
      slot.dense = undefined;
    }
  }

  private addSeries(minuteMs: number, s: DecodedSeries): void {
    let h = minuteTerm(minuteMs);
    for (let d = 0; d < DIMENSIONS.length; d++) {
      const id = this.idOf(String(s.dimensions[DIMENSIONS[d]]));
      this.key[d] = id;
      h = (h + keyTerm(d, id)) | 0;
    }
    const slot = this.find(minuteMs, h);
    if (slot === undefined) {
      // A copy the row owns, in the stored form whatever form the caller's sketch had.
      this.file(minuteMs, h, { ...s, minuteMs, sketch: meshSketchMerge([s.sketch])! });
      return;
    }
    const r = slot.row;
    r.requests = saturatingAdd(r.requests, s.requests);
    r.errors = saturatingAdd(r.errors, s.errors);
    r.requestBytes = saturatingAdd(r.requestBytes, s.requestBytes);
    r.responseBytes = saturatingAdd(r.responseBytes, s.responseBytes);
    r.latencySumUs = saturatingAdd(r.latencySumUs, s.latencySumUs);
    r.latencyMinUs = Math.min(r.latencyMinUs, s.latencyMinUs);
    r.latencyMaxUs = Math.max(r.latencyMaxUs, s.latencyMaxUs);
    if (s.sketch.s === r.sketch.s) {
      r.sketch.z += s.sketch.z;
      this.addBuckets(slot, scratch.index, scratch.count, 0, bucketsOf(s.sketch));
    } else this.addOtherScale(slot, s.sketch);
  }

  // Merges a sketch of another scale: both come to the smaller one (meshSketchAddInto), in the stored form.
  private addOtherScale(slot: Slot, sketch: SketchJson): void {
    this.settle(slot, true);
    const before = slot.row.sketch.c.length;
    meshSketchAddInto(slot.row.sketch, sketch);
    this.bucketSlots += slot.row.sketch.c.length - before;
  }

  // The same fold as addSeries over a decoded summary's flat columns, building objects only for new rows.
  private addColumns(minuteMs: number, cols: SummaryColumns): void {
    const ids = cols.strings.map((v) => this.idOf(v));
    const codes = cols.codes;
    const k = codes.length;
    // the hash terms of the dimensions the summary does not report, once
    let absent = minuteTerm(minuteMs);
    for (let d = 0; d < DIMENSIONS.length; d++) {
      this.key[d] = this.absentIds[d];
      if (!codes.includes(d)) absent = (absent + keyTerm(d, this.absentIds[d])) | 0;
    }
    const n = cols.numbers;
    const refs = cols.refs;
    for (let i = 0; i < cols.count; i++) {
      let h = absent;
      for (let j = 0; j < k; j++) {
        const id = ids[refs[i * k + j]];
        this.key[codes[j]] = id;
        h = (h + keyTerm(codes[j], id)) | 0;
      }
      const at = i * SERIES_FIELDS;
      const slot = this.find(minuteMs, h);
      if (slot === undefined) {
        this.file(minuteMs, h, { ...seriesAt(cols, i, storedSketchOf), minuteMs });
        continue;
      }
      const r = slot.row;
      r.requests = saturatingAdd(r.requests, n[at + FIELD_REQUESTS]);
      r.errors = saturatingAdd(r.errors, n[at + FIELD_ERRORS]);
      r.requestBytes = saturatingAdd(r.requestBytes, n[at + FIELD_REQUEST_BYTES]);
      r.responseBytes = saturatingAdd(r.responseBytes, n[at + FIELD_RESPONSE_BYTES]);
      r.latencySumUs = saturatingAdd(r.latencySumUs, n[at + FIELD_LATENCY_SUM]);
      r.latencyMinUs = Math.min(r.latencyMinUs, n[at + FIELD_LATENCY_MIN]);
      r.latencyMaxUs = Math.max(r.latencyMaxUs, n[at + FIELD_LATENCY_MAX]);
      if (cols.scales[i] === r.sketch.s) {
        r.sketch.z += n[at + FIELD_ZERO];
        this.addBuckets(slot, cols.bucketIndex, cols.bucketCount, i === 0 ? 0 : cols.bucketEnd[i - 1], cols.bucketEnd[i]);
      } else this.addOtherScale(slot, storedSketchOf(cols, i));
    }
  }

  /** The rows, one per (minute, series), their sketches in the stored form. */
  *rows(): Generator<MinuteRow> {
    for (const slot of this.list) {
      this.settle(slot, false);
      yield slot.row;
    }
  }
}

/**
 * A row key's hash is the sum of one term per dimension (keyTerm of the dimension and its value's id) and
 * one for the minute, so that a summary's fold adds the terms of the dimensions it does not report once
 * and those it reports per series. The terms are keyed per process: ids follow the order values arrive
 * in, and anyone who can compute a sum of terms can chain many keys into one hash (a pair of colliding
 * sums in each of several pairs of dimensions, chosen independently), so one summary's series would
 * all land in one slot and the fold would compare each with all before it.
 */
const HASH_KEY = new Int32Array(randomBytes(4 * (DIMENSIONS.length + 1)).buffer);
function keyTerm(d: number, id: number): number {
  let x = id ^ HASH_KEY[d];
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return x ^ (x >>> 16);
}
const minuteTerm = (minuteMs: number) => keyTerm(DIMENSIONS.length, (minuteMs / MINUTE_MS) | 0);

// Reused by the fold so that adding a sketch allocates nothing when its buckets are already in the row.
const scratch = { index: new Int32Array(1024), count: new Float64Array(1024), hits: new Int32Array(1024) };

function reserveScratch(n: number): void {
  if (n <= scratch.index.length) return;
  const size = 2 ** Math.ceil(Math.log2(n));
  scratch.index = new Int32Array(size);
  scratch.count = new Float64Array(size);
  scratch.hits = new Int32Array(size);
}

/** The non-empty buckets of a sketch (dense or stored form) into scratch.index/count; returns how many. */
function bucketsOf(sk: SketchJson): number {
  reserveScratch(sk.c.length);
  let n = 0;
  let at = sk.o;
  for (const v of sk.c) {
    if (v < 0) at -= v;
    else {
      if (v > 0) {
        scratch.index[n] = at;
        scratch.count[n++] = v;
      }
      at++;
    }
  }
  return n;
}

/**
 * Adds buckets `index[b]`/`count[b]` for b in [from, to) (indices increasing, counts positive, at the
 * accumulator's scale) into `acc`, a stored-form sketch (docs/schema.md) the caller owns. The
 * same sketch meshSketchMerge([acc, buckets]) gives, without its parse, concatenate and sort: in place
 * when every bucket already has an entry in acc (a row that has seen a few windows of its series), else
 * acc.c is rebuilt once, in one pass over both.
 */
function addBucketsInto(acc: SketchJson, index: ArrayLike<number>, count: ArrayLike<number>, from: number, to: number): void {
  const c = acc.c;
  reserveScratch(to - from);
  const hits = scratch.hits;
  let b = from;
  let at = acc.o;
  for (let e = 0; e < c.length && b < to; e++) {
    const v = c[e];
    if (v < 0) {
      at -= v;
      continue;
    }
    if (index[b] < at) break; // in a skipped run or below the first entry
    if (index[b] === at) hits[b++ - from] = e;
    at++;
  }
  if (b === to) {
    for (let h = 0; h < to - from; h++) c[hits[h]] += count[from + h];
    return;
  }
  const out: number[] = [];
  let next = 0;
  const emit = (i: number, n: number) => {
    if (out.length === 0) acc.o = i;
    else if (i > next) out.push(next - i);
    out.push(n);
    next = i + 1;
  };
  b = from;
  at = acc.o;
  for (const v of c) {
    if (v < 0) {
      at -= v;
      continue;
    }
    while (b < to && index[b] < at) emit(index[b], count[b++]);
    if (b < to && index[b] === at) emit(at, v + count[b++]);
    else if (v > 0) emit(at, v);
    at++;
  }
  while (b < to) emit(index[b], count[b++]);
  acc.c = out;
}

interface Slot {
  row: MinuteRow;
  minuteMs: number;
  ids: Int32Array;
  next: Slot | undefined;
  /** Bucket counts of the row's span, from bucket `denseFrom` on, when it is dense (MinuteRollup.addBuckets). */
  dense: Float64Array | undefined;
  denseFrom: number;
  /** Whether row.sketch.c is given back (MinuteRollup.release) and `dense` alone holds the counts. */
  stale: boolean;
  /**
   * Entries the row's sketch may take: its stored entries when filed plus, per sketch added since, two
   * thirds of the fewest wire bits its buckets take, the bound its stored form keeps; a dense accumulator
   * longer than this is not made.
   */
  budget: number;
}

// One past the highest bucket index of a stored-form sketch with entries.
function storedEnd(sk: SketchJson): number {
  let at = sk.o;
  for (const v of sk.c) at += v < 0 ? -v : 1;
  return at;
}

/** Merges summaries into one row per (minute, series); see MinuteRollup. */
export function rollup(summaries: readonly DecodedSummary[]): MinuteRow[] {
  const r = new MinuteRollup();
  for (const s of summaries) r.add(s);
  return [...r.rows()];
}
