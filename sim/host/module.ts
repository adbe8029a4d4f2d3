// Reads what Envoy checks before it links a module: the function types of every import and export,
// and which proxy_abi_version_* export the module carries. Node's WebAssembly API does not expose
// function signatures (type reflection is still behind a flag), so the sections are parsed here.

export type ValType = "i32" | "i64" | "f32" | "f64" | "v128" | "funcref" | "externref";

export interface FuncSig {
  params: ValType[];
  results: ValType[];
}

export interface ModuleImport {
  module: string;
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
  /** Present for function imports. */
  sig?: FuncSig;
}

export interface ModuleExport {
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
  sig?: FuncSig;
}

export interface ModuleShape {
  imports: ModuleImport[];
  exports: ModuleExport[];
}

const VALTYPES: Record<number, ValType> = {
  0x7f: "i32",
  0x7e: "i64",
  0x7d: "f32",
  0x7c: "f64",
  0x7b: "v128",
  0x70: "funcref",
  0x6f: "externref",
};
const KINDS = ["function", "table", "memory", "global", "tag"] as const;

export class WasmParseError extends Error {}

class Reader {
  pos = 0;
  constructor(
    private readonly b: Uint8Array,
    readonly end = b.length,
  ) {}
  byte(): number {
    if (this.pos >= this.end) throw new WasmParseError("Failed to parse corrupted Wasm module");
    return this.b[this.pos++];
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.byte();
      result |= (byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result >>> 0;
      shift += 7;
      if (shift > 35) throw new WasmParseError("Failed to parse corrupted Wasm module");
    }
  }
  name(): string {
    const len = this.u32();
    if (this.pos + len > this.end) throw new WasmParseError("Failed to parse corrupted Wasm module");
    const s = new TextDecoder().decode(this.b.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
  valtype(): ValType {
    const t = VALTYPES[this.byte()];
    if (!t) throw new WasmParseError("Failed to parse corrupted Wasm module");
    return t;
  }
  limits(): void {
    const flags = this.byte();
    this.u32();
    if (flags & 1) this.u32();
  }
}

/** Parses the type, import, function and export sections of a WebAssembly binary. */
export function parseModuleShape(bytes: Uint8Array): ModuleShape {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) {
    throw new WasmParseError("Failed to parse corrupted Wasm module");
  }
  const types: FuncSig[] = [];
  const imports: ModuleImport[] = [];
  const funcTypes: number[] = []; // type index of every function, imported ones first
  const rawExports: { name: string; kind: number; index: number }[] = [];
  const r = new Reader(bytes);
  r.pos = 8;
  while (r.pos < bytes.length) {
    const id = r.byte();
    const size = r.u32();
    const end = r.pos + size;
    if (end > bytes.length) throw new WasmParseError("Failed to parse corrupted Wasm module");
    const s = new Reader(bytes, end);
    s.pos = r.pos;
    if (id === 1) {
      for (let n = s.u32(); n > 0; n--) {
        if (s.byte() !== 0x60) throw new WasmParseError("Failed to parse corrupted Wasm module");
        const params = Array.from({ length: s.u32() }, () => s.valtype());
        const results = Array.from({ length: s.u32() }, () => s.valtype());
        types.push({ params, results });
      }
    } else if (id === 2) {
      for (let n = s.u32(); n > 0; n--) {
        const module = s.name();
        const name = s.name();
        const kind = s.byte();
        const imp: ModuleImport = { module, name, kind: KINDS[kind] ?? "tag" };
        if (kind === 0) {
          const t = s.u32();
          imp.sig = types[t];
          funcTypes.push(t);
        } else if (kind === 1) {
          s.byte();
          s.limits();
        } else if (kind === 2) {
          s.limits();
        } else if (kind === 3) {
          s.valtype();
          s.byte();
        } else {
          s.byte();
          s.u32();
        }
        imports.push(imp);
      }
    } else if (id === 3) {
      for (let n = s.u32(); n > 0; n--) funcTypes.push(s.u32());
    } else if (id === 7) {
      for (let n = s.u32(); n > 0; n--) {
        const name = s.name();
        const kind = s.byte();
        rawExports.push({ name, kind, index: s.u32() });
      }
    }
    r.pos = end;
  }
  const exports = rawExports.map(({ name, kind, index }) => {
    const e: ModuleExport = { name, kind: KINDS[kind] ?? "tag" };
    if (kind === 0) e.sig = types[funcTypes[index]];
    return e;
  });
  return { imports, exports };
}

export function formatSig(types: ValType[]): string {
  return types.length === 0 ? "void" : types.join(" ");
}
