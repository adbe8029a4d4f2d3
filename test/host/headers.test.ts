// Header maps through the conformance filter test/fixtures/filters/headers.ts: the pairs the filter
// decodes, Envoy's byte size, and edits (add, replace, remove, set pairs) seen on the way out.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSidecar, decodePairs, encodePairs, type Sidecar } from "../../sim/host/index.ts";

let sidecar: Sidecar;
beforeAll(async () => {
  sidecar = await createSidecar({ wasm: "dist/fixtures/headers.wasm", rootId: "conformance", pluginConfig: "from-config" });
});
afterAll(() => sidecar.close());

const request: [string, string][] = [
  [":method", "GET"],
  [":path", "/p"],
  [":authority", "svc"],
  ["x-first", "1"],
  ["x-first", "2"],
  ["X-Replaced", "old"],
  ["x-removed", "gone"],
  ["x-removed", "gone-too"],
];

describe("header maps", () => {
  it("hands the filter the request map in the pairs format, with Envoy's byte size", () => {
    sidecar.logs.length = 0;
    sidecar.stream({ requestHeaders: request, responseHeaders: { ":status": "200" } });
    const lines = sidecar.logMessages("info");
    const listed = request.map(([k, v]) => `${k.toLowerCase()}=${v};`).join("");
    expect(lines).toContain(`request count=8 pairs=8 eos=1 ${listed}`);
    expect(lines).toContain(`request size=${request.reduce((n, [k, v]) => n + k.length + v.length, 0)}`);
    expect(lines).toContain("request x-first=1");
  });

  it("applies add, replace (dropping repeats) and remove (all values) to the request", () => {
    const r = sidecar.stream({ requestHeaders: request, requestBody: "b", responseHeaders: { ":status": "200" } });
    expect(r.requestHeaders).toEqual([
      [":method", "GET"],
      [":path", "/p"],
      [":authority", "svc"],
      ["x-first", "1"],
      ["x-first", "2"],
      ["x-replaced", "new"],
      ["x-added", "1"],
    ]);
    expect(r.responseHeaders).toEqual([
      [":status", "200"],
      ["x-conformance", "from-config"],
    ]);
    expect(sidecar.logMessages("info").some((l) => l.includes("eos=0"))).toBe(true);
  });

  it("replaces the whole response map with set_header_map_pairs", () => {
    const r = sidecar.stream({ requestHeaders: [...request, ["x-set-pairs", "1"]], responseHeaders: { ":status": "200", a: "b" } });
    expect(r.responseHeaders).toEqual([
      [":status", "203"],
      ["x-only", "yes"],
    ]);
    expect(sidecar.logMessages("info")).toContain("set pairs 0");
  });
});

describe("pairs serialization", () => {
  it("matches the ABI layout byte for byte and decodes back", () => {
    const bytes = encodePairs([
      ["k", "vv"],
      ["", "x"],
    ]);
    expect(Buffer.from(bytes).toString("hex")).toBe("02000000" + "01000000" + "02000000" + "00000000" + "01000000" + "6b00" + "767600" + "00" + "7800");
    expect(decodePairs(bytes)).toEqual([
      ["k", "vv"],
      ["", "x"],
    ]);
    expect(decodePairs(bytes.subarray(0, 10))).toEqual([]);
  });
});
