// Snowflake settings and key material, apart from the driver: the collector's configuration check runs
// these at start (naming the setting at fault) without loading snowflake-sdk, and the sink re-reads the
// key with the same code when the file changes.
import { createHash, createPrivateKey, createPublicKey } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import type { SnowflakeSettings } from "../config.ts";

/**
 * Load interval the collector should use with this sink when none is configured: an X-Small warehouse
 * with AUTO_SUSPEND = 60 is then resumed 4 times an hour (docs/snowflake.md, "Cost").
 */
export const SNOWFLAKE_DEFAULT_LOAD_INTERVAL_S = 900;

/** Why a Snowflake operation failed, as the collector labels its load-failure metric. */
export const SNOWFLAKE_FAILURES = ["config", "auth", "transient", "sql", "conflict"] as const;
export type SnowflakeFailure = (typeof SNOWFLAKE_FAILURES)[number];

export class SnowflakeSinkError extends Error {
  constructor(
    readonly reason: SnowflakeFailure,
    message: string,
    /** Snowflake or driver error code, when there is one. */
    readonly code?: string,
    readonly sqlState?: string,
  ) {
    super(message);
    this.name = "SnowflakeSinkError";
  }

  /** Worth retrying soon: the same load may well succeed. */
  get transient(): boolean {
    return this.reason === "transient" || this.reason === "conflict";
  }
}

export interface Credential {
  /** Detects a changed key or passphrase file without reading it. */
  stamp: string;
  /** Unencrypted PKCS#8 PEM handed to the driver; never logged. */
  privateKey?: string;
  /** SHA256:<base64> of the public key, the form Snowflake shows as RSA_PUBLIC_KEY_FP. */
  fingerprint?: string;
}

export function fileStamp(path: string): string {
  const s = statSync(path);
  return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

/** Problems with the Snowflake settings, each naming its setting; [] when they are usable. */
export function checkSnowflakeSettings(s: SnowflakeSettings): string[] {
  const problems: string[] = [];
  for (const [k, v] of [
    ["ACCOUNT", s.account],
    ["USER", s.user],
    ["DATABASE", s.database],
    ["SCHEMA", s.schema],
    ["WAREHOUSE", s.warehouse],
  ] as const) {
    if (!v) problems.push(`MESHLOOK_SNOWFLAKE_${k}: required when MESHLOOK_SINK=snowflake`);
  }
  if (s.account && !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(s.account)) {
    problems.push(`MESHLOOK_SNOWFLAKE_ACCOUNT: not an account identifier (expected e.g. myorg-myaccount), got ${JSON.stringify(s.account)}`);
  }
  if (s.accessUrl) {
    try {
      const u = new URL(s.accessUrl);
      if (u.protocol !== "https:" && !(u.protocol === "http:" && (u.hostname === "127.0.0.1" || u.hostname === "localhost"))) {
        problems.push("MESHLOOK_SNOWFLAKE_ACCESS_URL: must be https:// (plain http only to loopback, for tests)");
      }
    } catch {
      problems.push(`MESHLOOK_SNOWFLAKE_ACCESS_URL: not a URL: ${JSON.stringify(s.accessUrl)}`);
    }
  }
  if (s.authenticator === "SNOWFLAKE_JWT") {
    if (!s.privateKeyFile) problems.push("MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: required with MESHLOOK_SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE_JWT");
    else {
      try {
        readCredential(s);
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
  } else if (!s.password) {
    problems.push("MESHLOOK_SNOWFLAKE_PASSWORD: required with MESHLOOK_SNOWFLAKE_AUTHENTICATOR=SNOWFLAKE");
  }
  return problems;
}

/** Reads and decrypts the private key; errors name the setting and never carry key material. */
export function readCredential(s: SnowflakeSettings): Credential {
  const keyFile = s.privateKeyFile!;
  let stamp: string;
  let pem: Buffer;
  try {
    stamp = fileStamp(keyFile);
    pem = readFileSync(keyFile);
  } catch (err) {
    throw new SnowflakeSinkError("config", `MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: cannot read ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  let passphrase: string | undefined;
  if (s.privateKeyPassphraseFile) {
    try {
      stamp += `|${fileStamp(s.privateKeyPassphraseFile)}`;
      passphrase = readFileSync(s.privateKeyPassphraseFile, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      throw new SnowflakeSinkError(
        "config",
        `MESHLOOK_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE: cannot read ${s.privateKeyPassphraseFile}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
  }
  let key;
  try {
    key = createPrivateKey({ key: pem, format: "pem", passphrase: passphrase ?? "" });
  } catch {
    throw new SnowflakeSinkError(
      "config",
      `MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: ${keyFile} is not a PEM private key that ` +
        (passphrase === undefined
          ? "opens without a passphrase (set MESHLOOK_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE if it is encrypted)"
          : "the passphrase in MESHLOOK_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE_FILE opens"),
    );
  }
  if (key.asymmetricKeyType !== "rsa")
    throw new SnowflakeSinkError("config", `MESHLOOK_SNOWFLAKE_PRIVATE_KEY_FILE: ${keyFile} holds a ${key.asymmetricKeyType} key; Snowflake key-pair auth needs RSA`);
  const der = createPublicKey(key).export({ format: "der", type: "spki" });
  return {
    stamp,
    privateKey: key.export({ format: "pem", type: "pkcs8" }).toString(),
    fingerprint: "SHA256:" + createHash("sha256").update(der).digest("base64"),
  };
}
