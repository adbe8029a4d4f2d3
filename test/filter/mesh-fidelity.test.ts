// The filter against Envoy and Istio behaviour its own traffic generator never produced (issue: "safe and
// exact in a real Istio mesh, 1.22–1.28"): configurations it must not refuse, upstream failures that
// must not poison the fact caches, every form Istio stores peer metadata in, the JWT principal of
// Istio >= 1.21, Envoy >= 1.30 response flags and gRPC-Web, VM stop, and a collector cluster Envoy does
// not know. Each case runs the release build in the simulated host (docs/host.md cites the sources).
import { describe, expect, it } from "vitest";
import {
  bytes,
  createSidecar,
  duration,
  encodePairs,
  FieldObject,
  flatNodePeer,
  jwtAuthnMetadata,
  ManualClock,
  metadataMessage,
  peerFieldObject,
  peerInfo,
  responseFlags,
  uint,
  type Attr,
  type StreamInput,
} from "../../sim/host/index.ts";
import type { DecodedSeries } from "../../shared/node.ts";
import { COLLECTOR_CLUSTER, DEBUG_WASM, LOCAL_NODE, decodeBodies, idle, loadModule, meshlookSidecar, startCollector } from "./fixtures.ts";

const CALLER = "spiffe://cluster.local/ns/shop/sa/productpage";
const SELF = "spiffe://cluster.local/ns/shop/sa/reviews";
const RATINGS = "spiffe://cluster.local/ns/shop/sa/ratings";
const PRODUCTPAGE = { workload: "productpage-v1", namespace: "shop", service: "productpage", revision: "v1", cluster: "east" };
const RATINGS_PEER = { workload: "ratings-v1", namespace: "shop", service: "ratings", revision: "v1", cluster: "east" };

type Extra = Partial<NonNullable<StreamInput["attributes"]>>;

function inbound(extra: Extra = {}, opts: { headers?: [string, string][]; response?: [string, string][] | null } = {}): StreamInput {
  return {
    requestHeaders: [[":method", "GET"], [":path", "/r"], [":authority", "reviews.shop.svc.cluster.local:9080"], ...(opts.headers ?? [])],
    responseHeaders: opts.response === null ? undefined : (opts.response ?? [[":status", "200"]]),
    attributes: {
      request: { duration: duration(2_000_000) },
      xds: { listener_direction: 1, cluster_name: "inbound|9080||" },
      connection: { id: uint(7), mtls: true, uri_san_peer_certificate: CALLER, uri_san_local_certificate: SELF },
      filter_state: { downstream_peer: new FieldObject(PRODUCTPAGE) },
      ...extra,
    },
  };
}

/** An outbound call from reviews to ratings on downstream connection 11, pod 10.1.0.9. */
function outbound(ok: boolean): StreamInput {
  return {
    requestHeaders: [
      [":method", "GET"],
      [":path", "/ratings/1"],
      [":authority", "ratings.shop.svc.cluster.local:9080"],
    ],
    responseHeaders: [[":status", ok ? "200" : "503"]],
    attributes: {
      request: { duration: duration(3_000_000) },
      // A failed connect is answered by Envoy itself: UF,URX, and no upstream TLS session.
      response: ok ? {} : { flags: responseFlags(["UF", "URX"]), code_details: "upstream_reset_before_response_started{connection_failure}" },
      xds: { listener_direction: 2, cluster_name: "outbound|9080||ratings.shop.svc.cluster.local" },
      connection: { id: uint(11), mtls: false },
      upstream: ok ? { address: "10.1.0.9:9080", uri_san_peer_certificate: RATINGS, uri_san_local_certificate: SELF } : { address: "10.1.0.9:9080" },
      // What a generator that shares the filter's assumptions attaches: the host hides it when no
      // response headers came from the upstream, as Istio's peer_metadata filter never sets it then.
      filter_state: { upstream_peer: peerInfo(RATINGS_PEER) },
    },
  };
}

async function run(inputs: StreamInput[], config: object = {}, wasm?: string) {
  const collector = await startCollector();
  const options = wasm ? { wasm: await loadModule(wasm) } : {};
  const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1, ...config }, collector.address, options);
  for (const input of inputs) sidecar.stream(input);
  await idle(sidecar, clock, 2);
  await sidecar.close();
  await collector.close();
  expect(sidecar.traps).toEqual([]);
  const series = decodeBodies(collector.bodies).flatMap((s) => s.series);
  return { series, sidecar };
}

