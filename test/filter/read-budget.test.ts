// How many properties the filter reads per request (docs/filter-config.md, "Cost per request"): each
// read is a host call, the largest part of the filter's cost. Bookinfo as productpage's sidecar sees it,
// Istio 1.25+ peers (one Struct). Counts, not times: the host counts proxy_get_property calls.
import { describe, expect, it } from "vitest";
import { type StreamInput } from "../../sim/host/index.ts";
import { streamInput, workloadNode } from "../../sim/sidecar.ts";
import { TrafficGenerator, bookinfo, type Reporter } from "../../sim/traffic/index.ts";
import { meshlookSidecar } from "./fixtures.ts";

// Every request: connection.id, response.flags, the service host (cluster metadata), content-type,
// response.code, request.duration, request.total_size, response.total_size.
const PER_REQUEST = 8;
// A connection the filter has not seen: the listener direction, the peer object, the caller's (inbound)
// or upstream's (outbound) principal, and this proxy's own principal.
const PER_NEW_CONNECTION = 4;

interface Observed {
  input: StreamInput;
  grpc: boolean;
  inbound: boolean;
  firstOnConnection: boolean;
  reads: number;
}

async function observe(requestsPerConnection: number): Promise<Observed[]> {
  const model = bookinfo();
  const node = workloadNode(model.workloads.find((w) => w.name === "productpage-v1")!, model);
  const generator = new TrafficGenerator(model, { seed: 11, requestsPerSecond: 1000, requestsPerConnection });
  const { sidecar } = await meshlookSidecar({ flush_interval_s: 3600 }, undefined, { node });
  const seen = new Set<string>();
  const out: Observed[] = [];
  for (let i = 0; i < 3000; i++) {
    const request = generator.next();
    for (const reporter of ["source", "destination"] as Reporter[]) {
      if (!(reporter === "source" ? request.sourceReports : request.destinationReports)) continue;
      const input = streamInput(request, reporter);
      const id = JSON.stringify(input.attributes?.connection?.id, (_, v) => (typeof v === "bigint" ? String(v) : v));
      const before = sidecar.propertyReads[0];
      sidecar.stream(input);
      out.push({ input, grpc: request.protocol === "grpc", inbound: reporter === "destination", firstOnConnection: !seen.has(id), reads: sidecar.propertyReads[0] - before });
      seen.add(id);
    }
  }
  expect(sidecar.traps).toEqual([]);
  await sidecar.close();
  return out;
}

/** A plain HTTP request over mTLS that Envoy did not flag: no gRPC status, no mTLS fallback, no failure path. */
function plainMutualTls(o: Observed): boolean {
  const a = o.input.attributes!;
  const san = o.inbound ? a.connection?.uri_san_peer_certificate : a.upstream?.uri_san_peer_certificate;
  return !o.grpc && san !== undefined && Number(a.response?.flags ?? 0) === 0 && a.response?.code_details === "via_upstream";
}

describe("read budget per request", () => {
  it("reads four more properties on a new connection, in both directions (no upstream address)", async () => {
    const observed = (await observe(1)).filter((o) => o.firstOnConnection && plainMutualTls(o));
    for (const inbound of [true, false]) {
      const side = observed.filter((o) => o.inbound === inbound);
      expect(side.length).toBeGreaterThan(500);
      expect(new Set(side.map((o) => o.reads))).toEqual(new Set([PER_REQUEST + PER_NEW_CONNECTION]));
    }
  });

  it("reads only the per-request properties on a known connection inbound, plus the upstream address outbound", async () => {
    const observed = (await observe(10)).filter((o) => !o.firstOnConnection && plainMutualTls(o));
    const inbound = observed.filter((o) => o.inbound);
    expect(inbound.length).toBeGreaterThan(500);
    expect(new Set(inbound.map((o) => o.reads))).toEqual(new Set([PER_REQUEST]));
    // Outbound, a known connection's requests read upstream.address; the first one that does (the
    // connection's second request) also reads the upstream's facts once, to cache them.
    const outbound = observed.filter((o) => !o.inbound);
    expect(outbound.length).toBeGreaterThan(500);
    const counts = outbound.map((o) => o.reads);
    expect(counts.every((n) => n === PER_REQUEST + 1 || n === PER_REQUEST + 1 + 3)).toBe(true);
    expect(counts.filter((n) => n === PER_REQUEST + 1).length).toBeGreaterThan(counts.length / 2);
  });
});
