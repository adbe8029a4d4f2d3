// The spool under disk faults, with the collector as a real process: a full spool filesystem (a 512 KiB
// tmpfs) answers 503 with Retry-After and loses no acknowledged summary; a segment damaged on disk (a
// flipped byte, a torn final write) is detected, reported with segment and byte offset, and every other
// record is still loaded.
import { execFileSync } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, describe, expect, it } from "vitest";
import type { DecodedSummary } from "../../collector/summary.ts";
import { decodeSummary, encodeSummary } from "../../shared/node.ts";
import { LEDGER_TABLE } from "../../shared/schema.ts";
import { latencies, series, summary, totals } from "../collector/helpers.ts";
import { fetchRetryingShed } from "../shared/shed-retry.ts";
import { CollectorReplica, INGEST_PATH, SUMMARY_TYPE, cleanupList, sleep } from "./rig.ts";

const TOKEN = "spool-token";
const cleanups = cleanupList("meshlook-spool-");
afterAll(() => cleanups.run());

/** A summary of `n` series (distinct services), a few KB on the wire. */
const bigSummary = (seq: number, n: number, producer = "spool-test"): DecodedSummary =>
  summary(
    seq,
    1_700_000_040_000 + (seq % 6) * 10_000,
    Array.from({ length: n }, (_, i) => series(`svc-${seq}-${i}`, latencies(3))),
    producer,
  );

async function post(url: string, s: DecodedSummary) {
  const body = Buffer.from(encodeSummary(s));
  // Load shedding on a starved machine (under-pressure) is not the disk's answer: sent again, as a sidecar does.
  const res = await fetchRetryingShed(() => fetch(url + INGEST_PATH, { method: "POST", headers: { "content-type": SUMMARY_TYPE, authorization: `Bearer ${TOKEN}` }, body }));
  return { status: res.status, retryAfter: res.headers.get("retry-after"), body: (await res.json()) as { error?: string } };
}

