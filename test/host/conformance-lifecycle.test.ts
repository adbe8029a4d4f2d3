// Lifecycle of a module built outside our AssemblyScript toolchain (test/host/modules/lifecycle.c, C
// against the raw ABI): Envoy's teardown order, a root context that defers proxy_on_done, Envoy's answer
// to a refused configuration delivered by ECDS, and reconfiguration of a live VM.
import { describe, expect, it } from "vitest";
import { createSidecar, ManualClock, WasmLoadError } from "../../sim/host/index.ts";

const wasm = "test/host/modules/lifecycle.wasm";
const request = { requestHeaders: { ":method": "GET", ":path": "/", ":authority": "svc" }, responseHeaders: { ":status": "200" } };
/** What the module logged on the workers (the canary's lines left out). */
const events = (sidecar: { logs: { worker: number | string; message: string }[] }) =>
  sidecar.logs.filter((e) => e.worker !== "canary" && e.worker !== "host").map((e) => e.message);

describe("stream teardown", () => {
  it("logs first, then on_done and on_delete", async () => {
    // Envoy: ConnectionManagerImpl::doDeferredStreamDestroy (source/common/http/conn_manager_impl.cc) runs
    // filter_manager_.log() — the Wasm filter is an access logger too: Context::log → proxy_on_log —
    // before filter_manager_.destroyFilters() → Context::onDestroy → onDone(), onDelete()
    // (source/extensions/common/wasm/context.cc).
    const sidecar = await createSidecar({ wasm, pluginConfig: "plain", canary: false });
    sidecar.logs.length = 0;
    sidecar.stream(request);
    expect(events(sidecar)).toEqual([
      "create 2 config=plain",
      "request_headers 2 config=plain",
      "response_headers 2 config=plain",
      "log 2 config=plain",
      "done 2 config=plain",
      "delete 2 config=plain",
    ]);
    await sidecar.close();
  });
});

describe("a root context that defers proxy_on_done", () => {
  it("keeps running (ticks) until proxy_done, then gets proxy_on_delete; close() waits for it", async () => {
    // cpp-host WasmBase::startShutdown: onDone() false moves the root to pending_done_ (it stays in
    // contexts_, so Wasm::tickHandler still reaches it); WasmBase::done moves it to pending_delete_ and
    // onDelete runs after the proxy_done call returns (addAfterVmCallAction). Envoy's server holds its
    // exit for it: Wasm::initializeLifecycle registers a ShutdownExit callback completed only in ~Wasm.
    const clock = new ManualClock();
    const sidecar = await createSidecar({ wasm, pluginConfig: "defer", canary: false, clock });
    sidecar.logs.length = 0;
    const t0 = clock.nowMs();
    await sidecar.close();
    expect(events(sidecar)).toEqual(["done 1 config=defer", "finishing 1 config=defer", "proxy_done=0", "delete 1 config=defer"]);
    expect(clock.nowMs() - t0).toBe(20); // two 10 ms ticks, then proxy_done
    expect(sidecar.shutdownPending).toBe(false);
  });

  it("gives up after shutdownGraceMs when proxy_done never comes (no on_delete)", async () => {
    const clock = new ManualClock();
    const sidecar = await createSidecar({ wasm, pluginConfig: "defer", canary: false, clock, shutdownGraceMs: 15 });
    sidecar.logs.length = 0;
    await sidecar.close();
    expect(events(sidecar)).toEqual(["done 1 config=defer"]);
  });

  it("the configuration canary is dropped without proxy_on_done or proxy_on_delete", async () => {
    // cpp-host WasmHandleBase::canary ends with configuration_canary_handle->kill(): no startShutdown.
    const sidecar = await createSidecar({ wasm, pluginConfig: "plain" });
    const canary = sidecar.logs.filter((e) => e.worker === "canary").map((e) => e.message);
    expect(canary).toEqual(["create 1 config=", "configure 1 config=plain"]);
    await sidecar.close();
  });
});

describe("a refused configuration", () => {
  it("in a static listener: Envoy refuses the listener (createSidecar throws)", async () => {
    await expect(createSidecar({ wasm, pluginConfig: "refuse" })).rejects.toMatchObject({ stage: "configure" });
  });

  it("through ECDS on a new proxy: NACK, and every stream gets the missing-config filter's 500 with NFCF", async () => {
    // Envoy: the canary's configure failing fails createWasm, so the filter factory throws and the ECDS
    // update is rejected. A filter with no configuration yet is replaced by MissingConfigFilter
    // (source/common/http/filter_chain_helper.{h,cc}, FilterChainUtility::createFilterChainForFactories),
    // whose decodeHeaders sets NoFilterConfigFound and sends a 500 local reply.
    const sidecar = await createSidecar({ wasm, pluginConfig: "refuse", configDelivery: "ecds" });
    expect(sidecar.nacks).toHaveLength(1);
    expect(sidecar.nacks[0].error).toBeInstanceOf(WasmLoadError);
    expect(sidecar.nacks[0].error.stage).toBe("configure");
    const r = sidecar.stream(request);
    expect(r.localReply?.code).toBe(500);
    expect(r.responseHeaders).toEqual([[":status", "500"]]);
    expect(r.responseFlags).toEqual(["NFCF"]);
    expect(r.skipped).toBe(true);
    // A later good configuration is accepted and traffic flows through the filter.
    expect(sidecar.configure("plain")).toBe(true);
    const ok = sidecar.stream(request);
    expect(ok.localReply).toBeNull();
    expect(ok.responseHeaders).toEqual([[":status", "200"]]);
    await sidecar.close();
  });

  it("through ECDS on a running proxy: NACK, and the previous configuration stays in force", async () => {
    const sidecar = await createSidecar({ wasm, pluginConfig: "first", configDelivery: "ecds", canary: false });
    expect(sidecar.configure("refuse")).toBe(false);
    expect(sidecar.nacks.map((n) => new TextDecoder().decode(n.pluginConfig))).toEqual(["refuse"]);
    sidecar.logs.length = 0;
    const r = sidecar.stream(request);
    expect(r.localReply).toBeNull();
    expect(events(sidecar)[0]).toBe("create 2 config=first");
    await sidecar.close();
  });
});

describe("reconfiguration of a live VM (ECDS update)", () => {
  it("creates a new root context in the same VM for new streams and shuts the old one down", async () => {
    // cpp-host getOrCreateThreadLocalPlugin: the worker's VM (same vm_key) is reused and
    // WasmBase::start(plugin) creates a root context for the new plugin key; the replaced plugin's
    // PluginHandleBase destructor calls startShutdown(old key) → onDone, onDelete.
    const sidecar = await createSidecar({ wasm, pluginConfig: "first", configDelivery: "ecds", canary: false });
    sidecar.logs.length = 0;
    expect(sidecar.configure("first")).toBe(true); // same plugin key: nothing happens
    expect(events(sidecar)).toEqual([]);
    expect(sidecar.configure("second")).toBe(true);
    expect(events(sidecar)).toEqual(["create 2 config=", "configure 2 config=second", "done 1 config=first", "delete 1 config=first"]);
    sidecar.logs.length = 0;
    sidecar.stream(request);
    expect(events(sidecar)[0]).toBe("create 3 config=second");
    await sidecar.close();
    const staticListener = await createSidecar({ wasm, pluginConfig: "x", canary: false });
    expect(() => staticListener.configure("y")).toThrow(/configDelivery/);
    await staticListener.close();
  });
});
