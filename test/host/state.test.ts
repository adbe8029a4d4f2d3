// Metrics, shared data, shared queues, local replies and body rewriting through the conformance
// filter test/fixtures/filters/state.ts, checked against Envoy's rules.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSidecar, type Sidecar } from "../../sim/host/index.ts";

let sidecar: Sidecar;
beforeAll(async () => {
  sidecar = await createSidecar({ wasm: "dist/fixtures/state.wasm", rootId: "conformance", pluginConfig: "{}", workers: 2, canary: false });
});
afterAll(() => sidecar.close());

function run(op: string, extra: { requestBody?: string; worker?: number } = {}) {
  sidecar.logs.length = 0;
  const r = sidecar.stream({
    requestHeaders: { ":method": "POST", ":path": "/", ":authority": "svc", "x-op": op },
    responseHeaders: { ":status": "200" },
    ...extra,
  });
  return { r, lines: sidecar.logMessages("info") };
}

describe("metrics", () => {
  it("follow Envoy's rules per type and are shared by all workers", () => {
    const { lines } = run("metrics", { worker: 0 });
    expect(lines).toEqual([
      "metrics counter+3 0",
      "metrics counter+0 2", // counters only grow: BadArgument
      "metrics gauge+5 0",
      "metrics gauge-2 0",
      "metrics hist+1 2", // histograms cannot be incremented
      "metrics hist=7 0",
      "metrics hist=9 0",
      "metrics get counter ok 3",
      "metrics get gauge ok 3",
      "metrics get hist err 2",
      "metrics get unknown err 1",
    ]);
    run("metrics", { worker: 1 });
    expect(sidecar.metrics.get("conf_counter")).toMatchObject({ type: "counter", value: 6n });
    expect(sidecar.metrics.get("conf_gauge")).toMatchObject({ type: "gauge", value: 6n });
    expect(sidecar.metrics.get("conf_hist")).toMatchObject({ type: "histogram", samples: [7n, 9n, 7n, 9n] });
  });
});

describe("shared data", () => {
  it("answers NotFound, then values with a CAS that guards writes", () => {
    const { lines } = run("shared", { worker: 0 });
    expect(lines[0]).toBe("shared get-missing err 1");
    expect(lines[1]).toBe("shared set 0");
    const cas = Number(/cas (\d+)$/.exec(lines[2])![1]);
    expect(lines[2]).toBe(`shared get ok v1 cas ${cas}`);
    expect(lines[3]).toBe("shared set-stale 8");
    expect(lines[4]).toBe("shared set-cas 0");
    expect(lines[5]).toMatch(/^shared get-after ok v3 cas \d+$/);
    expect(run("shared", { worker: 1 }).lines[0]).toMatch(/^shared get-missing ok v3/); // shared across workers
  });
});

describe("shared queues", () => {
  it("deliver enqueued data to the registering root context asynchronously", async () => {
    const { lines } = run("enqueue", { worker: 1 });
    expect(lines).toEqual(["enqueue resolve 0", "enqueue put 0"]);
    await sidecar.settle();
    expect(sidecar.logMessages("info")).toContain("queue ready own ok hello-queue then err 7");
  });
});

describe("local replies and bodies", () => {
  it("send_local_response replaces the upstream response", () => {
    const { r, lines } = run("local");
    expect(lines).toEqual(["local 0"]);
    expect(r.localReply).toMatchObject({ code: 403, details: "denied_by_conformance", headers: [["x-reason", "conformance"]] });
    // cpp-host context.cc convertVmCallResultToFilterHeadersStatus: a local reply sent during the call
    // (isNextIterationStopped) makes Envoy receive StopAllIterationAndWatermark (4) from a header callback.
    expect(r.statuses.requestHeaders).toBe(4);
    expect(r.responseHeaders).toEqual([
      [":status", "403"],
      ["content-length", "6"],
      ["content-type", "text/plain"],
      ["x-reason", "conformance"],
    ]);
    expect(new TextDecoder().decode(r.responseBody)).toBe("denied");
  });

  it("the request body can be read and replaced", () => {
    const { r, lines } = run("none", { requestBody: "abc" });
    expect(lines).toEqual(["body abc 0"]);
    expect(new TextDecoder().decode(r.requestBody)).toBe("[abc]");
  });
});
