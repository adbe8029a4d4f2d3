// proxy-runtime 0.1.8 defects that a faithful host must expose (docs/host.md lists them).
import { describe, expect, it } from "vitest";
import { createSidecar } from "../../sim/host/index.ts";

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
});
