// pluginConfig checking in the real filter: configure never fails (Envoy would NACK it and new proxies
// would answer 500 NFCF); every invalid or unknown field is one log line naming it and a count in
// meshlook_config_errors; a minimal configuration works with the documented defaults.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createSidecar, WasmLoadError } from "../../sim/host/index.ts";
import type { LogEntry } from "../../sim/host/index.ts";
import { COLLECTOR_CLUSTER as CLUSTER, meshlookSidecar, RELEASE_WASM } from "./fixtures.ts";

const wasm = new Uint8Array(readFileSync(RELEASE_WASM));

async function configure(pluginConfig: string, env: Record<string, string> = { MESHLOOK_INGEST_TOKEN: "t" }) {
  const logs: LogEntry[] = [];
  try {
    const sidecar = await createSidecar({ wasm, rootId: "meshlook", pluginConfig, env, onLog: (e) => logs.push(e), canary: false });
    await sidecar.close();
    const counted = Number(sidecar.metrics.get("meshlook_config_errors")?.value ?? 0n);
    const fieldErrors = logs.filter((l) => l.source === "proxy_log" && l.level === "error" && l.message.includes("pluginConfig field")).map((l) => l.message);
    return { ok: true, logs, fieldErrors, counted };
  } catch (err) {
    if (err instanceof WasmLoadError && err.stage === "configure") return { ok: false, logs, fieldErrors: [], counted: 0 };
    throw err;
  }
}

const base = () => ({
  collector: { cluster: CLUSTER, authority: "a", path: "/v1/summaries", timeout_ms: 5000 },
  flush_interval_s: 10,
  max_series: 2000,
  max_pending_bytes: 1048576,
  directions: ["inbound", "outbound"],
  dimensions: ["reporter", "source_principal"],
  end_user_principal: false,
  sketch_scale: 6,
});

