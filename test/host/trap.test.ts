// Traps through the conformance filter test/fixtures/filters/trap.ts: the trap is caught and
// reported, the stream passes, and the VM is failed as Envoy fails it; failStrategy decides what
// later streams on that worker get.
import { describe, expect, it } from "vitest";
import { createSidecar, type FailStrategy } from "../../sim/host/index.ts";

const ok = { requestHeaders: { ":method": "GET", ":path": "/", ":authority": "svc" }, responseHeaders: { ":status": "200" } };
const trapping = { ...ok, requestHeaders: { ...ok.requestHeaders, "x-trap": "1" } };
const start = (failStrategy: FailStrategy, workers = 2) => createSidecar({ wasm: "dist/fixtures/trap.wasm", rootId: "conformance", pluginConfig: "{}", workers, failStrategy });

describe("traps", () => {
  it("are caught and reported; the stream passes and the VM stays failed (FAIL_OPEN)", async () => {
    const sidecar = await start("FAIL_OPEN");
    expect(sidecar.stream({ ...ok, worker: 0 }).responseHeaders).toContainEqual(["x-survived", "yes"]);

    const trapped = sidecar.stream({ ...trapping, worker: 0 });
    expect(trapped).toMatchObject({ trapped: true, skipped: false, localReply: null });
    expect(trapped.responseHeaders).toEqual([[":status", "200"]]);
    expect(trapped.requestHeaders).toContainEqual(["x-trap", "1"]);
    expect(sidecar.traps).toHaveLength(1);
    expect(sidecar.traps[0]).toMatchObject({ worker: 0, function: "proxy_on_request_headers" });
    expect(sidecar.traps[0].message).toMatch(/^Function: proxy_on_request_headers failed: unreachable/);
    expect(sidecar.logMessages("critical")).toContain(sidecar.traps[0].message);
    expect(sidecar.healthy).toEqual([false, true]);

    const after = sidecar.stream({ ...ok, worker: 0 });
    expect(after).toMatchObject({ skipped: true, trapped: false });
    expect(after.responseHeaders).toEqual([[":status", "200"]]);
    expect(sidecar.stream({ ...ok, worker: 1 }).responseHeaders).toContainEqual(["x-survived", "yes"]);
    await sidecar.close();
  });

  it("an AssemblyScript throw logs its message through abort, then traps", async () => {
    const sidecar = await start("FAIL_OPEN", 1);
    const r = sidecar.stream({ ...ok, requestHeaders: { ...ok.requestHeaders, "x-throw": "1" } });
    expect(r.trapped).toBe(true);
    expect(sidecar.logs.find((e) => e.source === "proxy_log" && e.level === "critical")?.message).toMatch(/^conformance throw at: test\/fixtures\/filters\/trap\.ts\(\d+:\d+\)$/);
    expect(sidecar.traps[0].message).toMatch(/^Function: proxy_on_request_headers failed: unreachable/);
    await sidecar.close();
  });

  it("FAIL_CLOSE answers 503 on a failed VM", async () => {
    const sidecar = await start("FAIL_CLOSE", 1);
    const trapped = sidecar.stream(trapping);
    expect(trapped.localReply).toMatchObject({ code: 503, details: "wasm_fail_stream" });
    expect(sidecar.stream(ok).responseHeaders).toEqual([[":status", "503"]]);
    await sidecar.close();
  });

  it("FAIL_RELOAD starts a fresh VM for the next stream", async () => {
    const sidecar = await start("FAIL_RELOAD", 1);
    sidecar.stream(trapping);
    expect(sidecar.healthy).toEqual([false]);
    expect(sidecar.stream(ok).responseHeaders).toContainEqual(["x-survived", "yes"]);
    expect(sidecar.reloads).toEqual([1]);
    expect(sidecar.healthy).toEqual([true]);
    await sidecar.close();
  });
});

describe("several VMs per sidecar", () => {
  it("spread streams round-robin over workers, each with its own instance and memory", async () => {
    const sidecar = await start("FAIL_OPEN", 3);
    expect([0, 1, 2, 3].map(() => sidecar.stream(ok).worker)).toEqual([0, 1, 2, 0]);
    sidecar.stream({ ...trapping, worker: 2 });
    expect(sidecar.healthy).toEqual([true, true, false]);
    await sidecar.close();
  });
});
