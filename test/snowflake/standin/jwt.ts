// Verifies the key-pair JWT that snowflake-sdk sends in the login request, the way Snowflake documents
// it: RS256, `iss` = ACCOUNT.USER.SHA256:<base64 SHA-256 of the public key's DER (SPKI)>, `sub` =
// ACCOUNT.USER, and a bounded lifetime. The fingerprint in `iss` selects which of the user's registered
// keys (RSA_PUBLIC_KEY or RSA_PUBLIC_KEY_2) must verify the signature, which is what lets ops rotate.
import { createHash, createPublicKey, verify, type KeyObject } from "node:crypto";

/** `SHA256:<base64>` fingerprint of a public key, as Snowflake shows in RSA_PUBLIC_KEY_FP. */
export function publicKeyFingerprint(key: KeyObject | string): string {
  const pub = typeof key === "string" ? createPublicKey(key) : key.type === "private" ? createPublicKey(key) : key;
  return (
    "SHA256:" +
    createHash("sha256")
      .update(pub.export({ format: "der", type: "spki" }))
      .digest("base64")
  );
}

export type JwtCheck = { ok: true; fingerprint: string } | { ok: false; reason: string };

const b64url = (s: string) => Buffer.from(s, "base64url");

// snowflake-sdk 3.x puts iat/exp in milliseconds (Date.now()); tokens from other clients use seconds.
const toSeconds = (t: number) => (t > 1e11 ? t / 1000 : t);

/** Checks a login JWT for ACCOUNT.USER against the user's registered public keys (PEM). */
export function verifyLoginJwt(token: string, account: string, user: string, publicKeys: readonly string[], nowMs = Date.now()): JwtCheck {
  const parts = token.split(".");
  if (parts.length !== 3) return { ok: false, reason: "not a compact JWS" };
  let header: { alg?: string };
  let claims: { iss?: string; sub?: string; exp?: number; iat?: number };
  try {
    header = JSON.parse(b64url(parts[0]).toString("utf8"));
    claims = JSON.parse(b64url(parts[1]).toString("utf8"));
  } catch {
    return { ok: false, reason: "undecodable header or claims" };
  }
  if (header.alg !== "RS256") return { ok: false, reason: `alg ${header.alg} is not RS256` };
  const subject = `${account.toUpperCase()}.${user.toUpperCase()}`;
  if (claims.sub !== subject) return { ok: false, reason: `sub ${claims.sub} is not ${subject}` };
  const prefix = `${subject}.`;
  if (typeof claims.iss !== "string" || !claims.iss.startsWith(prefix)) return { ok: false, reason: "iss does not name the account and user" };
  const fingerprint = claims.iss.slice(prefix.length);
  const key = publicKeys.find((k) => publicKeyFingerprint(k) === fingerprint);
  if (!key) return { ok: false, reason: `no registered public key has fingerprint ${fingerprint}` };
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  if (!verify("RSA-SHA256", signed, createPublicKey(key), b64url(parts[2]))) return { ok: false, reason: "signature does not verify" };
  const now = nowMs / 1000;
  if (typeof claims.exp !== "number" || toSeconds(claims.exp) < now) return { ok: false, reason: "token expired" };
  if (typeof claims.iat === "number" && toSeconds(claims.iat) > now + 60) return { ok: false, reason: "token issued in the future" };
  if (typeof claims.iat === "number" && toSeconds(claims.exp) - toSeconds(claims.iat) > 3600) return { ok: false, reason: "lifetime over one hour" };
  return { ok: true, fingerprint };
}
