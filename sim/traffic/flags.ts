/**
 * Envoy response flags: the bit values of `response.flags` (Envoy's legacy u64 bitmask, as the CEL/wasm
 * attribute serves it) and their short names. Source: Envoy `envoy/stream_info/stream_info.h`
 * (`ResponseFlag` / `CoreResponseFlag`) and `source/common/stream_info/utility.cc`. Envoy renders the short
 * form in bit order, joined by commas ("UF,URX"); the ground truth does the same.
 */
export const RESPONSE_FLAGS = [
  ["LH", 0x1], // FailedLocalHealthCheck
  ["UH", 0x2], // NoHealthyUpstream
  ["UT", 0x4], // UpstreamRequestTimeout
  ["LR", 0x8], // LocalReset
  ["UR", 0x10], // UpstreamRemoteReset
  ["UF", 0x20], // UpstreamConnectionFailure
  ["UC", 0x40], // UpstreamConnectionTermination
  ["UO", 0x80], // UpstreamOverflow
  ["NR", 0x100], // NoRouteFound
  ["DI", 0x200], // DelayInjected
  ["FI", 0x400], // FaultInjected
  ["RL", 0x800], // RateLimited
  ["UAEX", 0x1000], // UnauthorizedExternalService
  ["RLSE", 0x2000], // RateLimitServiceError
  ["DC", 0x4000], // DownstreamConnectionTermination
  ["URX", 0x8000], // UpstreamRetryLimitExceeded
  ["SI", 0x10000], // StreamIdleTimeout
  ["IH", 0x20000], // InvalidEnvoyRequestHeaders
  ["DPE", 0x40000], // DownstreamProtocolError
  ["UMSDR", 0x80000], // UpstreamMaxStreamDurationReached
  ["RFCF", 0x100000], // ResponseFromCacheFilter
  ["NFCF", 0x200000], // NoFilterConfigFound
  ["DT", 0x400000], // DurationTimeout
  ["UPE", 0x800000], // UpstreamProtocolError
  ["NC", 0x1000000], // NoClusterFound
  ["OM", 0x2000000], // OverloadManager
  ["DF", 0x4000000], // DnsResolutionFailed
  ["DO", 0x8000000], // DropOverLoad (Envoy 1.30+)
  ["DR", 0x10000000], // DownstreamRemoteReset (Envoy 1.30+)
  ["UDO", 0x20000000], // UnconditionalDropOverload (Envoy 1.30+)
] as const;

export type ResponseFlagName = (typeof RESPONSE_FLAGS)[number][0];

const BIT_BY_NAME = new Map<string, number>(RESPONSE_FLAGS.map(([name, bit]) => [name, bit]));

/** Bit of one flag by its short name. */
export function flagBit(name: ResponseFlagName): number {
  return BIT_BY_NAME.get(name)!;
}

/** Bitmask of several flags by short name. */
export function flagMask(...names: ResponseFlagName[]): number {
  let mask = 0;
  for (const n of names) mask |= flagBit(n);
  return mask;
}

const shortFormCache = new Map<number, string>();

/** Envoy's short form of a bitmask: names in bit order joined by ","; `-` when no flag is set (schema sentinel). */
export function flagsToString(mask: number): string {
  let text = shortFormCache.get(mask);
  if (text === undefined) {
    const names: string[] = [];
    for (const [name, bit] of RESPONSE_FLAGS) if (mask & bit) names.push(name);
    text = names.length === 0 ? "-" : names.join(",");
    shortFormCache.set(mask, text);
  }
  return text;
}
