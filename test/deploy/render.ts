// Renders kustomizations with the kubectl ops already have (`kubectl kustomize`), as the tests' only
// way to read the shipped manifests: what is checked is what `kubectl apply -k` would send.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import YAML from "yaml";
import type { Resource } from "./crd-validator.ts";

export const root = join(import.meta.dirname, "..", "..");
const kubectl = process.env.KUBECTL ?? "kubectl";

/** Fails loudly (also in CI) when kubectl is missing: these tests must not pass by not running. */
export function requireKubectl(): string {
  try {
    return execFileSync(kubectl, ["version", "--client"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch {
    throw new Error(
      `${kubectl} not found: the deploy tests render manifests with \`kubectl kustomize\`. Install Debian's ` +
        "kubectl with `apt-get update && apt-get install -y kubernetes-client` (.ci/run does this), " +
        "or point KUBECTL at a kubectl binary.",
    );
  }
}

export function render(dir: string): Resource[] {
  const out = execFileSync(kubectl, ["kustomize", dir], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return YAML.parseAllDocuments(out)
    .map((d) => d.toJS() as Resource)
    .filter((r) => r !== null);
}

/** Every directory under `dir` holding a kustomization.yaml, relative to the repository root. */
export function kustomizations(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    if (existsSync(join(d, "kustomization.yaml"))) found.push(relative(root, d));
    for (const n of readdirSync(d)) if (statSync(join(d, n)).isDirectory()) walk(join(d, n));
  };
  walk(join(root, dir));
  return found.sort();
}
