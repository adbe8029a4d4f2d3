// The link-time checks Envoy (proxy-wasm-cpp-host) applies to a module, driven by abi.json — a copy of
// the import/callback table read from proxy-wasm-cpp-host (see its "about" field and docs/host.md).
import { readFileSync } from "node:fs";
import { formatSig, parseModuleShape, type FuncSig, type ModuleShape, type ValType } from "./module.ts";

export type AbiVersion = "0.1.0" | "0.2.0" | "0.2.1";

interface AbiTable {
  abiVersionExports: string[];
  imports: Record<string, { module: string; name: string; params: ValType[]; results: ValType[]; abiVersions?: AbiVersion[] }>;
  callbacks: Record<string, { params: ValType[]; results: ValType[]; abi_0_1_0?: FuncSig; note?: string }>;
}

export const ABI: AbiTable = JSON.parse(readFileSync(new URL("./abi.json", import.meta.url), "utf8"));

/** ABI versions this host runs: all three cpp-host recognises (bytecode_util.cc getAbiVersion). */
export const SUPPORTED_ABI_VERSIONS: readonly AbiVersion[] = ["0.1.0", "0.2.0", "0.2.1"];

/** Raised when a module is refused, with Envoy's wording for the reason. */
export class WasmLoadError extends Error {
  constructor(
    message: string,
    readonly stage: "load" | "start" | "configure",
  ) {
    super(message);
    this.name = "WasmLoadError";
  }
}

/** Host functions Envoy registers for a module of the given ABI version, keyed "module.name". */
export function hostFunctions(version: AbiVersion): Map<string, FuncSig> {
  const out = new Map<string, FuncSig>();
  for (const [key, f] of Object.entries(ABI.imports)) {
    if (f.abiVersions && !f.abiVersions.includes(version)) continue;
    out.set(key, { params: f.params, results: f.results });
  }
  return out;
}

const sameTypes = (a: ValType[], b: ValType[]) => a.length === b.length && a.every((t, i) => t === b[i]);

export interface CheckedModule {
  abiVersion: AbiVersion;
  shape: ModuleShape;
  /** Exported callbacks Envoy looks up and will call, with their verified signatures. */
  callbacks: Set<string>;
  /** Name of the allocator export Envoy uses: malloc, else proxy_on_memory_allocate. */
  malloc: string;
}

/**
 * Applies Envoy's load and link checks in its order: ABI version export, import table (names,
 * signatures, no global imports), then the callback exports' signatures and the allocator.
 * Throws WasmLoadError with the message Envoy would log.
 */
export function checkModule(bytes: Uint8Array): CheckedModule {
  let shape: ModuleShape;
  try {
    shape = parseModuleShape(bytes);
  } catch (err) {
    throw new WasmLoadError((err as Error).message, "load");
  }
  const versionExport = shape.exports.find((e) => e.kind === "function" && ABI.abiVersionExports.includes(e.name));
  if (!versionExport) throw new WasmLoadError("Missing or unknown Proxy-Wasm ABI version", "load");
  const abiVersion = versionExport.name.slice("proxy_abi_version_".length).replaceAll("_", ".") as AbiVersion;
  if (!SUPPORTED_ABI_VERSIONS.includes(abiVersion)) {
    throw new WasmLoadError(`Proxy-Wasm ABI version ${abiVersion} is not supported by this host`, "load");
  }

  const table = hostFunctions(abiVersion);
  for (const imp of shape.imports) {
    const key = `${imp.module}.${imp.name}`;
    if (imp.kind === "memory" || imp.kind === "table") continue;
    const host = imp.kind === "function" ? table.get(key) : undefined;
    if (!host) throw new WasmLoadError(`Failed to load Wasm module due to a missing import: ${key}`, "load");
    const sig = imp.sig!;
    if (!sameTypes(sig.params, host.params) || !sameTypes(sig.results, host.results)) {
      throw new WasmLoadError(
        `Failed to load Wasm module due to an import type mismatch: ${key}, want: ${formatSig(sig.params)} -> ` +
          `${formatSig(sig.results)}, but host exports: ${formatSig(host.params)} -> ${formatSig(host.results)}`,
        "load",
      );
    }
  }

  const exported = new Map(shape.exports.filter((e) => e.kind === "function").map((e) => [e.name, e.sig!]));
  const callbacks = new Set<string>();
  const lookup = (name: string, want: FuncSig) => {
    const sig = exported.get(name);
    if (!sig) return;
    if (!sameTypes(sig.params, want.params) || !sameTypes(sig.results, want.results)) {
      throw new WasmLoadError(
        `Bad function signature for: ${name}, want: ${formatSig(want.params)} -> ${formatSig(want.results)}, ` +
          `but the module exports: ${formatSig(sig.params)} -> ${formatSig(sig.results)}`,
        "load",
      );
    }
    callbacks.add(name);
  };
  const cb = ABI.callbacks;
  lookup("_initialize", cb._initialize);
  if (callbacks.has("_initialize")) {
    lookup("main", cb.main);
    lookup("__main_void", cb.__main_void);
  } else {
    lookup("_start", cb._start);
  }
  lookup("malloc", cb.malloc);
  if (!callbacks.has("malloc")) lookup("proxy_on_memory_allocate", cb.proxy_on_memory_allocate);
  const malloc = callbacks.has("malloc") ? "malloc" : "proxy_on_memory_allocate";
  if (!callbacks.has(malloc)) throw new WasmLoadError("Wasm module is missing malloc function.", "load");
  const lifecycle = new Set(["_initialize", "_start", "main", "__main_void", "malloc", "proxy_on_memory_allocate"]);
  for (const [name, spec] of Object.entries(cb)) {
    if (lifecycle.has(name)) continue;
    // cpp-host WasmBase::getFunctions: 0.1.0 has two-argument header callbacks and no foreign functions.
    if (abiVersion === "0.1.0") {
      if (name === "proxy_on_foreign_function") continue;
      lookup(name, spec.abi_0_1_0 ?? spec);
    } else lookup(name, { params: spec.params, results: spec.results });
  }
  return { abiVersion, shape, callbacks, malloc };
}
