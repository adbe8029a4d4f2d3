// `npm run check-config -- FILE`: the filter's own parser, run from the release module, on a pluginConfig
// or on the WasmPlugins of a YAML file, before rollout.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { check, configsIn } from "../../scripts/check-config.ts";
import { COLLECTOR_CLUSTER, loadModule, ROOT } from "./fixtures.ts";

const plugin = (name: string, pluginConfig: object) => `apiVersion: extensions.istio.io/v1alpha1
kind: WasmPlugin
metadata: {name: ${name}, namespace: apps}
spec:
  pluginConfig: ${JSON.stringify(pluginConfig)}
`;

describe("check-config", () => {
  it("reports each problem the filter would log, per WasmPlugin of a YAML file", async () => {
    const yaml = [
      plugin("good", { collector: { cluster: COLLECTOR_CLUSTER } }),
      plugin("typo", { collector: { cluster: COLLECTOR_CLUSTER }, max_serie: 10, sketch_scale: 12 }),
    ].join("---\n");
    const candidates = configsIn(yaml, "p.yaml");
    expect(candidates.map((c) => c.name)).toEqual(["p.yaml: WasmPlugin apps/good", "p.yaml: WasmPlugin apps/typo"]);
    const wasm = await loadModule();
    expect(await check(candidates[0].config, wasm)).toEqual([]);
    const problems = await check(candidates[1].config, wasm);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain('"max_serie": unknown field');
    expect(problems[1]).toContain('"sketch_scale": must be between 0 and 8 (got 12)');
  });

  it("names a max_pending_bytes too small for one summary at max_series, which the filter would replace by its default", async () => {
    const config = JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER }, max_series: 4000, max_pending_bytes: 16384 });
    const problems = await check(config, await loadModule());
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('"max_pending_bytes": cannot hold one summary at max_series 4000 (got 16384');
  });

  it("checks a WasmPlugin without pluginConfig as Istio delivers it: an empty configuration", async () => {
    const yaml = `apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: bare}\nspec: {url: "oci://r/m:1"}\n`;
    const [bare] = configsIn(yaml, "b.yaml");
    expect(bare.config).toBe("");
    expect(configsIn(plugin("empty", {}), "e.yaml")[0].config).toBe("");
    const problems = await check(bare.config, await loadModule());
    expect(problems[0]).toContain("the plugin configuration is empty");
  });

  it("exits 1 on a problem and 0 on a clean configuration", () => {
    const dir = mkdtempSync(join(tmpdir(), "meshlook-check-"));
    const bad = join(dir, "bad.json");
    const good = join(dir, "good.json");
    writeFileSync(bad, JSON.stringify({ collector: {} }));
    writeFileSync(good, JSON.stringify({ collector: { cluster: COLLECTOR_CLUSTER } }));
    const run = (file: string) =>
      spawnSync(process.execPath, [join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), join(ROOT, "scripts", "check-config.ts"), file], { encoding: "utf8" });
    const r1 = run(bad);
    expect(r1.status).toBe(1);
    expect(r1.stdout).toContain('"collector.cluster": is required');
    expect(r1.stdout).toContain("safe mode");
    const r2 = run(good);
    expect(r2.status).toBe(0);
    expect(r2.stdout).toContain("ok");
  });
});
