import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkModule, createSidecar, WasmLoadError } from "../../sim/host/index.ts";
import { buildModule, MINIMAL_EXPORTS } from "./wasm-builder.ts";

const i32 = "i32" as const;
const i64 = "i64" as const;
const refused = async (bytes: Uint8Array) => {
  try {
    await createSidecar({ wasm: bytes });
  } catch (err) {
    expect(err).toBeInstanceOf(WasmLoadError);
    return (err as Error).message;
  }
  throw new Error("module was accepted");
};

describe("import table", () => {
  it("links Envoy's host functions with their signatures, WASI under both module names", async () => {
    // Signatures as declared in proxy-wasm-cpp-host include/proxy-wasm/exports.h (Word = i32 on wasm32).
    const ok = buildModule({
      imports: [
        { module: "env", name: "proxy_http_call", params: Array(10).fill(i32), results: [i32] },
        { module: "env", name: "proxy_increment_metric", params: [i32, i64], results: [i32] },
        { module: "env", name: "proxy_get_log_level", params: [i32], results: [i32] },
        { module: "env", name: "proxy_continue_stream", params: [i32], results: [i32] },
        { module: "wasi_snapshot_preview1", name: "fd_write", params: [i32, i32, i32, i32], results: [i32] },
        { module: "wasi_unstable", name: "fd_write", params: [i32, i32, i32, i32], results: [i32] },
        { module: "wasi_unstable", name: "clock_time_get", params: [i32, i64, i32], results: [i32] },
        { module: "wasi_snapshot_preview1", name: "proc_exit", params: [i32], results: [] },
      ],
      exports: MINIMAL_EXPORTS,
    });
    expect(checkModule(ok).abiVersion).toBe("0.2.1");
    const sc = await createSidecar({ wasm: ok });
    expect(sc.healthy).toEqual([true]);
    await sc.close();
  });

  it("refuses an unknown import, naming it", async () => {
    const bytes = buildModule({ imports: [{ module: "env", name: "proxy_frobnicate", params: [], results: [i32] }], exports: MINIMAL_EXPORTS });
    expect(await refused(bytes)).toBe("Failed to load Wasm module due to a missing import: env.proxy_frobnicate");
  });

  it("refuses a known import with another signature, naming it and both types", async () => {
    const bytes = buildModule({ imports: [{ module: "env", name: "proxy_log", params: [i32, i32], results: [i32] }], exports: MINIMAL_EXPORTS });
    expect(await refused(bytes)).toBe("Failed to load Wasm module due to an import type mismatch: env.proxy_log, want: i32 i32 -> i32, but host exports: i32 i32 i32 -> i32");
  });

  it("refuses global imports", async () => {
    const bytes = buildModule({ globalImports: [{ module: "env", name: "__stack_pointer" }], exports: MINIMAL_EXPORTS });
    expect(await refused(bytes)).toBe("Failed to load Wasm module due to a missing import: env.__stack_pointer");
  });

  it("links ABI-version-specific imports only for their version", async () => {
    const logLevel = { module: "env", name: "proxy_get_log_level", params: [i32], results: [i32] };
    const v020 = [{ name: "proxy_abi_version_0_2_0", params: [], results: [] }, MINIMAL_EXPORTS[1]];
    expect(await refused(buildModule({ imports: [logLevel], exports: v020 }))).toBe("Failed to load Wasm module due to a missing import: env.proxy_get_log_level");
    const clear = { module: "env", name: "proxy_clear_route_cache", params: [], results: [i32] };
    expect(await refused(buildModule({ imports: [clear], exports: MINIMAL_EXPORTS }))).toBe("Failed to load Wasm module due to a missing import: env.proxy_clear_route_cache");
  });

  it("refuses proxy-runtime 0.1.8's clear_route_cache (its ABI 0.2.0 has no proxy_clear_route_cache)", async () => {
    const bytes = new Uint8Array(readFileSync("dist/fixtures/clear_route_cache.wasm"));
    expect(checkModule.bind(null, bytes)).toThrow("missing import: env.proxy_clear_route_cache");
  });
});

describe("module exports", () => {
  it("refuses a module without a supported ABI version export", async () => {
    expect(await refused(buildModule({ exports: [MINIMAL_EXPORTS[1]] }))).toBe("Missing or unknown Proxy-Wasm ABI version");
    expect(await refused(buildModule({ exports: [{ name: "proxy_abi_version_0_3_0", params: [], results: [] }, MINIMAL_EXPORTS[1]] }))).toBe(
      "Missing or unknown Proxy-Wasm ABI version",
    );
  });

  it("accepts ABI 0.1.0 as cpp-host does, with that version's imports and header callbacks only", async () => {
    // cpp-host bytecode_util.cc getAbiVersion knows proxy_abi_version_0_1_0; WasmBase::registerCallbacks
    // links get_configuration/continue_request/continue_response/clear_route_cache only for it (and
    // continue_stream/close_stream only for 0.2.x); getFunctions looks up the two-argument
    // proxy_on_request_headers/proxy_on_response_headers (_abi_01) for it.
    const v010 = { name: "proxy_abi_version_0_1_0", params: [], results: [] };
    const headers2 = { name: "proxy_on_request_headers", params: [i32, i32], results: [i32] };
    const clear = { module: "env", name: "proxy_clear_route_cache", params: [], results: [i32] };
    expect(checkModule(buildModule({ imports: [clear], exports: [v010, MINIMAL_EXPORTS[1], headers2] })).abiVersion).toBe("0.1.0");
    const cont = { module: "env", name: "proxy_continue_stream", params: [i32], results: [i32] };
    expect(await refused(buildModule({ imports: [cont], exports: [v010, MINIMAL_EXPORTS[1]] }))).toBe(
      "Failed to load Wasm module due to a missing import: env.proxy_continue_stream",
    );
    const headers3 = { name: "proxy_on_request_headers", params: [i32, i32, i32], results: [i32] };
    expect(await refused(buildModule({ exports: [v010, MINIMAL_EXPORTS[1], headers3] }))).toBe(
      "Bad function signature for: proxy_on_request_headers, want: i32 i32 -> i32, but the module exports: i32 i32 i32 -> i32",
    );
  });

  it("requires malloc or proxy_on_memory_allocate", async () => {
    expect(await refused(buildModule({ exports: [MINIMAL_EXPORTS[0]] }))).toBe("Wasm module is missing malloc function.");
    const alias = buildModule({ exports: [MINIMAL_EXPORTS[0], { name: "proxy_on_memory_allocate", params: [i32], results: [i32] }] });
    expect(checkModule(alias).malloc).toBe("proxy_on_memory_allocate");
  });

  it("refuses a callback export with the wrong signature", async () => {
    const bad = buildModule({ exports: [...MINIMAL_EXPORTS, { name: "proxy_on_request_headers", params: [i32, i32], results: [i32] }] });
    expect(await refused(bad)).toBe("Bad function signature for: proxy_on_request_headers, want: i32 i32 i32 -> i32, but the module exports: i32 i32 -> i32");
  });

  it("refuses a plugin whose proxy_on_configure returns false", async () => {
    const no = buildModule({ exports: [...MINIMAL_EXPORTS, { name: "proxy_on_configure", params: [i32, i32], results: [i32] }] });
    await expect(createSidecar({ wasm: no })).rejects.toMatchObject({ stage: "configure" });
  });
});
