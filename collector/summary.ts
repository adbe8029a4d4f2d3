// The collector's view of a decoded wire summary: the decoder and its types live in shared/node.ts
// (wire format v1, docs/wire-format.md). Collector modules import them from here, so the collector has
// one place that binds to the shared codec.
export { decodeSummary, type DecodeResult, type DecodedSeries, type DecodedSummary } from "../shared/node.ts";