const SOURCE_PEER_LABELS = ["source_workload", "source_namespace", "source_canonical_service", "source_canonical_revision", "source_cluster"];
const pick = (s: DecodedSeries, ...names: string[]) => Object.fromEntries(names.map((n) => [n, s.dimensions[n as keyof typeof s.dimensions]]));

describe("a configuration the filter does not understand", () => {
  const bad = { collector: { cluster: COLLECTOR_CLUSTER, timeout: 5 }, flush_interval_s: 1, max_series: 5, colour: "blue" };

  it("is accepted, each problem logged once and counted, the rest applied", async () => {
    const collector = await startCollector();
    const clock = new ManualClock();
    const sidecar = await createSidecar({
      wasm: await loadModule(),
      rootId: "meshlook",
      clock,
      canary: true,
      configDelivery: "ecds",
      node: LOCAL_NODE,
      pluginConfig: JSON.stringify(bad),
      env: { MESHLOOK_INGEST_TOKEN: "t" },
      clusters: { [COLLECTOR_CLUSTER]: collector.address },
    });
    expect(sidecar.nacks).toEqual([]);
    const result = sidecar.stream(inbound());
    expect(result.responseFlags).not.toContain("NFCF");
    await idle(sidecar, clock, 2);
    await sidecar.close();
    await collector.close();
    const errors = sidecar.logMessages("error").filter((m) => m.includes("pluginConfig field"));
    // canary + one worker, three problems each
    expect(errors.filter((m) => m.includes('"colour": unknown field'))).toHaveLength(2);
    expect(errors.filter((m) => m.includes('"collector.timeout": unknown field'))).toHaveLength(2);
    expect(errors.filter((m) => m.includes('"max_series": must be between 10 and 65536 (got 5); using the default 2000'))).toHaveLength(2);
    expect(errors).toHaveLength(6);
    expect(sidecar.metrics.get("meshlook_config_errors")?.value).toBe(6n);
    // flush_interval_s (valid) applied: the request arrived after the 1 s window
    expect(collector.bodies.length).toBeGreaterThan(0);
    expect(collector.requestsReceived()).toBe(1);
  });

  it("without a usable collector cluster runs in safe mode: accepted, says so, sends nothing, passes traffic", async () => {
    const { clock, sidecar } = await meshlookSidecar({ collector: { cluster: 42 } }, undefined, { configDelivery: "ecds", canary: true });
    expect(sidecar.nacks).toEqual([]);
    const r = sidecar.stream(inbound());
    expect(r.responseFlags).toEqual([]);
    expect(r.responseHeaders).toContainEqual([":status", "200"]);
    await idle(sidecar, clock, 15);
    await sidecar.close();
    expect(sidecar.callouts).toEqual([]);
    expect(sidecar.logMessages("error")).toContainEqual(expect.stringContaining('"collector.cluster": must be a string (got 42); nothing will be reported'));
    expect(sidecar.logMessages("error")).toContainEqual(expect.stringContaining("safe mode"));
    expect(sidecar.traps).toEqual([]);
  });

  it("a broken update keeps the configuration in force and reporting", async () => {
    const collector = await startCollector();
    const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1 }, collector.address, { configDelivery: "ecds" });
    expect(sidecar.configure(JSON.stringify({ collector: {} }))).toBe(true);
    sidecar.stream(inbound());
    await idle(sidecar, clock, 3);
    await sidecar.close();
    await collector.close();
    expect(collector.requestsReceived()).toBe(1);
    expect(sidecar.logMessages("error")).toContainEqual(expect.stringContaining("keeping the previous configuration"));
  });
});

describe("fact caches never keep an absent fact", () => {
  it("a failed connect to a pod does not make later requests to it unknown", async () => {
    const { series } = await run([outbound(false), outbound(true)]);
    const ok = series.find((s) => s.dimensions.response_code === 200)!;
    expect(pick(ok, "destination_workload", "destination_principal", "destination_canonical_service")).toEqual({
      destination_workload: "ratings-v1",
      destination_principal: RATINGS,
      destination_canonical_service: "ratings",
    });
  });

  it("a failed connect after a success does not inherit the pod's identity", async () => {
    const { series } = await run([outbound(true), outbound(false)]);
    const failed = series.find((s) => s.dimensions.response_code === 503)!;
    expect(pick(failed, "destination_workload", "destination_principal", "response_flags")).toEqual({
      destination_workload: "unknown",
      destination_principal: "unknown",
      response_flags: "UF,URX",
    });
    expect(failed.errors).toBe(1);
  });

  it("a stream without decoded request headers does not hide the caller of its connection", async () => {
    // An HTTP/2 stream-level local reply: on_log runs, but peer_metadata never saw request headers.
    const early = inbound({ filter_state: {}, response: { code: 400 } }, { response: [[":status", "400"]] });
    const { series } = await run([early, inbound()]);
    const ok = series.find((s) => s.dimensions.response_code === 200)!;
    expect(pick(ok, "source_workload", "source_canonical_service")).toEqual({ source_workload: "productpage-v1", source_canonical_service: "productpage" });
  });
});

