// The Looker-expression evaluator that runs the project's data-test assertions on query results.
import { describe, expect, it } from "vitest";
import { evaluate, expressionFields } from "./expression.ts";

const row = { "v.x": 2, "v.y": 3, "v.none": null, "v.when": "2026-01-01 00:05" };

describe("Looker expression evaluator", () => {
  it("follows arithmetic precedence and parentheses", () => {
    expect(evaluate("${v.x} + ${v.y} * 2 = 8", row)).toBe(true);
    expect(evaluate("(${v.x} + ${v.y}) * 2 = 10", row)).toBe(true);
    expect(evaluate("abs(${v.x} - ${v.y}) < 1.5", row)).toBe(true);
    expect(evaluate("-${v.x} + 5 = 3", row)).toBe(true);
  });

  it("uses SQL three-valued logic for nulls", () => {
    expect(evaluate("${v.none} > 1", row)).toBe(null);
    expect(evaluate("${v.none} > 1 OR ${v.x} = 2", row)).toBe(true);
    expect(evaluate("${v.none} > 1 AND ${v.x} = 3", row)).toBe(false);
    expect(evaluate("NOT ${v.none} > 1", row)).toBe(null);
    expect(evaluate("is_null(${v.none}) AND NOT is_null(${v.x})", row)).toBe(true);
    expect(evaluate("${v.x} / 0 = 1", row)).toBe(null);
  });

  it("compares strings such as formatted times", () => {
    expect(evaluate("${v.when} <= '2026-01-01 00:06'", row)).toBe(true);
  });

  it("rejects fields the row lacks and syntax it does not know", () => {
    expect(() => evaluate("${v.missing} > 0", row)).toThrow(/v\.missing/);
    expect(() => evaluate("${v.x} > 0 ;", row)).toThrow(/cannot read/);
    expect(() => evaluate("coalesce(${v.x}, 0) > 0", row)).toThrow(/unsupported token coalesce/);
    expect(() => evaluate("${v.x} > ", row)).toThrow(/unexpected end/);
  });

  it("lists the fields an expression reads", () => {
    expect(expressionFields("${v.x} <= ${v.y} AND ${v.x} > 0")).toEqual(["v.x", "v.y", "v.x"]);
  });
});
