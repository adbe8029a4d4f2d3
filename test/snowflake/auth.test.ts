// Key-pair auth against the stand-in: a wrong key is refused with a clear auth error, a rotated key
// file is picked up without a restart, encrypted keys, password auth for development, settings errors
// that name the setting, and no secret in any log line or error.
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { SnowflakeSink, SnowflakeSinkError, checkSnowflakeSettings } from "../../collector/sink/snowflake.ts";
import { publicKeyFingerprint } from "./standin/jwt.ts";
import { rsaKeyPair, standForSuite, traffic } from "./helpers.ts";

function capturingLogger(): { log: pino.Logger; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { log: pino({ level: "trace" }, stream), text: () => lines.join("") };
}

/** Replaces a file the way a Kubernetes secret update does: write aside, then rename over. */
function replaceFile(path: string, content: string): void {
  const tmp = `${path}.new`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, path);
}

const secretBits = (pem: string) => pem.split("\n").filter((l) => l.length > 40);

describe("Snowflake key-pair auth", () => {
  const s = standForSuite();

  it("refuses a wrong key with a clear auth error and does not retry it", async () => {
    const wrong = rsaKeyPair();
    const file = join(s.dir, "wrong.p8");
    writeFileSync(file, wrong.privateKey);
    const { log, text } = capturingLogger();
    const sink = new SnowflakeSink(s.settings({ privateKeyFile: file }), log, { maxAttempts: 4, backoffMs: 10 });
    const loginsBefore = s.sf.logins.length;
    const err = (await sink.open().catch((e) => e)) as SnowflakeSinkError;
    expect(err).toBeInstanceOf(SnowflakeSinkError);
    expect(err.reason).toBe("auth");
    expect(err.code).toBe("390144");
    expect(err.message).toMatch(/connect as loader to account meshtest: JWT token is invalid/);
    const attempts = s.sf.logins.slice(loginsBefore);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ ok: false, reason: `no registered public key has fingerprint ${publicKeyFingerprint(wrong.publicKey)}` });
    for (const bit of secretBits(wrong.privateKey)) {
      expect(err.message.includes(bit)).toBe(false);
      expect(text().includes(bit)).toBe(false);
    }
  });

  it("switches to a rotated key file without a restart", async () => {
    const { log, text } = capturingLogger();
    const sink = new SnowflakeSink(s.settings(), log, { backoffMs: 10 });
    await sink.open();
    const t = traffic(11, 2, 4);
    await sink.load(t.summaries.slice(0, 4));
    const fp1 = publicKeyFingerprint(s.key.publicKey);
    expect(s.sf.logins.at(-1)).toMatchObject({ ok: true, fingerprint: fp1 });

    // Ops: register the new key as RSA_PUBLIC_KEY_2, then replace the mounted key file.
    const next = rsaKeyPair();
    s.sf.setUser("LOADER", { publicKeys: [s.key.publicKey, next.publicKey] });
    replaceFile(s.keyFile, next.privateKey);
    const fp2 = publicKeyFingerprint(next.publicKey);
    const r = await sink.load(t.summaries.slice(4));
    expect(r.loaded).toBe(4);
    expect(s.sf.logins.at(-1)).toMatchObject({ ok: true, fingerprint: fp2 });

    // Ops: unset the old key. The same sink keeps loading, and a fresh one logs in with the new key.
    s.sf.setUser("LOADER", { publicKeys: [next.publicKey] });
    expect((await sink.load(t.summaries)).duplicates).toBe(t.summaries.length);
    await sink.close();
    const fresh = new SnowflakeSink(s.settings(), log);
    await fresh.open();
    await fresh.close();
    expect(s.sf.logins.at(-1)).toMatchObject({ ok: true, fingerprint: fp2 });
    expect(text()).toContain("Snowflake private key changed");
    for (const bit of [...secretBits(s.key.privateKey), ...secretBits(next.privateKey)]) expect(text().includes(bit)).toBe(false);
  });

  it("opens an encrypted key with the passphrase file, and names the setting when it cannot", async () => {
    const enc = rsaKeyPair("correct horse battery staple");
    s.sf.setUser("SECURE", { publicKeys: [enc.publicKey] });
    const keyFile = join(s.dir, "enc.p8");
    const passFile = join(s.dir, "passphrase");
    writeFileSync(keyFile, enc.privateKey);
    writeFileSync(passFile, "correct horse battery staple\n");
    const sink = new SnowflakeSink(s.settings({ user: "secure", privateKeyFile: keyFile, privateKeyPassphraseFile: passFile }));
    await sink.open();
    await sink.ping();
    await sink.close();

    writeFileSync(passFile, "wrong passphrase\n");
    const err = (await new SnowflakeSink(s.settings({ user: "secure", privateKeyFile: keyFile, privateKeyPassphraseFile: passFile })).open().catch((e) => e)) as Error;
    expect(err.message).toContain("MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE");
    expect(err.message).toContain("MESHLOOK_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE");
    expect(err.message).not.toContain("wrong passphrase");
    const noPass = (await new SnowflakeSink(s.settings({ user: "secure", privateKeyFile: keyFile })).open().catch((e) => e)) as Error;
    expect(noPass.message).toMatch(/MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: .* opens without a passphrase/);
  });

  it("accepts password auth for development and refuses a wrong password", async () => {
    s.sf.setUser("DEVELOPER", { password: "dev-only-password" });
    const dev = { user: "developer", authenticator: "SNOWFLAKE" as const, privateKeyFile: undefined };
    const ok = new SnowflakeSink(s.settings({ ...dev, password: "dev-only-password" }));
    await ok.open();
    await ok.close();
    const { log, text } = capturingLogger();
    const err = (await new SnowflakeSink(s.settings({ ...dev, password: "hunter2-wrong" }), log).open().catch((e) => e)) as SnowflakeSinkError;
    expect(err.reason).toBe("auth");
    expect(err.message).toContain("Incorrect username or password");
    expect(err.message).not.toContain("hunter2");
    expect(text()).not.toContain("hunter2");
  });
});

describe("Snowflake settings", () => {
  it("names every missing or malformed setting", () => {
    const problems = checkSnowflakeSettings({ authenticator: "SNOWFLAKE_JWT", account: "bad account!", accessUrl: "http://example.com" });
    expect(problems).toEqual([
      "MESHLOOK_SNOWFLAKE_USER: required when MESHLOOK_SINK=snowflake",
      "MESHLOOK_SNOWFLAKE_DATABASE: required when MESHLOOK_SINK=snowflake",
      "MESHLOOK_SNOWFLAKE_SCHEMA: required when MESHLOOK_SINK=snowflake",
      "MESHLOOK_SNOWFLAKE_WAREHOUSE: required when MESHLOOK_SINK=snowflake",
      'MESHLOOK_SNOWFLAKE_ACCOUNT: not an account identifier (expected e.g. myorg-myaccount), got "bad account!"',
      "MESHLOOK_SNOWFLAKE_ACCESS_URL: must be https:// (plain http only to loopback, for tests)",
      "MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: required with MESHLOOK_SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE_JWT",
    ]);
    expect(
      checkSnowflakeSettings({ authenticator: "SNOWFLAKE_JWT", account: "a", user: "u", database: "d", schema: "s", warehouse: "w", privateKeyFile: "/nonexistent/key.p8" }),
    ).toEqual(["MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: cannot read /nonexistent/key.p8: ENOENT"]);
  });
});
