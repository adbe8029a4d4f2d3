#!/usr/bin/env node
// Compiles the collector (and what it imports from shared/) to JavaScript in dist/collector/, so a
// deployment runs plain `node` on built files with production dependencies only (`npm ci --omit=dev`).
// esbuild bundles it in well under a second, so `npm start` rebuilds every time rather than tracking inputs.
// npm packages stay external (loaded from node_modules, native DuckDB bindings included); code splitting
// keeps each sink in its own chunk, so a DuckDB collector never loads snowflake-sdk.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const COLLECTOR_OUT = join(root, "dist", "collector");

/** Entry points: the collector process and the tools ops run beside it (all run in the image). */
const ENTRIES = { main: "collector/main.ts", query: "sim/query.ts", quarantine: "collector/quarantine-cli.ts" };
/**
 * Read beside the module at run time (import.meta.url / import.meta.dirname): shared/quantile.ts keeps one
 * source of MESH_QUANTILE for DuckDB and the Snowflake UDF; the remote-write exporter loads its protobuf
 * schema. (Paths that climb to the package root, package.json and ui/, resolve the same from dist/collector/.)
 */
const ASSETS = ["shared/quantile-core.js", "collector/remote-write/remote.proto"];

export async function buildCollector({ quiet = false } = {}) {
  const { build } = await import("esbuild");
  const started = performance.now();
  rmSync(COLLECTOR_OUT, { recursive: true, force: true });
  mkdirSync(COLLECTOR_OUT, { recursive: true });
  const result = await build({
    absWorkingDir: root,
    entryPoints: ENTRIES,
    outdir: COLLECTOR_OUT,
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "node",
    target: "node22",
    packages: "external",
    sourcemap: true,
    metafile: true,
    logLevel: "warning",
  });
  // Files a module reads next to itself at run time; bundled, "next to itself" is this directory.
  for (const asset of ASSETS) copyFileSync(join(root, asset), join(COLLECTOR_OUT, basename(asset)));
  if (!quiet) {
    const bytes = Object.entries(result.metafile.outputs)
      .filter(([file]) => file.endsWith(".js"))
      .reduce((sum, [, o]) => sum + o.bytes, 0);
    const ms = Math.round(performance.now() - started);
    process.stderr.write(`build-collector: ${relative(root, COLLECTOR_OUT)} (${(bytes / 1024).toFixed(0)} KiB of JavaScript, ${ms} ms)\n`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    console.log("usage: node scripts/build-collector.mjs\n  compiles collector/main.ts, sim/query.ts and collector/quarantine-cli.ts to dist/collector/ (esbuild)");
  } else {
    await buildCollector();
  }
}
