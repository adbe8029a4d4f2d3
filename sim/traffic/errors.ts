import { flagMask } from "./flags.ts";

/**
 * Flags that mark a request as failed. Every Envoy response flag records a failure except DI (a delay was
 * injected, the request may still succeed) and RFCF (the response came from a cache).
 */
export const FAILURE_FLAGS_MASK = 0x3fffffff & ~flagMask("DI", "RFCF");

/**
 * The one definition of an error on the simulator side, mirroring `docs/filter-config.md`: an HTTP 5xx, a
 * gRPC status other than OK (0), or a failure response flag. `grpcStatus` is -1 when absent.
 */
export function isError(responseCode: number, grpcStatus: number, responseFlags: number): boolean {
  return (responseCode >= 500 && responseCode <= 599) || grpcStatus > 0 || (responseFlags & FAILURE_FLAGS_MASK) !== 0;
}
