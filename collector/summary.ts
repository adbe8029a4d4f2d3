// The collector's view of a decoded wire summary: the decoder and its types live in shared/node.ts
// (wire format v1, docs/wire-format.md). Collector modules import them from here, so the collector has
// one place that binds to the shared codec.
export {
  FIELD_ERRORS,
  FIELD_LATENCY_MAX,
  FIELD_LATENCY_MIN,
  FIELD_LATENCY_SUM,
  FIELD_REQUESTS,
  FIELD_REQUEST_BYTES,
  FIELD_RESPONSE_BYTES,
  FIELD_ZERO,
  SERIES_FIELDS,
  SeriesColumns,
  absentValue,
  decodeSummary,
  decodeSummaryInto,
  dimensionsOf,
  seriesAt,
  storedSketchOf,
  summaryColumns,
  type DecodeResult,
  type DecodedSeries,
  type DecodedSummary,
  type SummaryColumns,
} from "../shared/node.ts";
