// 10 000 hostile bodies through the decoder and the ingest route (npm run fuzz runs a million): no 5xx,
// no throw, refusals are 400s naming the decoder's reason, and every acknowledged summary is loaded once.
import { describe, expect, it } from "vitest";
import { fuzzAttacks } from "./attack-fuzz.ts";
import { fuzzIngest } from "./ingest-fuzz.ts";

describe("ingest route under hostile bodies", () => {
  it("refuses every malformed body with a 4xx and loads every acknowledged one", async () => {
    const r = await fuzzIngest(10_000, 0x5eed);
    expect(r.failures).toEqual([]);
    expect(
      Object.keys(r.statuses)
        .map(Number)
        .every((s) => s === 200 || (s >= 400 && s < 500)),
    ).toBe(true);
    // The cases reach deep into the decoder, not only its checksum.
    expect(Object.keys(r.reasons).length).toBeGreaterThanOrEqual(15);
    expect(r.acknowledged).toBeGreaterThan(0);
    expect(r.ledgerRows).toBe(r.acknowledged);
    expect(r.loadedRequests).toBe(r.acknowledgedRequests);
  });

  it("answers attack bodies with the refusal each owes, and loads the honest and saturating ones exactly once", async () => {
    const r = await fuzzAttacks(400, 0xa77ac);
    expect(r.failures).toEqual([]);
    expect(Object.keys(r.reasons).sort()).toEqual(["identity_mismatch", "too_many_requests", "window_out_of_range"]);
    expect(r.acknowledged).toBeGreaterThan(100);
    expect(r.ledgerRows).toBe(r.acknowledged);
    expect(r.loadedRequests).toBe(r.acknowledgedRequests);
  });
});