describe("peer metadata in every form Istio 1.22–1.28 stores it", () => {
  const forms: [string, Record<string, Attr>][] = [
    ["1.22/1.23 FlatNode (wasm.downstream_peer)", { "wasm.downstream_peer": flatNodePeer({ ...PRODUCTPAGE, labels: { app: "productpage" } }) }],
    ["1.24 field object", { downstream_peer: peerFieldObject(PRODUCTPAGE) }],
    ["1.25+ CelState Struct", { downstream_peer: peerInfo(PRODUCTPAGE) }],
  ];
  for (const [name, state] of forms) {
    it(`reads the caller's labels from the ${name}`, async () => {
      const { series } = await run([inbound({ filter_state: state })]);
      expect(pick(series[0], ...SOURCE_PEER_LABELS)).toEqual({
        source_workload: "productpage-v1",
        source_namespace: "shop",
        source_canonical_service: "productpage",
        source_canonical_revision: "v1",
        source_cluster: "east",
      });
    });
  }

  // The form is learned from the first peer that answers; callers without metadata before and after it,
  // and a second workload, must each come out as they are, on every build.
  const formOf: [string, (p: typeof PRODUCTPAGE) => Record<string, Attr>][] = [
    ["1.22/1.23 FlatNode", (p) => ({ "wasm.downstream_peer": flatNodePeer(p) })],
    ["1.24 field object", (p) => ({ downstream_peer: peerFieldObject(p) })],
    ["1.25+ CelState Struct", (p) => ({ downstream_peer: peerInfo(p) })],
  ];
  for (const [name, state] of formOf) {
    it(`keeps callers without metadata and two workloads apart across the learning of the ${name} form (release and debug)`, async () => {
      const on = (id: number, filterState: Record<string, Attr>) =>
        inbound({ connection: { id: uint(id), mtls: true, uri_san_peer_certificate: CALLER, uri_san_local_certificate: SELF }, filter_state: filterState });
      const inputs = [on(1, {}), on(2, state(PRODUCTPAGE)), on(3, {}), on(4, state(RATINGS_PEER)), on(5, state(PRODUCTPAGE)), on(6, {})];
      for (const wasm of [undefined, DEBUG_WASM]) {
        const { series } = await run(inputs, {}, wasm);
        const got = Object.fromEntries(series.map((s) => [`${s.dimensions.source_workload}/${s.dimensions.source_canonical_service}/${s.dimensions.source_cluster}`, s.requests]));
        expect(got).toEqual({ "unknown/unknown/unknown": 3, "productpage-v1/productpage/east": 2, "ratings-v1/ratings/east": 1 });
      }
    });
  }
});

describe("a 1.24 peer object with an empty field", () => {
  // WorkloadMetadataObject::getField answers an empty field with "" (istio/proxy release-1.24
  // metadata_object.cc), so the object is there and its other fields count.
  it("still gives the caller's other labels when the workload name is empty", async () => {
    const { workload: _, ...noWorkload } = PRODUCTPAGE;
    const { series } = await run([inbound({ filter_state: { downstream_peer: peerFieldObject(noWorkload) } })]);
    expect(pick(series[0], ...SOURCE_PEER_LABELS)).toEqual({
      source_workload: "unknown",
      source_namespace: "shop",
      source_canonical_service: "productpage",
      source_canonical_revision: "v1",
      source_cluster: "east",
    });
  });
});

