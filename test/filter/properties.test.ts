// Where each dimension comes from (docs/filter-config.md, "Where the dimensions come from"): known
// attribute sets, one request each, and the decoded series they must produce — Istio's peer metadata
// object and the legacy metadata-exchange fields, inbound and outbound, errors, and values the filter
// must refuse.
import { describe, expect, it } from "vitest";
import { FieldObject, duration, flatNodePeer, int, peerInfo, uint, type Attr, type NodeInfo, type StreamInput } from "../../sim/host/index.ts";
import { type DecodedSeries, type DecodedSummary } from "../../shared/node.ts";
import { decodeBodies, meshlookSidecar, startCollector } from "./fixtures.ts";

const CALLER = "spiffe://cluster.local/ns/shop/sa/productpage";
const SELF = "spiffe://cluster.local/ns/shop/sa/reviews";

async function summariesOf(inputs: StreamInput[], options: { config?: object; node?: NodeInfo } = {}): Promise<DecodedSummary[]> {
  const collector = await startCollector();
  const extra = options.node ? { node: options.node, workers: 2 } : {};
  const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1, ...options.config }, collector.address, extra);
  for (const input of inputs) sidecar.stream(input);
  clock.advance(1000);
  await sidecar.settle();
  await sidecar.close();
  await collector.close();
  return decodeBodies(collector.bodies);
}

async function seriesOf(inputs: StreamInput[], options: { config?: object } = {}): Promise<DecodedSeries[]> {
  return (await summariesOf(inputs, options)).flatMap((s) => s.series);
}

const peer = new FieldObject({ workload: "productpage-v1", namespace: "shop", service: "productpage", revision: "v1", cluster: "east" });

function inbound(extra: Partial<StreamInput["attributes"]> = {}, headers: [string, string][] = []): StreamInput {
  return {
    requestHeaders: [[":method", "GET"], [":path", "/r"], [":authority", "reviews.shop.svc.cluster.local:9080"], ...headers],
    responseHeaders: [[":status", "200"]],
    attributes: {
      request: { duration: duration(1_234_567) },
      xds: { listener_direction: 1, cluster_name: "inbound|9080||" },
      connection: { id: uint(7), mtls: true, uri_san_peer_certificate: CALLER, uri_san_local_certificate: SELF },
      filter_state: { downstream_peer: peer },
      ...extra,
    },
  };
}

/** An inbound request from CALLER on connection `id`, its peer metadata `downstreamPeer`. */
const onConnection = (id: number, downstreamPeer: Attr) =>
  inbound({ connection: { id: uint(id), mtls: true, uri_san_peer_certificate: CALLER, uri_san_local_certificate: SELF }, filter_state: { downstream_peer: downstreamPeer } });

const sourceLabels = (d: Record<string, unknown>) => [d.source_workload, d.source_namespace, d.source_canonical_service, d.source_canonical_revision, d.source_cluster].join(" ");

const SELF_LABELS = {
  destination_workload: "reviews-v1",
  destination_namespace: "shop",
  destination_canonical_service: "reviews",
  destination_canonical_revision: "v1",
  destination_cluster: "east",
};

