// The release module links in Envoy: every import is in Envoy's host table for the module's ABI
// version with the same signature, the ABI version export is one Envoy supports, and the
// proxy-runtime 0.1.8 defects (route-cache import, misnamed gRPC export) are not in the binary.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseModuleShape } from "../../sim/host/module.ts";
import { createSidecar } from "../../sim/host/index.ts";

const root = join(import.meta.dirname, "..", "..");
// Envoy's import/callback table, copied from proxy-wasm-cpp-host (see its "about" field).
const table = JSON.parse(readFileSync(join(root, "sim", "host", "abi.json"), "utf8"));
const wasm = new Uint8Array(readFileSync(join(root, "dist", "meshlook.wasm")));
const shape = parseModuleShape(wasm);

describe("release wasm against Envoy's ABI table", () => {
  const versions = shape.exports.filter((e) => table.abiVersionExports.includes(e.name)).map((e) => e.name);

  it("exports exactly one supported ABI version", () => {
    expect(versions).toEqual(["proxy_abi_version_0_2_0"]);
  });

  it("imports only host functions Envoy provides for that version, with matching signatures", () => {
    const functions = shape.imports.filter((i) => i.kind === "function");
    expect(functions.length).toBeGreaterThan(0);
    for (const imp of functions) {
      const key = `${imp.module}.${imp.name}`;
      const host = table.imports[key];
      expect(host, key).toBeDefined();
      if (host.abiVersions) expect(host.abiVersions, key).toContain("0.2.0");
      expect({ params: imp.sig!.params, results: imp.sig!.results }, key).toEqual({ params: host.params, results: host.results });
    }
    expect(shape.imports.filter((i) => i.kind === "global")).toEqual([]);
  });

  it("has every callback it exports under Envoy's name and signature, and an allocator", () => {
    for (const exp of shape.exports.filter((e) => e.kind === "function")) {
      if (versions.includes(exp.name)) continue;
      const cb = table.callbacks[exp.name];
      expect(cb, exp.name).toBeDefined();
      expect({ params: exp.sig!.params, results: exp.sig!.results }, exp.name).toEqual({ params: cb.params, results: cb.results });
    }
    expect(shape.exports.map((e) => e.name)).toContain("malloc");
    expect(shape.exports.map((e) => e.name)).toContain("proxy_on_log");
  });

  it("does not carry the SDK's route-cache import or non-Envoy names, nor Math.random/Date hosts", () => {
    const imports = shape.imports.map((i) => `${i.module}.${i.name}`);
    expect(imports).not.toContain("env.proxy_clear_route_cache");
    // AssemblyScript's Math.random imports env.seed, Date imports Date.now, abort/trace env.abort/env.trace.
    expect(imports.filter((n) => /^env\.(seed|abort|trace)$|^Date\./.test(n))).toEqual([]);
    expect(shape.exports.map((e) => e.name)).not.toContain("proxy_on_grpc_trailing_metadata");
  });

  it("is accepted and configured by the simulated Envoy", async () => {
    const sidecar = await createSidecar({
      wasm,
      rootId: "meshlook",
      pluginConfig: JSON.stringify({ collector: { cluster: "outbound|8080||c.meshlook.svc.cluster.local" } }),
      env: { MESHLOOK_INGEST_TOKEN: "token" },
    });
    expect(sidecar.healthy).toEqual([true]);
    await sidecar.close();
  });
});
