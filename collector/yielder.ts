// Long CPU-bound loops in the collector (decoding a spool backlog, rolling up a load) share the event
// loop with ingest; they call `await yielder.maybe()` per item (per YIELD_ROWS items where rowDue says, for
// items too cheap to look at the clock each) so acknowledgements keep flowing.
import { setImmediate } from "node:timers/promises";

/**
 * Rows a loop over a rollup's rows handles between two looks at the clock (Yielder.rowDue): an await per
 * row cost a quarter as much CPU as appending the row to DuckDB. 256 rows take about 2 ms of CPU to
 * append or merge (9 µs a row on the 2-core bench machine), so a slice overruns the Yielder's 10 ms by
 * a few milliseconds (a GC pause aside): far below the event-loop delay at which ingest is shed.
 */
const YIELD_ROWS = 256;

export class Yielder {
  private last = performance.now();
  private rows = 0;

  constructor(private readonly sliceMs = 10) {}

  /** Yields to the event loop once the current slice of work has run for sliceMs. */
  async maybe(): Promise<void> {
    if (performance.now() - this.last < this.sliceMs) return;
    await setImmediate();
    this.last = performance.now();
  }

  /**
   * Counts a row; true once every YIELD_ROWS, when the loop should `await maybe()`. Synchronous, so the
   * rows between pay no await: `if (yielder.rowDue()) await yielder.maybe();`.
   */
  rowDue(): boolean {
    return ++this.rows % YIELD_ROWS === 0;
  }
}
