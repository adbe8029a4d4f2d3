// proxy-runtime 0.1.8 defects that a faithful host must expose (docs/host.md lists them).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { checkModule, createSidecar } from "../../sim/host/index.ts";

describe("@solo-io/proxy-runtime 0.1.8 under Envoy's rules", () => {
  it("the SDK's default onConfigure traps on an empty plugin configuration (size passed as the size pointer)", async () => {
    await expect(createSidecar({ wasm: "dist/fixtures/noop.wasm", rootId: "noop" })).rejects.toMatchObject({
      stage: "configure",
      message: expect.stringMatching(/^Function: proxy_on_configure failed: memory access out of bounds/),
    });
  });

  it("the same filter configures once a configuration is present (its read then depends on stale SDK state)", async () => {
    const sidecar = await createSidecar({ wasm: "dist/fixtures/noop.wasm", rootId: "noop", pluginConfig: "{}" });
    expect(sidecar.stream({ requestHeaders: { ":method": "GET", ":path": "/", ":authority": "a" } }).trapped).toBe(false);
    await sidecar.close();
  });

  it("a root id the module did not register fails the stream context, as in Envoy", async () => {
    await expect(createSidecar({ wasm: "dist/fixtures/noop.wasm", rootId: "other", pluginConfig: "{}" })).rejects.toMatchObject({
      message: expect.stringMatching(/^Function: proxy_on_context_create failed/),
    });
  });

  it("the SDK's proxy_on_grpc_trailing_metadata export is not a callback Envoy looks up", () => {
    const checked = checkModule(new Uint8Array(readFileSync("dist/fixtures/noop.wasm")));
    expect(checked.shape.exports.map((e) => e.name)).toContain("proxy_on_grpc_trailing_metadata");
    expect(checked.callbacks.has("proxy_on_grpc_trailing_metadata")).toBe(false);
    expect(checked.callbacks.has("proxy_on_grpc_receive_trailing_metadata")).toBe(false);
    expect(checked.callbacks.has("proxy_on_grpc_receive_initial_metadata")).toBe(true);
  });
});
