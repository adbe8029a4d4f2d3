// Hostile property values never trap the filter: 10 000 streams whose every property the filter
// reads is randomly absent, empty, of the wrong width or type, huge (64 KiB+), or invalid UTF-8,
// with random headers and node metadata, through window flushes with a small series cap.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createSidecar, ManualClock, bytes, int, uint, bool, double, str } from "../../sim/host/index.ts";
import type { Attr, NodeInfo } from "../../sim/host/index.ts";
import { decodeSummary } from "../../shared/node.ts";
import { COLLECTOR_CLUSTER, startCollector } from "./fixtures.ts";

const wasm = new Uint8Array(readFileSync(join(import.meta.dirname, "..", "..", "dist", "meshlook.wasm")));

/** mulberry32: a tiny seeded PRNG, so a failure replays. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n: number) => Math.floor(next() * n), pick: <T>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)] };
}

type Rng = ReturnType<typeof prng>;

const HUGE = "spiffe://cluster.local/ns/x/sa/" + "a".repeat(65536);

function randomBytes(r: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = r.int(256);
  return b;
}

/** Any value in any encoding: what a confused or malicious peer/proxy could put in a property. */
function hostile(r: Rng): Attr | undefined {
  switch (r.int(14)) {
    case 0:
      return undefined;
    case 1:
      return bytes(new Uint8Array(0));
    case 2:
      return bytes(randomBytes(r, r.int(16)));
    case 3:
      return bytes(randomBytes(r, 8));
    case 4:
      return bytes(randomBytes(r, r.pick([1, 4, 7, 9, 4096])));
    case 5:
      return str(HUGE);
    case 6:
      return bytes(new Uint8Array([0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xf8, 0x88]));
    case 7:
      return int(BigInt.asIntN(64, BigInt(r.int(2 ** 31)) << BigInt(r.int(33))) * (r.next() < 0.5 ? -1n : 1n));
    case 8:
      return uint(BigInt(r.int(2 ** 31)) << 33n);
    case 9:
      return bool(r.next() < 0.5);
    case 10:
      return double(r.next() * 1e300);
    case 11:
      return { a: "b", c: int(1) };
    case 12:
      return [str("x"), int(2)];
    default:
      return str("spiffe://cluster.local/ns/n" + r.int(50) + "/sa/s");
  }
}

function hostileMap(r: Rng, keys: string[]): Record<string, Attr | undefined> {
  return Object.fromEntries(keys.map((k) => [k, hostile(r)]));
}

function stream(r: Rng) {
  const peerKeys = ["workload", "namespace", "service", "revision", "cluster"];
  const peer = r.next() < 0.5 ? hostileMap(r, peerKeys) : hostile(r);
  const legacy = { workload_name: hostile(r), namespace: hostile(r), cluster_id: hostile(r), labels: hostile(r) };
  const headerValue = () => (r.next() < 0.5 ? "application/grpc" : Buffer.from(randomBytes(r, r.int(40))).toString("latin1"));
  const requestHeaders: [string, string][] = [
    [":method", "POST"],
    [":path", "/x"],
    [":authority", r.next() < 0.1 ? "h".repeat(70000) : headerValue()],
  ];
  if (r.next() < 0.8) requestHeaders.push(["content-type", headerValue()]);
  const responseHeaders: [string, string][] | undefined =
    r.next() < 0.9
      ? [
          [":status", String(r.int(1000))],
          ["grpc-status", String(r.int(40) - 5)],
        ]
      : undefined;
  return {
    requestHeaders,
    responseHeaders,
    attributes: {
      xds: {
        listener_direction: hostile(r) ?? int(r.int(3)),
        cluster_name: r.next() < 0.3 ? str(`outbound|80||${"s".repeat(r.int(600))}`) : hostile(r),
        cluster_metadata: r.next() < 0.5 ? { filter_metadata: { istio: { services: [{ host: hostile(r) }] } } } : hostile(r),
      },
      request: hostileMap(r, ["duration", "total_size"]),
      response: hostileMap(r, ["code", "flags", "grpc_status", "total_size"]),
      connection: hostileMap(r, ["mtls", "uri_san_peer_certificate", "uri_san_local_certificate"]),
      upstream: hostileMap(r, ["uri_san_peer_certificate", "uri_san_local_certificate"]),
      metadata: r.next() < 0.5 ? { filter_metadata: { istio_authn: { "request.auth.principal": hostile(r) } } } : hostile(r),
      filter_state: { downstream_peer: peer, upstream_peer: peer, "wasm.downstream_peer": r.next() < 0.5 ? legacy : hostile(r) },
    } as any,
  };
}

function hostileNode(r: Rng): NodeInfo {
  const v = () => (r.next() < 0.2 ? "n".repeat(r.int(70000)) : Buffer.from(randomBytes(r, r.int(30))).toString("latin1"));
  return {
    id: v(),
    metadata: { WORKLOAD_NAME: v(), NAMESPACE: r.next() < 0.5 ? 42 : v(), CLUSTER_ID: v(), LABELS: r.next() < 0.5 ? { app: v() } : "not-a-map" },
  };
}

describe("filter under hostile properties", () => {
  it("never traps over 10 000 random streams, keeps every stream untouched and counts each once", async () => {
    const r = prng(0xfeed);
    const collector = await startCollector();
    let streams = 0;
    for (const legacyAttributes of [false, true]) {
      const clock = new ManualClock();
      const sidecar = await createSidecar({
        wasm,
        rootId: "meshlook",
        clock,
        legacyAttributes,
        node: hostileNode(r),
        workers: 2,
        canary: false,
        pluginConfig: JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, max_series: 50, flush_interval_s: 1, end_user_principal: true }),
        env: { MESHLOOK_INGEST_TOKEN: "t" },
        clusters: { [COLLECTOR_CLUSTER]: collector.address },
      });
      for (let i = 0; i < 5000; i++, streams++) {
        const input = stream(r);
        const result = sidecar.stream(input);
        expect(result.trapped).toBe(false);
        expect(Object.values(result.statuses).every((s) => s === 0)).toBe(true);
        expect(result.requestHeaders).toEqual(input.requestHeaders);
        if (i % 100 === 99) {
          clock.advance(1000);
          await sidecar.settle();
        }
      }
      clock.advance(5000);
      await sidecar.settle();
      expect(sidecar.traps).toEqual([]);
      expect(sidecar.healthy).toEqual([true, true]);
      await sidecar.close();
    }
    expect(streams).toBe(10_000);
    await collector.close();
    // Whatever the properties held, every summary decodes and every stream is counted exactly once
    // (both directions are reported, so no stream is skipped).
    let counted = 0;
    for (const { body } of collector.bodies) {
      const d = decodeSummary(body);
      expect(d.ok && d.summary.series.length).toBeTruthy();
      if (d.ok) counted += d.summary.series.reduce((a, x) => a + x.requests, 0);
    }
    expect(counted).toBe(streams);
  });
});
