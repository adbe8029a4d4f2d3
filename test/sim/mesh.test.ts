import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeSummary, type DecodedSummary } from "../../shared/node.ts";
import { DIMENSIONS } from "../../shared/schema.ts";
import { Mesh } from "../../sim/mesh.ts";
import { ManualClock, RealClock } from "../../sim/host/index.ts";
import { bookinfo, expectedSeries, GroundTruth, mixed, TrafficGenerator, type Reporter } from "../../sim/traffic/index.ts";
import { readSeries } from "./istio-reading.ts";

/** Property paths the Istio-style reading needs, with the type each value has in Envoy. */
const PATHS: Record<string, "string" | "int" | "bool"> = {
  "xds|listener_direction": "int",
  "xds|node|metadata|WORKLOAD_NAME": "string",
  "xds|node|metadata|NAMESPACE": "string",
  "xds|node|metadata|CLUSTER_ID": "string",
  "xds|node|metadata|LABELS|service.istio.io/canonical-name": "string",
  "xds|node|metadata|LABELS|service.istio.io/canonical-revision": "string",
  "xds|cluster_metadata|filter_metadata|istio|services|0|host": "string",
  "connection|mtls": "bool",
  "connection|uri_san_peer_certificate": "string",
  "connection|uri_san_local_certificate": "string",
  "upstream|uri_san_peer_certificate": "string",
  "upstream|uri_san_local_certificate": "string",
  "request|headers|content-type": "string",
  "request|duration": "int",
  "request|time": "int",
  "request|total_size": "int",
  "response|total_size": "int",
  "response|code": "int",
  "response|grpc_status": "int",
  "response|flags": "int",
  "metadata|filter_metadata|istio_authn|request.auth.principal": "string",
  "metadata|filter_metadata|envoy.filters.http.jwt_authn|payload|iss": "string",
  "metadata|filter_metadata|envoy.filters.http.jwt_authn|payload|sub": "string",
};
for (const peer of ["downstream_peer", "upstream_peer"]) {
  for (const f of ["workload", "namespace", "service", "revision", "cluster"]) PATHS[`filter_state|${peer}|${f}`] = "string";
}

function decode(hex: string, type: "string" | "int" | "bool"): string | bigint | boolean {
  const bytes = Buffer.from(hex, "hex");
  if (type === "string") return bytes.toString("utf8");
  if (type === "bool") return bytes.length === 1 && bytes[0] === 1;
  if (bytes.length !== 8) throw new Error(`int property with ${bytes.length} bytes`);
  return bytes.readBigInt64LE(0);
}

describe("Mesh with the properties conformance filter", () => {
  it("serves every attribute the ground truth relies on, with Envoy's encodings", async () => {
    const model = mixed();
    const lines: string[] = [];
    const mesh = await Mesh.create({
      model,
      wasm: "dist/fixtures/properties.wasm",
      rootId: "conformance",
      pluginConfig: Object.keys(PATHS).join("\n"),
      workers: 2,
      canary: false,
      onLog: (e) => {
        if (e.message.startsWith("log ")) lines.push(e.message);
      },
    });
    try {
      const gen = new TrafficGenerator(model, { seed: 99, requestsPerSecond: 2000 });
      const clock = mesh.clock as ManualClock;
      const n = Object.keys(PATHS).length;
      const mismatches: string[] = [];
      let streams = 0;
      for (let i = 0; i < 1500; i++) {
        const r = gen.next();
        clock.advanceTo(Number(r.endNs / 1_000_000n));
        lines.length = 0;
        mesh.deliver(r);
        const reporters: Reporter[] = [];
        if (r.sourceReports) reporters.push("source");
        if (r.destinationReports) reporters.push("destination");
        expect(lines.length).toBe(n * reporters.length);
        reporters.forEach((reporter, k) => {
          const values = new Map<string, string | bigint | boolean>();
          for (const line of lines.slice(k * n, (k + 1) * n)) {
            const [, path, status, hex] = line.split(" ");
            if (status === "ok") values.set(path, decode(hex ?? "", PATHS[path]));
          }
          const get = (...p: string[]) => values.get(p.join("|")) as string | bigint | boolean | undefined;
          const header = (name: string) => get("request", "headers", name) as string | undefined;
          const got = readSeries(get, header, true);
          const want = expectedSeries(r, reporter, { endUserPrincipal: true });
          const dur = BigInt(reporter === "source" ? r.sourceDurationNs : r.destinationDurationNs);
          const timing =
            get("request", "duration") === dur &&
            get("request", "time") === r.endNs - dur &&
            get("request", "total_size") === BigInt(r.requestHeaderBytes + r.requestBodyBytes) &&
            get("response", "total_size") === BigInt(r.responseHeaderBytes + r.responseBodyBytes);
          if ((JSON.stringify(got) !== JSON.stringify(want) || !timing) && mismatches.length < 3) {
            mismatches.push(`${r.seq}/${reporter}: ${JSON.stringify(got)} vs ${JSON.stringify(want)} timing ${timing}`);
          }
          streams++;
        });
      }
      expect(mismatches).toEqual([]);
      expect(streams).toBeGreaterThan(2000);
    } finally {
      await mesh.close();
    }
  });
});

