// Long CPU-bound loops in the collector (decoding a spool backlog, rolling up a load) share the event
// loop with ingest; they call `await yielder.maybe()` per item so acknowledgements keep flowing.
import { setImmediate } from "node:timers/promises";

export class Yielder {
  private last = performance.now();

  constructor(private readonly sliceMs = 10) {}

  /** Yields to the event loop once the current slice of work has run for sliceMs. */
  async maybe(): Promise<void> {
    if (performance.now() - this.last < this.sliceMs) return;
    await setImmediate();
    this.last = performance.now();
  }
}
