#!/usr/bin/env node
// Builds every WebAssembly module the project runs: the filter (release + debug, from asconfig.json)
// and the small fixture filters used by the host conformance tests and the benchmarks.
// A target is rebuilt only when its inputs changed (content hash, not mtime, so a fresh clone and a
// touched-but-unchanged file behave the same). `--force` rebuilds everything.
//
//   node scripts/build-wasm.mjs [--force] [release] [debug] [fixtures]
//
// Naming groups builds only those: the demo and `npm run package` need the release filter alone, the tests
// everything. The collector needs none of them (scripts/build-collector.mjs builds it).
import { createHash } from "node:crypto";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
if (args.includes("--help") || args.includes("-h")) {
  console.log(`usage: node scripts/build-wasm.mjs [--force] [release] [debug] [fixtures]
  release   dist/meshlook.wasm, the filter as deployed
  debug     dist/meshlook.debug.wasm, assertions on (the tests run it)
  fixtures  dist/fixtures/*.wasm, the host-conformance and benchmark filters
  (no group: all of them)  --force: rebuild even when up to date`);
  process.exit(0);
}
const force = args.includes("--force");
const GROUPS = ["release", "debug", "fixtures"];
const groups = args.filter((a) => a !== "--force");
for (const g of groups) {
  if (!GROUPS.includes(g)) {
    process.stderr.write(`build-wasm: unknown group "${g}" (one of ${GROUPS.join(", ")}; --help)\n`);
    process.exit(2);
  }
}
const wanted = (group) => groups.length === 0 || groups.includes(group);
const asc = join(root, "node_modules", "assemblyscript", "bin", "asc");
const stampFile = join(root, "dist", ".build-stamps.json");

function listTs(dir) {
  const abs = join(root, dir);
  if (!existsSync(abs)) return [];
  const out = [];
  for (const name of readdirSync(abs)) {
    const p = join(abs, name);
    if (statSync(p).isDirectory()) out.push(...listTs(relative(root, p)));
    else if (name.endsWith(".ts")) out.push(relative(root, p));
  }
  return out.sort();
}

// The compiler's and SDK's versions are part of every hash, so a changed pin rebuilds everything.
const pins = ["assemblyscript", "@solo-io/proxy-runtime"].map((p) => {
  const file = join(root, "node_modules", p, "package.json");
  if (!existsSync(file)) {
    process.stderr.write(`build-wasm: ${p} is not installed; run \`npm ci\` first (see README, Quickstart)\n`);
    process.exit(1);
  }
  return JSON.parse(readFileSync(file, "utf8")).version;
});

function hashInputs(files) {
  const h = createHash("sha256");
  h.update(pins.join(","));
  for (const f of files)
    h.update(f)
      .update("\0")
      .update(readFileSync(join(root, f)))
      .update("\0");
  return h.digest("hex");
}

// Sources every module may import: the filter and the portable shared core (sketch, codec).
const sharedInputs = () => [...listTs("shared"), "asconfig.json"];

const targets = [];
if (existsSync(join(root, "filter", "index.ts"))) {
  for (const target of ["release", "debug"].filter(wanted)) {
    const cfg = JSON.parse(readFileSync(join(root, "asconfig.json"), "utf8"));
    targets.push({
      name: `filter:${target}`,
      outputs: [cfg.targets[target].binaryFile],
      inputs: () => [...listTs("filter"), ...sharedInputs()],
      args: ["filter/index.ts", "--config", "asconfig.json", "--target", target],
    });
  }
}
for (const dir of wanted("fixtures") ? ["test/fixtures/filters", "bench/filters"] : []) {
  for (const src of listTs(dir).filter((f) => dirname(f) === dir)) {
    const out = `dist/fixtures/${basename(src, ".ts")}.wasm`;
    targets.push({
      name: `fixture:${basename(src, ".ts")}`,
      outputs: [out],
      inputs: () => [src, ...listTs(join(dir, "lib")), ...listTs("filter/sdk"), ...sharedInputs()],
      args: [src, "-b", out, "--config", "scripts/asconfig.fixtures.json", "--target", "release"],
    });
  }
}

const stamps = existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, "utf8")) : {};
const pending = targets.filter((t) => {
  t.hash = hashInputs(t.inputs());
  return force || stamps[t.name] !== t.hash || !t.outputs.every((o) => existsSync(join(root, o)));
});

let begun = 0;
async function build(t) {
  for (const o of t.outputs) mkdirSync(dirname(join(root, o)), { recursive: true });
  const started = Date.now();
  // Each module takes asc from a few seconds to a minute: say what is being built before waiting on it.
  console.log(`build-wasm: [${++begun}/${pending.length}] building ${t.name} ...`);
  try {
    await run(process.execPath, [asc, ...t.args], { cwd: root, maxBuffer: 64 << 20 });
  } catch (err) {
    process.stderr.write(`build-wasm: ${t.name} failed\n${err.stdout ?? ""}${err.stderr ?? err.message}\n`);
    process.exitCode = 1;
    throw new Error(`${t.name} failed`);
  }
  stamps[t.name] = t.hash;
  console.log(`build-wasm: ${t.name} -> ${t.outputs.join(", ")} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

// Two builds at a time: asc is single-threaded and the CI machine has two cores.
const queue = [...pending];
const workers = Array.from({ length: 2 }, async () => {
  while (queue.length) await build(queue.shift());
});
try {
  await Promise.all(workers);
} catch {
  process.exitCode = 1;
} finally {
  mkdirSync(dirname(stampFile), { recursive: true });
  writeFileSync(stampFile, JSON.stringify(stamps, null, 2));
}
if (!pending.length) console.log(`build-wasm: ${targets.length} module(s) up to date`);