describe("filter configuration", () => {
  it("accepts the full documented configuration", async () => {
    const { ok, logs } = await configure(JSON.stringify(base()));
    expect(ok).toBe(true);
    expect(logs.filter((l) => l.level === "error")).toEqual([]);
  });

  it.each<[string, (c: any) => void]>([
    ["collector.cluster", (c) => delete c.collector.cluster],
    ["collector.cluster", (c) => (c.collector.cluster = "")],
    ["collector.cluster", (c) => (c.collector.cluster = 8080)],
    ["collector", (c) => (c.collector = "x")],
    ["collector.authority", (c) => (c.collector.authority = "")],
    ["collector.path", (c) => (c.collector.path = "v1/summaries")],
    ["collector.timeout_ms", (c) => (c.collector.timeout_ms = 0)],
    ["collector.timeout_ms", (c) => (c.collector.timeout_ms = 1.5)],
    ["collector.port", (c) => (c.collector.port = 8080)],
    ["flush_interval_s", (c) => (c.flush_interval_s = 0)],
    ["flush_interval_s", (c) => (c.flush_interval_s = "10")],
    ["max_series", (c) => (c.max_series = 5)],
    ["max_series", (c) => (c.max_series = 65537)],
    ["max_pending_bytes", (c) => (c.max_pending_bytes = 10)],
    // In range, but too small for one summary at max_series 2000.
    ["max_pending_bytes", (c) => (c.max_pending_bytes = 8192)],
    ["directions", (c) => (c.directions = [])],
    ["directions", (c) => (c.directions = "inbound")],
    ["directions[1]", (c) => (c.directions = ["inbound", "sideways"])],
    ["directions[1]", (c) => (c.directions = ["inbound", "inbound"])],
    ["dimensions", (c) => (c.dimensions = {})],
    ["dimensions[2]", (c) => (c.dimensions = ["reporter", "source_workload", "pod_name"])],
    ["dimensions[1]", (c) => (c.dimensions = ["reporter", "reporter"])],
    ["dimensions[0]", (c) => (c.dimensions = ["end_user_principal"])],
    ["end_user_principal", (c) => (c.end_user_principal = "yes")],
    ["sketch_scale", (c) => (c.sketch_scale = 9)],
    ["sketch_scale", (c) => (c.sketch_scale = -1)],
    ["max_serie", (c) => (c.max_serie = 10)],
  ])("accepts a bad %s, names it in one log line and counts it", async (field, breakIt) => {
    const config = base();
    breakIt(config);
    const { ok, fieldErrors, counted } = await configure(JSON.stringify(config));
    expect(ok).toBe(true);
    expect(fieldErrors).toHaveLength(1);
    expect(fieldErrors[0]).toContain(`field "${field}"`);
    expect(counted).toBe(1);
  });

  it.each([
    ["", "collector.cluster"],
    ["{", "(root)"],
    ["[1]", "(root)"],
    ['{"collector": {"cluster": "a"}} x', "(root)"],
    ['{"collector": {"cluster": "a", "cluster": "b"}}', "(root)"],
    ['{"max_series": 100}', "collector.cluster"],
  ])("accepts malformed configuration %j in safe mode, naming the problem", async (text, field) => {
    const { ok, logs, fieldErrors } = await configure(text);
    expect(ok).toBe(true);
    expect(fieldErrors.join("\n")).toContain(`field "${field}"`);
    expect(logs.map((l) => l.message).join("\n")).toContain("safe mode");
  });

  it("parses JSON escapes and number forms exactly", async () => {
    const text = '{"collector": {"cluster": "' + CLUSTER + '", "path": "/v1/sum\\u006daries\\/x", "authority": "a\\"b"}, "flush_interval_s": 1e1, "max_series": 20.0}';
    const { clock, sidecar } = await meshlookSidecar({}, "127.0.0.1:9", { pluginConfig: text });
    sidecar.stream({
      requestHeaders: [
        [":method", "GET"],
        [":path", "/"],
        [":authority", "r"],
      ],
      responseHeaders: [[":status", "200"]],
    });
    clock.advance(9000);
    expect(sidecar.callouts).toHaveLength(0);
    clock.advance(1000);
    expect(Object.fromEntries(sidecar.callouts[0].headers)).toMatchObject({ ":path": "/v1/summaries/x", ":authority": 'a"b' });
    await sidecar.close();
  });

  it("does not parse nesting deeper than the configuration needs", async () => {
    const { ok, logs } = await configure('{"collector": {"cluster": "a"}, "dimensions": ' + "[".repeat(40) + "]".repeat(40) + "}");
    expect(ok).toBe(true);
    expect(logs.map((l) => l.message).join("\n")).toContain("nesting deeper than");
  });

  it("names invalid UTF-8 without trapping", async () => {
    const { ok, fieldErrors } = await configure(Buffer.from([0x7b, 0xff, 0x7d]).toString("latin1"));
    expect(ok).toBe(true);
    expect(fieldErrors.join("\n")).toContain('field "(root)"');
  });

  it("works with only the cluster: POSTs to the default path and derived authority every 10 s", async () => {
    const { clock, sidecar } = await meshlookSidecar({}, "127.0.0.1:9", { env: { MESHLOOK_INGEST_TOKEN: "s3cret" }, canary: true });
    sidecar.stream({
      requestHeaders: [
        [":method", "GET"],
        [":path", "/"],
        [":authority", "reviews"],
      ],
      responseHeaders: [[":status", "200"]],
      attributes: { xds: { listener_direction: 1 } },
    });
    clock.advance(9_000);
    expect(sidecar.callouts).toHaveLength(0);
    clock.advance(1_000);
    expect(sidecar.callouts).toHaveLength(1);
    const headers = Object.fromEntries(sidecar.callouts[0].headers);
    expect(headers).toMatchObject({
      ":method": "POST",
      ":path": "/v1/summaries",
      ":authority": "meshlook-collector.meshlook.svc.cluster.local",
      "content-type": "application/x-meshlook-summary",
      authorization: "Bearer s3cret",
    });
    expect(sidecar.callouts[0].timeoutMs).toBe(5000);
    await sidecar.close();
  });

  it("without a token logs one error and still aggregates and sends", async () => {
    const { clock, sidecar } = await meshlookSidecar({ flush_interval_s: 1 }, "127.0.0.1:9", { env: {} });
    expect(sidecar.logMessages("error").filter((m) => m.includes("MESHLOOK_INGEST_TOKEN"))).toHaveLength(1);
    sidecar.stream({
      requestHeaders: [
        [":method", "GET"],
        [":path", "/"],
        [":authority", "r"],
      ],
      responseHeaders: [[":status", "200"]],
    });
    clock.advance(1_000);
    expect(sidecar.callouts).toHaveLength(1);
    expect(sidecar.callouts[0].headers.map(([k]) => k)).not.toContain("authorization");
    await sidecar.close();
  });
});
