// The per-request read path where a word-at-a-time read or a per-connection cache could go wrong:
// values whose neighbouring bytes differ from request to request (hashing and comparing must stop at
// the value's length), a keep-alive connection whose requests go to different upstream hosts (cached
// upstream facts must never cross hosts), and a long seeded run with many distinct values and
// reconfigurations, counted against the requests sent. Both builds: the debug one checks every
// reference count.
import { describe, expect, it } from "vitest";
import { ManualClock, createSidecar, duration, peerInfo, uint, type PeerInfo, type StreamInput } from "../../sim/host/index.ts";
import type { DecodedSeries } from "../../shared/node.ts";
import { mulberry32 } from "../shared/random.ts";
import { COLLECTOR_CLUSTER, DEBUG_WASM, LOCAL_NODE, RELEASE_WASM, decodeBodies, idle, loadModule, startCollector } from "./fixtures.ts";

const BUILDS = [
  ["release", RELEASE_WASM],
  ["debug", DEBUG_WASM],
] as const;
const SELF = "spiffe://cluster.local/ns/shop/sa/reviews";

/**
 * Streams each batch through one worker, the filter configured with `configs[i]` (plus the collector)
 * before batch i and a window closed after it; every series delivered.
 */
async function deliver(wasm: string, batches: StreamInput[][], configs: object[]): Promise<DecodedSeries[]> {
  const collector = await startCollector();
  const clock = new ManualClock();
  const plugin = (c: object) => JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, flush_interval_s: 1, ...c });
  const sidecar = await createSidecar({
    wasm: await loadModule(wasm),
    rootId: "meshlook",
    clock,
    canary: false,
    configDelivery: "ecds",
    node: LOCAL_NODE,
    pluginConfig: plugin(configs[0]),
    env: { MESHLOOK_INGEST_TOKEN: "t" },
    clusters: { [COLLECTOR_CLUSTER]: collector.address },
  });
  for (let i = 0; i < batches.length; i++) {
    if (i > 0) expect(sidecar.configure(plugin(configs[i]))).toBe(true);
    for (const input of batches[i]) sidecar.stream(input);
    await idle(sidecar, clock, 2);
  }
  await sidecar.close();
  await collector.close();
  expect(sidecar.traps.map((t) => `${t.worker}: ${t.message}`)).toEqual([]);
  return decodeBodies(collector.bodies).flatMap((s) => s.series);
}

/** The sum of `weight(x)` per `key(x)`. */
function sumBy<T>(xs: readonly T[], key: (x: T) => string, weight: (x: T) => number): Map<string, number> {
  const out = new Map<string, number>();
  for (const x of xs) out.set(key(x), (out.get(key(x)) ?? 0) + weight(x));
  return out;
}

/** Requests per `key(series)`, summed over windows. */
const countBy = (series: DecodedSeries[], key: (s: DecodedSeries) => string) => sumBy(series, key, (s) => s.requests);

/** How often each key was sent. */
const tally = (keys: string[]) =>
  sumBy(
    keys,
    (k) => k,
    () => 1,
  );

function inboundOn(connection: number, principal: string, peer: PeerInfo): StreamInput {
  return {
    requestHeaders: [
      [":method", "GET"],
      [":path", "/r"],
      [":authority", "reviews.shop.svc.cluster.local:9080"],
    ],
    responseHeaders: [[":status", "200"]],
    attributes: {
      request: { duration: duration(2_000_000) },
      xds: { listener_direction: 1, cluster_name: "inbound|9080||" },
      connection: { id: uint(connection), mtls: true, uri_san_peer_certificate: principal, uri_san_local_certificate: SELF },
      filter_state: { downstream_peer: peerInfo(peer) },
    },
  };
}

interface Upstream {
  address: string;
  principal: string;
  peer: PeerInfo;
}