describe("filter dimension sources", () => {
  it("reads an inbound mTLS request from peer metadata, certificates and node metadata", async () => {
    const [s] = await seriesOf([inbound()]);
    expect(s.dimensions).toEqual({
      reporter: "destination",
      source_principal: CALLER,
      source_workload: "productpage-v1",
      source_namespace: "shop",
      source_canonical_service: "productpage",
      source_canonical_revision: "v1",
      source_cluster: "east",
      destination_principal: SELF,
      destination_service: "reviews.shop.svc.cluster.local", // request host, port cut (inbound cluster has no host)
      ...SELF_LABELS,
      request_protocol: "http",
      response_code: 200,
      grpc_status: "-",
      response_flags: "-",
      connection_security_policy: "mutual_tls",
      end_user_principal: "unknown",
    });
    expect([s.requests, s.errors, s.latencySumUs]).toEqual([1, 0, 1234]);
  });

  it("gives the same series from the legacy metadata-exchange peer fields (wasm.downstream_peer)", async () => {
    const legacy = inbound({
      // Istio 1.22/1.23's FlatNode: labels are KeyVal records (see flatNodePeer).
      filter_state: {
        "wasm.downstream_peer": flatNodePeer({ workload: "productpage-v1", namespace: "shop", cluster: "east", service: "productpage", revision: "v1" }),
      },
    });
    const [modern] = await seriesOf([inbound()]);
    const [old] = await seriesOf([legacy]);
    expect(old.dimensions).toEqual(modern.dimensions);
  });

  it('reads a FlatNode without a workload name (it answers "") for the labels it has', async () => {
    const [s] = await seriesOf([
      inbound({
        filter_state: { "wasm.downstream_peer": flatNodePeer({ namespace: "shop", service: "productpage" }) },
      }),
    ]);
    expect(s.dimensions).toMatchObject({
      source_workload: "unknown",
      source_namespace: "shop",
      source_canonical_service: "productpage",
      source_canonical_revision: "unknown",
      source_cluster: "unknown",
    });
  });

  it("reads an outbound request from the upstream side and Istio's cluster metadata", async () => {
    const [s] = await seriesOf([
      {
        requestHeaders: [
          [":method", "POST"],
          [":path", "/x"],
          [":authority", "ratings"],
          ["content-type", "application/grpc+proto"],
        ],
        responseHeaders: [[":status", "200"]],
        responseTrailers: [["grpc-status", "14"]],
        attributes: {
          request: { duration: duration(5_000_000) },
          response: { flags: 0x20 | 0x8000 },
          xds: {
            listener_direction: 2,
            cluster_name: "outbound|9080||ratings.shop.svc.cluster.local",
            cluster_metadata: { filter_metadata: { istio: { services: [{ host: "ratings.shop.svc.cluster.local" }] } } },
          },
          upstream: { uri_san_peer_certificate: "spiffe://cluster.local/ns/shop/sa/ratings", uri_san_local_certificate: SELF },
          filter_state: { upstream_peer: new FieldObject({ workload: "ratings-v1", namespace: "shop", service: "ratings", revision: "v1", cluster: "west" }) },
        },
      },
    ]);
    expect(s.dimensions).toMatchObject({
      reporter: "source",
      source_principal: SELF,
      source_workload: "reviews-v1",
      source_canonical_service: "reviews",
      destination_principal: "spiffe://cluster.local/ns/shop/sa/ratings",
      destination_service: "ratings.shop.svc.cluster.local",
      destination_workload: "ratings-v1",
      destination_cluster: "west",
      request_protocol: "grpc",
      grpc_status: "14",
      response_flags: "UF,URX",
      connection_security_policy: "unknown",
    });
    expect(s.errors).toBe(1);
  });

  it("counts 5xx, non-OK gRPC and failure flags as errors, but not 4xx or DI", async () => {
    const series = await seriesOf([
      inbound({ response: { code: 503 } }),
      inbound({ response: { code: 404 } }),
      inbound({ response: { flags: 0x200 } }),
      inbound({ response: { flags: 0x4000 } }),
      inbound({}, [["content-type", "application/grpc"]]),
    ]);
    const errorsBy = Object.fromEntries(series.map((s) => [`${s.dimensions.response_code}/${s.dimensions.response_flags}/${s.dimensions.request_protocol}`, s.errors]));
    expect(errorsBy).toEqual({ "503/-/http": 1, "404/-/http": 0, "200/DI/http": 0, "200/DC/http": 1, "200/-/grpc": 1 });
  });

  it("reports plaintext callers without peer metadata as unknown, and refuses oversized or broken values", async () => {
    const plaintext = inbound({ connection: { id: uint(8), mtls: false }, filter_state: {} });
    const huge = inbound({ connection: { id: uint(9), mtls: true, uri_san_peer_certificate: "spiffe://x/" + "a".repeat(65536) } });
    const series = await seriesOf([plaintext, huge]);
    const byPolicy = Object.fromEntries(series.map((s) => [s.dimensions.connection_security_policy, s.dimensions]));
    expect(byPolicy.none).toMatchObject({ source_principal: "unknown", source_workload: "unknown", source_cluster: "unknown" });
    expect(byPolicy.mutual_tls).toMatchObject({ source_principal: "unknown", destination_principal: "unknown", source_workload: "productpage-v1" });
  });

  it("reports the end-user principal only when switched on, and only configured dimensions", async () => {
    const withUser = inbound({ metadata: { filter_metadata: { istio_authn: { "request.auth.principal": "https://issuer/u1" } } } });
    const [off] = await seriesOf([withUser]);
    const [on] = await seriesOf([withUser], { config: { end_user_principal: true, dimensions: ["reporter", "source_workload", "response_code"] } });
    expect(off.dimensions.end_user_principal).toBe("unknown");
    expect(on.dimensions).toMatchObject({
      end_user_principal: "https://issuer/u1",
      source_workload: "productpage-v1",
      response_code: 200,
      source_principal: "unknown",
      destination_workload: "unknown",
    });
  });

  it("names each worker VM's producer uniquely, keeping the unique tail for a long node id", async () => {
    const node = { id: "sidecar~" + "é".repeat(200), metadata: { WORKLOAD_NAME: "w" } };
    const summaries = await summariesOf([inbound(), inbound(), inbound(), inbound()], { node });
    const ids = [...new Set(summaries.map((s) => s.producerId))];
    expect(ids).toHaveLength(2);
    for (const id of ids) {
      expect(Buffer.byteLength(id)).toBeLessThanOrEqual(256);
      expect(id).toMatch(/^sidecar~é+\/\d+\/\d+\/[0-9a-f]+$/);
    }
  });

  it("serves connection facts from the cache only within a window", async () => {
    const collector = await startCollector();
    const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1 }, collector.address);
    const on = (id: number, principal: string) => inbound({ connection: { id: uint(id), mtls: true, uri_san_peer_certificate: principal, uri_san_local_certificate: SELF } });
    for (const [id, p] of [
      [1, "spiffe://a"],
      [2, "spiffe://b"],
      [1, "spiffe://a"],
      [2, "spiffe://b"],
      [1, "spiffe://a"],
    ] as const)
      sidecar.stream(on(id, p));
    clock.advance(1000);
    await sidecar.settle();
    // Next window: a new caller takes the first value id; connection 1 must still read as caller a.
    sidecar.stream(on(3, "spiffe://c"));
    sidecar.stream(on(1, "spiffe://a"));
    clock.advance(1000);
    await sidecar.settle();
    await sidecar.close();
    await collector.close();
    const windows = decodeBodies(collector.bodies).map((s) => Object.fromEntries(s.series.map((x) => [x.dimensions.source_principal, x.requests])));
    expect(windows).toEqual([
      { "spiffe://a": 3, "spiffe://b": 2 },
      { "spiffe://c": 1, "spiffe://a": 1 },
    ]);
  });

  it("keeps apart callers whose peer objects (Istio 1.25+) have one length, each on a new connection, in two windows", async () => {
    // 40 such objects in the 32 two-way sets of the filter's memo of recent peer objects (observe.ts,
    // PeerMemo), each recurring while the memo still holds it, in both windows. Their app versions differ
    // too, so that they spread over the sets (picked from an object's last bytes) and some share one.
    const object = (n: number) => {
      const k = String(n).padStart(3, "0");
      return peerInfo({ type: "deployment", workload: `ratings-${k}`, namespace: "shop", cluster: "east", service: "ratings", revision: "v1", app: "ratings", version: `v${k}` });
    };
    const collector = await startCollector();
    const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1 }, collector.address);
    const expected: Map<string, number>[] = [];
    let id = 1000;
    for (const order of [(i: number) => (i * 7) % 40, (i: number) => (i * 11 + 3) % 40]) {
      const counts = new Map<string, number>();
      for (let i = 0; i < 600; i++) {
        const n = order(i);
        sidecar.stream(onConnection(id++, object(n)));
        const labels = `ratings-${String(n).padStart(3, "0")} shop ratings v1 east`;
        counts.set(labels, (counts.get(labels) ?? 0) + 1);
      }
      expected.push(counts);
      clock.advance(1000);
      await sidecar.settle();
    }
    expect(sidecar.traps).toEqual([]);
    await sidecar.close();
    await collector.close();
    const windows = decodeBodies(collector.bodies).map((s) => new Map(s.series.map((x) => [sourceLabels(x.dimensions), x.requests])));
    expect(windows).toEqual(expected);
  });

  it("reads an empty peer object (Istio 1.25+) as no metadata, after a window of many callers", async () => {
    // Envoy hands an empty value out as a null pointer and size 0 (proxy-wasm-cpp-host
    // WasmBase::copyToPointerSize). The memo of recent peer objects (observe.ts, PeerMemo) must not take
    // it for a slot it emptied at the window's end: that slot still holds the closed window's label ids.
    const object = (n: number) => peerInfo({ type: "deployment", workload: `ratings-${n}`, namespace: "shop", cluster: "east", service: "ratings", revision: `v${n}` });
    const collector = await startCollector();
    const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1 }, collector.address);
    for (let n = 0; n < 200; n++) sidecar.stream(onConnection(1000 + n, object(n)));
    clock.advance(1000);
    await sidecar.settle();
    sidecar.stream(onConnection(2000, ""));
    clock.advance(1000);
    await sidecar.settle();
    expect(sidecar.traps).toEqual([]);
    await sidecar.close();
    await collector.close();
    const windows = decodeBodies(collector.bodies).map((s) => s.series.map((x) => [sourceLabels(x.dimensions), x.requests]));
    expect(windows[0]).toHaveLength(200);
    expect(windows[1]).toEqual([["unknown unknown unknown unknown unknown", 1]]);
  });

  it("keeps apart callers whose values differ only inside (same length, same first and last eight bytes), each on a new connection", async () => {
    // Such values share a slot of the string table's memo of recent values (interner.ts, recentSlot).
    const callers = ["spiffe://cluster.local/ns/shop/sa/a-1-productpage", "spiffe://cluster.local/ns/shop/sa/b-2-productpage"];
    const workloads = ["productpage-a-v1-workload", "productpage-b-v1-workload"];
    const inputs: StreamInput[] = [];
    const expected = new Map<string, number>();
    for (let i = 0; i < 9; i++) {
      const c = i % 2;
      const caller = new FieldObject({ workload: workloads[c], namespace: "shop", service: "productpage", revision: "v1", cluster: "east" });
      inputs.push(
        inbound({
          connection: { id: uint(100 + i), mtls: true, uri_san_peer_certificate: callers[c], uri_san_local_certificate: SELF },
          filter_state: { downstream_peer: caller },
        }),
      );
      const key = `${callers[c]} ${workloads[c]}`;
      expected.set(key, (expected.get(key) ?? 0) + 1);
    }
    const series = await seriesOf(inputs);
    expect(new Map(series.map((s) => [`${s.dimensions.source_principal} ${s.dimensions.source_workload}`, s.requests]))).toEqual(expected);
  });
  it("falls back to the pre-1.33 top-level name when xds.listener_direction is absent", async () => {
    // The host answers an unknown top-level name from filter state "wasm.<name>": a proxy that serves
    // only the old `listener_direction` name.
    const old = inbound({ xds: { cluster_name: "inbound|9080||" }, filter_state: { downstream_peer: peer, "wasm.listener_direction": int(1) } });
    const missing = inbound({ xds: { cluster_name: "inbound|9080||" } });
    (missing.attributes!.connection as any).id = uint(99);
    const series = await seriesOf([old, missing]);
    expect(series.map((s) => s.dimensions.reporter).sort()).toEqual(["destination", "source"]);
  });
});
