// Summaries a hostile or compromised sidecar would send (issue: one sidecar can neither take the
// pipeline down nor write another workload's data): counter overflow, another namespace's producer, a
// backdated window. Built with the project's encoder, so each passes the wire decoder and reaches the
// collector's own checks. Used by the attack tests and by `npm run fuzz`.
import type { DecodedSeries, DecodedSummary } from "../../collector/summary.ts";
import { DIMENSIONS, type Dimension } from "../../shared/schema.ts";
import { encodeSummary } from "../../shared/node.ts";
import { sketchOf } from "../collector/helpers.ts";

export const TRUST_DOMAIN = "cluster.local";
export const principalOf = (namespace: string, serviceAccount: string) => `spiffe://${TRUST_DOMAIN}/ns/${namespace}/sa/${serviceAccount}`;
/** A producer id as the filter builds it: Istio node id, VM start, root id, nonce (filter/root.ts). */
export const producerOf = (pod: string, namespace: string, nonce = "9f3a") => `sidecar~10.1.0.7~${pod}.${namespace}~${namespace}.svc.cluster.local/1764000000123456789/1/${nonce}`;

/**
 * The x-forwarded-client-cert value the collector's sidecar forwards for a caller (Envoy
 * mutateXfccRequestHeader with Istio's subject/uri/dns details), after whatever the client itself sent.
 */
export function xfccFor(callerPrincipal: string, clientSent?: string): string {
  const own = `By=${principalOf("meshlook", "meshlook-collector")};Hash=3f1b0c6e9d;Subject="";URI=${callerPrincipal}`;
  return clientSent ? `${clientSent},${own}` : own;
}

/** One inbound series as a sidecar in `namespace` running as `principal` reports it. */
export function inbound(namespace: string, principal: string, service: string, values: number[], extra: Partial<Record<Dimension, string | number>> = {}): DecodedSeries {
  const dimensions = Object.fromEntries(DIMENSIONS.map((d) => [d, d === "response_code" ? 200 : "unknown"])) as Record<Dimension, string | number>;
  Object.assign(dimensions, {
    reporter: "destination",
    destination_namespace: namespace,
    destination_principal: principal,
    destination_workload: service,
    destination_service: `${service}.${namespace}.svc.cluster.local`,
    source_principal: principalOf("shop", "frontend"),
    ...extra,
  });
  return {
    dimensions,
    requests: values.length,
    errors: 0,
    requestBytes: values.length * 100,
    responseBytes: values.length * 1000,
    latencySumUs: values.reduce((a, b) => a + b, 0),
    latencyMinUs: Math.min(...values),
    latencyMaxUs: Math.max(...values),
    sketch: sketchOf(values, 6),
  };
}

export function summaryOf(producerId: string, seq: number, windowEndMs: number, series: DecodedSeries[]): DecodedSummary {
  return { producerId, flags: 0, droppedRequests: 0, droppedWindows: 0, overflowKeys: 0, reported: [...DIMENSIONS], seq, windowStartMs: windowEndMs - 10_000, windowEndMs, series };
}

/** The newest window end at or before `nowMs` on a 10 s grid, as the filter aligns its flushes. */
export const windowEndNear = (nowMs: number) => Math.floor(nowMs / 10_000) * 10_000;

/**
 * Counter overflow: `copies` identical series each claiming 2^53 - 1 of one measure. `requests` overflows
 * the per-summary request bound (refused); `requestBytes` is within every per-series bound, so it is
 * accepted and must saturate in the rollup instead of overflowing BIGINT at load.
 */
export function overflowSummary(producerId: string, seq: number, windowEndMs: number, measure: "requests" | "requestBytes", copies = 1100): Uint8Array {
  const s = inbound("unknown", "unknown", "overflow", [0]);
  const big = Number.MAX_SAFE_INTEGER;
  // Latency 0 throughout: the sketch's zero count carries the requests.
  const one = measure === "requests" ? { ...s, requests: big, sketch: { ...s.sketch, z: big } } : { ...s, requestBytes: big };
  return encodeSummary(
    summaryOf(
      producerId,
      seq,
      windowEndMs,
      Array.from({ length: copies }, () => one),
    ),
  );
}

export type Rand = () => number;

/**
 * One attack body for the fuzz run, with the refusal the collector owes it (undefined: acknowledged).
 * The fuzz collector runs with MESHLOOK_MAX_WINDOW_AGE_S / _AHEAD_S and a token scoped to `shop`.
 */
export function attackCase(r: Rand, seq: number, nowMs: number): { body: Uint8Array; expect?: { status: number; error: string }; requests: number } {
  const end = windowEndNear(nowMs);
  const honest = inbound("shop", "unknown", "reviews", [1200, 3400]);
  switch (Math.floor(r() * 5)) {
    case 0:
      return {
        body: overflowSummary(producerOf("reviews-1", "shop"), seq, end, "requests", 2 + Math.floor(r() * 200)),
        expect: { status: 400, error: "too_many_requests" },
        requests: 0,
      };
    case 1: {
      const copies = 1100 + Math.floor(r() * 200); // past 1024 copies of 2^53 a BIGINT sum overflows
      return { body: overflowSummary(producerOf("reviews-1", "shop"), seq, end, "requestBytes", copies), requests: copies };
    }
    case 2:
      return { body: encodeSummary(summaryOf(producerOf("payments-0", "payments"), seq, end, [honest])), expect: { status: 403, error: "identity_mismatch" }, requests: 0 };
    case 3: {
      const back = (2 + r() * 48) * 3_600_000;
      return {
        body: encodeSummary(summaryOf(producerOf("reviews-1", "shop"), seq, windowEndNear(nowMs - back), [honest])),
        expect: { status: 400, error: "window_out_of_range" },
        requests: 0,
      };
    }
    default:
      return { body: encodeSummary(summaryOf(producerOf("reviews-1", "shop"), seq, windowEndNear(nowMs - r() * 1_800_000), [honest])), requests: 2 };
  }
}