function outboundOn(connection: number, host: Upstream): StreamInput {
  return {
    requestHeaders: [
      [":method", "GET"],
      [":path", "/ratings/1"],
      [":authority", `${host.peer.service}.shop.svc.cluster.local:9080`],
    ],
    responseHeaders: [[":status", "200"]],
    attributes: {
      request: { duration: duration(3_000_000) },
      xds: { listener_direction: 2, cluster_name: `outbound|9080||${host.peer.service}.shop.svc.cluster.local` },
      connection: { id: uint(connection), mtls: false },
      upstream: { address: host.address, uri_san_peer_certificate: host.principal, uri_san_local_certificate: SELF },
      filter_state: { upstream_peer: peerInfo(host.peer) },
    },
  };
}

describe("values read word by word", () => {
  // Lengths 1..40 cover every tail length (0..7 bytes after the last whole word) several times over;
  // each value also comes in two near twins, differing from it only in its last byte or only in its
  // first, so a compare or hash that skipped either end would merge them.
  const values: string[] = [];
  const text = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMN";
  for (let len = 1; len <= 40; len++) {
    const v = text.slice(0, len);
    values.push(v, v.slice(0, -1) + "~", "~" + v.slice(1));
  }

  for (const [build, wasm] of BUILDS) {
    it(`${build} build: one series per value, whatever bytes follow it`, async () => {
      const r = mulberry32(0x7a11);
      // Istio's peer Struct fields besides the five labels, so the bytes after a label (the next key) and
      // after a whole Struct in the filter's receive buffer differ between requests of the same value;
      // `version` and `identity` have the lengths of `service` and `workload`.
      const extras = ["version", "identity", "app", "name", "type", "region", "availability_zone"];
      const sent: string[] = [];
      const inputs: StreamInput[] = [];
      for (let i = 0; i < 3000; i++) {
        const v = values[Math.floor(r() * values.length)];
        const fields: [string, string][] = [
          ["workload", v],
          ["namespace", "shop"],
          ["service", v.slice(0, 1 + Math.floor(r() * v.length))],
          ["cluster", "east"],
          ...extras.filter(() => r() < 0.5).map((k): [string, string] => [k, "x".repeat(Math.floor(r() * 300))]),
        ];
        // Fisher–Yates: any field may come last, its value ending the Struct.
        for (let j = fields.length - 1; j > 0; j--) {
          const k = Math.floor(r() * (j + 1));
          [fields[j], fields[k]] = [fields[k], fields[j]];
        }
        const principal = `spiffe://cluster.local/ns/shop/sa/${v}`;
        // A new connection per request: every fact is read, none restored from the connection cache.
        inputs.push(inboundOn(100 + i, principal, Object.fromEntries(fields) as PeerInfo));
        sent.push(`${v}|${fields.find(([k]) => k === "service")![1]}|${principal}`);
      }
      const series = await deliver(wasm, [inputs], [{}]);
      const key = (s: DecodedSeries) => `${s.dimensions.source_workload}|${s.dimensions.source_canonical_service}|${s.dimensions.source_principal}`;
      const want = tally(sent);
      expect(Object.fromEntries(countBy(series, key))).toEqual(Object.fromEntries(want));
      // One series per value: a value hashed or compared with bytes past its end would be two.
      expect(series.length).toBe(want.size);
    });
  }
});

describe("a downstream connection whose requests go to different upstream hosts", () => {
  // HTTP/1.1 keep-alive from the app: each request is routed on its own (Host header, retries to another
  // endpoint), so one downstream connection reaches several upstream hosts. Envoy's upstream.address and
  // Istio's upstream_peer both describe the request's last attempt (the host that answered).
  // Pod addresses two characters apart, as a mesh has many: under a hash that carried a difference in
  // a word's top byte only upwards, 10.0.0.5:8060 and 10.0.0.9:8000 (and :8061, :8001) shared a hash,
  // so the second host's requests got the first's cached facts.
  const addresses = ["10.0.0.5:8060", "10.0.0.9:8000", "10.0.0.5:8061", "10.0.0.9:8001"];
  const hosts: Upstream[] = ["a", "b", "c", "d"].map((h, i) => ({
    address: addresses[i],
    principal: `spiffe://cluster.local/ns/shop/sa/ratings-${h}`,
    peer: { workload: `ratings-${h}`, namespace: "shop", service: i < 2 ? "ratings" : "details", revision: h, cluster: "east" },
  }));

  for (const [build, wasm] of BUILDS) {
    it(`${build} build: each request carries the identity of its own upstream host`, async () => {
      const r = mulberry32(0xc0ffee);
      const sent: string[] = [];
      const inputs: StreamInput[] = [];
      for (let i = 0; i < 2000; i++) {
        // Five connections, each carrying many requests: the first request of each, then hosts revisited.
        const host = hosts[Math.floor(r() * hosts.length)];
        inputs.push(outboundOn(11 + Math.floor(r() * 5), host));
        sent.push(`${host.peer.workload}|${host.peer.revision}|${host.principal}`);
      }
      const series = await deliver(wasm, [inputs], [{}]);
      const key = (s: DecodedSeries) => `${s.dimensions.destination_workload}|${s.dimensions.destination_canonical_revision}|${s.dimensions.destination_principal}`;
      expect(Object.fromEntries(countBy(series, key))).toEqual(Object.fromEntries(tally(sent)));
    });
  }
});

