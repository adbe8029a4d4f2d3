// Load-ledger helpers shared by the sinks: a summary is identified by (producer_id, seq).
import { summaryColumns, type DecodedSummary } from "./summary.ts";

export const ledgerKey = (producerId: string, seq: number | bigint) => `${producerId}\u0000${seq}`;

/** What `mesh_load_ledger` records about one loaded summary. */
export interface LedgerEntry {
  producerId: string;
  seq: number;
  windowStartMs: number;
  windowEndMs: number;
  series: number;
  requests: number;
}

/** Read from the summary's columns when it has them, so a freshly decoded summary never builds its series objects. */
export function ledgerEntry(s: DecodedSummary): LedgerEntry {
  const cols = summaryColumns(s);
  return {
    producerId: s.producerId,
    seq: s.seq,
    windowStartMs: s.windowStartMs,
    windowEndMs: s.windowEndMs,
    series: cols ? cols.count : s.series.length,
    requests: cols ? cols.requests : summaryRequests(s),
  };
}

/** Drops repeats of the same (producer_id, seq) within one batch, keeping the first. */
export function uniqueSummaries(summaries: readonly DecodedSummary[]): { unique: DecodedSummary[]; duplicates: number } {
  const seen = new Set<string>();
  const unique: DecodedSummary[] = [];
  for (const s of summaries) {
    const k = ledgerKey(s.producerId, s.seq);
    if (seen.has(k)) continue;
    seen.add(k);
    unique.push(s);
  }
  return { unique, duplicates: summaries.length - unique.length };
}

/** Requests a summary carries; stored in the ledger so totals can be audited against the fact table. */
export const summaryRequests = (s: DecodedSummary) => s.series.reduce((n, x) => n + x.requests, 0);
