// Readiness waits for the warehouse to be fully open. While the startup migrations run, the Snowflake
// session is up and its heartbeat answers, so a ping alone called a half-open sink ready; a replica
// taken into the Service then would acknowledge and spool, but could not load until they finish.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { startCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import { stand, type Stand } from "./helpers.ts";

describe("readiness while the warehouse opens", () => {
  let s: Stand | undefined;
  afterAll(async () => s?.sf.stop());

  it("answers 503 warehouse_opening until the migrations finished, then ready", async () => {
    s = await stand();
    // The first UDF statement comes after the numbered migrations: the stand-in runs it and then holds the
    // answer, so the sink's open() waits there with its session up until the driver times the request out.
    let held!: () => void;
    const reached = new Promise<void>((r) => (held = r));
    s.sf.inject({ kind: "hold-after", match: /^CREATE OR REPLACE FUNCTION MESH_QUANTILE/, onHeld: () => held() });
    const config = loadConfig({
      ...s.env(),
      MESHLOOK_SNOWFLAKE_CONNECT_TIMEOUT_S: "3",
      MESHLOOK_DATA_DIR: mkdtempSync(join(tmpdir(), "meshlook-sfo-")),
      MESHLOOK_INGEST_TOKENS: "t0ken",
      MESHLOOK_LOAD_INTERVAL_S: "1",
      MESHLOOK_PORT: "0",
      MESHLOOK_HOST: "127.0.0.1",
    });
    const c = await startCollector(config, pino({ level: "silent" }));
    try {
      await reached;
      await c.sink.ping(); // the half-open sink does answer its ping
      const opening = await fetch(`${c.url}/readyz`);
      expect([opening.status, ((await opening.json()) as { error: string }).error]).toEqual([503, "warehouse_opening"]);
      await expect.poll(async () => (await fetch(`${c.url}/readyz`)).status, { timeout: 60_000, interval: 200 }).toBe(200);
      expect(c.loader.sinkIsOpen).toBe(true);
    } finally {
      await c.close();
    }
  }, 90_000);
});
