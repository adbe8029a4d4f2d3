// What one simulated sidecar reports per 10-second window, shared by the benchmarks that feed a mesh of
// thousands of sidecars to the collector or a sink (load-cycle.ts, scale.ts): its own workload calling a
// spread of destinations, one series per destination, the last one answering 503.
import { DIMENSIONS } from "../../shared/schema.ts";
import { series } from "../../test/collector/helpers.ts";

/** `count` series of sidecar `sidecar`'s workload, latencies drawn from `rand`. */
export function sidecarSeries(sidecar: number, count: number, rand: () => number) {
  const workload = `app-${sidecar}`;
  return Array.from({ length: count }, (_, k) => {
    const service = `svc-${(sidecar * 7 + k) % 500}.ns-${k % 10}.svc.cluster.local`;
    const values = Array.from({ length: 3 + Math.floor(rand() * 20) }, () => Math.floor(200 + rand() * rand() * 50_000));
    const base = series(service, values);
    const dimensions = Object.fromEntries(
      DIMENSIONS.map((d) => [
        d,
        d === "source_workload" ? workload : d === "source_namespace" ? `ns-${sidecar % 10}` : d === "response_code" ? (k === count - 1 ? 503 : 200) : base.dimensions[d],
      ]),
    ) as typeof base.dimensions;
    return { ...base, dimensions };
  });
}

/** The pod name of sidecar `sidecar` (its Envoy node id). */
export const sidecarPod = (sidecar: number): string => `app-${sidecar}-6d5f9c7b8-x${sidecar.toString(36)}.ns-${sidecar % 10}`;
