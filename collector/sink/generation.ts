// What the read API's caches are keyed on: a count of the commits that change what the embedded database
// holds. DuckDB lets one process write a database file (duckdb.ts), so this process's own commits are every
// change there is: loads, compaction, retention's deletes, the read pre-aggregates' stage. Unlike the load
// ledger's newest loaded_at, the count moves with each of them, whatever the clock of the replica that
// wrote a load said, and whether or not the change adds a ledger entry (retention's deletes add none).
export class WriteGeneration {
  private done = 0;
  private underway = 0;

  /**
   * Runs `commit`, the statement that makes a write visible (COMMIT, or an autocommitted statement), counted
   * unless `changed` says from its result that it changed no row (an idle cycle's prune or stage run, which
   * would otherwise drop every cached answer each cycle). A failed one counts: what it did is not known.
   */
  async commit<T>(commit: () => Promise<T>, changed: (result: T) => boolean = () => true): Promise<T> {
    this.underway++;
    let counts = true;
    try {
      const out = await commit();
      counts = changed(out);
      return out;
    } finally {
      this.underway--;
      if (counts) this.done++;
    }
  }

  /**
   * The commits done, or undefined while one is under way. A read snapshot taken between two reads of this
   * that agree and are defined holds exactly the commits they count: a commit it holds finished before the
   * snapshot, so was counted by the second read and, the two agreeing, by the first; a commit it lacks
   * finished after the snapshot, so after the first read began, which then would have seen it under way.
   */
  get current(): number | undefined {
    return this.underway > 0 ? undefined : this.done;
  }
}
