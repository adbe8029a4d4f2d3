#!/usr/bin/env node
// `npm run image`: builds the collector image from deploy/image/Containerfile with whichever container tool
// is installed and usable: docker (its daemon must answer), else podman, else buildah. The image is labelled
// with the package version and the git revision; its creation time is the commit's, so a rebuild of the same
// commit carries the same labels.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
const USAGE = `usage: npm run image -- [--tag NAME:TAG] [--base IMAGE] [--tool docker|podman|buildah] [--isolation chroot]
  --tag        image name (default meshlook-collector:${version})
  --base       base image with Node.js >= 22 and npm (default: the Containerfile's, the official node:24 image)
  --tool       the container tool (default: docker if its daemon answers, else podman, else buildah)
  --isolation  podman/buildah RUN isolation, e.g. chroot where the machine refuses user namespaces`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      tag: { type: "string", default: `meshlook-collector:${version}` },
      base: { type: "string" },
      tool: { type: "string" },
      isolation: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  }));
} catch (err) {
  console.error(`${err.message}\n${USAGE}`);
  process.exit(2);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}

const works = (cmd, args) => spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
/** The first usable tool; docker's client alone is not enough, its daemon must answer. */
function pickTool() {
  if (works("docker", ["info"])) return "docker";
  if (works("podman", ["--version"])) return "podman";
  if (works("buildah", ["--version"])) return "buildah";
  return undefined;
}

const tool = values.tool ?? pickTool();
if (!tool) {
  console.error("image: no container tool found: install docker (with a running daemon), podman or buildah");
  process.exit(1);
}
const git = (...args) => {
  try {
    return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return undefined;
  }
};
const revision = git("rev-parse", "HEAD") ?? "unknown";
const created = git("log", "-1", "--format=%cI") ?? new Date().toISOString();
const args = [
  "build",
  "-f",
  join(root, "deploy", "image", "Containerfile"),
  "-t",
  values.tag,
  "--build-arg",
  `VERSION=${version}`,
  "--build-arg",
  `REVISION=${revision}`,
  "--build-arg",
  `CREATED=${created}`,
];
if (values.base) args.push("--build-arg", `BASE=${values.base}`);
// Docker's image format keeps HEALTHCHECK; OCI images drop it.
if (tool !== "docker") args.push("--format", "docker", "--layers");
if (values.isolation) args.push("--isolation", values.isolation);
args.push(root);
console.log(`image: ${tool} ${args.join(" ")}`);
const started = Date.now();
const r = spawnSync(tool, args, { stdio: "inherit" });
if (r.status !== 0) {
  console.error(`image: ${tool} build failed (exit ${r.status ?? r.signal})`);
  process.exit(1);
}
console.log(`image: built ${values.tag} (version ${version}, revision ${revision}) in ${Math.round((Date.now() - started) / 1000)} s`);
