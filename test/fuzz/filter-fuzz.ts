// The release filter in the host under hostile streams, sending to a real collector: every property it
// reads given random bytes of random width, giant headers (and many of them), principals full of quotes,
// SQL, NUL, control characters and 4-byte UTF-8. Complements test/filter/fuzz.test.ts (types and sizes of
// every property): here the identities themselves are hostile, and whatever valid UTF-8 principal a
// well-formed stream carried must reach the warehouse byte for byte.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { startCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import type { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { ManualClock, bytes, createSidecar, type Attr, type StreamInput } from "../../sim/host/index.ts";
import { mulberry32 } from "../shared/random.ts";
import { COLLECTOR_CLUSTER, LOCAL_NODE, loadModule, syntheticStream } from "../filter/fixtures.ts";
import { FACT_TABLE } from "../../shared/schema.ts";

/** Principals that must survive intact: quoting, SQL, NUL and control characters, 4-byte UTF-8, RTL. */
export const HOSTILE_PRINCIPALS = [
  "spiffe://cluster.local/ns/a/sa/it's",
  'spiffe://cluster.local/ns/a/sa/"quoted"',
  "spiffe://cluster.local/ns/a/sa/back\\slash\\",
  "spiffe://cluster.local/ns/a/sa/$$ return 1; $$",
  "spiffe://x/'; DROP TABLE mesh_load_ledger; --",
  "spiffe://x/ns/a/sa/SELECT * FROM mesh_traffic_minute WHERE 1=1 OR ''=''",
  "spiffe://x/ns/nul\u0000byte/sa/s",
  "spiffe://x/ns/ctl\u0001\u0007\u001b[2J\r\n\t\u007f/sa/s",
  "spiffe://x/ns/emoji/sa/😀𝄞🀄\u{10FFFF}",
  "spiffe://x/ns/rtl/sa/\u202eevil\u202c",
  "spiffe://x/ns/%00%27/sa/?:1&@p",
  "spiffe://x/" + "long/".repeat(95), // the filter keeps values up to 512 bytes
];

const TOKEN = "filter-fuzz";
type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);

function randomBytes(r: Rand, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = int(r, 256);
  return b;
}

/** A value of random width: what a property of the wrong type or a truncated serialisation looks like. */
const randomWidth = (r: Rand): Attr => bytes(randomBytes(r, int(r, 4) === 0 ? 1 + int(r, 64) : int(r, 17)));

/** Any string: hostile principal, random Unicode (astral included), or raw bytes that are not UTF-8. */
function hostileString(r: Rand): string {
  switch (int(r, 4)) {
    case 0:
      return HOSTILE_PRINCIPALS[int(r, HOSTILE_PRINCIPALS.length)];
    case 1:
      return String.fromCodePoint(...Array.from({ length: int(r, 40) }, () => int(r, 0x110000 - 0x800)).map((c) => (c >= 0xd800 && c < 0xe000 ? c + 0x800 : c)));
    case 2:
      return Buffer.from(randomBytes(r, int(r, 60))).toString("latin1");
    default:
      return "\u0000".repeat(int(r, 5)) + "x".repeat(int(r, 70_000));
  }
}

/** Replaces some attributes of a well-formed stream with random-width bytes. */
function corrupt(r: Rand, attrs: Record<string, unknown>): void {
  for (const [group, value] of Object.entries(attrs)) {
    if (!value || typeof value !== "object" || value instanceof Uint8Array) continue;
    for (const key of Object.keys(value)) if (r() < 0.3) (value as Record<string, Attr>)[key] = randomWidth(r);
    if (r() < 0.1) attrs[group] = randomWidth(r);
  }
}

function giantHeaders(r: Rand, input: StreamInput): void {
  const headers = input.requestHeaders as [string, string][];
  if (r() < 0.5) headers.push(["x-giant", "g".repeat(64 * 1024 + int(r, 200 * 1024))]);
  else for (let i = 0; i < 200 + int(r, 800); i++) headers.push([`x-h${i}`, hostileString(r).slice(0, 100)]);
}

export interface FilterFuzzResult {
  streams: number;
  traps: number;
  /** Streams whose headers or statuses the filter changed (must be 0: it only reads). */
  touched: number;
  /** Hostile principals sent on well-formed streams, and how many of them the warehouse holds exactly. */
  principalsSent: number;
  principalsStored: number;
  missing: string[];
}

/**
 * `streams` hostile streams through one sidecar (2 VMs) whose collector cluster points at an in-process
 * collector on loopback; a quarter are well-formed with a hostile principal.
 */
export async function fuzzFilter(streams: number, seed: number, onProgress?: (done: number) => void): Promise<FilterFuzzResult> {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-ffuzz-"));
  const config = loadConfig({
    MESHLOOK_DATA_DIR: dir,
    MESHLOOK_INGEST_TOKENS: TOKEN,
    MESHLOOK_HOST: "127.0.0.1",
    MESHLOOK_PORT: "0",
    MESHLOOK_LOAD_INTERVAL_S: "3600",
    // The sidecar's manual clock is far in the past: with retention on its summaries would expire, not load.
    MESHLOOK_RETENTION_MINUTE_DAYS: "0",
  });
  const collector = await startCollector(config, pino({ level: "silent" }), {});
  const r = mulberry32(seed);
  const clock = new ManualClock();
  const sidecar = await createSidecar({
    wasm: await loadModule(),
    rootId: "meshlook",
    clock,
    node: LOCAL_NODE,
    workers: 2,
    canary: false,
    pluginConfig: JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: 1, max_series: 500 }),
    env: { MESHLOOK_INGEST_TOKEN: TOKEN },
    clusters: { [COLLECTOR_CLUSTER]: new URL(collector.url).host },
  });
  const out: FilterFuzzResult = { streams, traps: 0, touched: 0, principalsSent: 0, principalsStored: 0, missing: [] };
  const sent = new Set<string>();
  try {
    for (let i = 0; i < streams; i++) {
      const kind = int(r, 4);
      const principal = kind === 0 ? HOSTILE_PRINCIPALS[int(r, HOSTILE_PRINCIPALS.length)] : hostileString(r);
      const input = syntheticStream({ principal, workload: hostileString(r).slice(0, 300), durationNs: int(r, 1e10), code: int(r, 600) });
      if (kind === 0) sent.add(principal);
      else {
        corrupt(r, input.attributes as Record<string, unknown>);
        if (kind === 1) giantHeaders(r, input);
      }
      const before = JSON.stringify(input.requestHeaders);
      const res = sidecar.stream(input);
      if (res.trapped) out.traps++;
      if (JSON.stringify(res.requestHeaders) !== before || Object.values(res.statuses).some((s) => s !== 0)) out.touched++;
      if (i % 250 === 249) {
        clock.advance(1000);
        await sidecar.settle();
      }
      if (i % 10_000 === 9_999) onProgress?.(i + 1);
    }
    for (let t = 0; t < 10; t++) {
      clock.advance(1000);
      await sidecar.settle();
    }
    out.traps = Math.max(out.traps, sidecar.traps.length);
    while (await collector.loader.loadNow());
    const conn = (collector.sink as DuckDBSink).connection;
    const stored = new Set((await conn.runAndReadAll(`SELECT DISTINCT source_principal FROM ${FACT_TABLE.name}`)).getRows().map((row) => String(row[0])));
    out.principalsSent = sent.size;
    for (const p of sent) {
      if (stored.has(p)) out.principalsStored++;
      else out.missing.push(JSON.stringify(p));
    }
  } finally {
    await sidecar.close();
    await collector.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
