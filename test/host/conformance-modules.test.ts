// Modules built outside our AssemblyScript toolchain (C against the raw ABI, test/host/modules/, rebuilt
// by its build.sh) load and behave in the host as Envoy would run them.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSidecar, ManualClock } from "../../sim/host/index.ts";

const dir = "test/host/modules";
const request = { requestHeaders: { ":method": "GET", ":path": "/", ":authority": "svc" }, responseHeaders: { ":status": "200" } };

describe("start functions and WASI", () => {
  it("runs a wasi-libc reactor whose _initialize reads the monotonic clock: never 0, the steady clock since boot", async () => {
    // Envoy answers WASI clock_time_get(monotonic) with Context::getMonotonicTimeNanoseconds, the
    // dispatcher's steady clock (cpp-host src/exports.cc wasi_unstable_clock_time_get; Envoy
    // source/extensions/common/wasm/context.cc). Go's wasip1 runtime traps on 0 ("nanotime returning zero").
    const clock = new ManualClock(Date.UTC(2026, 2, 1));
    const sidecar = await createSidecar({ wasm: `${dir}/reactor_clock.wasm`, clock, canary: false });
    expect(sidecar.logMessages("info")).toEqual(["runtime started", `monotonic_at_start=${clock.monotonicNs()} realtime_at_start=${clock.nowNs()}`]);
    expect(clock.monotonicNs() > 0n).toBe(true);
    await sidecar.close();
  });

  it("runs a wasi-libc command: _start (main) before the plugin starts, libc's malloc for values", async () => {
    // cpp-host WasmBase::startVm: _initialize (+ main) when exported, else _start.
    const sidecar = await createSidecar({ wasm: `${dir}/malloc_start.wasm`, canary: false });
    sidecar.stream(request);
    expect(sidecar.logMessages("info")).toEqual(["main ran", "configured after main", "malloc ok"]);
    await sidecar.close();
  });

  it("links env.emscripten_notify_memory_growth and the wasi_unstable module", async () => {
    // cpp-host WasmBase::registerCallbacks registers every WASI function under wasi_unstable and
    // wasi_snapshot_preview1, and emscripten_notify_memory_growth as a no-op.
    const sidecar = await createSidecar({ wasm: `${dir}/emscripten_wasi_unstable.wasm`, canary: false });
    expect(sidecar.logs.map((e) => [e.source, e.message])).toEqual([
      ["stdout", "hello from wasi_unstable"],
      ["proxy_log", "fd_write=0 written=25 clock_time_get=0 monotonic>0"],
    ]);
    await sidecar.close();
  });
});

describe("ABI 0.1.0", () => {
  it("loads and runs: proxy_get_configuration, two-argument header callbacks, clear_route_cache, continue_request", async () => {
    // cpp-host: bytecode_util.cc getAbiVersion recognises proxy_abi_version_0_1_0; wasm.cc registerCallbacks
    // links get_configuration/continue_request/continue_response/clear_route_cache for it; getFunctions
    // takes on_request_headers/on_response_headers with two arguments (_abi_01). Envoy's
    // Context::getConfiguration gives the plugin configuration during configure.
    const sidecar = await createSidecar({ wasm: `${dir}/abi_010.wasm`, pluginConfig: "legacy", canary: false });
    const r = sidecar.stream(request);
    expect(r.requestHeaders).toContainEqual(["x-abi", "legacy"]);
    expect(r.responseHeaders).toContainEqual(["x-abi", "0.1.0"]);
    expect(sidecar.logMessages("info")).toEqual(["configured: legacy", "clear_route_cache=0 continue_request=0"]);
    await sidecar.close();
  });
});

