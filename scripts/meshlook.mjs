#!/usr/bin/env node
// `meshlook`: the one command-line entry point (package.json `bin`; `npm start` and `npm run demo` call it).
// Plain JavaScript so that it runs where only production dependencies are installed (the collector image):
// `start`, `query` and `quarantine` run the built collector (dist/collector/, rebuilt first when esbuild is
// installed);
// the commands that run the simulated mesh or package the filter need the development install (`npm ci`).
// Each command runs in this process, so signals reach it directly (SIGTERM stops the collector cleanly).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const COMMANDS = {
  start: {
    summary: "run the collector (settings: MESHLOOK_* environment or MESHLOOK_CONFIG; docs/collector.md)",
    built: "main.js",
    help: `usage: meshlook start
  Runs the collector: HTTP ingest on MESHLOOK_HOST:MESHLOOK_PORT (default 0.0.0.0:8080), spool and DuckDB file
  under MESHLOOK_DATA_DIR (default ./data). Every setting is an environment variable or a key of the YAML file
  named by MESHLOOK_CONFIG: see docs/collector.md. With no ingest token configured it generates one in
  <data dir>/ingest-token. SIGTERM or SIGINT stops it after a final load into the warehouse.`,
  },
  demo: { summary: "the whole path on this machine: collector, simulated mesh, warehouse checked against the truth", script: "sim/demo.ts", wasm: ["release"] },
  send: { summary: "drive the simulated mesh against a running collector (--url, --token)", script: "sim/send.ts", wasm: ["release"] },
  query: { summary: "run SQL on a meshlook DuckDB file, MESH_QUANTILE registered", built: "query.js" },
  "check-config": { summary: "check a filter pluginConfig (JSON, or YAML with WasmPlugins) with the filter's own parser", script: "scripts/check-config.ts", wasm: ["release"] },
  quarantine: {
    summary: "list or reload summaries the warehouse refused for good (list | reload [id…])",
    built: "quarantine.js",
    help: `usage: meshlook quarantine list | reload [id ...]
  list    one line per summary the warehouse refused for good: id, time, producer, seq, reason, message
  reload  queue them all (or the ids given) for the running collector's next load cycle
  Reads the collector's settings (MESHLOOK_DATA_DIR, MESHLOOK_CONFIG) to find <data dir>/quarantine; in the
  image, \`kubectl exec <pod> -c collector -- node scripts/meshlook.mjs quarantine list\` (docs/operations.md).`,
  },
  package: { summary: "build the release filter and write dist/package/ (wasm, OCI layout, pinned overlays)", script: "deploy/package.ts", wasm: ["release"] },
};

/**
 * Development tools behind `npm run soak|fuzz|bench`, not listed: they need a clone. Run through here so that
 * `--help` answers at once instead of after the wasm build they need (the benchmarks need every module).
 */
const DEV_COMMANDS = {
  soak: { script: "test/faults/soak.ts", wasm: ["release"] },
  fuzz: { script: "test/fuzz/run.ts", wasm: ["release"] },
  bench: { script: "bench/run.ts", wasm: [] },
};

const USAGE = `usage: meshlook <command> [options]     (meshlook <command> --help for its options)

${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`)
  .join("\n")}`;

const fail = (message) => {
  process.stderr.write(`meshlook: ${message}\n`);
  process.exit(2);
};

let [name, ...rest] = process.argv.slice(2);
if (name === "help" && rest.length) [name, rest] = [rest[0], ["--help"]];
if (!name || name === "--help" || name === "-h" || name === "help") {
  console.log(USAGE);
  process.exit(name ? 0 : 2);
}
const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : Object.hasOwn(DEV_COMMANDS, name) ? DEV_COMMANDS[name] : undefined;
if (!command) fail(`unknown command "${name}"\n${USAGE}`);
const wantsHelp = rest.includes("--help") || rest.includes("-h");

if (command.help && wantsHelp) {
  console.log(command.help);
  process.exit(0);
}

/** True where the development install is present (sources and dev dependencies), false in the image. */
const devInstall = () => existsSync(join(root, "collector", "main.ts")) && existsSync(join(root, "node_modules", "esbuild"));

if (command.wasm && !wantsHelp) {
  if (!devInstall()) fail(`"${name}" needs the development install: run \`npm ci\` in a clone of the repository`);
  // The user commands need only the release filter: the debug and fixture builds are for tests and benchmarks.
  const built = spawnSync(process.execPath, [join(root, "scripts", "build-wasm.mjs"), ...command.wasm], { stdio: "inherit" });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

// The command reads its own options from process.argv, as when it is run as a script.
if (command.built) {
  if (devInstall()) {
    const { buildCollector } = await import("./build-collector.mjs");
    await buildCollector({ quiet: true });
  }
  const file = join(root, "dist", "collector", command.built);
  if (!existsSync(file)) fail(`${file} is missing: build it with \`npm run build\``);
  process.argv = [process.argv[0], file, ...rest];
  await import(pathToFileURL(file).href);
} else {
  if (!existsSync(join(root, "node_modules", "tsx"))) fail(`"${name}" needs the development install: run \`npm ci\` in a clone of the repository`);
  const { register } = await import("tsx/esm/api");
  register();
  const file = join(root, command.script);
  process.argv = [process.argv[0], file, ...rest];
  await import(pathToFileURL(file).href);
}
