// Test-side builders with independent math (straight from docs/schema.md), shared by the collector tests.
import parsePrometheus from "parse-prometheus-text-format";
import { join } from "node:path";
import type { RunningCollector } from "../../collector/collector.ts";
import pino from "pino";
import { expect } from "vitest";
import { Loader, type LoaderOptions } from "../../collector/loader.ts";
import { createMetrics } from "../../collector/metrics.ts";
import type { Sink } from "../../collector/sink/types.ts";
import type { Spool } from "../../collector/spool.ts";
import { decodeSummary } from "../../collector/summary.ts";
import { SUMMARY_CONTENT_TYPE } from "../../collector/server.ts";
import { defaultConfig, type CollectorConfig } from "../../collector/config.ts";
import type { DecodedSeries, DecodedSummary } from "../../collector/summary.ts";
import { encodeSummary } from "../../shared/node.ts";
import type { SketchJson } from "../../shared/quantile.ts";
import { DIMENSIONS, type Dimension } from "../../shared/schema.ts";
import { injectRetryingShed } from "../shared/shed-retry.ts";

// Independent bucket math straight from the definition: bucket i holds (base^i, base^(i+1)].
export function bucketOf(v: number, scale: number): number {
  const bound = (i: number) => 2 ** (i / 2 ** scale); // exact at powers of two, unlike base ** i
  let i = Math.ceil(Math.log2(v) * 2 ** scale) - 1;
  while (bound(i + 1) < v) i++;
  while (bound(i) >= v) i--;
  return i;
}
export function sketchOf(values: number[], scale: number): SketchJson {
  const zero = values.filter((v) => v === 0).length;
  const idx = values.filter((v) => v > 0).map((v) => bucketOf(v, scale));
  if (idx.length === 0) return { s: scale, z: zero, o: 0, c: [] };
  const counts = new Map<number, number>();
  for (const i of idx) counts.set(i, (counts.get(i) ?? 0) + 1);
  // The stored form: a count per non-empty bucket, a negative entry skipping each run of empty ones.
  const present = [...counts.keys()].sort((a, b) => a - b);
  const c: number[] = [];
  present.forEach((i, k) => {
    if (k > 0 && i > present[k - 1] + 1) c.push(present[k - 1] + 1 - i);
    c.push(counts.get(i)!);
  });
  return { s: scale, z: zero, o: present[0], c };
}

let seed = 42;
export const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
export const latencies = (n: number) => Array.from({ length: n }, () => (rand() < 0.02 ? 0 : Math.floor(Math.exp(rand() * 14))));

export const dims = (service: string, code = 200): Record<Dimension, string | number> =>
  Object.fromEntries(DIMENSIONS.map((d) => [d, d === "response_code" ? code : d === "destination_service" ? service : "unknown"])) as Record<Dimension, string | number>;

export function series(service: string, values: number[], scale = 6): DecodedSeries {
  return {
    dimensions: dims(service),
    requests: values.length,
    errors: values.filter((v) => v % 7 === 0).length,
    requestBytes: values.length * 100,
    responseBytes: values.length * 1000,
    latencySumUs: values.reduce((a, b) => a + b, 0),
    latencyMinUs: Math.min(...values),
    latencyMaxUs: Math.max(...values),
    sketch: sketchOf(values, scale),
  };
}
export const summary = (seq: number, endMs: number, s: DecodedSeries[], producerId = "p1"): DecodedSummary => ({
  producerId,
  flags: 0,
  droppedRequests: 0,
  droppedWindows: 0,
  overflowKeys: 0,
  reported: [...DIMENSIONS],
  seq,
  windowStartMs: endMs - 10_000,
  windowEndMs: endMs,
  series: s,
});