describe("peer metadata read whole (Istio 1.25+ Struct) and cached per connection", () => {
  const REVIEWS_PEER = { workload: "reviews-v2", namespace: "shop", service: "reviews", revision: "v2", cluster: "west", labels: { app: "reviews", version: "v2" } };
  const REVIEWS = "spiffe://cluster.local/ns/shop/sa/reviews-v2";
  const on = (id: number, peer: Attr, san: string) =>
    inbound({ connection: { id: uint(id), mtls: true, uri_san_peer_certificate: san, uri_san_local_certificate: SELF }, filter_state: { downstream_peer: peer } });
  const LABELS = ["source_workload", "source_namespace", "source_canonical_service", "source_canonical_revision", "source_cluster", "source_principal"];

  for (const [build, wasm] of [
    ["release", undefined],
    ["debug", DEBUG_WASM],
  ] as const) {
    it(`keeps two interleaved connections' callers apart on one VM (${build} build)`, async () => {
      const a = peerInfo(PRODUCTPAGE);
      const b = peerInfo(REVIEWS_PEER);
      const { series } = await run([on(21, a, CALLER), on(22, b, REVIEWS), on(21, a, CALLER), on(22, b, REVIEWS), on(21, a, CALLER)], {}, wasm);
      const byWorkload = Object.fromEntries(series.map((s) => [s.dimensions.source_workload, { ...pick(s, ...LABELS), requests: s.requests }]));
      expect(byWorkload).toEqual({
        "productpage-v1": {
          source_workload: "productpage-v1",
          source_namespace: "shop",
          source_canonical_service: "productpage",
          source_canonical_revision: "v1",
          source_cluster: "east",
          source_principal: CALLER,
          requests: 3,
        },
        "reviews-v2": {
          source_workload: "reviews-v2",
          source_namespace: "shop",
          source_canonical_service: "reviews",
          source_canonical_revision: "v2",
          source_cluster: "west",
          source_principal: REVIEWS,
          requests: 2,
        },
      });
      expect(new Set(series.map((s) => s.dimensions.connection_security_policy))).toEqual(new Set(["mutual_tls"]));
    });
  }

  // A whole-object read that is not a well-formed pairs map (another filter's bytes under the key, a
  // truncated or lying length) must not trap, must not be half-used, and the request still counts once.
  const pairsHeader = (count: number, lengths: number[]) => {
    const b = new Uint8Array(4 + lengths.length * 4);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, count, true);
    lengths.forEach((l, i) => dv.setUint32(4 + i * 4, l, true));
    return b;
  };
  const goodPairs = encodePairs([
    ["workload", "productpage-v1"],
    ["namespace", "shop"],
  ]);
  const hostile: [string, Uint8Array][] = [
    ["empty bytes", new Uint8Array(0)],
    ["a count past the buffer", pairsHeader(0xffffffff, [])],
    ["lengths that overflow 32 bits", new Uint8Array([...pairsHeader(1, [0xffffffff, 2]), 0, 0, 0])],
    ["a truncated map", goodPairs.subarray(0, goodPairs.length - 3)],
    ["trailing bytes", new Uint8Array([...goodPairs, 1, 2, 3])],
  ];
  for (const [name, value] of hostile) {
    it(`treats ${name} as no peer metadata`, async () => {
      for (const wasm of [undefined, DEBUG_WASM]) {
        const { series } = await run([inbound({ filter_state: { downstream_peer: bytes(value) } })], {}, wasm);
        expect(series.map((s) => ({ ...pick(s, "source_workload", "source_namespace", "source_principal"), requests: s.requests }))).toEqual([
          { source_workload: "unknown", source_namespace: "unknown", source_principal: CALLER, requests: 1 },
        ]);
      }
    });
  }

  // Pairs-shaped mutations (lengths off by a few, counts near the truth, cuts, appended bytes, flipped
  // bytes) reach the parser's bounds far more often than random bytes do. Each goes on its own
  // connection of a VM that already learned the Struct form, so neither the cache nor the form hides it.
  // The expected workload comes from an independent strict reader: the proxy-wasm layout must account
  // for every byte, else the caller is unknown.
  it("never traps on mutated pairs after learning the Struct form, and uses only well-formed ones (debug build)", async () => {
    let seed = 0x5eed19;
    const rnd = () => {
      seed = (seed + 0x6d2b79f5) >>> 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
    };
    const below = (n: number) => Math.floor(rnd() * n);
    const base = encodePairs(Object.entries(PRODUCTPAGE));
    const mutate = (): Uint8Array => {
      const b = new Uint8Array(base);
      const dv = new DataView(b.buffer);
      const n = dv.getUint32(0, true);
      switch (below(6)) {
        case 0:
          dv.setUint32(0, [0, 1, n - 1, n + 1, 0x1fffffff, 0xffffffff][below(6)], true);
          return b;
        case 1: {
          const at = 4 + 4 * below(2 * n);
          dv.setUint32(at, [dv.getUint32(at, true) + below(5) - 2, 0, 0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffe][below(6)] >>> 0, true);
          return b;
        }
        case 2:
          return b.subarray(0, below(b.length));
        case 3:
          return new Uint8Array([...b, ...Array.from({ length: 1 + below(4) }, () => below(256))]);
        case 4:
          b[below(b.length)] ^= 1 << below(8);
          return b;
        default:
          return new Uint8Array([below(3), 0, 0, 0, ...Array.from({ length: below(40) }, () => below(256))]);
      }
    };
    const workloadOf = (b: Uint8Array): string => {
      if (b.length < 4) return "unknown";
      const dv = new DataView(b.buffer, b.byteOffset, b.length);
      const n = dv.getUint32(0, true);
      if (4 + 8 * n > b.length) return "unknown";
      let at = 4 + 8 * n;
      const fields: [Uint8Array, Uint8Array][] = [];
      for (let i = 0; i < n; i++) {
        const kl = dv.getUint32(4 + 8 * i, true);
        const vl = dv.getUint32(8 + 8 * i, true);
        if (at + kl + vl + 2 > b.length) return "unknown";
        fields.push([b.subarray(at, at + kl), b.subarray(at + kl + 1, at + kl + 1 + vl)]);
        at += kl + vl + 2;
      }
      if (at !== b.length) return "unknown";
      let workload = "unknown";
      for (const [k, v] of fields) {
        if (Buffer.from(k).toString("latin1") !== "workload") continue;
        try {
          const text = new TextDecoder("utf-8", { fatal: true }).decode(v);
          workload = v.length > 0 && v.length <= 512 ? text : "unknown";
        } catch {
          workload = "unknown";
        }
      }
      return workload;
    };
    const want = new Map<string, number>([["productpage-v1", 1]]);
    const inputs = [on(100, peerInfo(PRODUCTPAGE), CALLER)];
    for (let i = 0; i < 600; i++) {
      const value = mutate();
      const w = workloadOf(value);
      want.set(w, (want.get(w) ?? 0) + 1);
      inputs.push(on(1000 + i, bytes(value), CALLER));
    }
    const { series } = await run(inputs, { max_series: 5000 }, DEBUG_WASM);
    const got = new Map<string, number>();
    for (const s of series) got.set(String(s.dimensions.source_workload), (got.get(String(s.dimensions.source_workload)) ?? 0) + s.requests);
    expect(Object.fromEntries(got)).toEqual(Object.fromEntries(want));
  });

  // The compiled filter's narrow bucket counts (1, then 2, then 4 bytes) through both widenings: every
  // request of one series in one latency bucket, so a wrap at 256 or 65,536 would show in that bucket.
  it("counts 65,600 requests in one latency bucket exactly (debug build)", async () => {
    const n = 65_600;
    const same = inbound({ connection: { id: uint(5), mtls: true, uri_san_peer_certificate: CALLER, uri_san_local_certificate: SELF } });
    const { series } = await run(
      Array.from({ length: n }, () => same),
      {},
      DEBUG_WASM,
    );
    expect(series.map((s) => [s.requests, s.sketch.z, s.sketch.c.filter((c) => c !== 0)])).toEqual([[n, 0, [n]]]);
  }, 120_000);

  it("takes only the wanted labels and leaves a value that is not UTF-8 unknown", async () => {
    const peer = encodePairs([
      ["labels", encodePairs([["workload", "not-this"]])],
      ["workload", new Uint8Array([0xc3, 0x28])],
      ["namespace", "shop"],
      ["service", "productpage"],
      ["cluster", "east"],
    ]);
    const { series } = await run([inbound({ filter_state: { downstream_peer: bytes(peer) } })]);
    expect(pick(series[0], ...SOURCE_PEER_LABELS)).toEqual({
      source_workload: "unknown",
      source_namespace: "shop",
      source_canonical_service: "productpage",
      source_canonical_revision: "unknown",
      source_cluster: "east",
    });
  });
});

