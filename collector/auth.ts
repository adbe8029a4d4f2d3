// Ingest authentication: a set of bearer tokens, several valid at once so a token can be rotated
// without downtime (add the new one, roll the sidecars, drop the old one).
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync, writeFileSync, type Stats } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";

const stampOf = (st: Stats) => `${st.ino}:${st.size}:${st.mtimeMs}`;

/** Shorter tokens are loaded (so an upgrade never locks sidecars out) but reported as weak, loudly. */
export const MIN_TOKEN_LENGTH = 16;

/** One configured token: where it came from and, if scoped, the namespaces whose summaries it may write. */
export interface TokenEntry {
  token: string;
  /** undefined: any namespace (an unscoped token, as MESHLOOK_INGEST_TOKENS gives). */
  namespaces?: ReadonlySet<string>;
  /** `file:line` or `MESHLOOK_INGEST_TOKENS[i]`, for log lines that must never show the token. */
  origin: string;
}

/** What a matched token allows: its metric label and its namespace scope. */
export interface TokenGrant {
  label: string;
  namespaces?: ReadonlySet<string>;
}

/**
 * Tokens from a file: one per line, blank lines and `#` comments ignored. A line may scope its token to
 * namespaces: `<token> namespaces=payments,orders`. A line that is neither is refused (returned in
 * `problems` with its line number, never its text): a token with whitespace inside could never match.
 */
export function parseTokenFile(text: string, file = "tokens"): { entries: TokenEntry[]; problems: string[] } {
  const entries: TokenEntry[] = [];
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const origin = `${file}:${i + 1}`;
    const [token, ...rest] = line.split(/\s+/);
    if (rest.length === 0) return void entries.push({ token, origin });
    const scope = rest.length === 1 ? /^namespaces=([a-z0-9]([-a-z0-9]*[a-z0-9])?(,[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/.exec(rest[0]) : null;
    if (!scope) return void problems.push(`${origin}: expected "<token>" or "<token> namespaces=<ns>[,<ns>...]"; line ignored`);
    entries.push({ token, origin, namespaces: new Set(scope[1].split(",")) });
  });
  return { entries, problems };
}

/**
 * The accepted tokens. Comparison is over keyed digests with timingSafeEqual, against every token
 * without stopping at a match, so neither the token's length nor which token matched shows in timing.
 * The key is random per process: the `/metrics` label of a token (the first 8 hex digits of its keyed
 * digest) cannot be used to confirm a guessed token offline. Which token a label stands for is logged
 * (by file line) when the tokens are loaded.
 */
export class TokenSet {
  private readonly key = randomBytes(32);
  private entries: { digest: Buffer; grant: TokenGrant }[] = [];
  private fileEntries: TokenEntry[] = [];
  /** The file's identity (inode, size, mtime) when it was last read. */
  private fileStamp = "";
  private timer?: NodeJS.Timeout;
  /** Bumped by every rebuild: a grant remembered under an earlier set of tokens no longer counts. */
  private generation = 0;
  /**
   * Per connection (a keep-alive socket), the Authorization header whose token last matched and its grant:
   * a sidecar sends the same header on every request of its connection, so the keyed digest (most of a
   * match's cost) is paid once per connection and token set instead of once per summary.
   */
  private readonly remembered = new WeakMap<object, { header: Buffer; generation: number; grant: TokenGrant }>();

  constructor(
    private readonly envTokens: readonly string[],
    private readonly file?: string,
    private readonly log?: Logger,
  ) {
    if (file) this.readTokenFile(file); // unreadable at start: fail loudly
    this.rebuild();
  }

  get size(): number {
    return this.entries.length;
  }

  /** Tokens shorter than MIN_TOKEN_LENGTH among those loaded. */
  weak = 0;

  private digest(token: string): Buffer {
    return createHmac("sha256", this.key).update(token).digest();
  }

  private rebuild(): void {
    this.generation++;
    const fromEnv: TokenEntry[] = [];
    this.envTokens.forEach((token, i) => {
      const origin = `MESHLOOK_INGEST_TOKENS[${i}]`;
      // As in the file: a token with whitespace inside can never match a `Bearer` header.
      if (/\s/.test(token)) this.log?.error(`ingest token ${origin}: contains whitespace and could never match; ignored`);
      else fromEnv.push({ token, origin });
    });
    const all: TokenEntry[] = [...fromEnv, ...this.fileEntries];
    const byToken = new Map<string, TokenEntry>();
    for (const e of all) if (!byToken.has(e.token)) byToken.set(e.token, e);
    this.weak = 0;
    this.entries = [...byToken.values()].map((e) => {
      const digest = this.digest(e.token);
      const grant = { label: digest.toString("hex", 0, 4), namespaces: e.namespaces };
      if (e.token.length < MIN_TOKEN_LENGTH) {
        this.weak++;
        this.log?.warn({ token: e.origin, label: grant.label }, `WEAK INGEST TOKEN: shorter than ${MIN_TOKEN_LENGTH} characters; replace it (e.g. openssl rand -base64 32)`);
      }
      this.log?.info({ token: e.origin, label: grant.label, namespaces: e.namespaces ? [...e.namespaces] : "any" }, "ingest token loaded");
      return { digest, grant };
    });
    // Zero tokens means every sidecar is refused: never quiet (the collector also reports itself unready).
    if (this.entries.length === 0) this.log?.error({ file: this.file }, "NO INGEST TOKENS CONFIGURED: every summary will be refused (401) and /readyz reports not ready");
  }

  private readTokenFile(file: string): void {
    // Stamp first: a change landing between stat and read is then seen again by the next poll.
    const stamp = stampOf(statSync(file));
    const { entries, problems } = parseTokenFile(readFileSync(file, "utf8"), file);
    for (const p of problems) this.log?.error(`ingest token file: ${p}`);
    this.fileEntries = entries;
    this.fileStamp = stamp;
  }

  /** Re-reads the token file; keeps the previous set if it cannot be read (a rotation in progress). */
  reload(): void {
    if (!this.file) return;
    try {
      this.readTokenFile(this.file);
      this.rebuild();
      if (this.entries.length > 0) this.log?.info({ file: this.file, tokens: this.entries.length }, "ingest tokens reloaded");
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
   * The grant of the token an `Authorization: Bearer <token>` header carries, or undefined when none matches.
   * With `connection`, a header equal to the one that last matched on it, under the same tokens, is granted
   * without a digest. That comparison runs over the remembered header's length whatever is presented, so
   * its timing shows neither the remembered header's length nor how much of it matched, even to another
   * client sharing the connection through a proxy; a removed or rotated token is never granted, since
   * every reload rebuilds the set.
   */
  match(header: string | undefined, connection?: object): TokenGrant | undefined {
    if (header === undefined) return undefined;
    const memo = connection === undefined ? undefined : this.remembered.get(connection);
    if (memo !== undefined && memo.generation === this.generation) {
      const presented = Buffer.from(header, "utf8");
      const sameLength = presented.length === memo.header.length;
      if (timingSafeEqual(sameLength ? presented : memo.header, memo.header) && sameLength) return memo.grant;
    }
    const grant = this.matchDigest(header);
    if (grant !== undefined && connection !== undefined) this.remembered.set(connection, { header: Buffer.from(header, "utf8"), generation: this.generation, grant });
    return grant;
  }

  private matchDigest(header: string): TokenGrant | undefined {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return undefined;
    const presented = this.digest(m[1]);
    let hit: TokenGrant | undefined;
    for (const e of this.entries) if (timingSafeEqual(presented, e.digest)) hit = e.grant;
    return hit;
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