describe("Mesh routing", () => {
  it("keeps a client's requests on one worker with connection routing, and spreads them round-robin otherwise", async () => {
    const model = bookinfo();
    const workersBySidecarAndClient = async (routing: "connection" | "round-robin") => {
      let seen: number[] = [];
      const mesh = await Mesh.create({
        model,
        wasm: "dist/fixtures/properties.wasm",
        rootId: "conformance",
        pluginConfig: "xds|listener_direction",
        workers: 3,
        canary: false,
        routing,
        onLog: (e) => {
          if (e.message.startsWith("log ") && typeof e.worker === "number") seen.push(e.worker);
        },
      });
      const workers = new Map<string, Set<number>>();
      try {
        const gen = new TrafficGenerator(model, { seed: 8 });
        for (const r of gen.take(600)) {
          seen = [];
          mesh.deliver(r);
          const sides = [r.sourceReports && "source", r.destinationReports && "destination"].filter(Boolean);
          sides.forEach((side, k) => {
            const key = side === "source" ? `out:${r.source.id}` : `in:${r.destination.id}<-${r.source.id}`;
            workers.set(key, (workers.get(key) ?? new Set()).add(seen[k]));
          });
        }
      } finally {
        await mesh.close();
      }
      return [...workers.values()].map((s) => s.size);
    };
    expect(new Set(await workersBySidecarAndClient("connection"))).toEqual(new Set([1]));
    expect(Math.max(...(await workersBySidecarAndClient("round-robin")))).toBe(3);
  });
});

describe("Mesh with the meshlook filter", () => {
  const bodies: Uint8Array[] = [];
  let server: http.Server;
  let port = 0;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        bodies.push(new Uint8Array(Buffer.concat(chunks)));
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it("delivers every request at its time, ticks the filter and acknowledges every summary; totals match the truth per series and minute", async () => {
    const cluster = "outbound|8080||meshlook-collector.meshlook.svc.cluster.local";
    const model = bookinfo({ durationS: 90 });
    const start = Date.UTC(2026, 4, 1, 9, 0, 0);
    const mesh = await Mesh.create({
      model,
      wasm: "dist/meshlook.wasm",
      pluginConfig: { collector: { cluster }, flush_interval_s: 10, end_user_principal: true },
      clusters: { [cluster]: `127.0.0.1:${port}` },
      env: { MESHLOOK_INGEST_TOKEN: "test-token" },
      clock: new ManualClock(start),
      workers: 2,
    });
    try {
      // Connections carry several requests, so the filter's per-connection facts are reused, as in a mesh.
      const gen = new TrafficGenerator(model, { seed: 2024, requestsPerSecond: 150, startTimeMs: start, requestsPerConnection: 8 });
      const truth = new GroundTruth({ endUserPrincipal: true });
      const steps: number[] = [];
      const done = await mesh.run(gen, { durationS: 90, truth, onStep: (p) => steps.push(p.requests) });
      expect(done.requests).toBe(gen.generated - 1); // one request was pulled past the limit and held back
      expect(done.streams).toBe(truth.observations);
      expect(steps.length).toBeGreaterThanOrEqual(89);
      const drained = await mesh.drain(15);
      expect(drained.trapped + drained.skipped).toBe(0);
      expect(drained.callouts).toBeGreaterThan(0);
      expect(drained.acknowledged).toBe(drained.callouts);
      expect(bodies.length).toBe(drained.callouts);

      const summaries: DecodedSummary[] = bodies.map((b) => {
        const d = decodeSummary(b);
        if (!d.ok) throw new Error(`undecodable summary: ${d.reason}`);
        return d.summary;
      });
      // Per (minute of the window, series): the filter's counts against the generator's.
      const got = new Map<string, number[]>();
      for (const s of summaries) {
        const minute = Math.floor((s.windowEndMs - 1) / 60_000) * 60_000;
        for (const series of s.series) {
          const key = `${minute}|${DIMENSIONS.map((d) => series.dimensions[d]).join("\u0001")}`;
          const acc = got.get(key) ?? [0, 0, 0, 0, 0, Infinity, -Infinity];
          acc[0] += series.requests;
          acc[1] += series.errors;
          acc[2] += series.requestBytes;
          acc[3] += series.responseBytes;
          acc[4] += series.latencySumUs;
          acc[5] = Math.min(acc[5], series.latencyMinUs);
          acc[6] = Math.max(acc[6], series.latencyMaxUs);
          got.set(key, acc);
        }
      }
      const want = new Map<string, number[]>();
      for (const row of truth.rows()) {
        const st = row.stats;
        want.set(`${row.minuteMs}|${row.key}`, [st.requests, st.errors, st.requestBytes, st.responseBytes, st.latencySumUs, st.latencyMinUs, st.latencyMaxUs]);
      }
      const diff = [...new Set([...got.keys(), ...want.keys()])]
        .filter((k) => JSON.stringify(got.get(k)) !== JSON.stringify(want.get(k)))
        .slice(0, 3)
        .map((k) => `${k.replaceAll("\u0001", " ")}: filter ${got.get(k)} truth ${want.get(k)}`);
      expect(diff).toEqual([]);
      expect(truth.minuteList().length).toBe(2);
    } finally {
      await mesh.close();
    }
  });
});

describe("Mesh on the wall clock", () => {
  it("delivers each request once its end time has come and records exactly what it delivered", async () => {
    const model = bookinfo();
    const mesh = await Mesh.create({
      model,
      wasm: "dist/fixtures/noop.wasm",
      rootId: "noop",
      pluginConfig: "{}",
      clock: new RealClock(),
      canary: false,
    });
    try {
      const gen = new TrafficGenerator(model, { seed: 3, requestsPerSecond: 400, startTimeMs: Date.now() });
      const truth = new GroundTruth();
      const done = await mesh.run(gen, { durationS: 0.4, truth, stepMs: 100 });
      expect(done.requests).toBeGreaterThan(50);
      expect(done.streams).toBe(truth.observations);
      // Never ahead of time: the last delivered request had ended by the time the run returned.
      expect(Date.now()).toBeGreaterThanOrEqual(gen.startTimeMs + 0.4 * 0.9 * 1000);
      expect(done.trapped + done.skipped).toBe(0);
    } finally {
      await mesh.close();
    }
  });
});