describe("a filter that holds a request for a callout", () => {
  const CLUSTER = "outbound|9000||auth.shop.svc.cluster.local";
  let server: http.Server;
  let port: number;
  let answer = 200;
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.statusCode = answer;
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  const start = () => createSidecar({ wasm: `${dir}/pause_callout.wasm`, pluginConfig: CLUSTER, clusters: { [CLUSTER]: `127.0.0.1:${port}` }, canary: false });

  it("is held (status 4, StopAllIterationAndWatermark) until proxy_continue_stream, then runs on", async () => {
    // cpp-host context.cc convertVmCallResultToFilterHeadersStatus turns StopIteration from a header
    // callback into StopAllIterationAndWatermark; Envoy Context::continueStream(Request) calls
    // continueDecoding after the call into the VM returns.
    answer = 200;
    const sidecar = await start();
    const r = sidecar.stream(request);
    expect(r.statuses.requestHeaders).toBe(4);
    expect(r.held).toBe(true);
    expect(r.responseHeaders).toEqual([]);
    expect(sidecar.logMessages("info")).toEqual([]); // nothing past the request headers yet
    const done = await r.done!;
    expect(done).toBe(r);
    expect(r.held).toBe(false);
    expect(r.requestHeaders).toContainEqual(["x-auth", "ok"]);
    expect(r.responseHeaders).toEqual([[":status", "200"]]);
    expect(r.localReply).toBeNull();
    expect(sidecar.logMessages("info")).toEqual(["set_effective_context=0 continue_stream=0", "response_headers 2", "log", "delete"]);
    await sidecar.close();
  });

  it("answers with the filter's local reply when it replies instead of continuing", async () => {
    // Envoy Context::sendLocalResponse → sendLocalReply after the VM call; the reply runs through the
    // filter's response callbacks like any response.
    answer = 503;
    const sidecar = await start();
    const r = sidecar.stream(request);
    expect(r.held).toBe(true);
    await sidecar.settle();
    expect(r.held).toBe(false);
    expect(r.localReply).toMatchObject({ code: 403, details: "auth_denied" });
    expect(new TextDecoder().decode(r.responseBody)).toBe("denied\n");
    expect(r.responseHeaders[0]).toEqual([":status", "403"]);
    expect(r.requestHeaders).not.toContainEqual(["x-auth", "ok"]);
    expect(sidecar.logMessages("info")).toEqual(["set_effective_context=0 send_local_response=0", "response_headers 2", "log", "delete"]);
    await sidecar.close();
  });

  it("a reconfiguration drains: the replaced root context is shut down only once its held stream ended", async () => {
    // Envoy: a stream keeps the filter config (and PluginHandle) it started with; the replaced handle's
    // destructor (cpp-host PluginHandleBase: startShutdown(plugin key)) runs when the last holder goes.
    answer = 200;
    const OTHER = "outbound|9001||auth.shop.svc.cluster.local";
    const sidecar = await createSidecar({
      wasm: `${dir}/pause_callout.wasm`,
      pluginConfig: CLUSTER,
      configDelivery: "ecds",
      canary: false,
      clusters: { [CLUSTER]: `127.0.0.1:${port}`, [OTHER]: `127.0.0.1:${port}` },
    });
    const r = sidecar.stream(request);
    expect(sidecar.configure(OTHER)).toBe(true);
    expect(sidecar.logMessages("info")).toEqual([]); // the old root context still serves the held stream
    await r.done;
    expect(sidecar.logMessages("info")).toEqual(["set_effective_context=0 continue_stream=0", "response_headers 2", "log", "delete", "delete"]);
    sidecar.stream(request);
    await sidecar.settle();
    expect(sidecar.callouts.map((c) => c.cluster)).toEqual([CLUSTER, OTHER]);
    await sidecar.close();
  });

  it("a stream still held at shutdown ends without its response (log, delete)", async () => {
    answer = 200;
    const sidecar = await start();
    const r = sidecar.stream({ ...request, worker: 0 });
    await sidecar.close();
    expect(r.held).toBe(false);
    // The stream's teardown (no response callback ran), then the root context's proxy_on_delete; the check
    // was cancelled with its root context, so proxy_on_http_call_response never ran.
    expect(sidecar.logMessages("info")).toEqual(["log", "delete", "delete"]);
  });
});

describe("a filter that replies locally from proxy_on_response_headers", () => {
  it("replaces the upstream response, and the filter sees no more of the upstream's body or trailers", async () => {
    // Envoy Context::sendLocalResponse defers sendLocalReply until the VM call returns, still inside
    // encodeHeaders. FilterManager::sendLocalReply (source/common/http/filter_manager.cc) then marks the
    // encoder chain aborted and, the response headers having started through the filters but not reached
    // the client, sends the reply directly to the encoder (sendDirectLocalReply), bypassing the filter
    // chain: the client gets the local reply and no response callback runs again. cpp-host
    // convertVmCallResultToFilterHeadersStatus reports StopAllIterationAndWatermark (4) for the call.
    const sidecar = await createSidecar({ wasm: `${dir}/response_reply.wasm`, canary: false });
    const r = sidecar.stream({ ...request, responseBody: "upstream body", responseTrailers: { "x-upstream-trailer": "1" } });
    expect(r.statuses.responseHeaders).toBe(4);
    expect(r.localReply).toMatchObject({ code: 502, details: "upstream_rejected" });
    expect(r.responseHeaders).toEqual([
      [":status", "502"],
      ["content-length", "9"],
      ["content-type", "text/plain"],
    ]);
    expect(new TextDecoder().decode(r.responseBody)).toBe("rejected\n");
    expect(sidecar.logMessages("info")).toEqual(["response_headers send_local_response=0", "log"]);
    await sidecar.close();
  });
});
