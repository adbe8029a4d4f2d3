// Read access: reader tokens, each with the namespaces it may see. Reading is a different right from
// ingesting, so reader tokens live apart from ingest tokens (collector/auth.ts) but follow the same model:
// several valid at once (rotate by adding the new one, then dropping the old), a file re-read when it
// changes, and a constant-time check over SHA-256 digests against every token.
import { hash, randomBytes, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "pino";

/**
 * What a reader may see, mirroring the LookML model: `namespaces` is the user attribute
 * meshlook_allowed_namespaces (destination namespaces; `%` wildcards as Looker's access filter, so `%` is
 * every namespace), `endUsers` the access grant can_see_end_users. The load ledger names pods of every
 * namespace, so only a `%` scope sees loads (can_see_collector_loads).
 */
export interface Scope {
  namespaces: string[];
  endUsers: boolean;
}

export const isOperator = (s: Scope) => s.namespaces.includes("%");

const NAMESPACE_PATTERN = /^[a-z0-9%]([-a-z0-9%]{0,62})$/;
const digest = (token: string) => hash("sha256", token, "buffer");

/**
 * One reader token per line: `<token> <namespaces> [end_users]`, namespaces comma separated (Kubernetes
 * names, `%` wildcards allowed). Blank lines and `#` comments are ignored. Throws naming the line.
 */
export function parseReaderTokens(text: string): { token: string; scope: Scope }[] {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  return lines.map((line, i) => {
    const [token, namespaces, grant, ...rest] = line.split(/\s+/);
    const where = `reader token line ${i + 1}`;
    if (!namespaces) throw new Error(`${where}: expected "<token> <namespaces> [end_users]"`);
    if (token.length < 16) throw new Error(`${where}: token shorter than 16 characters`);
    const list = namespaces.split(",").filter((n) => n !== "");
    const bad = list.find((n) => !NAMESPACE_PATTERN.test(n));
    if (list.length === 0 || bad !== undefined) throw new Error(`${where}: namespace ${JSON.stringify(bad ?? namespaces)} is not a Kubernetes name or % pattern`);
    if ((grant !== undefined && grant !== "end_users") || rest.length > 0) throw new Error(`${where}: the only grant is end_users`);
    return { token, scope: { namespaces: list, endUsers: grant === "end_users" } };
  });
}

/** The accepted reader tokens and their scopes; the file, if any, is polled and re-read when it changes. */
export class ReaderTokens {
  private entries: { digest: Buffer; scope: Scope }[] = [];
  /** The file's identity (inode, size, mtime) when it was last read. */
  private stamp = "";
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly file: string,
    private readonly log?: Logger,
  ) {
    this.read(); // unreadable or malformed at start: fail loudly
  }

  get size(): number {
    return this.entries.length;
  }

  private read(): void {
    // Stamp first: a change landing between stat and read is then seen again by the next poll.
    const st = statSync(this.file);
    const stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
    this.entries = parseReaderTokens(readFileSync(this.file, "utf8")).map((e) => ({ digest: digest(e.token), scope: e.scope }));
    this.stamp = stamp;
  }

  /**
   * Polls the file's stat against the one taken when it was last read (Kubernetes swaps mounted secrets
   * through a symlink, which inotify on the file does not see); a file that cannot be read or parsed keeps
   * the previous tokens.
   */
  watch(intervalMs = 1000): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      let st;
      try {
        st = statSync(this.file);
      } catch {
        return; // mid-rotation or gone
      }
      if (`${st.ino}:${st.size}:${st.mtimeMs}` === this.stamp) return;
      try {
        this.read();
        this.log?.info({ file: this.file, tokens: this.entries.length }, "reader tokens reloaded");
      } catch (err) {
        this.stamp = `${st.ino}:${st.size}:${st.mtimeMs}`; // logged once, not on every poll
        this.log?.error({ file: this.file, err }, "cannot re-read reader token file; keeping the previous tokens");
      }
    }, intervalMs);
    this.timer.unref();
  }

  unwatch(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The scope of the token an `Authorization: Bearer <token>` header carries; undefined for none or a wrong one. */
  match(header: string | undefined): Scope | undefined {
    const m = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return undefined;
    const presented = digest(m[1]);
    let hit: Scope | undefined;
    for (const e of this.entries) if (timingSafeEqual(presented, e.digest)) hit = e.scope;
    return hit;
  }
}

/**
 * Secure default: with no reader token file configured, `<data>/reader-tokens` holds one generated
 * operator token (every namespace, no end users), created mode 0600 on first start.
 */
export function ensureGeneratedReaderToken(dataDir: string): { file: string; created: boolean } {
  const file = join(dataDir, "reader-tokens");
  const text = `# meshlook reader tokens: <token> <namespaces> [end_users] (docs/read-api.md)\n${randomBytes(32).toString("base64url")} %\n`;
  try {
    writeFileSync(file, text, { mode: 0o600, flag: "wx" });
    return { file, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return { file, created: false };
    throw err;
  }
}
