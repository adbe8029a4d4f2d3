import { describe, expect, it } from "vitest";
import { DIMENSION_NAMES } from "../../shared/dimensions.ts";
import { DIMENSIONS } from "../../shared/schema.ts";

describe("dimension list", () => {
  it("is the warehouse schema's dimension columns, in order", () => {
    expect(DIMENSION_NAMES).toEqual([...DIMENSIONS]);
  });
});