describe("end-user principal", () => {
  it("is iss/sub of the payload jwt_authn stored (Istio >= 1.21)", async () => {
    const metadata = jwtAuthnMetadata({ iss: "https://idp.example.com", sub: "alice", aud: ["shop"], exp: 1_900_000_000 });
    const { series } = await run([inbound({ metadata })], { end_user_principal: true });
    expect(series[0].dimensions.end_user_principal).toBe("https://idp.example.com/alice");
  });

  it("falls back to istio_authn's request.auth.principal of older proxies", async () => {
    const metadata = metadataMessage({ istio_authn: { "request.auth.principal": "https://idp.example.com/bob" } });
    const { series } = await run([inbound({ metadata })], { end_user_principal: true });
    expect(series[0].dimensions.end_user_principal).toBe("https://idp.example.com/bob");
  });
});

describe("what counts as an error", () => {
  it("names Envoy 1.30+ flags and counts a downstream reset (DR) as an error", async () => {
    const dr = inbound({ response: { flags: responseFlags(["DR"]) } }, { response: null });
    const udo = inbound({ response: { flags: responseFlags(["UDO"]) } }, { response: [[":status", "503"]] });
    const { series } = await run([dr, udo]);
    const byFlags = Object.fromEntries(series.map((s) => [s.dimensions.response_flags, s.errors]));
    expect(byFlags).toEqual({ DR: 1, UDO: 1 });
  });

  it("does not count gRPC-Web's inferred status (HTTP 200, status in the body) as an error", async () => {
    const web = inbound({}, { headers: [["content-type", "application/grpc-web+proto"]] });
    const failedWeb = inbound(
      {},
      {
        headers: [["content-type", "application/grpc-web"]],
        response: [
          [":status", "200"],
          ["grpc-status", "14"],
        ],
      },
    );
    const { series } = await run([web, failedWeb]);
    const byStatus = Object.fromEntries(series.map((s) => [s.dimensions.grpc_status, s.errors]));
    expect(byStatus).toEqual({ "-": 0, "14": 1 });
  });
});

