// The spool: an append-only, checksummed log of accepted summaries on local disk, so that a summary is
// durable before it is acknowledged and survives until the warehouse has committed it. Byte layout and
// the corruption/resync rules are in docs/spool.md. Like Prometheus' WAL it is an opaque record log
// (length + CRC framing) with a thin typed layer on top (record type, receive time, body).
import { crc32 } from "node:zlib";
import { mkdir, open, readdir, readFile, stat, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { LEGACY_CALLER } from "../shared/schema.ts";

const SEGMENT_MAGIC = Buffer.from("MLSPOOL\x01", "latin1"); // 7-byte tag + layout version 1
const RECORD_MAGIC = 0x4d4c5231; // "MLR1"
const RECORD_MAGIC_BYTES = Buffer.from("MLR1", "latin1");
const FRAME_BYTES = 12; // magic u32 | payload length u32 | crc32 u32
const TYPED_HEADER_BYTES = 9; // type u8 | received-at f64 (epoch ms)
/** Written before callers were recorded; still read, as sent by LEGACY_CALLER. */
const TYPE_SUMMARY_V1 = 1;
/** Typed header, then caller length u16 LE | caller UTF-8, then the body. */
const TYPE_SUMMARY = 2;
const CALLER_LENGTH_BYTES = 2;
/** Larger than any record the collector writes; a bigger length can only be corruption. */
const MAX_PAYLOAD_BYTES = 512 << 20;

/** A summary read back from the spool. */
export interface SpoolRecord {
  receivedAtMs: number;
  /** Who sent it, as the load ledger records it (DecodedSummary.caller). */
  caller: string;
  /** The wire-format body exactly as it was received. */
  body: Buffer;
  /** Segment file offset just past this record: where a reader that stops after it resumes. */
  end: number;
}

/** A damaged stretch of a segment that reading skipped. */
export interface SpoolCorruption {
  segment: string;
  /** Byte offset in the segment file where the damage starts. */
  offset: number;
  /** Bytes skipped until the next verifiable record (or the end of the file). */
  skippedBytes: number;
  reason: "bad segment header" | "bad record magic" | "impossible length" | "crc mismatch" | "torn tail" | "unknown record type" | "bad caller length";
}

export interface SegmentRead {
  id: number;
  records: SpoolRecord[];
  corruptions: SpoolCorruption[];
}

interface SegmentInfo {
  bytes: number;
  /** Records this process wrote to it (segments from an earlier process: unknown). */
  records?: number;
  /** Receive time of its first record; the segment's age bound for `oldest unloaded`. */
  firstRecordMs?: number;
}

interface Pending {
  /** Frame and typed header; the body follows it on disk and is written from the caller's buffer. */
  head: Buffer;
  body: Uint8Array;
  receivedAtMs: number;
  resolve(segment: number): void;
  reject(err: unknown): void;
}

const segmentName = (id: number) => `${String(id).padStart(10, "0")}.seg`;

/**
 * The bytes of one summary record that precede its body: frame, typed header and caller, with the CRC
 * over the length, everything after the frame and the body. Kept apart from the body so appending never
 * copies it.
 */
function recordHead(body: Uint8Array, receivedAtMs: number, caller: string): Buffer {
  const callerBytes = Buffer.from(caller, "utf8");
  if (callerBytes.length > 0xffff) throw new RangeError(`caller identity of ${callerBytes.length} bytes does not fit a spool record`);
  const headBytes = FRAME_BYTES + TYPED_HEADER_BYTES + CALLER_LENGTH_BYTES + callerBytes.length;
  const head = Buffer.allocUnsafe(headBytes);
  head.writeUInt32BE(RECORD_MAGIC, 0);
  head.writeUInt32BE(headBytes - FRAME_BYTES + body.length, 4);
  head.writeUInt8(TYPE_SUMMARY, FRAME_BYTES);
  head.writeDoubleLE(receivedAtMs, FRAME_BYTES + 1);
  head.writeUInt16LE(callerBytes.length, FRAME_BYTES + TYPED_HEADER_BYTES);
  callerBytes.copy(head, FRAME_BYTES + TYPED_HEADER_BYTES + CALLER_LENGTH_BYTES);
  head.writeUInt32BE(crc32(body, crc32(head.subarray(FRAME_BYTES), crc32(head.subarray(4, 8)))), 8);
  return head;
}

/** Frames one summary body as a spool record (typed header and caller inside the CRC-protected payload). */
export function encodeRecord(body: Uint8Array, receivedAtMs: number, caller = ""): Buffer {
  return Buffer.concat([recordHead(body, receivedAtMs, caller), body]);
}

/** The summary record in a checksum-valid payload, or the reason it holds none. */
function summaryRecord(payload: Buffer, end: number): SpoolRecord | "unknown record type" | "bad caller length" {
  const receivedAtMs = payload.readDoubleLE(1);
  if (payload[0] === TYPE_SUMMARY_V1) return { receivedAtMs, caller: LEGACY_CALLER, body: payload.subarray(TYPED_HEADER_BYTES), end };
  if (payload[0] !== TYPE_SUMMARY) return "unknown record type";
  const at = TYPED_HEADER_BYTES + CALLER_LENGTH_BYTES;
  if (payload.length < at || at + payload.readUInt16LE(TYPED_HEADER_BYTES) > payload.length) return "bad caller length";
  const bodyAt = at + payload.readUInt16LE(TYPED_HEADER_BYTES);
  return { receivedAtMs, caller: payload.toString("utf8", at, bodyAt), body: payload.subarray(bodyAt), end };
}

/** Is a complete, checksum-valid record framed at `at`? Returns its payload length, else the reason not. */
function checkFrame(buf: Buffer, at: number): number | SpoolCorruption["reason"] {
  if (buf.length - at < FRAME_BYTES) return "torn tail";
  if (buf.readUInt32BE(at) !== RECORD_MAGIC) return "bad record magic";
  const len = buf.readUInt32BE(at + 4);
  if (len < TYPED_HEADER_BYTES || len > MAX_PAYLOAD_BYTES) return "impossible length";
  if (at + FRAME_BYTES + len > buf.length) return "torn tail";
  const payload = buf.subarray(at + FRAME_BYTES, at + FRAME_BYTES + len);
  if (crc32(payload, crc32(buf.subarray(at + 4, at + 8))) !== buf.readUInt32BE(at + 8)) return "crc mismatch";
  return len;
}

/**
 * Parses one segment file's bytes. Damage never hides good records: after a bad frame the reader
 * resynchronises at the next offset where a complete record with a valid CRC starts (the length of a
 * damaged frame is not trusted), reporting the skipped stretch with its offset.
 */
export function parseSegment(name: string, buf: Buffer, base = 0): { records: SpoolRecord[]; corruptions: SpoolCorruption[] } {
  const records: SpoolRecord[] = [];
  const corruptions: SpoolCorruption[] = [];
  // `base` > 0: buf is the stretch of the file starting there, at a record boundary past the header.
  let at = base > 0 ? 0 : SEGMENT_MAGIC.length;
  if (base === 0 && (buf.length < SEGMENT_MAGIC.length || !buf.subarray(0, SEGMENT_MAGIC.length).equals(SEGMENT_MAGIC))) {
    corruptions.push({ segment: name, offset: 0, skippedBytes: 0, reason: "bad segment header" });
    at = 0;
  }
  while (at < buf.length) {
    const res = checkFrame(buf, at);
    if (typeof res === "number") {
      const record = summaryRecord(buf.subarray(at + FRAME_BYTES, at + FRAME_BYTES + res), base + at + FRAME_BYTES + res);
      if (typeof record === "string") corruptions.push({ segment: name, offset: base + at, skippedBytes: FRAME_BYTES + res, reason: record });
      else records.push(record);
      at += FRAME_BYTES + res;
      continue;
    }
    let next = at + 1;
    for (;;) {
      next = buf.indexOf(RECORD_MAGIC_BYTES, next);
      if (next < 0 || typeof checkFrame(buf, next) === "number") break;
      next += 1;
    }
    const end = next < 0 ? buf.length : next;
    corruptions.push({ segment: name, offset: base + at, skippedBytes: end - at, reason: next < 0 && res !== "crc mismatch" ? "torn tail" : res });
    at = end;
  }
  return { records, corruptions };
}

export interface SpoolOptions {
  /** Start a new segment once the active one reaches this size. */
  segmentBytes: number;
}

/**
 * Append side: `append()` resolves once the record is on disk (fsync). Appends that arrive while a
 * write+fsync is in progress are written together by the next one (group commit), so concurrent
 * requests share fsyncs. Read side: the loader `seal()`s the active segment, reads sealed segments in
 * order and `remove()`s them only after the warehouse committed their contents.
 */
export class Spool {
  private readonly segments = new Map<number, SegmentInfo>();
  private active?: { id: number; fh: FileHandle };
  private nextId: number;
  private queue: Pending[] = [];
  private flushScheduled = false;
  private chain: Promise<unknown> = Promise.resolve();
  /** Another reader of the spool (the remote-write exporter): which segments it still needs. */
  private retainer?: (id: number) => boolean;
  /** Segments the loader is done with that the retainer still needs; kept on disk until it is not. */
  private readonly loaded = new Set<number>();
  /** fsyncs of record data so far; with group commit this grows slower than the number of appends. */
  fsyncs = 0;
  /**
   * Set when the last write failed because the disk is full, cleared by the next successful write: a
   * full disk still lets /readyz's empty probe file through, so readiness asks this instead.
   */
  diskFull?: Error;

  private constructor(
    readonly dir: string,
    private readonly opts: SpoolOptions,
    existing: Map<number, SegmentInfo>,
  ) {
    for (const [id, info] of existing) this.segments.set(id, info);
    this.nextId = Math.max(0, ...existing.keys()) + 1;
  }

  /**
   * Opens (creating) the spool directory. Segments left by an earlier process are kept as sealed and
   * will be loaded; new records always go to a fresh segment, so a torn tail from a crash is never
   * appended to.
   */
  static async open(dir: string, opts: SpoolOptions): Promise<Spool> {
    await mkdir(dir, { recursive: true });
    const existing = new Map<number, SegmentInfo>();
    for (const name of await readdir(dir)) {
      const m = /^(\d{10})\.seg$/.exec(name);
      if (!m) continue;
      existing.set(Number(m[1]), { bytes: (await stat(join(dir, name))).size });
    }
    const spool = new Spool(dir, opts, existing);
    return spool;
  }

  /** Total bytes of every segment not yet removed (sealed and active). */
  get bytes(): number {
    let n = 0;
    for (const s of this.segments.values()) n += s.bytes;
    return n;
  }

  get segmentCount(): number {
    return this.segments.size;
  }

  /** Bytes of one segment file (0 once removed). */
  sizeOf(id: number): number {
    return this.segments.get(id)?.bytes ?? 0;
  }

  /** Records this process acknowledged into a segment; undefined for segments left by an earlier run. */
  recordCount(id: number): number | undefined {
    return this.segments.get(id)?.records;
  }

  /** Receive time of the oldest record still in the spool, when known. */
  oldestRecordMs(): number | undefined {
    let oldest: number | undefined;
    for (const [id, s] of this.segments) {
      if (this.loaded.has(id)) continue;
      if (s.firstRecordMs !== undefined && (oldest === undefined || s.firstRecordMs < oldest)) oldest = s.firstRecordMs;
    }
    return oldest;
  }

  /**
   * Appends one summary body; resolves with the id of its segment once it is durable, rejects if the
   * write or fsync failed. The body is written from the caller's buffer, which must not change until then.
   */
  append(body: Uint8Array, receivedAtMs: number, caller = ""): Promise<number> {
    const head = recordHead(body, receivedAtMs, caller);
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ head, body, receivedAtMs, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        void this.serial(() => this.flush());
      }
    });
  }

  /** Runs file operations one at a time, in order (appends, seal, close never interleave). */
  private serial<T>(op: () => Promise<T>): Promise<T> {
    const p = this.chain.then(op);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async flush(): Promise<void> {
    this.flushScheduled = false;
    const batch = this.queue;
    this.queue = [];
    try {
      const active = await this.activeSegment();
      const info = this.segments.get(active.id)!;
      let bytes = 0;
      const chunks: Uint8Array[] = [];
      for (const p of batch) {
        bytes += p.head.length + p.body.length;
        chunks.push(p.head, p.body);
      }
      const { bytesWritten } = await active.fh.writev(chunks);
      // A filesystem that fills up mid-write returns a short count instead of an error; the records
      // past it are not on disk and must not be acknowledged.
      if (bytesWritten !== bytes) {
        throw Object.assign(new Error(`short write to spool segment ${segmentName(active.id)}: ${bytesWritten} of ${bytes} bytes (disk full)`), { code: "ENOSPC" });
      }
      await active.fh.datasync();
      this.fsyncs++;
      info.bytes += bytes;
      info.records = (info.records ?? 0) + batch.length;
      info.firstRecordMs ??= batch[0].receivedAtMs;
      this.diskFull = undefined;
      for (const p of batch) p.resolve(active.id);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOSPC") this.diskFull = err as Error;
      // The segment may now end in a partial record; never append after it. Readers skip the torn bytes.
      // Its record count is no longer known: records of the failed batch may be on disk after all.
      if (this.active) this.segments.get(this.active.id)!.records = undefined;
      await this.closeActive().catch(() => undefined);
      for (const p of batch) p.reject(err);
    }
  }

  private async activeSegment(): Promise<{ id: number; fh: FileHandle }> {
    if (this.active && this.segments.get(this.active.id)!.bytes >= this.opts.segmentBytes) await this.closeActive();
    if (this.active) return this.active;
    const id = this.nextId++;
    const fh = await open(join(this.dir, segmentName(id)), "wx");
    try {
      await fh.write(SEGMENT_MAGIC);
      await fh.datasync();
      await this.syncDir(); // the new directory entry must survive a crash too
    } catch (err) {
      await fh.close();
      throw err;
    }
    this.segments.set(id, { bytes: SEGMENT_MAGIC.length, records: 0 });
    this.active = { id, fh };
    return this.active;
  }

  private async closeActive(): Promise<void> {
    const a = this.active;
    this.active = undefined;
    if (a) await a.fh.close();
  }

  private async syncDir(): Promise<void> {
    const d = await open(this.dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  /**
   * Closes the active segment so everything acknowledged so far is in sealed segments; returns the
   * sealed segment ids, oldest first. Appends after this go to a new segment.
   */
  seal(): Promise<number[]> {
    return this.serial(async () => {
      await this.closeActive();
      return [...this.segments.keys()].filter((id) => !this.loaded.has(id)).sort((a, b) => a - b);
    });
  }

  /** Every segment not yet removed, oldest first, the active one included; sealing nothing. */
  segmentIds(): number[] {
    return [...this.segments.keys()].sort((a, b) => a - b);
  }

  /**
   * Makes remove() keep the segments `needs` still wants, until release() finds it no longer does: the
   * warehouse load and a second reader then each progress at their own pace.
   */
  retain(needs: (id: number) => boolean): void {
    this.retainer = needs;
  }

  /**
   * New segments get ids above `id`. Ids restart after the last segment once the directory is empty, but
   * a reader that persisted its position by segment id must never see a new segment numbered below it.
   */
  skipIdsThrough(id: number): void {
    this.nextId = Math.max(this.nextId, id + 1);
  }

  /** Deletes the segments the loader is done with that the retainer no longer needs. */
  release(): Promise<void> {
    return this.loaded.size === 0 ? Promise.resolve() : this.remove([...this.loaded]);
  }

  /** Reads sealed segments (ids from seal()), oldest first. */
  async read(id: number): Promise<SegmentRead> {
    const name = segmentName(id);
    const buf = await readFile(join(this.dir, name));
    const { records, corruptions } = parseSegment(name, buf);
    const info = this.segments.get(id);
    if (info && records.length > 0) info.firstRecordMs = records[0].receivedAtMs;
    return { id, records, corruptions };
  }

  /** Deletes segments whose every record is committed in the warehouse. */
  remove(ids: readonly number[]): Promise<void> {
    return this.serial(async () => {
      for (const id of ids) {
        if (this.active?.id === id) continue;
        if (this.retainer?.(id)) {
          this.loaded.add(id);
          continue;
        }
        this.loaded.delete(id);
        await unlink(join(this.dir, segmentName(id))).catch((err: NodeJS.ErrnoException) => {
          if (err.code !== "ENOENT") throw err;
        });
        this.segments.delete(id);
      }
      await this.syncDir();
    });
  }

  /** Checks that the spool directory accepts writes (for /readyz) without touching the segments. */
  async probeWritable(): Promise<void> {
    const probe = join(this.dir, ".probe");
    const fh = await open(probe, "w");
    await fh.close();
    await unlink(probe);
  }

  /** Waits for queued appends, then closes the active segment. */
  close(): Promise<void> {
    return this.serial(() => this.closeActive());
  }
}
