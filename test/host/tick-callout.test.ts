// Ticks on the controlled clock and real HTTP callouts against a loopback server, through the
// conformance filter test/fixtures/filters/tick_callout.ts.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSidecar, ManualClock, type Sidecar } from "../../sim/host/index.ts";

const CLUSTER = "outbound|8080||collector.meshlook.svc.cluster.local";
const START = Date.UTC(2026, 0, 1);
let server: http.Server;
let port: number;
const received: { method?: string; url?: string; host?: string; tick?: string; body: string }[] = [];
/** How the server treats the next request: answer, hang, or send headers then drop the connection. */
let mode: "answer" | "hang" | "half" = "answer";

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push({ method: req.method, url: req.url, host: req.headers.host, tick: req.headers["x-tick"] as string, body });
      if (mode === "answer") {
        res.setHeader("x-server", "loopback");
        res.end(`got ${body}`);
      } else if (mode === "half") {
        res.writeHead(200, { "content-length": "100" });
        res.write("partial");
        setTimeout(() => res.socket?.destroy(), 10);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

async function start(opts: { period?: number; timeout?: number; target?: string; workers?: number; callCluster?: string } = {}) {
  const clock = new ManualClock(START);
  const sidecar = await createSidecar({
    wasm: "dist/fixtures/tick_callout.wasm",
    rootId: "conformance",
    pluginConfig: [opts.callCluster ?? CLUSTER, String(opts.period ?? 1000), String(opts.timeout ?? 5000), "collector.meshlook"].join("\n"),
    clusters: { [CLUSTER]: opts.target ?? `127.0.0.1:${port}` },
    env: { CONFORMANCE_ENV: "from-vm-config" },
    workers: opts.workers ?? 1,
    clock,
    canary: false,
  });
  return { clock, sidecar };
}
const lines = (s: Sidecar, prefix: string) => s.logMessages("info").filter((l) => l.startsWith(prefix));

describe("ticks", () => {
  it("fire once per period on the controlled clock, with the clock's time", async () => {
    mode = "answer";
    const { clock, sidecar } = await start({ period: 1000 });
    clock.advance(999);
    expect(lines(sidecar, "tick")).toEqual([]);
    clock.advance(1);
    clock.advance(2500);
    const ns = (ms: number) => (BigInt(START + ms) * 1_000_000n).toString();
    expect(lines(sidecar, "tick")).toEqual([`tick n=1 now=${ns(1000)}`, `tick n=2 now=${ns(2000)}`, `tick n=3 now=${ns(3000)}`]);
    expect(sidecar.metrics.get("conformance_ticks")).toMatchObject({ type: "counter", value: 3n });
    await sidecar.settle();
    await sidecar.close();
  });

  it("run per worker VM, each with its own timer, sharing one metric", async () => {
    const { clock, sidecar } = await start({ period: 500, workers: 3 });
    clock.advance(1000);
    expect(sidecar.logs.filter((e) => e.message.startsWith("tick")).map((e) => e.worker)).toEqual([0, 1, 2, 0, 1, 2]);
    expect(sidecar.metrics.get("conformance_ticks")!.value).toBe(6n);
    await sidecar.settle();
    await sidecar.close();
  });

  it("pass the VM environment variables through WASI", async () => {
    const { sidecar } = await start();
    expect(sidecar.logMessages("info")).toContain("env CONFORMANCE_ENV=from-vm-config");
    await sidecar.close();
  });
});

describe("HTTP callouts", () => {
  it("send a real request and deliver the response to the root context", async () => {
    mode = "answer";
    received.length = 0;
    const { clock, sidecar } = await start();
    clock.advance(1000);
    expect(lines(sidecar, "call")).toEqual(["call n=1 result=0"]);
    await sidecar.settle();
    expect(received).toEqual([{ method: "POST", url: "/tick/1", host: "collector.meshlook", tick: "1", body: "tick-1" }]);
    const [resp] = lines(sidecar, "response");
    expect(resp).toMatch(/^response headers=\d+ body_size=10 status=200 body=got tick-1$/);
    expect(sidecar.callouts[0]).toMatchObject({ cluster: CLUSTER, timeoutMs: 5000, outcome: { status: 200 } });
    await sidecar.close();
  });

  it("refuse an unknown cluster with BadArgument", async () => {
    const { clock, sidecar } = await start({ callCluster: "outbound|9||unknown.svc.cluster.local" });
    clock.advance(1000);
    expect(lines(sidecar, "call")).toEqual(["call n=1 result=2"]);
    await sidecar.close();
  });

  it("deliver a connection failure as Envoy's 503 local reply", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const { clock, sidecar } = await start({ target: `127.0.0.1:${deadPort}` });
    clock.advance(1000);
    await sidecar.settle();
    const body =
      "upstream connect error or disconnect/reset before headers. " +
      "reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused";
    expect(lines(sidecar, "response")).toEqual([`response headers=3 body_size=${body.length} status=503 body=${body}`]);
    await sidecar.close();
  });

  it("time out on the controlled clock with Envoy's 504", async () => {
    mode = "hang";
    received.length = 0;
    const { clock, sidecar } = await start({ period: 1000, timeout: 300 });
    clock.advance(1000);
    while (received.length === 0) await new Promise((r) => setTimeout(r, 5));
    expect(lines(sidecar, "response")).toEqual([]);
    clock.advance(299);
    await new Promise((r) => setTimeout(r, 20));
    expect(lines(sidecar, "response")).toEqual([]);
    clock.advance(1);
    await sidecar.settle();
    expect(lines(sidecar, "response")).toEqual(["response headers=3 body_size=24 status=504 body=upstream request timeout"]);
    await sidecar.close();
  });

  it("deliver a reset after the response headers as zero headers", async () => {
    mode = "half";
    const { clock, sidecar } = await start();
    clock.advance(1000);
    await sidecar.settle();
    expect(lines(sidecar, "response")).toEqual(["response headers=0 body_size=0 status= body= get_status=11"]);
    expect(sidecar.callouts[0].outcome).toEqual({ status: null, body: new Uint8Array(0) });
    await sidecar.close();
  });
});
