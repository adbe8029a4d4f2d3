// docs/operations.md names paths, metrics and settings that ops type or alert on; each must exist in the
// code that ships, so the runbook cannot keep describing something renamed.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SETTINGS } from "../../collector/config.ts";
import { createMetrics } from "../../collector/metrics.ts";
import { root } from "./render.ts";

const runbook = readFileSync(join(root, "docs", "operations.md"), "utf8");
const mentioned = (re: RegExp) => [...new Set([...runbook.matchAll(re)].map((m) => m[1]))].sort();

describe("docs/operations.md", () => {
  it("names only deploy/ paths that exist", () => {
    const paths = mentioned(/`(deploy\/[\w./-]+)`/g);
    expect(paths.length).toBeGreaterThan(10);
    for (const p of paths) expect(existsSync(join(root, p)), p).toBe(true);
  });

  it("names only metrics the collector exports or stats the filter defines", async () => {
    const exported = new Set((await createMetrics(() => undefined).registry.getMetricsAsJSON()).map((m) => m.name));
    // The filter's proxy stats appear under their own names too (Envoy drops the wasmcustom. prefix
    // from its stats output), so they are told apart by where they are defined, never by name alone.
    const filterSource = readFileSync(join(root, "filter", "root.ts"), "utf8");
    const proxyStats = new Set([...filterSource.matchAll(/defineCounter\("(meshlook_[a-z_]+)"\)/g)].map((m) => m[1]));
    expect(proxyStats.size).toBeGreaterThan(2);
    for (const n of proxyStats) expect(exported.has(n), `${n} is both a proxy stat and a collector metric`).toBe(false);
    const names = mentioned(/`(meshlook_[a-z_]+)/g);
    expect(names.length).toBeGreaterThan(10);
    for (const n of names) expect(exported.has(n) || proxyStats.has(n), n).toBe(true);
  });

  it("names only collector settings that exist (besides the filter's token variable and Snowflake names)", () => {
    const settings = new Set(["MESHLOOK_CONFIG", ...SETTINGS.map((s) => `MESHLOOK_${s.env}`)]);
    const notSettings = new Set(["MESHLOOK_INGEST_TOKEN", "MESHLOOK_LOADER"]);
    for (const n of mentioned(/\b(MESHLOOK_[A-Z0-9_]+)\b/g)) {
      if (!notSettings.has(n)) expect(settings, n).toContain(n);
    }
  });
});
