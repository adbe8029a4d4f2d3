// Every property type round-trips through the conformance filter (test/fixtures/filters/properties.ts),
// which logs the raw bytes it received; the expected bytes are built here with Buffer, independently of
// the host's encoder, following Envoy's serializeValue.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSidecar, duration, peerInfo, uint, type Sidecar } from "../../sim/host/index.ts";

const i64 = (n: bigint | number) => {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(n));
  return b.toString("hex");
};
const u64 = (n: bigint | number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b.toString("hex");
};
const f64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(n);
  return b.toString("hex");
};
const hex = (s: string) => Buffer.from(s).toString("hex");
/** The pairs format written out by hand: count, then (key length, value length) per pair, then NUL-terminated bytes. */
function pairs(p: [string | Buffer, string | Buffer][]): string {
  const parts: Buffer[] = [];
  const head = Buffer.alloc(4 + p.length * 8);
  head.writeUInt32LE(p.length, 0);
  p.forEach(([k, v], i) => {
    const kb = Buffer.from(k);
    const vb = Buffer.from(v);
    head.writeUInt32LE(kb.length, 4 + i * 8);
    head.writeUInt32LE(vb.length, 8 + i * 8);
    parts.push(kb, Buffer.from([0]), vb, Buffer.from([0]));
  });
  return Buffer.concat([head, ...parts]).toString("hex");
}

const START = Date.UTC(2026, 2, 1, 12, 0, 0);
const PATHS = [
  "request|path",
  "request|url_path",
  "request|query",
  "request|method",
  "request|host",
  "request|scheme",
  "request|id",
  "request|useragent",
  "request|time",
  "request|duration",
  "request|size",
  "request|total_size",
  "request|protocol",
  "request|headers|x-multi",
  "request|headers",
  "request|headers|x-absent",
  "response|headers|content-type",
  "response|code",
  "response|code_details",
  "response|grpc_status",
  "response|flags",
  "response|size",
  "response|total_size",
  "connection|mtls",
  "connection|uri_san_peer_certificate",
  "connection|id",
  "connection_id",
  "source|address",
  "source|port",
  "destination|port",
  "upstream|request_attempt_count",
  "xds|cluster_name",
  "xds|listener_direction",
  "xds|node|id",
  "xds|node|metadata|NAME",
  "xds|node|metadata|LABELS|service.istio.io/canonical-name",
  "xds|node|metadata|LABELS",
  "xds|node|metadata|PLATFORM_VERSION",
  "xds|node|metadata|INSTANCE_IPS|0",
  "filter_state|downstream_peer|workload",
  "filter_state|downstream_peer|labels|app",
  "filter_state|downstream_peer|identity",
  "filter_state|downstream_peer|labels",
  "filter_state|downstream_peer",
  "filter_state|downstream_peer|version",
  "legacy_peer",
  "written",
  "filter_state|wasm.written",
  "plugin_root_id",
  "plugin_vm_id",
  "node",
  "cluster_name",
  "nothing|here",
  "request|nothing",
  "filter_state|custom|double",
  "filter_state|custom|list",
  "custom|double",
  "set written hello",
];

let sidecar: Sidecar;
let logged: Map<string, string>;

beforeAll(async () => {
  const { ManualClock } = await import("../../sim/host/index.ts");
  const clock = new ManualClock(START);
  sidecar = await createSidecar({
    wasm: "dist/fixtures/properties.wasm",
    rootId: "conformance",
    vmId: "vm-7",
    pluginConfig: PATHS.join("\n"),
    clock,
    node: {
      id: "sidecar~10.1.2.3~reviews-v1-abc.shop~shop.svc.cluster.local",
      metadata: {
        NAME: "reviews-v1-abc",
        PLATFORM_VERSION: 1.5,
        INSTANCE_IPS: ["10.1.2.3"],
        LABELS: { "service.istio.io/canonical-name": "reviews" },
      },
    },
  });
  const result = sidecar.stream({
    requestHeaders: [
      [":method", "POST"],
      [":path", "/api/v1?x=1#frag"],
      [":authority", "reviews:9080"],
      [":scheme", "http"],
      ["x-request-id", "rid-1"],
      ["user-agent", "ua"],
      ["x-multi", "a"],
      ["x-multi", "b"],
    ],
    requestBody: "12345",
    responseHeaders: { ":status": "503", "content-type": "text/plain" },
    responseBody: "abc",
    attributes: {
      request: { duration: duration(7_000_000), protocol: "HTTP/2" },
      response: { flags: 0x22 },
      connection: { mtls: true, uri_san_peer_certificate: "spiffe://cluster.local/ns/shop/sa/productpage", id: 42 },
      source: { address: "10.0.0.9:51000", port: 51000 },
      destination: { port: 9080 },
      upstream: { request_attempt_count: uint(2) },
      xds: { cluster_name: "inbound|9080||", listener_direction: 1 },
      filter_state: {
        downstream_peer: peerInfo({ workload: "productpage-v1", identity: "spiffe://cluster.local/ns/shop/sa/productpage", labels: { app: "productpage" } }),
        "wasm.legacy_peer": new Uint8Array([1, 2, 3]),
        custom: { double: 2.5, list: ["a", "bc"] },
      },
    },
  });
  expect(result.trapped).toBe(false);
  logged = new Map();
  for (const m of sidecar.logMessages("info")) {
    const [phase, path, ...rest] = m.split(" ");
    logged.set(`${phase} ${path}`, rest.join(" "));
  }
});
afterAll(() => sidecar.close());