describe("many distinct values across reconfigurations", () => {
  // Random printable and multi-byte values of every length up to 80, callers keeping their connection
  // for a while (facts restored from the connection cache) or opening new ones, outbound requests to
  // hosts that change per request; the dimensions change with each reconfiguration.
  const configs = [
    {},
    { dimensions: ["source_workload", "destination_workload", "source_principal", "response_code"] },
    { max_series: 3000 },
    { dimensions: ["destination_workload", "source_workload"] },
    {},
    { max_series: 1500 },
  ];

  function randomValue(r: () => number): string {
    const alphabet = "abcdefghijklmnopqrstuvwxyz-0123456789.é√😀";
    const chars = Array.from(alphabet);
    let s = "";
    const n = 1 + Math.floor(r() * 80);
    while (Buffer.byteLength(s) < n) s += chars[Math.floor(r() * chars.length)];
    return s;
  }

  for (const [build, wasm] of BUILDS) {
    it(`${build} build: no trap, and every request counted under its own values`, async () => {
      const r = mulberry32(0x5eed);
      const sent: string[] = [];
      const batches: StreamInput[][] = [];
      let connection = 1000;
      for (let b = 0; b < configs.length; b++) {
        const callers = Array.from({ length: 300 }, () => {
          const workload = randomValue(r);
          return { workload, principal: `spiffe://cluster.local/ns/x/sa/${randomValue(r)}`, connection: connection++ };
        });
        const hosts: Upstream[] = Array.from({ length: 40 }, (_, i) => ({
          address: `10.2.${b}.${i}:${8000 + Math.floor(r() * 1000)}`,
          principal: `spiffe://cluster.local/ns/y/sa/${randomValue(r)}`,
          peer: { workload: randomValue(r), namespace: "y", service: randomValue(r), revision: "v1", cluster: "east" },
        }));
        const batch: StreamInput[] = [];
        for (let i = 0; i < 1500; i++) {
          if (r() < 0.6) {
            const c = callers[Math.floor(r() * callers.length)];
            if (r() < 0.2) c.connection = connection++;
            batch.push(inboundOn(c.connection, c.principal, { workload: c.workload, namespace: "x", service: "s", revision: "v1", cluster: "east" }));
            sent.push(`destination|${c.workload}|${LOCAL_NODE.metadata.WORKLOAD_NAME}`);
          } else {
            const h = hosts[Math.floor(r() * hosts.length)];
            batch.push(outboundOn(1 + Math.floor(r() * 30), h));
            sent.push(`source|${LOCAL_NODE.metadata.WORKLOAD_NAME}|${h.peer.workload}`);
          }
        }
        batches.push(batch);
      }
      const series = await deliver(wasm, batches, configs);
      expect(series.some((s) => s.dimensions.source_workload === "__overflow__")).toBe(false);
      const key = (s: DecodedSeries) => `${s.dimensions.reporter}|${s.dimensions.source_workload}|${s.dimensions.destination_workload}`;
      expect(Object.fromEntries(countBy(series, key))).toEqual(Object.fromEntries(tally(sent)));
    }, 120_000);
  }
});
