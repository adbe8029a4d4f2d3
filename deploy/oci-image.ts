// The filter as an OCI image that Istio's Wasm image fetcher (istio/istio pkg/wasm/imagefetcher.go)
// accepts, built without Docker. We use the "compat" variant of the Wasm image spec: one
// `application/vnd.oci.image.layer.v1.tar+gzip` layer holding `plugin.wasm`, plus the manifest annotation
// `module.wasm.image/variant=compat`. Istio tries this variant first, and — unlike the artifact variant
// with custom media types — every registry and every copy tool (oras, crane, skopeo) handles it.
//
// Every byte is a function of the wasm and the version alone (fixed tar header fields, gzip without a
// timestamp, key order fixed by construction), so the same wasm always gives the same manifest digest,
// which is what a WasmPlugin pins.
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { pack } from "tar-stream";

export const MEDIA_TYPES = {
  manifest: "application/vnd.oci.image.manifest.v1+json",
  index: "application/vnd.oci.image.index.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
} as const;

/** The file name Istio's fetcher looks for in the compat layer. */
export const WASM_FILE_IN_LAYER = "plugin.wasm";

export interface Blob {
  mediaType: string;
  /** `sha256:<hex>` of `bytes`. */
  digest: string;
  size: number;
  bytes: Buffer;
}

export interface WasmImage {
  layer: Blob;
  config: Blob;
  manifest: Blob;
  /** The tag recorded in the layout's index (`org.opencontainers.image.ref.name`). */
  tag: string;
}

export const sha256Hex = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

function blob(mediaType: string, bytes: Buffer): Blob {
  return { mediaType, digest: `sha256:${sha256Hex(bytes)}`, size: bytes.length, bytes };
}

const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const descriptor = ({ mediaType, digest, size }: Blob) => ({ mediaType, digest, size });

/** A one-file tar with every header field that could vary between machines pinned. */
async function tarOneFile(name: string, content: Buffer): Promise<Buffer> {
  const p = pack();
  p.entry({ name, size: content.length, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, uname: "", gname: "", type: "file" }, content);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Builds the compat-variant image of a wasm module. */
export async function buildWasmImage(wasm: Buffer, version: string): Promise<WasmImage> {
  const tar = await tarOneFile(WASM_FILE_IN_LAYER, wasm);
  // zlib writes MTIME = 0 and a fixed OS byte, so the gzip stream depends only on the tar and the
  // zlib version bundled with Node.
  const layer = blob(MEDIA_TYPES.layer, gzipSync(tar, { level: 9 }));
  // "wasm"/"wasip1" are the only GOARCH/GOOS pair naming WebAssembly; the fetcher ignores the platform,
  // but registries and scanners display it, and claiming linux/amd64 would be false.
  const config = blob(
    MEDIA_TYPES.config,
    json({
      architecture: "wasm",
      os: "wasip1",
      config: {},
      rootfs: { type: "layers", diff_ids: [`sha256:${sha256Hex(tar)}`] },
    }),
  );
  const manifest = blob(
    MEDIA_TYPES.manifest,
    json({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.manifest,
      config: descriptor(config),
      layers: [descriptor(layer)],
      annotations: {
        "module.wasm.image/variant": "compat",
        "org.opencontainers.image.title": "meshlook",
        "org.opencontainers.image.version": version,
      },
    }),
  );
  return { layer, config, manifest, tag: version };
}

/**
 * Writes an OCI image layout (image-spec `image-layout.md`): `oci-layout`, `index.json` naming the
 * manifest under the tag, and every blob under `blobs/sha256/<hex>`.
 */
export function writeOciLayout(dir: string, image: WasmImage): void {
  const blobs = join(dir, "blobs", "sha256");
  mkdirSync(blobs, { recursive: true });
  for (const b of [image.layer, image.config, image.manifest]) {
    writeFileSync(join(blobs, b.digest.slice("sha256:".length)), b.bytes);
  }
  writeFileSync(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  writeFileSync(
    join(dir, "index.json"),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.index,
      manifests: [{ ...descriptor(image.manifest), annotations: { "org.opencontainers.image.ref.name": image.tag } }],
    }),
  );
}
