// Positions of the series dimensions in a series key (the order of DIMENSION_NAMES, shared with the
// collector side); `response_code` is the only integer dimension.
import { DIMENSION_NAMES } from "../shared/dimensions";

export { DIMENSION_NAMES };

export const enum Dim {
  Reporter = 0,
  SourcePrincipal = 1,
  SourceWorkload = 2,
  SourceNamespace = 3,
  SourceCanonicalService = 4,
  SourceCanonicalRevision = 5,
  SourceCluster = 6,
  DestinationPrincipal = 7,
  DestinationService = 8,
  DestinationWorkload = 9,
  DestinationNamespace = 10,
  DestinationCanonicalService = 11,
  DestinationCanonicalRevision = 12,
  DestinationCluster = 13,
  RequestProtocol = 14,
  ResponseCode = 15,
  GrpcStatus = 16,
  ResponseFlags = 17,
  ConnectionSecurityPolicy = 18,
  EndUserPrincipal = 19,
}

export const DIM_COUNT = 20;

/** Sentinels of docs/schema.md. */
export const UNKNOWN = "unknown";
export const NONE = "-";
export const OVERFLOW = "__overflow__";
