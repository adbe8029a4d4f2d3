import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { Spool, encodeRecord, parseSegment } from "../../collector/spool.ts";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "meshlook-spool-"));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const body = (i: number) => Buffer.from(`summary-${i}-${"x".repeat(i % 37)}`);

async function readAll(spool: Spool) {
  const ids = await spool.seal();
  const out = [];
  for (const id of ids) out.push(await spool.read(id));
  return out;
}

describe("spool", () => {
  it("acknowledges only after writing, batches concurrent appends into few fsyncs, reads back in order", async () => {
    const spool = await Spool.open(tempDir(), { segmentBytes: 1 << 20 });
    await Promise.all(Array.from({ length: 300 }, (_, i) => spool.append(body(i), 1000 + i)));
    expect(spool.fsyncs).toBeGreaterThan(0);
    expect(spool.fsyncs).toBeLessThan(300);
    const segs = await readAll(spool);
    const records = segs.flatMap((s) => s.records);
    expect(records.map((r) => r.body.toString())).toEqual(Array.from({ length: 300 }, (_, i) => body(i).toString()));
    expect(records.map((r) => r.receivedAtMs)).toEqual(Array.from({ length: 300 }, (_, i) => 1000 + i));
    expect(segs.flatMap((s) => s.corruptions)).toEqual([]);
    await spool.close();
  });

  it("survives a reopen: old segments are kept, new records go to a new segment, remove() deletes", async () => {
    const dir = tempDir();
    const a = await Spool.open(dir, { segmentBytes: 1 << 20 });
    await a.append(body(1), 1);
    await a.close();
    const b = await Spool.open(dir, { segmentBytes: 1 << 20 });
    await b.append(body(2), 2);
    const ids = await b.seal();
    expect(ids).toHaveLength(2);
    expect((await b.read(ids[0])).records[0].body.toString()).toBe(body(1).toString());
    expect((await b.read(ids[1])).records[0].body.toString()).toBe(body(2).toString());
    expect(b.oldestRecordMs()).toBe(1);
    await b.remove(ids);
    expect(readdirSync(dir).filter((f) => f.endsWith(".seg"))).toEqual([]);
    expect(b.bytes).toBe(0);
  });

  it("rolls to a new segment once the active one is full", async () => {
    const spool = await Spool.open(tempDir(), { segmentBytes: 64 * 1024 });
    for (let i = 0; i < 10; i++) await spool.append(Buffer.alloc(20_000, i), i);
    const segs = await readAll(spool);
    expect(segs.length).toBeGreaterThan(2);
    expect(segs.flatMap((s) => s.records).map((r) => r.body[0])).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe("spool corruption", () => {
  const header = Buffer.from("MLSPOOL\x01", "latin1");
  const frames = [0, 1, 2, 3, 4].map((i) => encodeRecord(body(i), i));
  const offsets = frames.map((_, i) => header.length + frames.slice(0, i).reduce((n, f) => n + f.length, 0));
  const segment = () => Buffer.concat([header, ...frames]);

  it("skips a record with a flipped payload byte, keeps its neighbours, reports segment and offset", () => {
    const buf = segment();
    buf[offsets[2] + 20] ^= 0xff;
    const { records, corruptions } = parseSegment("0000000007.seg", buf);
    expect(records.map((r) => r.receivedAtMs)).toEqual([0, 1, 3, 4]);
    expect(corruptions).toEqual([{ segment: "0000000007.seg", offset: offsets[2], skippedBytes: frames[2].length, reason: "crc mismatch" }]);
  });

  it("does not trust a damaged length field: resyncs at the next valid record", () => {
    const buf = segment();
    buf.writeUInt32BE(0x7fffffff, offsets[1] + 4);
    const { records, corruptions } = parseSegment("s", buf);
    expect(records.map((r) => r.receivedAtMs)).toEqual([0, 2, 3, 4]);
    expect(corruptions).toEqual([{ segment: "s", offset: offsets[1], skippedBytes: frames[1].length, reason: "impossible length" }]);
  });

  it("reports a torn tail and keeps everything before it", () => {
    const buf = segment().subarray(0, offsets[4] + 15);
    const { records, corruptions } = parseSegment("s", buf);
    expect(records.map((r) => r.receivedAtMs)).toEqual([0, 1, 2, 3]);
    expect(corruptions).toEqual([{ segment: "s", offset: offsets[4], skippedBytes: 15, reason: "torn tail" }]);
  });

  it("resyncs after garbage inserted between records", () => {
    const buf = Buffer.concat([header, frames[0], Buffer.from("garbage MLR1 garbage"), frames[1]]);
    const { records, corruptions } = parseSegment("s", buf);
    expect(records.map((r) => r.receivedAtMs)).toEqual([0, 1]);
    expect(corruptions).toEqual([{ segment: "s", offset: offsets[1], skippedBytes: 20, reason: "bad record magic" }]);
  });

  it("reads damaged segment files from disk after a restart", async () => {
    const dir = tempDir();
    const a = await Spool.open(dir, { segmentBytes: 1 << 20 });
    for (let i = 0; i < 5; i++) await a.append(body(i), i);
    await a.close();
    const file = join(dir, readdirSync(dir).find((f) => f.endsWith(".seg"))!);
    const bytes = readFileSync(file);
    bytes[offsets[1] + 14] ^= 0x01;
    writeFileSync(file, bytes);
    truncateSync(file, bytes.length - 3);
    const b = await Spool.open(dir, { segmentBytes: 1 << 20 });
    const [seg] = await readAll(b);
    expect(seg.records.map((r) => r.receivedAtMs)).toEqual([0, 2, 3]);
    expect(seg.corruptions.map((c) => [c.offset, c.reason])).toEqual([
      [offsets[1], "crc mismatch"],
      [offsets[4], "torn tail"],
    ]);
  });
});
