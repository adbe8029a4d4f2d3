// The pluginConfig each shipped WasmPlugin carries is handed, as istiod would hand it, to the real
// release filter in the simulated sidecar: it must configure. A broken one must be refused with a log
// line naming the field — so the manifests and the filter cannot drift apart unnoticed.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { WasmLoadError } from "../../sim/host/abi.ts";
import { compileModule, createSidecar } from "../../sim/host/sidecar.ts";
import type { LogEntry } from "../../sim/host/shared.ts";
import type { Resource } from "./crd-validator.ts";
import { kustomizations, render, requireKubectl, root } from "./render.ts";

const releaseWasm = join(root, "dist", "meshlook.wasm");
let module: WebAssembly.Module;
const plugins = new Map<string, Resource>();

beforeAll(async () => {
  requireKubectl();
  if (!existsSync(releaseWasm)) throw new Error(`${releaseWasm} is missing: run \`npm run build\` (npm test does it first)`);
  module = await compileModule(releaseWasm);
  for (const dir of kustomizations("deploy/istio/overlays")) {
    const found = render(join(root, dir)).filter((r) => r.kind === "WasmPlugin");
    expect(found, dir).toHaveLength(1);
    plugins.set(dir, found[0]);
  }
});

/** Starts the filter the way Envoy does for this WasmPlugin: canary VM, then a worker, each configured. */
async function configure(plugin: Resource, pluginConfig: unknown): Promise<{ ok: boolean; logs: LogEntry[] }> {
  const logs: LogEntry[] = [];
  // valueFrom HOST: the value comes from the proxy's environment, which the test plays.
  const env = Object.fromEntries(plugin.spec.vmConfig.env.map((e: { name: string; value?: string }) => [e.name, e.value ?? "test-ingest-token"]));
  try {
    const sidecar = await createSidecar({
      wasm: module,
      rootId: plugin.spec.pluginName,
      // istiod serializes pluginConfig (a protobuf Struct) to JSON text for Envoy.
      pluginConfig: JSON.stringify(pluginConfig),
      env,
      workers: 1,
      onLog: (e) => logs.push(e),
    });
    await sidecar.close();
    return { ok: true, logs };
  } catch (err) {
    if (err instanceof WasmLoadError && err.stage === "configure") return { ok: false, logs };
    throw err;
  }
}

describe("shipped pluginConfig in the real filter", () => {
  it("configures for every overlay, without a refusal or error logged", async () => {
    expect(plugins.size).toBe(5);
    for (const [dir, plugin] of plugins) {
      const { ok, logs } = await configure(plugin, plugin.spec.pluginConfig);
      expect(ok, dir).toBe(true);
      expect(
        logs.filter((l) => l.level === "error" || l.level === "critical").map((l) => l.message),
        dir,
      ).toEqual([]);
    }
  });

  it.each([
    ["collector.cluster", (c: any) => delete c.collector.cluster],
    ["flush_interval_s", (c: any) => (c.flush_interval_s = 0)],
    ["max_series", (c: any) => (c.max_series = "2000")],
    ["directions[0]", (c: any) => (c.directions = ["sideways"])],
    ["max_serie", (c: any) => (c.max_serie = c.max_series)],
  ])("accepts a pluginConfig with a broken %s (a refusal would be NACKed into 500 NFCF), naming it in an error line", async (field, breakIt) => {
    const plugin = plugins.get("deploy/istio/overlays/namespace")!;
    const config = structuredClone(plugin.spec.pluginConfig);
    breakIt(config);
    const { ok, logs } = await configure(plugin, config);
    expect(ok).toBe(true);
    expect(
      logs
        .filter((l) => l.level === "error")
        .map((l) => l.message)
        .join("\n"),
    ).toContain(`"${field}"`);
  });
});