describe("no traps on any path", () => {
  for (const [build, path] of [
    ["release", undefined],
    ["debug", DEBUG_WASM],
  ] as const) {
    it(`${build} build: canary, configure, reconfigure, streams, ticks, callouts, VM stop`, async () => {
      const collector = await startCollector();
      const clock = new ManualClock();
      const sidecar = await createSidecar({
        wasm: await loadModule(path),
        rootId: "meshlook",
        clock,
        canary: true,
        workers: 2,
        configDelivery: "ecds",
        node: LOCAL_NODE,
        pluginConfig: JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: 1 }),
        env: { MESHLOOK_INGEST_TOKEN: "t" },
        clusters: { [COLLECTOR_CLUSTER]: collector.address },
      });
      for (let i = 0; i < 20; i++) sidecar.stream(i % 2 ? inbound() : outbound(i % 4 === 0));
      await idle(sidecar, clock, 2);
      const accepted = sidecar.configure(JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: 2, unknown_field: 1 }));
      for (let i = 0; i < 20; i++) sidecar.stream(inbound());
      await idle(sidecar, clock, 3);
      await sidecar.close();
      await collector.close();
      expect(sidecar.traps.map((t) => `${t.worker}: ${t.message}`)).toEqual([]);
      expect(accepted).toBe(true);
      expect(collector.bodies.length).toBeGreaterThan(0);
    });
  }
});

describe("VM stop", () => {
  it("delivers the open window before the VM goes (collector reachable: nothing lost)", async () => {
    const collector = await startCollector();
    const { sidecar } = await meshlookSidecar({ flush_interval_s: 60 }, collector.address);
    for (let i = 0; i < 5; i++) sidecar.stream(inbound());
    await sidecar.close();
    await collector.close();
    expect(collector.requestsReceived()).toBe(5);
    expect(sidecar.traps).toEqual([]);
  });

  it("counts what it could not deliver as lost, in the log and the proxy's stats", async () => {
    const collector = await startCollector(() => ({ status: 503 }));
    const { sidecar } = await meshlookSidecar({ flush_interval_s: 60 }, collector.address);
    for (let i = 0; i < 3; i++) sidecar.stream(inbound());
    await sidecar.close();
    await collector.close();
    expect(sidecar.metrics.get("meshlook_requests_lost_at_stop")?.value).toBe(3n);
    expect(sidecar.metrics.get("meshlook_summaries_lost_at_stop")?.value).toBe(1n);
    expect(sidecar.logMessages("error")).toContainEqual(expect.stringContaining("1 summaries (3 requests) not delivered"));
  });
});

describe("a collector cluster the proxy does not know", () => {
  it("is logged (rate-limited) and every refused call counted", async () => {
    const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1 });
    sidecar.stream(inbound());
    await idle(sidecar, clock, 20);
    await sidecar.close();
    const refused = Number(sidecar.metrics.get("meshlook_collector_calls_refused")?.value ?? 0n);
    expect(refused).toBeGreaterThan(1);
    const lines = sidecar.logMessages("error").filter((m) => m.includes("refused the call to cluster"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(COLLECTOR_CLUSTER);
  });
});
