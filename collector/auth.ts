// Ingest authentication: a set of bearer tokens, several valid at once so a token can be rotated
// without downtime (add the new one, roll the sidecars, drop the old one).
import { hash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync, writeFileSync, type Stats } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";

const stampOf = (st: Stats) => `${st.ino}:${st.size}:${st.mtimeMs}`;
// One-shot: a Hash object per request cost more than the hashing itself.
const digest = (token: string) => hash("sha256", token, "buffer");

/**
 * How metrics name a token: the first 8 hex digits of its SHA-256 (`printf %s "$TOKEN" | sha256sum |
 * cut -c1-8`). Enough to tell a handful of configured tokens apart; reveals nothing usable about one.
 */
export const tokenLabel = (token: string) => labelOf(digest(token));
const labelOf = (d: Buffer) => d.toString("hex", 0, 4);

/** Tokens from a file: one per line; blank lines and `#` comments ignored. */
export function parseTokenFile(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/**
 * The accepted tokens. Comparison is over SHA-256 digests with timingSafeEqual, against every token
 * without stopping at a match, so neither the token's length nor which token matched shows in timing.
 */
export class TokenSet {
  private digests: Buffer[] = [];
  private fileTokens: string[] = [];
  /** The file's identity (inode, size, mtime) when it was last read. */
  private fileStamp = "";
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly envTokens: readonly string[],
    private readonly file?: string,
    private readonly log?: Logger,
  ) {
    if (file) this.readTokenFile(file); // unreadable at start: fail loudly
    this.rebuild();
  }

  get size(): number {
    return this.digests.length;
  }

  private rebuild(): void {
    this.digests = [...new Set([...this.envTokens, ...this.fileTokens])].map(digest);
  }

  private readTokenFile(file: string): void {
    // Stamp first: a change landing between stat and read is then seen again by the next poll.
    const stamp = stampOf(statSync(file));
    this.fileTokens = parseTokenFile(readFileSync(file, "utf8"));
    this.fileStamp = stamp;
  }

  /** Re-reads the token file; keeps the previous set if it cannot be read (a rotation in progress). */
  reload(): void {
    if (!this.file) return;
    try {
      this.readTokenFile(this.file);
      this.rebuild();
      this.log?.info({ file: this.file, tokens: this.digests.length }, "ingest tokens reloaded");
    } catch (err) {
      this.log?.error({ file: this.file, err }, "cannot re-read ingest token file; keeping the previous tokens");
    }
  }

  /**
   * Polls the token file for changes (stat, compared with the stat taken when it was last read).
   * Polling rather than inotify, because Kubernetes updates mounted secrets by swapping a symlink,
   * which inotify on the file itself does not see.
   */
  watch(intervalMs = 1000): void {
    const file = this.file;
    if (!file || this.timer) return;
    this.timer = setInterval(() => {
      let stamp: string;
      try {
        stamp = stampOf(statSync(file));
      } catch {
        return; // mid-rotation or gone: keep the tokens we have
      }
      if (stamp !== this.fileStamp) this.reload();
    }, intervalMs);
    this.timer.unref();
  }

  unwatch(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Does an `Authorization` header carry one of the tokens as `Bearer <token>`? */
  verify(header: string | undefined): boolean {
    return this.match(header) !== undefined;
  }

  /**
   * The label (tokenLabel) of the token an `Authorization: Bearer <token>` header carries, or undefined
   * when it carries none of the configured tokens.
   */
  match(header: string | undefined): string | undefined {
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return undefined;
    const presented = digest(m[1]);
    let hit: Buffer | undefined;
    for (const d of this.digests) if (timingSafeEqual(presented, d)) hit = d;
    return hit && labelOf(hit);
  }
}

/**
 * Secure default for a fresh install: when no token is configured, use `<data>/ingest-token`, creating
 * it (random, mode 0600) on first start. Returns the file path and whether it was just created; the
 * token itself is never logged.
 */
export function ensureGeneratedToken(dataDir: string): { file: string; created: boolean } {
  const file = join(dataDir, "ingest-token");
  try {
    writeFileSync(file, randomBytes(32).toString("base64url") + "\n", { mode: 0o600, flag: "wx" });
    return { file, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return { file, created: false };
    throw err;
  }
}
