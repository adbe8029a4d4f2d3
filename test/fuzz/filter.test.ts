// 10 000 hostile streams through the release filter (npm run fuzz runs 100 000): zero traps, traffic
// untouched, and every hostile-but-valid principal arrives in the warehouse byte for byte.
import { describe, expect, it } from "vitest";
import { HOSTILE_PRINCIPALS, fuzzFilter } from "./filter-fuzz.ts";

describe("filter under hostile identities, widths and headers", () => {
  it("never traps, never touches a stream, and carries hostile principals intact to the warehouse", async () => {
    const r = await fuzzFilter(10_000, 0xf11e);
    expect(r.traps).toBe(0);
    expect(r.touched).toBe(0);
    expect(r.missing).toEqual([]);
    expect(r.principalsSent).toBe(HOSTILE_PRINCIPALS.length);
    expect(r.principalsStored).toBe(HOSTILE_PRINCIPALS.length);
  });
});
