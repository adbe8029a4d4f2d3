// Quarantine: spooled summaries the warehouse refused for a reason a retry cannot change (a constraint,
// an encoding, a value the warehouse will not store). Each is kept on disk as its exact wire bytes with
// a JSON note saying why, so one bad summary never holds the rest of its batch — or every later load —
// back, and nothing is lost: after a fix, `npm run quarantine -- reload` queues the entries again and the
// running collector's next load cycle loads them (ledgered like any summary, so exactly once).
//
// Layout under <data>/quarantine/:
//   <id>.bin   the summary's wire bytes, as acknowledged
//   <id>.json  { id, caller, producerId, seq, reason, error, quarantinedAt } (no caller: quarantined
//              before callers were recorded, reloaded as LEGACY_CALLER)
//   reload/<id>.bin, reload/<id>.json   entries queued for the next load cycle
// Files are written to a temporary name, fsynced and renamed, so a crash leaves either the whole entry
// or nothing; the .json is renamed last and marks the entry as present.
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

export interface QuarantineNote {
  id: string;
  /** Who sent it (DecodedSummary.caller), so a reload keeps its load-ledger key. */
  caller?: string;
  producerId: string;
  seq: number;
  /** Class of refusal: "constraint", "encoding", "value", "decode" (the summary no longer decodes) or the sink's label. */
  reason: string;
  /** The warehouse's error message. */
  error: string;
  quarantinedAt: string;
}

export interface QuarantineEntry extends QuarantineNote {
  body: Uint8Array;
}

const NOTE = ".json";
const BODY = ".bin";

function writeDurably(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    if (typeof data === "string") writeSync(fd, data);
    else writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** File-name-safe id: time first so listings sort oldest first, then the key (hex of the producer id bytes). */
function entryId(producerId: string, seq: number, at: Date): string {
  const hex = Buffer.from(producerId, "utf8").toString("hex").slice(0, 64);
  return `${at.toISOString().replace(/[-:.]/g, "")}-${hex}-${seq}`;
}

export class Quarantine {
  private readonly reloadDir: string;
  private counted: number;

  constructor(readonly dir: string) {
    this.reloadDir = join(dir, "reload");
    mkdirSync(this.reloadDir, { recursive: true });
    this.counted = this.ids(this.dir).length;
  }

  /** Entries held (not counting those queued for reload): what /metrics reports. */
  get size(): number {
    return this.counted;
  }

  /** Keeps a refused summary; returns its id. */
  add(body: Uint8Array, note: Omit<QuarantineNote, "id" | "quarantinedAt">, at = new Date()): string {
    let id = entryId(note.producerId, note.seq, at);
    for (let k = 1; this.ids(this.dir).includes(id); k++) id = `${entryId(note.producerId, note.seq, at)}.${k}`;
    writeDurably(join(this.dir, id + BODY), body);
    writeDurably(join(this.dir, id + NOTE), JSON.stringify({ id, ...note, quarantinedAt: at.toISOString() } satisfies QuarantineNote));
    this.counted++;
    return id;
  }

  /** Notes of the entries held, oldest first. */
  list(): QuarantineNote[] {
    return this.ids(this.dir).map((id) => this.note(this.dir, id));
  }

  /**
   * Queues entries (all when `ids` is empty) for the next load cycle; returns the ids queued. Unknown ids
   * are an error that names them, and nothing is queued then.
   */
  queueReload(ids: readonly string[] = []): string[] {
    const held = this.ids(this.dir);
    const unknown = ids.filter((id) => !held.includes(id));
    if (unknown.length > 0) throw new Error(`no quarantined summary with id ${unknown.join(", ")}`);
    const chosen = ids.length > 0 ? [...ids] : held;
    for (const id of chosen) {
      renameSync(join(this.dir, id + BODY), join(this.reloadDir, id + BODY));
      renameSync(join(this.dir, id + NOTE), join(this.reloadDir, id + NOTE));
      this.counted--;
    }
    return chosen;
  }

  /** Entries queued for reload, with their bytes, oldest first. */
  queued(): QuarantineEntry[] {
    return this.ids(this.reloadDir).map((id) => ({ ...this.note(this.reloadDir, id), body: readFileSync(join(this.reloadDir, id + BODY)) }));
  }

  /** A queued entry loaded: forget it. */
  done(id: string): void {
    rmSync(join(this.reloadDir, id + NOTE), { force: true });
    rmSync(join(this.reloadDir, id + BODY), { force: true });
  }

  /** A queued entry refused again: back into quarantine with the new reason. */
  refuseAgain(id: string, reason: string, error: string): void {
    const note = { ...this.note(this.reloadDir, id), reason, error, quarantinedAt: new Date().toISOString() };
    renameSync(join(this.reloadDir, id + BODY), join(this.dir, id + BODY));
    writeDurably(join(this.dir, id + NOTE), JSON.stringify(note));
    rmSync(join(this.reloadDir, id + NOTE), { force: true });
    this.counted++;
  }

  private note(dir: string, id: string): QuarantineNote {
    return JSON.parse(readFileSync(join(dir, id + NOTE), "utf8")) as QuarantineNote;
  }

  private ids(dir: string): string[] {
    return readdirSync(dir)
      .filter((f) => f.endsWith(NOTE))
      .map((f) => f.slice(0, -NOTE.length))
      .sort();
  }
}