/** Expected warehouse totals per destination_service, computed from the input summaries. */
export function totals(summaries: readonly DecodedSummary[]): Record<string, { requests: number; latencySumUs: number }> {
  const out: Record<string, { requests: number; latencySumUs: number }> = {};
  for (const s of summaries) {
    for (const x of s.series) {
      const t = (out[String(x.dimensions.destination_service)] ??= { requests: 0, latencySumUs: 0 });
      t.requests += x.requests;
      t.latencySumUs += x.latencySumUs;
    }
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** Wire-format bytes of a summary, from the shared encoder the filter runs. */
export const encode = (s: DecodedSummary): Uint8Array => encodeSummary(s);

/** POSTs each summary to a running collector with bearer token `t` (again after a 503 overloaded, as a sidecar would) and expects every one acknowledged. */
export async function postAccepted(c: RunningCollector, summaries: readonly DecodedSummary[], token = "t"): Promise<void> {
  for (const s of summaries) {
    const res = await injectRetryingShed(c.app, {
      method: "POST",
      url: "/v1/summaries",
      payload: Buffer.from(encode(s)),
      headers: { "content-type": SUMMARY_CONTENT_TYPE, authorization: `Bearer ${token}` },
    });
    expect(res.statusCode, res.body).toBe(200);
  }
}

/** Bodies the decoder must refuse, derived from a valid one, with the reason each must give. */
export function invalidBodies(valid: Uint8Array): [Uint8Array, string][] {
  const mutate = (f: (b: Uint8Array) => void) => {
    const b = Uint8Array.from(valid);
    f(b);
    return b;
  };
  const badCode = summary(99, 60_000, [series("a", [10])]);
  badCode.series[0].dimensions.response_code = "OK";
  // The sketch "decompression bomb": 101 sketches of two values at the ends of the scale-8 range, 10,241
  // buckets each in about 4 KB, beyond the decoder's span budget per byte of series records.
  const bomb = summary(
    98,
    60_000,
    Array.from({ length: 101 }, (_, k) => series(`w${k}`, [1, 2 ** 40 - 1], 8)),
  );
  return [
    [mutate((b) => (b[0] ^= 0xff)), "bad_magic"],
    [mutate((b) => (b[4] = 9)), "unsupported_version"],
    [mutate((b) => (b[b.length >> 1] ^= 0x10)), "bad_checksum"],
    [valid.subarray(0, valid.length - 5), "truncated"],
    [valid.subarray(0, 3), "truncated"],
    [new Uint8Array(0), "truncated"],
    [Buffer.concat([valid, Buffer.from([0])]), "trailing_bytes"],
    [encode(badCode), "bad_dimension_value"],
    [encode(bomb), "sketch_too_wide"],
  ];
}

/** A collector's /metrics as `name{label=value,...}` → value (histograms: their count). */
export async function metricValues(c: RunningCollector): Promise<Map<string, number>> {
  const res = await c.app.inject({ method: "GET", url: "/metrics" });
  if (res.statusCode !== 200) throw new Error(`/metrics answered ${res.statusCode}`);
  const out = new Map<string, number>();
  for (const fam of parsePrometheus(res.body)) {
    for (const m of fam.metrics) {
      const labels = Object.entries(m.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
      out.set(labels ? `${fam.name}{${labels}}` : fam.name, Number(m.value ?? m.count));
    }
  }
  return out;
}

/**
 * An in-process collector's settings under `root/name`: token "t", loads only when the test asks, and
 * retention off, because these tests send windows from 1970 (retention would refuse them as too old to
 * load exactly once).
 */
export const testCollectorConfig = (root: string, name: string, over: Partial<CollectorConfig> = {}): CollectorConfig => ({
  ...defaultConfig(),
  dataDir: join(root, name),
  spoolDir: join(root, name, "spool"),
  duckdbPath: join(root, name, "meshlook.duckdb"),
  ingestTokens: ["t"],
  loadIntervalS: 3600,
  retention: { ...defaultConfig().retention, minuteDays: 0 },
  ...over,
});

/** A loader of `spool` into `sink` with no ingest behind it (every segment takes the replay path), silent, unscheduled. */
export function replayLoader(spool: Spool, sink: Sink, opts: Partial<LoaderOptions> = {}): Loader {
  return new Loader(
    spool,
    sink,
    decodeSummary,
    undefined,
    createMetrics(() => undefined),
    pino({ level: "silent" }),
    { intervalMs: 3_600_000, maxBatchBytes: 64 << 20, ...opts },
  );
}
