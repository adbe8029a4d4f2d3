// The order Envoy drives a plugin in, observed through proxy-runtime's own debug logs from the noop
// filter (dist/fixtures/noop.wasm): canary VM, one VM per worker, per-stream callbacks, shutdown.
import { describe, expect, it } from "vitest";
import { createSidecar, RealClock } from "../../sim/host/index.ts";

const request = { requestHeaders: { ":method": "GET", ":path": "/", ":authority": "svc" }, responseHeaders: { ":status": "200" } };

describe("lifecycle", () => {
  it("starts a canary VM, then one VM per worker, each creating the root context and configuring", async () => {
    const sidecar = await createSidecar({ wasm: "dist/fixtures/noop.wasm", rootId: "noop", pluginConfig: "{}", workers: 2, logLevel: "debug" });
    const configured = sidecar.logs.filter((e) => e.message.includes("onConfigure(configuration_size: 2)")).map((e) => e.worker);
    expect(configured).toEqual(["canary", 0, 1]);
    const started = sidecar.logs.filter((e) => e.message.includes("onStart(vm_configuration_size:0)")).map((e) => e.worker);
    expect(started).toEqual(["canary", 0, 1]);
    await sidecar.close();
  });

  it("runs a stream's callbacks in Envoy's order (log, then done and delete) and deletes its context; close() shuts the root down", async () => {
    const sidecar = await createSidecar({ wasm: "dist/fixtures/noop.wasm", rootId: "noop", pluginConfig: "{}", logLevel: "debug", canary: false });
    sidecar.logs.length = 0;
    sidecar.stream(request);
    const lines = sidecar.logMessages("debug");
    expect(lines.filter((l) => l.startsWith("Registering new context"))).toEqual(["Registering new context with context_id: 2 under root_context: 1"]);
    // Envoy's order: ConnectionManagerImpl::doDeferredStreamDestroy (source/common/http/conn_manager_impl.cc)
    // calls filter_manager_.log() (Context::log → proxy_on_log) before destroyFilters() (Context::onDestroy →
    // onDone, onDelete; source/extensions/common/wasm/context.cc).
    expect(lines.filter((l) => l.startsWith("context id: 2:"))).toEqual(["context id: 2: onLog()", "context id: 2: onDone()", "context id: 2: onDelete()"]);
    sidecar.stream(request);
    expect(sidecar.logMessages("debug")).toContain("Registering new context with context_id: 3 under root_context: 1");
    sidecar.logs.length = 0;
    await sidecar.close();
    expect(sidecar.logMessages("debug")).toEqual(["context id: 1: onDone()", "context id: 1: cancelPendingRequests()", "context id: 1: onDelete()"]);
    expect(() => sidecar.stream(request)).toThrow("sidecar is closed");
  });

  it("drops messages below the log level before they are decoded", async () => {
    const sidecar = await createSidecar({ wasm: "dist/fixtures/noop.wasm", rootId: "noop", pluginConfig: "{}" });
    sidecar.stream(request);
    expect(sidecar.logs).toEqual([]);
    await sidecar.close();
  });
});

describe("real-time clock (the demo's mode)", () => {
  it("fires ticks on wall time and reports wall time to the module", async () => {
    const sidecar = await createSidecar({
      wasm: "dist/fixtures/tick_callout.wasm",
      rootId: "conformance",
      pluginConfig: ["outbound|1||nowhere", "20", "1000", "nowhere"].join("\n"),
      clock: new RealClock(),
      canary: false,
    });
    const before = BigInt(Date.now()) * 1_000_000n;
    const deadline = Date.now() + 5000;
    while (sidecar.logMessages("info").filter((l) => l.startsWith("tick")).length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const ticks = sidecar.logMessages("info").filter((l) => l.startsWith("tick"));
    expect(ticks.length).toBeGreaterThanOrEqual(2);
    const now = BigInt(/now=(\d+)/.exec(ticks[0])![1]);
    expect(now >= before && now <= BigInt(Date.now()) * 1_000_000n).toBe(true);
    await sidecar.close();
  });
});