const at = (phase: string, path: string) => logged.get(`${phase} ${path}`);

describe("property encodings (Envoy serializeValue)", () => {
  it("strings are raw bytes", () => {
    expect(at("log", "request|path")).toBe(`ok ${hex("/api/v1?x=1#frag")}`);
    expect(at("log", "request|url_path")).toBe(`ok ${hex("/api/v1")}`);
    expect(at("log", "request|query")).toBe(`ok ${hex("x=1")}`);
    expect(at("log", "request|method")).toBe(`ok ${hex("POST")}`);
    expect(at("log", "request|host")).toBe(`ok ${hex("reviews:9080")}`);
    expect(at("log", "request|id")).toBe(`ok ${hex("rid-1")}`);
    expect(at("log", "request|protocol")).toBe(`ok ${hex("HTTP/2")}`);
    expect(at("log", "connection|uri_san_peer_certificate")).toBe(`ok ${hex("spiffe://cluster.local/ns/shop/sa/productpage")}`);
    expect(at("log", "response|code_details")).toBe(`ok ${hex("via_upstream")}`);
  });

  it("int64, uint64 and double are 8 bytes little-endian; bool is one byte", () => {
    expect(at("log", "response|code")).toBe(`ok ${i64(503)}`);
    expect(at("log", "response|flags")).toBe(`ok ${i64(0x22)}`);
    expect(at("log", "response|grpc_status")).toBe(`ok ${i64(14)}`); // inferred from HTTP 503, as Envoy does
    expect(at("log", "connection|id")).toBe(`ok ${u64(42)}`);
    expect(at("log", "connection_id")).toBe(`ok ${u64(42)}`);
    expect(at("log", "upstream|request_attempt_count")).toBe(`ok ${u64(2)}`);
    expect(at("log", "source|port")).toBe(`ok ${i64(51000)}`);
    expect(at("log", "xds|listener_direction")).toBe(`ok ${i64(1)}`);
    expect(at("log", "connection|mtls")).toBe("ok 01");
    expect(at("log", "filter_state|custom|double")).toBe(`ok ${f64(2.5)}`);
    expect(at("log", "xds|node|metadata|PLATFORM_VERSION")).toBe(`ok ${f64(1.5)}`); // Struct numbers are doubles
  });

  it("timestamps and durations are int64 nanoseconds", () => {
    expect(at("log", "request|time")).toBe(`ok ${i64(BigInt(START) * 1_000_000n)}`);
    expect(at("log", "request|duration")).toBe(`ok ${i64(7_000_000)}`);
  });

  it("sizes follow the header maps and body bytes", () => {
    const reqHeaderBytes = [
      ":method",
      "POST",
      ":path",
      "/api/v1?x=1#frag",
      ":authority",
      "reviews:9080",
      ":scheme",
      "http",
      "x-request-id",
      "rid-1",
      "user-agent",
      "ua",
      "x-multi",
      "a",
      "x-multi",
      "b",
    ].join("").length;
    expect(at("log", "request|size")).toBe(`ok ${i64(5)}`);
    expect(at("log", "request|total_size")).toBe(`ok ${i64(5 + reqHeaderBytes)}`);
    expect(at("log", "response|size")).toBe(`ok ${i64(3)}`);
    expect(at("log", "response|total_size")).toBe(`ok ${i64(3 + ":status503content-typetext/plain".length)}`);
  });

  it("maps and lists use the pairs format; repeated headers join with a comma", () => {
    expect(at("log", "request|headers|x-multi")).toBe(`ok ${hex("a,b")}`);
    expect(at("log", "request|headers|x-absent")).toBe("err 1");
    expect(at("log", "response|headers|content-type")).toBe(`ok ${hex("text/plain")}`);
    expect(at("log", "xds|node|metadata|LABELS")).toBe(`ok ${pairs([["service.istio.io/canonical-name", "reviews"]])}`);
    expect(at("log", "filter_state|custom|list")).toBe(
      `ok ${pairs([
        ["a", ""],
        ["bc", ""],
      ])}`,
    );
    expect(at("log", "filter_state|downstream_peer|labels")).toBe(`ok ${pairs([["app", "productpage"]])}`);
    expect(at("log", "request|headers")).toMatch(/^ok 07000000/); // seven distinct header names
  });

  it("reaches node metadata, list items and Istio peer metadata by path", () => {
    expect(at("log", "xds|node|id")).toBe(`ok ${hex("sidecar~10.1.2.3~reviews-v1-abc.shop~shop.svc.cluster.local")}`);
    expect(at("log", "xds|node|metadata|NAME")).toBe(`ok ${hex("reviews-v1-abc")}`);
    expect(at("log", "xds|node|metadata|LABELS|service.istio.io/canonical-name")).toBe(`ok ${hex("reviews")}`);
    expect(at("log", "xds|node|metadata|INSTANCE_IPS|0")).toBe(`ok ${hex("10.1.2.3")}`);
    expect(at("log", "filter_state|downstream_peer|workload")).toBe(`ok ${hex("productpage-v1")}`);
    expect(at("log", "filter_state|downstream_peer|labels|app")).toBe(`ok ${hex("productpage")}`);
    expect(at("log", "filter_state|downstream_peer|identity")).toBe(`ok ${hex("spiffe://cluster.local/ns/shop/sa/productpage")}`);
    expect(at("log", "filter_state|downstream_peer|version")).toBe("err 1");
    // Istio 1.25+: a CelState Struct, which FilterStateWrapper unpacks (exprValue(arena, false)) into a
    // map, read whole as the pairs of its fields; a nested Struct is nested pairs.
    expect(at("log", "filter_state|downstream_peer")).toBe(
      `ok ${pairs([
        ["workload", "productpage-v1"],
        ["identity", "spiffe://cluster.local/ns/shop/sa/productpage"],
        ["labels", Buffer.from(pairs([["app", "productpage"]]), "hex")],
      ])}`,
    );
  });

  it("looks unknown top-level names up as filter state wasm.<name>; set_property writes there", () => {
    expect(at("log", "legacy_peer")).toBe("ok 010203");
    expect(at("set", "written")).toBe("0");
    expect(at("log", "written")).toBe(`ok ${hex("hello")}`);
    expect(at("log", "filter_state|wasm.written")).toBe(`ok ${hex("hello")}`);
  });

  it("answers plugin names, and NotFound for missing or removed names", () => {
    expect(at("log", "plugin_root_id")).toBe(`ok ${hex("conformance")}`);
    expect(at("log", "plugin_vm_id")).toBe(`ok ${hex("vm-7")}`);
    for (const p of ["node", "cluster_name", "nothing|here", "request|nothing", "custom|double"]) expect(at("log", p)).toBe("err 1");
  });

  it("knows stream values only when Envoy does", () => {
    expect(at("request", "request|duration")).toBe("err 1");
    expect(at("request", "response|code")).toBe("err 1");
    expect(at("request", "request|size")).toBe(`ok ${i64(0)}`); // no content-length, nothing received yet
    expect(at("root", "request|path")).toBe("err 1");
    expect(at("root", "xds|node|metadata|NAME")).toBe(`ok ${hex("reviews-v1-abc")}`);
  });
});

