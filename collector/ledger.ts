// Load-ledger helpers shared by the sinks: a summary is identified by who sent it and (producer_id, seq).
// The caller is part of the key so that one caller cannot make another's summaries duplicates by sending
// their (producer_id, seq) first (docs/security.md, "Caller binding").
import { LEGACY_CALLER } from "../shared/schema.ts";
import { summaryColumns, type DecodedSummary } from "./summary.ts";

/** The caller a summary's ledger row records: set at ingest, read back from the spool; "" = unbound. */
export const summaryCaller = (s: { caller?: string }) => s.caller ?? "";

export const ledgerKey = (caller: string, producerId: string, seq: number | bigint) => `${caller}\u0000${producerId}\u0000${seq}`;

/**
 * SQL condition: ledger row `l` records the summary keyed by row `k` (both with caller, producer_id, seq
 * columns). The same caller's (producer_id, seq), unless either side has the legacy caller, which stands
 * for every caller in both directions: a summary spooled before callers were recorded is a duplicate of
 * its retry that another replica loaded under its sender's identity, as that retry is of it.
 */
export const ledgerMatchSql = (l: string, k: string) =>
  `${l}.producer_id = ${k}.producer_id AND ${l}.seq = ${k}.seq AND ` + `(${l}.caller = ${k}.caller OR ${l}.caller = '${LEGACY_CALLER}' OR ${k}.caller = '${LEGACY_CALLER}')`;

/** What `mesh_load_ledger` records about one loaded summary. */
export interface LedgerEntry {
  caller: string;
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
    caller: summaryCaller(s),
    producerId: s.producerId,
    seq: s.seq,
    windowStartMs: s.windowStartMs,
    windowEndMs: s.windowEndMs,
    series: cols ? cols.count : s.series.length,
    requests: cols ? cols.requests : summaryRequests(s),
  };
}

/**
 * Drops repeats within one batch, keeping the first: the same (caller, producer_id, seq), or the same
 * (producer_id, seq) when either copy has the legacy caller (it stands for every caller, as its ledger
 * rows do in the sinks' ledger checks).
 */
export function uniqueSummaries(summaries: readonly DecodedSummary[]): { unique: DecodedSummary[]; duplicates: number } {
  const seen = new Set<string>();
  const anyCaller = new Set<string>();
  const legacy = new Set<string>();
  const unique: DecodedSummary[] = [];
  for (const s of summaries) {
    const caller = summaryCaller(s);
    const k = ledgerKey(caller, s.producerId, s.seq);
    const ps = ledgerKey(LEGACY_CALLER, s.producerId, s.seq);
    if (seen.has(k) || legacy.has(ps) || (caller === LEGACY_CALLER && anyCaller.has(ps))) continue;
    seen.add(k);
    anyCaller.add(ps);
    if (caller === LEGACY_CALLER) legacy.add(ps);
    unique.push(s);
  }
  return { unique, duplicates: summaries.length - unique.length };
}

/** Requests a summary carries; stored in the ledger so totals can be audited against the fact table. */
export const summaryRequests = (s: DecodedSummary) => s.series.reduce((n, x) => n + x.requests, 0);
