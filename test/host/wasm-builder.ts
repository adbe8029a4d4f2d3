// Builds tiny WebAssembly binaries by hand, for modules the host must refuse (an SDK cannot emit them).
type V = "i32" | "i64";
const CODE: Record<V, number> = { i32: 0x7f, i64: 0x7e };

export interface FuncSpec {
  params: V[];
  results: V[];
}

function u32(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}
const name = (s: string) => [...u32(Buffer.byteLength(s)), ...Buffer.from(s)];
const section = (id: number, body: number[]) => [id, ...u32(body.length), ...body];
const vec = (items: number[][]) => [...u32(items.length), ...items.flat()];

export interface ModuleSpec {
  imports?: ({ module: string; name: string } & FuncSpec)[];
  globalImports?: { module: string; name: string }[];
  exports?: ({ name: string } & FuncSpec)[];
}

/** A module with the given function imports and exports (exported functions return zeros) and a memory. */
export function buildModule(spec: ModuleSpec): Uint8Array {
  const types: FuncSpec[] = [];
  const typeIndex = (f: FuncSpec) => {
    const i = types.findIndex((t) => t.params.join() === f.params.join() && t.results.join() === f.results.join());
    if (i >= 0) return i;
    types.push(f);
    return types.length - 1;
  };
  const imports = (spec.imports ?? []).map((i) => [...name(i.module), ...name(i.name), 0x00, ...u32(typeIndex(i))]);
  for (const g of spec.globalImports ?? []) imports.push([...name(g.module), ...name(g.name), 0x03, 0x7f, 0x00]);
  const exportsList = spec.exports ?? [];
  const funcTypes = exportsList.map((e) => u32(typeIndex(e)));
  const nImported = spec.imports?.length ?? 0;
  const exportEntries = exportsList.map((e, i) => [...name(e.name), 0x00, ...u32(nImported + i)]);
  exportEntries.push([...name("memory"), 0x02, 0x00]);
  const bodies = exportsList.map((e) => {
    const code = [0x00, ...e.results.flatMap((r) => [r === "i32" ? 0x41 : 0x42, 0x00]), 0x0b];
    return [...u32(code.length), ...code];
  });
  const typeSec = vec(types.map((t) => [0x60, ...vec(t.params.map((p) => [CODE[p]])), ...vec(t.results.map((r) => [CODE[r]]))]));
  return Uint8Array.from([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, typeSec),
    ...section(2, vec(imports)),
    ...section(3, vec(funcTypes)),
    ...section(5, vec([[0x00, 0x01]])),
    ...section(7, vec(exportEntries)),
    ...section(10, vec(bodies)),
  ]);
}

/** The smallest module Envoy accepts: an ABI version export and an allocator. */
export const MINIMAL_EXPORTS: ({ name: string } & FuncSpec)[] = [
  { name: "proxy_abi_version_0_2_1", params: [], results: [] },
  { name: "malloc", params: ["i32"], results: ["i32"] },
];