/** Ledger keys and per-service totals in a DuckDB warehouse no process holds. */
async function loaded(path: string) {
  const instance = await DuckDBInstance.create(path);
  const conn = await instance.connect();
  try {
    const keys = (await conn.runAndReadAll(`SELECT producer_id, seq FROM ${LEDGER_TABLE.name} ORDER BY seq`)).getRows().map((r) => Number(r[1]));
    const rows = (
      await conn.runAndReadAll("SELECT destination_service AS s, SUM(requests) AS n, SUM(latency_sum_us) AS l FROM mesh_traffic_minute GROUP BY 1 ORDER BY 1")
    ).getRowObjectsJS();
    return { seqs: keys, totals: Object.fromEntries(rows.map((r) => [r.s, { requests: Number(r.n), latencySumUs: Number(r.l) }])) };
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** A size-limited spool directory: a tmpfs when this process may mount one, else the spool's own limit. */
function limitedSpool(dir: string, bytes: number): { env: Record<string, string>; kind: "tmpfs" | "spool_max_bytes" } {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", dir], { stdio: "ignore" });
    cleanups.add(() => execFileSync("umount", ["-l", dir], { stdio: "ignore" }));
    return { env: { MESHLOOK_SPOOL_DIR: dir }, kind: "tmpfs" };
  } catch {
    return { env: { MESHLOOK_SPOOL_DIR: dir, MESHLOOK_SPOOL_MAX_BYTES: String(bytes) }, kind: "spool_max_bytes" };
  }
}

describe("spool faults", () => {
  it("a full spool disk answers 503 with Retry-After and loses no acknowledged summary", async () => {
    const dir = cleanups.tempDir();
    const limit = limitedSpool(join(dir, "spool"), 512 << 10);
    // No loads while the test fills the disk: the warehouse is "slow"; SIGTERM loads at the end.
    const replica = new CollectorReplica("full", { MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: TOKEN, MESHLOOK_LOAD_INTERVAL_S: "3600", ...limit.env });
    cleanups.add(() => replica.kill());
    await replica.start();
    const acked: DecodedSummary[] = [];
    const refused: { status: number; retryAfter: string | null; error?: string }[] = [];
    for (let seq = 1; seq <= 400 && refused.length < 5; seq++) {
      const s = bigSummary(seq, 250);
      const r = await post(replica.url!, s);
      if (r.status === 200) acked.push(s);
      else refused.push({ status: r.status, retryAfter: r.retryAfter, error: r.body.error });
    }
    expect(refused.length).toBe(5);
    for (const r of refused) {
      expect(r.status).toBe(503);
      expect(Number(r.retryAfter)).toBeGreaterThan(0);
      expect(r.error).toBe(limit.kind === "tmpfs" ? "spool_unavailable" : "spool_full");
    }
    expect(acked.length).toBeGreaterThan(10);
    await replica.stop();
    const w = await loaded(join(dir, "meshlook.duckdb"));
    expect(w.seqs).toEqual(acked.map((s) => s.seq));
    expect(w.totals).toEqual(totals(acked));
  });

  it("a damaged segment is reported with segment and offset, and every other record is loaded", async () => {
    const dir = cleanups.tempDir();
    const env = { MESHLOOK_DATA_DIR: dir, MESHLOOK_INGEST_TOKENS: TOKEN };
    // The collector listens before its first load cycle, which would load (and remove) what it spooled
    // by then: this process holds the DuckDB file so that the first collector loads nothing.
    const holder = await DuckDBInstance.create(join(dir, "meshlook.duckdb"));
    const first = new CollectorReplica("first", { ...env, MESHLOOK_LOAD_INTERVAL_S: "3600" });
    cleanups.add(() => first.kill());
    await first.start();
    const sent = Array.from({ length: 20 }, (_, i) => bigSummary(i + 1, 5, "torn-test"));
    for (const s of sent) expect((await post(first.url!, s)).status).toBe(200);
    await first.kill(); // acknowledged, never loaded
    holder.closeSync();

    // Walk the record framing (docs/spool.md) to find record offsets, then damage the segment.
    const spoolDir = join(dir, "spool");
    const name = readdirSync(spoolDir)
      .filter((f) => f.endsWith(".seg"))
      .find((f) => readFileSync(join(spoolDir, f)).length > 8)!;
    const path = join(spoolDir, name);
    const buf = readFileSync(path);
    const offsets: number[] = [];
    for (let at = 8; at < buf.length; at += 12 + buf.readUInt32BE(at + 4)) offsets.push(at);
    expect(offsets.length).toBe(sent.length);
    const victim = 7;
    // A type-2 payload: type, received-at, caller length u16 LE, caller, body.
    const payloadAt = offsets[victim] + 12;
    const victimBody = buf.subarray(payloadAt + 11 + buf.readUInt16LE(payloadAt + 9), payloadAt + buf.readUInt32BE(offsets[victim] + 4));
    const victimSeq = (decodeSummary(victimBody) as { ok: true; summary: DecodedSummary }).summary.seq;
    buf[offsets[victim] + 40] ^= 0x5a; // bit rot inside a record's payload
    writeFileSync(path, buf);
    appendFileSync(path, buf.subarray(offsets[3], offsets[3] + 30)); // a torn final write
    const tornAt = buf.length;

    const second = new CollectorReplica("second", { ...env, MESHLOOK_LOAD_INTERVAL_S: "1" });
    cleanups.add(() => second.kill());
    await second.start();
    while ((await second.metric("meshlook_spool_bytes")) > 0) await sleep(100);
    expect(await second.metric('meshlook_spool_corruptions_total{reason="crc mismatch"}')).toBe(1);
    expect(await second.metric('meshlook_spool_corruptions_total{reason="torn tail"}')).toBe(1);
    const reports = second
      .logs()
      .split("\n")
      .filter((l) => l.includes("spool corruption skipped"))
      .map((l) => JSON.parse(l) as { segment: string; offset: number; reason: string });
    expect(reports.map((r) => [r.segment.endsWith(name), r.offset, r.reason])).toEqual([
      [true, offsets[victim], "crc mismatch"],
      [true, tornAt, "torn tail"],
    ]);
    await second.stop();
    const kept = sent.filter((s) => s.seq !== victimSeq);
    const w = await loaded(join(dir, "meshlook.duckdb"));
    expect(w.seqs).toEqual(kept.map((s) => s.seq));
    expect(w.totals).toEqual(totals(kept));
  });
});
