// Ingest decodes each summary into a set of columns it lends the summary until accept() returns: no set
// may be handed to a second summary while the first is in flight (they wait for the spool's fsync), every
// outcome gives its set back, and the spare sets stay within their byte bound.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Ingestor } from "../../collector/ingest.ts";
import { createMetrics } from "../../collector/metrics.ts";
import { Spool } from "../../collector/spool.ts";
import { SeriesColumns, decodeSummaryInto } from "../../collector/summary.ts";
import { encode, series, summary } from "./helpers.ts";

const MiB = 1 << 20;
const dirs: string[] = [];
const spools: Spool[] = [];
afterAll(async () => {
  for (const s of spools) await s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

// The test's own measure of a set: every array it holds (shared/wire.ts SeriesColumns).
const bytesOf = (c: SeriesColumns) => c.refs.byteLength + c.numbers.byteLength + c.scales.byteLength + c.bucketEnd.byteLength + c.bucketIndex.byteLength + c.bucketCount.byteLength;

/** An Ingestor whose decoder records the set each summary got, and every set handed out while in use. */
async function instrumented() {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-columns-"));
  dirs.push(dir);
  const spool = await Spool.open(dir, { segmentBytes: 64 * MiB });
  spools.push(spool);
  const handedOut: SeriesColumns[] = [];
  const inFlight = new Set<SeriesColumns>();
  const clashes: number[] = [];
  const ingestor = new Ingestor(
    spool,
    (body, cols) => {
      if (inFlight.has(cols)) clashes.push(handedOut.length);
      handedOut.push(cols);
      return decodeSummaryInto(body, cols);
    },
    createMetrics(() => spool),
    Number.MAX_SAFE_INTEGER,
    true,
    { maxWindowAgeMs: 3_600_000, maxWindowAheadMs: 300_000, maxHeldBytes: 256 * MiB },
  );
  // accept() decodes before its first await, so the set is known as soon as it is called; it is counted
  // in flight until the answer arrives, which is after accept() gave it back.
  const accept = async (body: Uint8Array, caller?: Parameters<Ingestor["accept"]>[2]) => {
    const n = handedOut.length;
    const answer = ingestor.accept(Buffer.from(body), 120_000, caller);
    const cols = handedOut[n];
    inFlight.add(cols);
    try {
      return await answer;
    } finally {
      inFlight.delete(cols);
    }
  };
  return { spool, accept, handedOut, clashes };
}

describe("ingest's decoder columns", () => {
  it("are given back on every outcome, so one set serves summaries received one after another", async () => {
    const { spool, accept, handedOut, clashes } = await instrumented();
    const good = encode(summary(1, 60_000, [series("a", [5, 7]), series("b", [9])]));
    const outcomes: string[] = [];
    const record = async (body: Uint8Array, caller?: Parameters<Ingestor["accept"]>[2]) => {
      try {
        const r = await accept(body, caller);
        outcomes.push(r.status === "invalid" || r.status === "forbidden" ? r.reason : r.status);
      } catch (err) {
        outcomes.push((err as Error).message);
      }
    };
    await record(good);
    await record(good); // its key is held until loaded: a retry
    await record(good.subarray(0, good.length - 1));
    await record(encode(summary(2, 60_000, [{ ...series("a", [0]), requests: 2 ** 41, sketch: { s: 6, z: 2 ** 41, o: 0, c: [] } }])));
    await record(encode(summary(3, 10_000_000, [series("a", [5])])));
    await record(encode(summary(4, 60_000, [series("a", [5])])), { key: "k", namespaces: new Set(["shop"]) });
    const append = spool.append;
    spool.append = () => Promise.reject(new Error("disk gone"));
    await record(encode(summary(5, 60_000, [series("a", [5])])));
    spool.append = append;
    await record(encode(summary(6, 60_000, [series("c", [1])])));
    expect(outcomes).toEqual(["accepted", "duplicate", "truncated", "too_many_requests", "window_out_of_range", "identity_mismatch", "disk gone", "accepted"]);
    expect(handedOut).toHaveLength(outcomes.length);
    expect(new Set(handedOut).size).toBe(1);
    expect(clashes).toEqual([]);
  });

  it("never lends a set in use to another summary, and keeps at most 16 MiB of spare sets", async () => {
    const { accept, handedOut, clashes } = await instrumented();
    // Some 40,000 series in one summary grow a set to several MiB (within the 4 MiB body limit): three
    // of them in flight together make more than the spare bound.
    const huge = (seq: number) =>
      encode(
        summary(
          seq,
          60_000,
          Array.from({ length: 40_000 }, (_, k) => series(`s${k % 50}`, [(k % 997) + 1])),
        ),
      );
    const big = await Promise.all([1, 2, 3].map((seq) => accept(huge(seq))));
    expect(big.map((r) => r.status)).toEqual(["accepted", "accepted", "accepted"]);
    const grown = new Set(handedOut);
    expect(grown.size).toBe(3);
    const grownBytes = [...grown].map(bytesOf);
    expect(Math.min(...grownBytes)).toBeGreaterThan(6 * MiB);

    // As many small summaries in flight as there can be spare sets: each takes a spare one, if any, first.
    const small = await Promise.all(Array.from({ length: 300 }, (_, i) => accept(encode(summary(10 + i, 60_000, [series(`t${i}`, [i + 1])])))));
    expect(small.every((r) => r.status === "accepted")).toBe(true);
    const kept = handedOut.slice(3).filter((c) => grown.has(c));
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(3);
    expect(kept.reduce((n, c) => n + bytesOf(c), 0)).toBeLessThanOrEqual(16 * MiB);
    expect(clashes).toEqual([]);
  });
});
