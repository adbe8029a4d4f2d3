// Checks a meshlook pluginConfig before rollout with the filter's own parser: the release module runs in
// the simulated host, configured with the file's configuration, and every problem the filter would log
// in the proxy is printed. The filter never refuses a configuration, so this is the place to catch a typo.
//
//   npm run check-config -- FILE        FILE: a pluginConfig JSON object, or YAML holding WasmPlugins
//
// Exit status: 0 when the configuration is clean, 1 when the filter reported problems, 2 on usage errors.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { compileModule, createSidecar } from "../sim/host/index.ts";

const WASM = join(import.meta.dirname, "..", "dist", "meshlook.wasm");
const USAGE = `usage: meshlook check-config FILE...   (npm run check-config -- FILE...)
  FILE: a pluginConfig JSON object, or YAML holding WasmPlugins (each one's pluginConfig is checked)
  exit status: 0 clean, 1 the filter reported problems, 2 a file unreadable or neither JSON nor WasmPlugin YAML`;

interface Candidate {
  name: string;
  config: string;
}

/** The configurations in a file: itself when it is JSON, else the pluginConfig of every WasmPlugin in it. */
export function configsIn(text: string, file: string): Candidate[] {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{")) return [{ name: file, config: text }];
  const out: Candidate[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${file}: not valid YAML: ${doc.errors[0].message}`);
    const value = doc.toJS() as { kind?: string; metadata?: { name?: string; namespace?: string }; spec?: { pluginConfig?: unknown } } | null;
    if (value?.kind !== "WasmPlugin") continue;
    const name = `${file}: WasmPlugin ${value.metadata?.namespace ? `${value.metadata.namespace}/` : ""}${value.metadata?.name ?? "(unnamed)"}`;
    // Istio hands pluginConfig to the filter as JSON (the Struct's JSON form), and an absent or empty one
    // as an empty configuration (istio/istio pilot/pkg/model/extensions.go, WasmPluginWrapper.buildPluginConfig: only a
    // pluginConfig with fields is marshaled).
    const pc = value.spec?.pluginConfig;
    const empty = pc === undefined || pc === null || (typeof pc === "object" && Object.keys(pc).length === 0);
    out.push({ name, config: empty ? "" : JSON.stringify(pc) });
  }
  if (out.length === 0) throw new Error(`${file}: neither a JSON pluginConfig nor YAML with a WasmPlugin`);
  return out;
}

/** The filter's configure-time error lines for `config` (one per problem, and safe mode), as the proxy logs them. */
export async function check(config: string, wasm: WebAssembly.Module): Promise<string[]> {
  const sidecar = await createSidecar({ wasm, rootId: "meshlook", canary: false, pluginConfig: config, env: { MESHLOOK_INGEST_TOKEN: "check" } });
  const lines = sidecar.logMessages("error").filter((m) => m.startsWith("meshlook:"));
  await sidecar.close();
  return lines;
}

async function main(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.length === 0) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const wasm = await compileModule(WASM);
  let problems = 0;
  for (const file of args) {
    let candidates: Candidate[];
    try {
      candidates = configsIn(readFileSync(file, "utf8"), file);
    } catch (err) {
      process.stderr.write(`${(err as Error).message}\n`);
      return 2;
    }
    for (const c of candidates) {
      const lines = await check(c.config, wasm);
      if (lines.length === 0) process.stdout.write(`${c.name}: ok\n`);
      else {
        problems += lines.length;
        process.stdout.write(`${c.name}: ${lines.length} problem(s)\n${lines.map((l) => `  ${l}\n`).join("")}`);
      }
    }
  }
  return problems > 0 ? 1 : 0;
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await main(process.argv.slice(2));
