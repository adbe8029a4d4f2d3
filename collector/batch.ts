// What a load hands the sink: the ledger rows of its summaries, and their minute rows once the sink has
// found out (in its warehouse, by comparing keys in SQL) which of them the ledger does not hold yet.
//
// A load cycle is one sink transaction, however large the cycle: the rows come as parts, each a
// MinuteRollup (one row per (minute, series)); a batch rolls up into a new part only when the one it is
// filling outgrows a memory budget, so memory is bounded by the budget, not by splitting the transaction,
// and a cycle writes one row per (minute, series) unless its data exceeds the budget.
import { ledgerEntry, uniqueSummaries, type LedgerEntry } from "./ledger.ts";
import { MinuteRollup } from "./rollup.ts";
import type { LoadResult, Sink } from "./sink/types.ts";
import type { DecodedSummary } from "./summary.ts";
import { Yielder } from "./yielder.ts";

export interface LoadBatch {
  /** One per summary, each (producer_id, seq) once. */
  readonly entries: readonly LedgerEntry[];
  /**
   * The rows of the summaries at the positions where `fresh` is true, as parts to write in order, in the
   * same transaction as the ledger rows of those summaries. May be called again (a retried transaction).
   * null: this batch cannot roll up that subset (a fold of all of them); the sink then writes nothing.
   */
  parts(fresh: readonly boolean[]): AsyncIterable<MinuteRollup> | null;
}

/** Rollup bytes (MinuteRollup.bytes) at which a part is handed over and the next one started. */
export const DEFAULT_PART_BYTES = 128 << 20;

async function* once(r: MinuteRollup): AsyncGenerator<MinuteRollup> {
  yield r;
}

/** Summaries the collector rolled up as they arrived: loadable only when the ledger holds none of them. */
export function foldBatch(rollup: MinuteRollup, entries: readonly LedgerEntry[]): LoadBatch {
  return { entries, parts: (fresh) => (fresh.every(Boolean) ? once(rollup) : null) };
}

/**
 * Summaries produced one at a time by `summaries(fresh)` — those of the entries where `fresh` is true —
 * and rolled up in parts of at most about `partBytes`, so only one part and one summary are held at a
 * time. Used for summaries read back from the spool (the loader) and for summaries in memory.
 */
export function streamedBatch(entries: readonly LedgerEntry[], summaries: (fresh: readonly boolean[]) => AsyncIterable<DecodedSummary>, partBytes = DEFAULT_PART_BYTES): LoadBatch {
  return {
    entries,
    async *parts(fresh) {
      let part = new MinuteRollup();
      const yielder = new Yielder();
      for await (const s of summaries(fresh)) {
        part.add(s);
        if (part.bytes >= partBytes) {
          yield part;
          part = new MinuteRollup();
        }
        await yielder.maybe();
      }
      if (part.size > 0 || part.losses.length > 0) yield part;
    },
  };
}

/** Summaries in memory, repeats of a (producer_id, seq) dropped (counted as duplicates). */
export function summaryBatch(summaries: readonly DecodedSummary[]): { batch: LoadBatch; duplicates: number } {
  const { unique, duplicates } = uniqueSummaries(summaries);
  const batch = streamedBatch(unique.map(ledgerEntry), async function* (fresh) {
    for (const [i, s] of unique.entries()) if (fresh[i]) yield s;
  });
  return { batch, duplicates };
}

/** The batch of the entries at `positions` of `b` only: how the loader halves a batch the warehouse refuses. */
export function subBatch(b: LoadBatch, positions: readonly number[]): LoadBatch {
  return {
    entries: positions.map((p) => b.entries[p]),
    parts(fresh) {
      const all = new Array<boolean>(b.entries.length).fill(false);
      positions.forEach((p, j) => (all[p] = fresh[j]));
      return b.parts(all);
    },
  };
}

/**
 * Sink.load for summaries in memory, the same for every sink: one transaction (Sink.loadBatch), then the
 * compaction a load leaves to do.
 */
export async function loadSummaries(sink: Sink, summaries: readonly DecodedSummary[]): Promise<LoadResult> {
  const { batch, duplicates } = summaryBatch(summaries);
  if (batch.entries.length === 0) return { loaded: 0, duplicates, rows: 0 };
  // A streamed batch always has parts, so loadBatch never answers null here.
  const res = (await sink.loadBatch(batch))!;
  await sink.compactLoaded();
  return { ...res, duplicates: res.duplicates + duplicates };
}