describe("legacy attribute names (Envoy before 1.33)", () => {
  it("answers node and cluster_name when enabled", async () => {
    const legacy = await createSidecar({
      wasm: "dist/fixtures/properties.wasm",
      rootId: "conformance",
      pluginConfig: "node|metadata|NAME\ncluster_name",
      legacyAttributes: true,
      node: { metadata: { NAME: "pod-1" } },
    });
    legacy.stream({ requestHeaders: { ":method": "GET", ":path": "/", ":authority": "a" }, attributes: { xds: { cluster_name: "c1" } } });
    expect(legacy.logMessages("info")).toContain(`log node|metadata|NAME ok ${hex("pod-1")}`);
    expect(legacy.logMessages("info")).toContain(`log cluster_name ok ${hex("c1")}`);
    await legacy.close();
  });
});

describe("messages read whole", () => {
  it("xds.node serializes as the envoy.config.core.v3.Node protobuf", async () => {
    const s = await createSidecar({
      wasm: "dist/fixtures/properties.wasm",
      rootId: "conformance",
      pluginConfig: "xds|node",
      node: { id: "n", cluster: "c", metadata: { A: "b" } },
    });
    // id (1) "n", cluster (2) "c", metadata (3): Struct{fields (1): entry{key (1) "A", value (2): Value{string_value (3) "b"}}}
    expect(s.logMessages("info")).toContain("root xds|node ok 0a016e1201631a0a0a080a014112031a0162");
    await s.close();
  });
});

