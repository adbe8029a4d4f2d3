// The collector's view of a decoded wire summary. The decoder lives in shared/ (wire format v1);
// this module is the one place the collector touches its output shape, so sinks and the rollup
// depend on these names only.
import type { Dimension } from "../shared/schema.ts";
import type { SketchJson } from "../shared/quantile.ts";

/** One series of a summary: its dimension values and what the sidecar aggregated for it. */
export interface DecodedSeries {
  dimensions: Record<Dimension, string | number>;
  requests: number;
  errors: number;
  requestBytes: number;
  responseBytes: number;
  latencySumUs: number;
  latencyMinUs: number;
  latencyMaxUs: number;
  sketch: SketchJson;
}

/** A decoded, validated summary: (producerId, seq) identifies it for idempotent loading. */
export interface DecodedSummary {
  producerId: string;
  seq: number;
  windowStartMs: number;
  windowEndMs: number;
  series: DecodedSeries[];
}

export type DecodeResult = { ok: true; summary: DecodedSummary } | { ok: false; reason: string; message?: string };
