// The stand-in's own checks, which the sink tests rely on: the login JWT verification (what Snowflake
// documents for key-pair auth) and the Snowflake → DuckDB translation with its syntax check.
import { createPrivateKey, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import { publicKeyFingerprint, verifyLoginJwt } from "./standin/jwt.ts";
import { snowflakeSyntaxError, translate } from "./standin/translate.ts";
import { rsaKeyPair } from "./helpers.ts";

const key = rsaKeyPair();
const other = rsaKeyPair();
const NOW = Date.UTC(2026, 10, 27, 12, 0, 0);
const b64 = (x: unknown) => Buffer.from(JSON.stringify(x)).toString("base64url");

function jwt(claims: Record<string, unknown>, header: Record<string, unknown> = { alg: "RS256", typ: "JWT" }, signer = key.privateKey): string {
  const head = `${b64(header)}.${b64(claims)}`;
  return `${head}.${sign("RSA-SHA256", Buffer.from(head), createPrivateKey(signer)).toString("base64url")}`;
}

const good = (over: Record<string, unknown> = {}) => ({
  iss: `MESHTEST.LOADER.${publicKeyFingerprint(key.publicKey)}`,
  sub: "MESHTEST.LOADER",
  iat: Math.floor(NOW / 1000),
  exp: Math.floor(NOW / 1000) + 60,
  ...over,
});

describe("stand-in login JWT verification", () => {
  const check = (token: string, keys = [key.publicKey]) => verifyLoginJwt(token, "meshtest", "loader", keys, NOW);

  it("accepts a token signed by a registered key, in seconds or (as snowflake-sdk 3 sends) milliseconds", () => {
    expect(check(jwt(good()))).toEqual({ ok: true, fingerprint: publicKeyFingerprint(key.publicKey) });
    expect(check(jwt(good({ iat: NOW, exp: NOW + 60_000 }))).ok).toBe(true);
    expect(check(jwt(good()), [other.publicKey, key.publicKey]).ok).toBe(true);
  });

  it.each([
    ["an expired token", jwt(good({ exp: Math.floor(NOW / 1000) - 1 })), "token expired"],
    ["another user's subject", jwt(good({ sub: "MESHTEST.ADMIN" })), "sub MESHTEST.ADMIN is not MESHTEST.LOADER"],
    [
      "an unregistered key's fingerprint",
      jwt(good({ iss: `MESHTEST.LOADER.${publicKeyFingerprint(other.publicKey)}` })),
      `no registered public key has fingerprint ${publicKeyFingerprint(other.publicKey)}`,
    ],
    ["a signature by another key", jwt(good(), undefined, other.privateKey), "signature does not verify"],
    ["alg none", `${b64({ alg: "none" })}.${b64(good())}.`, "alg none is not RS256"],
    ["a lifetime over an hour", jwt(good({ exp: Math.floor(NOW / 1000) + 7200 })), "lifetime over one hour"],
    ["garbage", "not-a-jwt", "not a compact JWS"],
  ])("refuses %s", (_what, token, reason) => {
    expect(check(token)).toEqual({ ok: false, reason });
  });

  it("refuses a tampered payload", () => {
    const [h, , sig] = jwt(good()).split(".");
    expect(check(`${h}.${b64(good({ sub: "MESHTEST.LOADER", exp: Math.floor(NOW / 1000) + 3000 }))}.${sig}`)).toEqual({ ok: false, reason: "signature does not verify" });
  });
});

describe("stand-in SQL translation", () => {
  it("refuses SQL that does not parse as Snowflake", () => {
    expect(snowflakeSyntaxError("SELEC 1")).toBeDefined();
    expect(snowflakeSyntaxError("INSERT INTO t VALUES (1,")).toBeDefined();
    expect(() => translate("CREATE TABLE x (a VARCHAR NOT NULL")).toThrow(/SQL compilation error/);
    expect(snowflakeSyntaxError("MERGE INTO l USING b ON l.k = b.k WHEN NOT MATCHED THEN INSERT (k) VALUES (b.k)")).toBeUndefined();
  });

  it("maps TIMESTAMP_NTZ to DuckDB and drops the primary key Snowflake would not enforce", () => {
    const t = translate("CREATE TABLE IF NOT EXISTS l (k VARCHAR NOT NULL, at TIMESTAMP_NTZ NOT NULL, PRIMARY KEY (k))");
    expect(t).toMatchObject({ kind: "sql", verb: "ddl" });
    expect(t.kind === "sql" && t.duck).toBe("CREATE TABLE IF NOT EXISTS l (k TEXT NOT NULL, at TIMESTAMP NOT NULL)");
  });

  it("classifies transaction control, session statements, JavaScript UDFs and lock targets", () => {
    expect(translate("BEGIN TRANSACTION")).toEqual({ kind: "begin" });
    expect(translate("COMMIT")).toEqual({ kind: "commit" });
    expect(translate("ROLLBACK")).toEqual({ kind: "rollback" });
    // Session statements carry the parameters they set: the server models LOCK_TIMEOUT (lock waits).
    expect(translate("ALTER SESSION SET LOCK_TIMEOUT = 120")).toEqual({ kind: "session", set: { LOCK_TIMEOUT: "120" } });
    expect(translate("ALTER SESSION SET timezone = 'UTC'")).toEqual({ kind: "session", set: { TIMEZONE: "UTC" } });
    expect(translate("USE WAREHOUSE mesh_wh")).toEqual({ kind: "session", set: {} });
    expect(translate("CREATE OR REPLACE FUNCTION MESH_Q(SKETCHES ARRAY, Q DOUBLE) RETURNS DOUBLE LANGUAGE JAVASCRIPT AS $$ return Q; $$")).toEqual({
      kind: "js-udf",
      udf: {
        name: "mesh_q",
        params: [
          { name: "SKETCHES", type: "ARRAY" },
          { name: "Q", type: "DOUBLE" },
        ],
        returns: "DOUBLE",
        body: " return Q; ",
      },
    });
    expect(translate("MERGE INTO MESHLOOK.TRAFFIC.Mesh_Load_Ledger AS l USING b ON l.k = b.k WHEN NOT MATCHED THEN INSERT (k) VALUES (b.k)")).toMatchObject({
      verb: "merge",
      target: "mesh_load_ledger",
    });
    expect(translate("CREATE TEMPORARY TABLE IF NOT EXISTS mesh_load_batch (k VARCHAR)")).toMatchObject({ verb: "ddl", temporaryTable: "mesh_load_batch" });
  });
});
