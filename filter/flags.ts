// Envoy response flags: `response.flags` is Envoy's legacy u64 bitmask; the schema wants the short form,
// names in bit order joined by commas (as Envoy's access log prints them). Source: Envoy
// envoy/stream_info/stream_info.h (CoreResponseFlag, through UnconditionalDropOverload = bit 29 since
// Envoy 1.30 / Istio 1.22) and source/common/stream_info/utility.cc (ResponseFlagUtils::CORE_RESPONSE_FLAGS).

const SHORT_NAMES: Array<string> = [
  "LH",
  "UH",
  "UT",
  "LR",
  "UR",
  "UF",
  "UC",
  "UO",
  "NR",
  "DI",
  "FI",
  "RL",
  "UAEX",
  "RLSE",
  "DC",
  "URX",
  "SI",
  "IH",
  "DPE",
  "UMSDR",
  "RFCF",
  "NFCF",
  "DT",
  "UPE",
  "NC",
  "OM",
  "DF",
  "DO",
  "DR",
  "UDO",
];

/** Every bit Envoy defines, up to UnconditionalDropOverload (bit 29, Envoy 1.30+). */
export const KNOWN_MASK: u64 = (1 << 30) - 1;
const DELAY_INJECTED: u64 = 0x200;
const RESPONSE_FROM_CACHE: u64 = 0x100000;

/**
 * Flags that make a request an error: every known flag except DI (a delay was injected; the request
 * may still succeed) and RFCF (the response came from a cache).
 */
export const FAILURE_FLAGS: u64 = KNOWN_MASK & ~(DELAY_INJECTED | RESPONSE_FROM_CACHE);

/** Short form of `mask`; bits Envoy does not define are ignored. Never called for mask 0. */
export function flagsToString(mask: u64): string {
  let out = "";
  for (let i = 0; i < SHORT_NAMES.length; i++) {
    if ((mask & ((<u64>1) << (<u64>i))) == 0) continue;
    if (out.length > 0) out += ",";
    out += SHORT_NAMES[i];
  }
  if (out.length == 0) return "-";
  return out;
}