describe("Istio 1.22-era peer objects (filter state with field support)", () => {
  it("answer field reads, and read whole as an empty map", async () => {
    const { FieldObject } = await import("../../sim/host/index.ts");
    const s = await createSidecar({
      wasm: "dist/fixtures/properties.wasm",
      rootId: "conformance",
      pluginConfig: "filter_state|downstream_peer|workload\nfilter_state|downstream_peer\nresponse|grpc_status",
    });
    s.stream({
      requestHeaders: { ":method": "POST", ":path": "/pkg.Svc/M", ":authority": "a", "content-type": "application/grpc" },
      responseHeaders: { ":status": "200", "content-type": "application/grpc" },
      responseTrailers: { "grpc-status": "5" },
      attributes: { filter_state: { downstream_peer: new FieldObject({ workload: "ratings-v1" }) } },
    });
    const lines = s.logMessages("info");
    expect(lines).toContain(`log filter_state|downstream_peer|workload ok ${hex("ratings-v1")}`);
    expect(lines).toContain("log filter_state|downstream_peer ok 00000000");
    expect(lines).toContain(`log response|grpc_status ok ${i64(5)}`); // from the trailer, not the HTTP 200
    await s.close();
  });
});

describe("Istio 1.22/1.23 FlatNode peer (a FlatBuffers CelState under wasm.downstream_peer)", () => {
  // An independent FlatBuffers reader (flatbuffers.dev "Internals"): a table starts with the signed
  // offset back to its vtable; the vtable lists each field's offset in the table (0: absent); strings,
  // vectors and sub-tables are reached by unsigned offsets from where the offset is stored.
  const field = (b: Buffer, table: number, id: number): number | undefined => {
    const vtable = table - b.readInt32LE(table);
    if (4 + 2 * id >= b.readUInt16LE(vtable)) return undefined;
    const at = b.readUInt16LE(vtable + 4 + 2 * id);
    return at === 0 ? undefined : table + at;
  };
  const deref = (b: Buffer, at: number) => at + b.readUInt32LE(at);
  const text = (b: Buffer, at: number | undefined) => {
    if (at === undefined) return undefined;
    const s = deref(b, at);
    return b.toString("utf8", s + 4, s + 4 + b.readUInt32LE(s));
  };

  it("reads whole as the raw FlatBuffer under its top-level name, and as a map through filter_state", async () => {
    const { flatNodePeer } = await import("../../sim/host/index.ts");
    const s = await createSidecar({
      wasm: "dist/fixtures/properties.wasm",
      rootId: "conformance",
      pluginConfig: "downstream_peer\ndownstream_peer|workload_name\nfilter_state|wasm.downstream_peer|namespace",
    });
    s.stream({
      requestHeaders: { ":method": "GET", ":path": "/", ":authority": "a" },
      responseHeaders: { ":status": "200" },
      attributes: {
        filter_state: {
          "wasm.downstream_peer": flatNodePeer({
            workload: "productpage-v1",
            name: "productpage-v1-abc",
            namespace: "shop",
            cluster: "east",
            service: "productpage",
            labels: { app: "productpage" },
          }),
        },
      },
    });
    const lines = s.logMessages("info");
    expect(lines).toContain(`log downstream_peer|workload_name ok ${hex("productpage-v1")}`);
    expect(lines).toContain(`log filter_state|wasm.downstream_peer|namespace ok ${hex("shop")}`);
    const whole = lines.find((l) => l.startsWith("log downstream_peer ok "));
    const b = Buffer.from(whole!.slice("log downstream_peer ok ".length), "hex");
    const root = deref(b, 0);
    // node_info.fbs: name 0, namespace 1, labels 2, workload_name 4, cluster_id 9.
    expect([0, 1, 4, 9].map((id) => text(b, field(b, root, id)))).toEqual(["productpage-v1-abc", "shop", "productpage-v1", "east"]);
    const labels = deref(b, field(b, root, 2)!);
    const entries = Array.from({ length: b.readUInt32LE(labels) }, (_, i) => {
      const kv = deref(b, labels + 4 + 4 * i);
      return [text(b, field(b, kv, 0)), text(b, field(b, kv, 1))];
    });
    // Sorted by key, as CreateVectorOfSortedTables leaves them (a binary search needs it).
    expect(entries).toEqual([
      ["app", "productpage"],
      ["service.istio.io/canonical-name", "productpage"],
    ]);
    await s.close();
  });
});
