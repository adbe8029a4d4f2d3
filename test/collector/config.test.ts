import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TokenSet, ensureGeneratedToken, parseTokenFile } from "../../collector/auth.ts";
import { generateKeyPairSync } from "node:crypto";
import { ConfigError, DUCKDB_DEFAULT_LOAD_INTERVAL_S, SETTINGS, loadConfig } from "../../collector/config.ts";
import { SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S } from "../../collector/sink/snowflake.ts";

const dir = mkdtempSync(join(tmpdir(), "meshlook-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const problems = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error("expected a ConfigError");
};

describe("collector configuration", () => {
  it("works with no settings at all, deriving paths from the data directory", () => {
    const c = loadConfig({ MESHLOOK_DATA_DIR: dir });
    expect(c).toMatchObject({ port: 8080, sink: "duckdb", spoolDir: join(dir, "spool"), duckdbPath: join(dir, "meshlook.duckdb") });
  });

  it("gathers every problem at once, each naming its setting", () => {
    expect(problems({ MESHLOOK_PORT: "80a", MESHLOOK_LOAD_INTERVAL_S: "0", MESHLOOK_SINK: "postgres", MESHLOOK_AUTH_DISABLED: "maybe" })).toEqual([
      'MESHLOOK_PORT: must be an integer, got "80a"',
      'MESHLOOK_SINK: must be one of duckdb, snowflake, got "postgres"',
      "MESHLOOK_LOAD_INTERVAL_S: must be between 1 and 3600, got 0",
      'MESHLOOK_AUTH_DISABLED: must be true or false, got "maybe"',
    ]);
  });

  it("reads the hourly rollup settings and names them when they are wrong", () => {
    expect(loadConfig({ MESHLOOK_DATA_DIR: dir })).toMatchObject({ hourlyGraceS: 300, hourlyMaxHoursPerLoad: 24 });
    expect(loadConfig({ MESHLOOK_DATA_DIR: dir, MESHLOOK_HOURLY_GRACE_S: "900", MESHLOOK_HOURLY_MAX_HOURS_PER_LOAD: "0" })).toMatchObject({
      hourlyGraceS: 900,
      hourlyMaxHoursPerLoad: 0,
    });
    expect(problems({ MESHLOOK_HOURLY_GRACE_S: "5m", MESHLOOK_HOURLY_MAX_HOURS_PER_LOAD: "-1" })).toEqual([
      'MESHLOOK_HOURLY_GRACE_S: must be an integer, got "5m"',
      "MESHLOOK_HOURLY_MAX_HOURS_PER_LOAD: must be between 0 and 10000, got -1",
    ]);
    const file = join(dir, "hourly.yaml");
    writeFileSync(file, "hourly_grace_s: 90000\n");
    expect(problems({ MESHLOOK_CONFIG: file })).toEqual([`hourly_grace_s (in ${file}): must be between 0 and 86400, got 90000`]);
  });

  it("names each missing Snowflake setting", () => {
    const p = problems({ MESHLOOK_SINK: "snowflake", MESHLOOK_SNOWFLAKE_ACCOUNT: "acme" });
    expect(p).toContain("MESHLOOK_SNOWFLAKE_USER: required when MESHLOOK_SINK=snowflake");
    expect(p).toContain("MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: required with MESHLOOK_SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE_JWT");
    expect(p.some((x) => x.startsWith("MESHLOOK_SNOWFLAKE_ACCOUNT"))).toBe(false);
  });

  it("reads a YAML file with lower-case keys; the environment wins; unknown keys are errors", () => {
    const file = join(dir, "collector.yaml");
    writeFileSync(file, "port: 9000\nload_interval_s: 30\ningest_tokens: [a, b]\n");
    expect(loadConfig({ MESHLOOK_CONFIG: file, MESHLOOK_PORT: "9001" })).toMatchObject({ port: 9001, loadIntervalS: 30, ingestTokens: ["a", "b"] });
    writeFileSync(file, "prot: 9000\nport: -1\n");
    expect(problems({ MESHLOOK_CONFIG: file })).toEqual([`prot (in ${file}): unknown setting`, `port (in ${file}): must be between 0 and 65535, got -1`]);
  });

  describe("with MESHLOOK_SINK=snowflake", () => {
    const keyFile = join(dir, "rsa_key.p8");
    const sf = (over: Record<string, string> = {}) => ({
      MESHLOOK_DATA_DIR: dir,
      MESHLOOK_SINK: "snowflake",
      MESHLOOK_SNOWFLAKE_ACCOUNT: "myorg-acct",
      MESHLOOK_SNOWFLAKE_USER: "loader",
      MESHLOOK_SNOWFLAKE_WAREHOUSE: "wh",
      MESHLOOK_SNOWFLAKE_DATABASE: "db",
      MESHLOOK_SNOWFLAKE_SCHEMA: "s",
      MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: keyFile,
      ...over,
    });
    const { privateKey } = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs8", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    });
    writeFileSync(keyFile, privateKey);

    it("loads at the Snowflake default interval unless one is set (environment or file)", () => {
      expect(SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S).not.toBe(DUCKDB_DEFAULT_LOAD_INTERVAL_S);
      expect(loadConfig(sf()).loadIntervalS).toBe(SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S);
      expect(loadConfig({ MESHLOOK_DATA_DIR: dir }).loadIntervalS).toBe(DUCKDB_DEFAULT_LOAD_INTERVAL_S);
      expect(loadConfig(sf({ MESHLOOK_LOAD_INTERVAL_S: "60" })).loadIntervalS).toBe(60);
      const file = join(dir, "sf.yaml");
      writeFileSync(file, "load_interval_s: 10\n");
      expect(loadConfig(sf({ MESHLOOK_CONFIG: file })).loadIntervalS).toBe(10);
    });

    it("opens the private key at start and names the setting when it cannot", () => {
      const notAKey = join(dir, "not-a-key.p8");
      writeFileSync(notAKey, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
      expect(problems(sf({ MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: join(dir, "missing.p8") }))).toEqual([
        `MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: cannot read ${join(dir, "missing.p8")}: ENOENT`,
      ]);
      const [p] = problems(sf({ MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: notAKey }));
      expect(p).toMatch(/^MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: .*not a PEM private key/);
      expect(problems(sf({ MESHLOOK_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: join(dir, "nope") }))).toEqual([
        `MESHLOOK_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: cannot read ${join(dir, "nope")}: ENOENT`,
      ]);
    });
  });

  it("documents every setting in docs/collector.md", () => {
    const doc = readFileSync(new URL("../../docs/collector.md", import.meta.url), "utf8");
    for (const s of SETTINGS) expect(doc).toContain(`\`MESHLOOK_${s.env}\``);
  });
});

describe("ingest tokens", () => {
  it("accepts any configured token, rejects others and malformed headers", () => {
    const t = new TokenSet(["old-token", "new-token"]);
    expect(t.verify("Bearer old-token")).toBe(true);
    expect(t.verify("bearer new-token")).toBe(true);
    expect(t.verify("Bearer other")).toBe(false);
    expect(t.verify("Bearer old-token-x")).toBe(false);
    expect(t.verify("Basic old-token")).toBe(false);
    expect(t.verify(undefined)).toBe(false);
  });

  it("re-reads the token file so a rotation needs no restart", () => {
    const file = join(dir, "tokens");
    writeFileSync(file, "# rotated weekly\nfirst\n\n");
    const t = new TokenSet(["env-token"], file);
    expect(parseTokenFile("a\r\n # c\n b \n", "f").entries.map((e) => e.token)).toEqual(["a", "b"]);
    expect(parseTokenFile("a namespaces=shop,orders\nb c\n", "f")).toEqual({
      entries: [{ token: "a", origin: "f:1", namespaces: new Set(["shop", "orders"]) }],
      problems: ['f:2: expected "<token>" or "<token> namespaces=<ns>[,<ns>...]"; line ignored'],
    });
    expect(t.verify("Bearer first")).toBe(true);
    writeFileSync(file, "second\n");
    t.reload();
    expect(t.verify("Bearer first")).toBe(false);
    expect(t.verify("Bearer second")).toBe(true);
    expect(t.verify("Bearer env-token")).toBe(true);
  });

  it("grants a connection's repeated header only while its token stays configured", () => {
    const file = join(dir, "connection-tokens");
    writeFileSync(file, "kept-token namespaces=shop\nremoved-token\n");
    const t = new TokenSet([], file);
    const [a, b] = [{}, {}];
    const shop = t.match("Bearer kept-token", a);
    expect(shop?.namespaces).toEqual(new Set(["shop"]));
    expect(t.match("Bearer kept-token", a)).toBe(shop);
    expect(t.match("Bearer removed-token", b)?.namespaces).toBeUndefined();
    // Near misses on the connection that last presented the token: same length, a prefix, a longer one.
    for (const near of ["Bearer kept-tokeN", "Bearer kept-toke", "Bearer kept-token-x", "Bearer removed-token", "Bearer kept-token x"]) {
      expect(t.match(near, a)).toBe(near === "Bearer removed-token" ? t.match(near) : undefined);
    }
    expect(t.match("Bearer kept-token", a)).toBe(shop);
    writeFileSync(file, "kept-token namespaces=orders\n");
    t.reload();
    expect(t.match("Bearer removed-token", b)).toBeUndefined();
    expect(t.match("Bearer kept-token", a)?.namespaces).toEqual(new Set(["orders"]));
  });

  it("notices a changed token file by itself", async () => {
    const file = join(dir, "watched-tokens");
    writeFileSync(file, "before\n");
    const t = new TokenSet([], file);
    t.watch(20);
    writeFileSync(file, "after-rotation\n");
    while (!t.verify("Bearer after-rotation")) await new Promise((r) => setTimeout(r, 20));
    expect(t.verify("Bearer before")).toBe(false);
    t.unwatch();
  });

  it("generates a private token file once and reuses it", () => {
    const first = ensureGeneratedToken(dir);
    expect(first.created).toBe(true);
    expect(statSync(first.file).mode & 0o777).toBe(0o600);
    const token = readFileSync(first.file, "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(40);
    expect(ensureGeneratedToken(dir)).toEqual({ file: first.file, created: false });
    expect(new TokenSet([], first.file).verify(`Bearer ${token}`)).toBe(true);
  });
});
