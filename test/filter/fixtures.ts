// Shared by the filter tests and bench/filter.ts: the compiled filter, synthetic streams with the
// attributes an Istio sidecar serves, a loopback collector, and a look at a VM's linear memory.
import http from "node:http";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { compileModule, createSidecar, duration, FieldObject, ManualClock, uint, type Sidecar, type SidecarOptions, type StreamInput } from "../../sim/host/index.ts";
import { decodeSummary, type DecodedSummary } from "../../shared/node.ts";

export const ROOT = join(import.meta.dirname, "..", "..");
// MESHLOOK_FILTER_WASM runs the filter tests against another build (e.g. an older release, to show a
// regression test failing on it).
export const RELEASE_WASM = process.env.MESHLOOK_FILTER_WASM ?? join(ROOT, "dist", "meshlook.wasm");
export const DEBUG_WASM = process.env.MESHLOOK_FILTER_DEBUG_WASM ?? join(ROOT, "dist", "meshlook.debug.wasm");
export const NOOP_WASM = join(ROOT, "dist", "fixtures", "noop.wasm");
export const COLLECTOR_CLUSTER = "outbound|8080||meshlook-collector.meshlook.svc.cluster.local";

export const releaseBytes = () => new Uint8Array(readFileSync(RELEASE_WASM));
export const loadModule = (path = RELEASE_WASM) => compileModule(path);

/** Node metadata of the reporting sidecar (its own labels), as Istio's injector writes it. */
export const LOCAL_NODE = {
  id: "sidecar~10.1.0.7~reviews-v1-5c8d7f9b4-x2x9q.shop~shop.svc.cluster.local",
  metadata: {
    NAME: "reviews-v1-5c8d7f9b4-x2x9q",
    NAMESPACE: "shop",
    WORKLOAD_NAME: "reviews-v1",
    CLUSTER_ID: "east",
    LABELS: { app: "reviews", "service.istio.io/canonical-name": "reviews", "service.istio.io/canonical-revision": "v1" },
  },
};

export interface SyntheticRequest {
  /** Caller's SPIFFE id; null for a plaintext caller. */
  principal: string | null;
  /** Caller's workload (peer metadata); null when it exchanged none. */
  workload?: string | null;
  code?: number;
  grpc?: boolean;
  grpcStatus?: number;
  flags?: number;
  durationNs: number;
  requestBytes?: number;
  responseBytes?: number;
  inbound?: boolean;
  /** Downstream connection id; default: one connection per caller (principal and workload). */
  connectionId?: number;
}

/** FNV-1a of the caller's identity: the connection id its requests arrive on. */
function callerConnection(principal: string | null, workload: string | null | undefined): number {
  let h = 0x811c9dc5;
  for (const c of `${principal}|${workload}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h + 1;
}

/** An inbound (or outbound) request to `reviews` as the host replays it. */
export function syntheticStream(r: SyntheticRequest): StreamInput {
  const inbound = r.inbound ?? true;
  const requestHeaders: [string, string][] = [
    [":method", "GET"],
    [":path", "/reviews/1"],
    [":authority", "reviews.shop.svc.cluster.local"],
  ];
  if (r.grpc) requestHeaders.push(["content-type", "application/grpc"]);
  const responseHeaders: [string, string][] | undefined = r.code === 0 ? undefined : [[":status", String(r.code ?? 200)]];
  if (responseHeaders && r.grpc) responseHeaders.push(["grpc-status", String(r.grpcStatus ?? 0)]);
  const peer =
    r.workload === null ? undefined : new FieldObject({ workload: r.workload ?? "productpage-v1", namespace: "shop", service: "productpage", revision: "v1", cluster: "east" });
  const tls = r.principal !== null;
  const id = uint(r.connectionId ?? callerConnection(r.principal, r.workload));
  return {
    requestHeaders,
    responseHeaders,
    attributes: {
      request: { duration: duration(r.durationNs), total_size: r.requestBytes ?? 300 },
      response: { flags: r.flags ?? 0, total_size: r.responseBytes ?? 1200 },
      xds: {
        listener_direction: inbound ? 1 : 2,
        cluster_name: inbound ? "inbound|9080||" : "outbound|9080||ratings.shop.svc.cluster.local",
      },
      connection: tls ? { id, mtls: true, uri_san_peer_certificate: r.principal!, uri_san_local_certificate: "spiffe://cluster.local/ns/shop/sa/reviews" } : { id, mtls: false },
      filter_state: peer ? { [inbound ? "downstream_peer" : "upstream_peer"]: peer } : {},
    },
  };
}

/** A body the filter posted, decoded; throws with the decoder's reason when it does not decode. */
export function decodeBody(body: Uint8Array): DecodedSummary {
  const r = decodeSummary(body);
  if (!r.ok) throw new Error(`${r.reason}: ${r.message}`);
  return r.summary;
}

/** Every body posted to a collector (startCollector's `bodies`), decoded, in the order received. */
export const decodeBodies = (bodies: readonly { body: Uint8Array }[]): DecodedSummary[] => bodies.map(({ body }) => decodeBody(body));

export interface CollectorReply {
  status: number;
  headers?: Record<string, string>;
}

/** A loopback HTTP server standing in for the collector: records every POST body and answers per `reply`. */
export async function startCollector(reply: (body: Uint8Array, index: number) => CollectorReply = () => ({ status: 200 })) {
  const bodies: { body: Uint8Array; headers: http.IncomingHttpHeaders; status: number }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = new Uint8Array(Buffer.concat(chunks));
      const r = reply(body, bodies.length);
      bodies.push({ body, headers: req.headers, status: r.status });
      res.writeHead(r.status, { "content-type": "application/json", ...(r.headers ?? {}) });
      res.end(r.status < 300 ? '{"accepted":true}' : '{"error":"unavailable","message":"test"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    bodies,
    /** Requests the series of every decodable body received account for (answered or not). */
    requestsReceived: () =>
      bodies
        .map((b) => decodeSummary(b.body))
        .flatMap((r) => (r.ok ? r.summary.series : []))
        .reduce((n, x) => n + x.requests, 0),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * The release filter in a one-worker sidecar with a ManualClock, configured with the collector
 * cluster plus `config`, and pointed at `collectorAddress` when given.
 */
export async function meshlookSidecar(config: object = {}, collectorAddress?: string, options: Partial<SidecarOptions> = {}) {
  const clock = new ManualClock();
  const sidecar = await createSidecar({
    wasm: await loadModule(),
    rootId: "meshlook",
    clock,
    canary: false,
    node: LOCAL_NODE,
    pluginConfig: JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, ...config }),
    env: { MESHLOOK_INGEST_TOKEN: "t" },
    clusters: collectorAddress ? { [COLLECTOR_CLUSTER]: collectorAddress } : {},
    ...options,
  });
  return { clock, sidecar };
}

/** Lets `seconds` of simulated time pass one tick at a time, delivering callout responses as they come. */
export async function idle(sidecar: Sidecar, clock: ManualClock, seconds: number) {
  for (let t = 0; t < seconds; t++) {
    clock.advance(1000);
    await sidecar.settle();
  }
}
