// How a collector sets up its read surface from its settings: a generated reader token by default, the demo
// opt-out, off on request, and off (saying why) with a sink it does not read.
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startCollector, type RunningCollector } from "../../collector/collector.ts";
import { ConfigError, defaultConfig, loadConfig, type CollectorConfig } from "../../collector/config.ts";
import { parseReaderTokens } from "../../collector/read/access.ts";
import type { Sink } from "../../collector/sink/types.ts";

const dirs: string[] = [];
const running: RunningCollector[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function collector(overrides: Partial<CollectorConfig> = {}, sink?: Sink): Promise<RunningCollector> {
  const dataDir = mkdtempSync(join(tmpdir(), "meshlook-read-collector-"));
  dirs.push(dataDir);
  const config: CollectorConfig = {
    ...defaultConfig(),
    dataDir,
    spoolDir: join(dataDir, "spool"),
    duckdbPath: join(dataDir, "meshlook.duckdb"),
    ingestTokens: ["ingest-token-0123456789abcdef"],
    loadIntervalS: 3600,
    ...overrides,
  };
  const c = await startCollector(config, pino({ level: "silent" }), { listen: false, sink });
  running.push(c);
  return c;
}
const get = (c: RunningCollector, url: string, token?: string) => c.app.inject({ url, headers: token ? { authorization: `Bearer ${token}` } : {} });

describe("the collector's read surface", () => {
  it("is on by default with a generated operator token in <data>/reader-tokens (0600)", async () => {
    const c = await collector();
    expect(c.read).toMatchObject({ mode: "tokens", generated: true, created: true });
    const file = (c.read as { file: string }).file;
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const [entry] = parseReaderTokens(readFileSync(file, "utf8"));
    expect(entry.scope).toEqual({ namespaces: ["%"], endUsers: false });
    expect((await get(c, "/api/v1/whoami", entry.token)).json()).toEqual({ namespaces: ["%"], end_users: false, operator: true });
    expect((await get(c, "/api/v1/traffic")).statusCode).toBe(401);
    expect((await get(c, "/api/v1/traffic", "ingest-token-0123456789abcdef")).statusCode).toBe(401);
    const page = await get(c, "/ui/");
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain("<title>meshlook</title>");
    expect((await get(c, "/ui/echarts.min.js")).statusCode).toBe(200);
  });

  it("MESHLOOK_READ_AUTH_DISABLED opens every namespace without a token, end users excluded", async () => {
    const c = await collector({ readAuthDisabled: true });
    expect(c.read).toEqual({ mode: "open" });
    const res = await get(c, "/api/v1/whoami");
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ namespaces: ["%"], end_users: false, operator: true });
    expect((await get(c, "/api/v1/traffic?group_by=end_user_principal")).statusCode).toBe(403);
  });

  it("MESHLOOK_READ_API=false, or a sink it does not read, turns it off with a reason", async () => {
    const off = await collector({ readApi: false });
    const res = await get(off, "/api/v1/traffic");
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: "read_api_off", message: "the read API is off (MESHLOOK_READ_API=false)" });
    const snowflakeLike: Sink = {
      kind: "snowflake",
      open: async () => {},
      load: async () => ({ loaded: 0, duplicates: 0, rows: 0 }),
      loadBatch: async () => ({ loaded: 0, duplicates: 0, rows: 0 }),
      compactLoaded: async () => {},
      ping: async () => {},
      close: async () => {},
      refusal: () => undefined,
      prune: async () => [],
    };
    const sf = await collector({}, snowflakeLike);
    expect(sf.read.mode).toBe("off");
    const body = (await get(sf, "/api/v1/traffic")).json();
    expect(body.error).toBe("read_api_off");
    expect(body.message).toMatch(/snowflake sink use Looker/);
  });

  it("settings: the demo opt-out and a token file contradict each other", () => {
    expect(() => loadConfig({ MESHLOOK_READ_AUTH_DISABLED: "true", MESHLOOK_READER_TOKENS_FILE: "/x" })).toThrow(ConfigError);
    const c = loadConfig({ MESHLOOK_READ_API: "false", MESHLOOK_DATA_DIR: tmpdir() });
    expect(c.readApi).toBe(false);
  });
});
