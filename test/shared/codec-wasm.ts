// The shared codec as asc compiles it (test/fixtures/filters/codec_wire.ts -> dist/fixtures/codec_wire.wasm),
// instantiated with @assemblyscript/loader, for the tests and bench/codec.ts.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { instantiateSync } from "@assemblyscript/loader";

interface CodecExports {
  memory: WebAssembly.Memory;
  inputPointer(length: number): number;
  outputPointer(): number;
  outputLength(): number;
  decodeReason(): number;
  decodeSeriesCount(): number;
  reencode(): number;
  crc32Of(start: number, end: number): number;
  bucketIndexOf(v: number, scale: number): number;
  recordValues(n: number): number;
  baselineValues(n: number): number;
  encodeRecorded(n: number, scale: number): number;
}

export interface WasmCodec {
  /** Reason code of the wasm decoder for `bytes` (0 = valid). */
  decodeReason(bytes: Uint8Array): number;
  /** Series count, or -reason (the benchmark's decode call). */
  decodeSeriesCount(bytes: Uint8Array): number;
  /** decode + encode inside wasm: the re-encoded bytes, or the reason code when invalid. */
  reencode(bytes: Uint8Array): Uint8Array | number;
  bucketIndex(v: number, scale: number): number;
  /** The shared CRC-32 of bytes[start, end), as a signed i32. */
  crc32(bytes: Uint8Array, start: number, end: number): number;
  /** Records `n` generated requests at `scale` into one series and encodes it (see codec_wire.ts). */
  encodeRecorded(n: number, scale: number): Uint8Array;
  /** Records `n` generated latencies into a SeriesStats inside wasm (bench/codec.ts). */
  recordValues(n: number): number;
  /** The same generator without recording: the baseline for recordValues. */
  baselineValues(n: number): number;
}

const root = fileURLToPath(new URL("../../", import.meta.url));
const wasmPath = `${root}dist/fixtures/codec_wire.wasm`;

/** Instantiates the wasm codec, building it first when missing (the build is content-hashed). */
export function loadWasmCodec(): WasmCodec {
  if (!existsSync(wasmPath)) execFileSync(process.execPath, [`${root}scripts/build-wasm.mjs`], { cwd: root, stdio: "inherit" });
  const { exports } = instantiateSync<Record<string, unknown>>(readFileSync(wasmPath), {});
  const x = exports as unknown as CodecExports;
  const put = (bytes: Uint8Array) => new Uint8Array(x.memory.buffer, x.inputPointer(bytes.length), bytes.length).set(bytes);
  return {
    decodeReason(bytes) {
      put(bytes);
      return x.decodeReason();
    },
    decodeSeriesCount(bytes) {
      put(bytes);
      return x.decodeSeriesCount();
    },
    reencode(bytes) {
      put(bytes);
      const reason = x.reencode();
      if (reason !== 0) return reason;
      return new Uint8Array(x.memory.buffer, x.outputPointer(), x.outputLength()).slice();
    },
    bucketIndex: (v, scale) => x.bucketIndexOf(v, scale),
    crc32(bytes, start, end) {
      put(bytes);
      return x.crc32Of(start, end);
    },
    encodeRecorded(n, scale) {
      const length = x.encodeRecorded(n, scale);
      return new Uint8Array(x.memory.buffer, x.outputPointer(), length).slice();
    },
    recordValues: (n) => x.recordValues(n),
    baselineValues: (n) => x.baselineValues(n),
  };
}
