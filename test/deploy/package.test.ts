// `npm run package`: the OCI layout is read back the way a registry client would (every digest and
// size recomputed from the bytes, no blob left unreferenced), the layer is unpacked with the system's
// tar (not the library that wrote it) back to the exact wasm, and the WasmPlugins it pins carry the
// digest Istio will compare: the manifest digest for oci://, the module's own for https://.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_IMAGE, packageRelease, type Release } from "../../deploy/package.ts";
import { CrdValidator } from "./crd-validator.ts";
import { render, requireKubectl, root } from "./render.ts";

const releaseWasm = join(root, "dist", "meshlook.wasm");
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const tmp = mkdtempSync(join(tmpdir(), "meshlook-package-"));
const crds = new CrdValidator(join(root, "test", "fixtures", "reference", "istio"));

function filesUnder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.set(join(e.parentPath, e.name).slice(dir.length), readFileSync(join(e.parentPath, e.name)));
  }
  return out;
}

let wasm: Buffer;
let release: Release;
const out = join(tmp, "oci-release");

beforeAll(async () => {
  if (!existsSync(releaseWasm)) throw new Error(`${releaseWasm} is missing: run \`npm run build\` (npm test does it first)`);
  wasm = readFileSync(releaseWasm);
  // The CLI, as `npm run package` runs it, minus the build step.
  execFileSync(process.execPath, ["--import", "tsx", join(root, "deploy", "package.ts"), "--out", out], { cwd: root, stdio: "pipe" });
  release = JSON.parse(readFileSync(join(out, "release.json"), "utf8"));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe("release files", () => {
  it("carry the built wasm and its sha256 in sha256sum format", () => {
    expect(readFileSync(join(out, "meshlook.wasm")).equals(wasm)).toBe(true);
    expect(readFileSync(join(out, "meshlook.wasm.sha256"), "utf8")).toBe(`${sha256(wasm)}  meshlook.wasm\n`);
    expect(execFileSync("sha256sum", ["-c", "meshlook.wasm.sha256"], { cwd: out, encoding: "utf8" })).toBe("meshlook.wasm: OK\n");
    expect(release.wasm).toEqual({ file: "meshlook.wasm", size: wasm.length, sha256: sha256(wasm) });
    expect(release.version).toBe(version);
  });

  it("are byte-for-byte reproducible", async () => {
    const again = join(tmp, "again");
    await packageRelease({ wasmPath: releaseWasm, outDir: again, version });
    const a = filesUnder(out);
    const b = filesUnder(again);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [name, bytes] of a) expect(b.get(name)!.equals(bytes), name).toBe(true);
  });

  it("refuse a missing or non-wasm module and a tagged image name", async () => {
    const bogus = join(tmp, "bogus.wasm");
    writeFileSync(bogus, "not wasm at all");
    await expect(packageRelease({ wasmPath: join(tmp, "absent.wasm"), outDir: join(tmp, "x"), version })).rejects.toThrow(/does not exist: build the filter/);
    await expect(packageRelease({ wasmPath: bogus, outDir: join(tmp, "x"), version })).rejects.toThrow(/not a wasm module/);
    await expect(packageRelease({ wasmPath: releaseWasm, outDir: join(tmp, "x"), version, image: "registry.example.com/m:1" })).rejects.toThrow(/--image/);
    await expect(packageRelease({ wasmPath: releaseWasm, outDir: join(tmp, "x"), version, wasmUrl: "ftp://x/m.wasm" })).rejects.toThrow(/--wasm-url/);
  });
});

describe("OCI image layout", () => {
  const layout = () => join(out, "oci");
  const blob = (digest: string) => readFileSync(join(layout(), "blobs", "sha256", digest.replace(/^sha256:/, "")));
  const check = (d: { digest: string; size: number }) => {
    const bytes = blob(d.digest);
    expect(`sha256:${sha256(bytes)}`).toBe(d.digest);
    expect(bytes.length).toBe(d.size);
    return bytes;
  };

  it("names every blob by its digest and references each one exactly once", () => {
    expect(JSON.parse(readFileSync(join(layout(), "oci-layout"), "utf8"))).toEqual({ imageLayoutVersion: "1.0.0" });
    const index = JSON.parse(readFileSync(join(layout(), "index.json"), "utf8"));
    expect(index.schemaVersion).toBe(2);
    expect(index.manifests).toHaveLength(1);
    const desc = index.manifests[0];
    expect(desc.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(desc.annotations["org.opencontainers.image.ref.name"]).toBe(version);
    const manifest = JSON.parse(check(desc).toString());
    expect(desc.digest).toBe(release.image.manifestDigest);
    const referenced = [desc.digest, manifest.config.digest, ...manifest.layers.map((l: { digest: string }) => l.digest)];
    const stored = readdirSync(join(layout(), "blobs", "sha256")).map((h) => `sha256:${h}`);
    expect(stored.sort()).toEqual([...referenced].sort());
    for (const h of stored) expect(`sha256:${sha256(blob(h))}`).toBe(h);
  });

  it("is the compat Wasm image Istio's fetcher takes: one tar+gzip layer holding plugin.wasm", () => {
    const index = JSON.parse(readFileSync(join(layout(), "index.json"), "utf8"));
    const manifest = JSON.parse(blob(index.manifests[0].digest).toString());
    expect(manifest.schemaVersion).toBe(2);
    expect(manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(manifest.annotations["module.wasm.image/variant"]).toBe("compat");
    expect(manifest.config.mediaType).toBe("application/vnd.oci.image.config.v1+json");
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0].mediaType).toBe("application/vnd.oci.image.layer.v1.tar+gzip");
    const layer = check(manifest.layers[0]);
    // gzip MTIME (bytes 4..7) is zero: no build time leaks into the digest.
    expect(layer.subarray(0, 3)).toEqual(Buffer.from([0x1f, 0x8b, 0x08]));
    expect(layer.readUInt32LE(4)).toBe(0);
    const config = JSON.parse(check(manifest.config).toString());
    expect(config.rootfs).toEqual({ type: "layers", diff_ids: [`sha256:${sha256(gunzipSync(layer))}`] });
    expect(config).toMatchObject({ architecture: expect.any(String), os: expect.any(String) });

    const layerFile = join(tmp, "layer.tar.gz");
    writeFileSync(layerFile, layer);
    expect(execFileSync("tar", ["-tzf", layerFile], { encoding: "utf8" })).toBe("plugin.wasm\n");
    const unpacked = join(tmp, "unpacked");
    mkdirSync(unpacked);
    execFileSync("tar", ["-xzf", layerFile, "-C", unpacked]);
    expect(readFileSync(join(unpacked, "plugin.wasm")).equals(wasm)).toBe(true);
  });
});

describe("pinned WasmPlugins", () => {
  beforeAll(() => {
    requireKubectl();
  });

  it("pin the image manifest digest on the oci:// url, for every overlay", () => {
    expect(release.overlays).toEqual(["gateway-api", "ingress-gateway", "mesh", "namespace", "outbound"]);
    for (const o of release.overlays) {
      const [plugin] = render(join(out, "istio", o)).filter((r) => r.kind === "WasmPlugin");
      expect(plugin.spec.url, o).toBe(`oci://registry.example.com/meshlook/meshlook-filter:${version}`);
      expect(`sha256:${plugin.spec.sha256}`, o).toBe(release.image.manifestDigest);
      expect(plugin.metadata.labels?.["app.kubernetes.io/version"], o).toBe(version);
      expect(crds.validate(plugin), o).toEqual([]);
      // The release layer changes the pin and nothing else (a label added to a selector would detach it).
      const [source] = render(join(root, "deploy", "istio", "overlays", o)).filter((r) => r.kind === "WasmPlugin");
      expect({ ...plugin.spec, url: undefined, sha256: undefined }, o).toEqual({ ...source.spec, url: undefined, sha256: undefined });
      expect(plugin.metadata.name, o).toBe(source.metadata.name);
    }
    // What Istio then checks, end to end: the manifest the digest names unpacks to the built module.
    expect(release.image.manifestDigest).toBe(JSON.parse(readFileSync(join(out, "oci", "index.json"), "utf8")).manifests[0].digest);
  });

  it("replace a placeholder that already names this version's default image", () => {
    // Applied without the release layer, an overlay still points at the image of the same version.
    const [base] = render(join(root, "deploy", "istio", "base")).filter((r) => r.kind === "WasmPlugin");
    expect(base.spec.url).toBe(`oci://${DEFAULT_IMAGE}:${version}`);
    expect(base.spec.sha256).toBeUndefined();
  });

  it("pin the built wasm's own sha256 on an https:// url", async () => {
    const httpOut = join(tmp, "https-release");
    const url = "https://artifacts.example.com/meshlook/meshlook-0.1.0.wasm";
    const r = await packageRelease({ wasmPath: releaseWasm, outDir: httpOut, version, wasmUrl: url });
    expect(r.wasmPlugin).toEqual({ url, sha256: sha256(wasm) });
    for (const o of r.overlays) {
      const [plugin] = render(join(httpOut, "istio", o)).filter((x) => x.kind === "WasmPlugin");
      expect(plugin.spec.url, o).toBe(url);
      expect(plugin.spec.sha256, o).toBe(sha256(readFileSync(releaseWasm)));
      expect(crds.validate(plugin), o).toEqual([]);
    }
  });
});
