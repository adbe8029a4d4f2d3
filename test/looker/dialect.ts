// Snowflake SQL as the warehouse would receive it: parsed with polyglot's Snowflake grammar, and
// translated to DuckDB to run on the embedded warehouse.
import { Dialect, generate, parse, transpile } from "@polyglot-sql/sdk";

// Snowflake datetime format elements → strftime, longest first. polyglot turns TO_CHAR into DuckDB's
// STRFTIME but keeps the Snowflake format string, which DuckDB would print literally.
const FORMAT_ELEMENTS: [string, string][] = [
  ["YYYY", "%Y"],
  ["HH24", "%H"],
  ["MM", "%m"],
  ["DD", "%d"],
  ["MI", "%M"],
  ["SS", "%S"],
];

function strftimeFormat(snowflake: string): string {
  let out = "";
  for (let i = 0; i < snowflake.length; ) {
    const hit = FORMAT_ELEMENTS.find(([el]) => snowflake.startsWith(el, i));
    if (hit) {
      out += hit[1];
      i += hit[0].length;
    } else if (/[A-Za-z]/.test(snowflake[i])) {
      throw new Error(`TO_CHAR format element at ${JSON.stringify(snowflake.slice(i))} has no DuckDB translation here`);
    } else {
      out += snowflake[i++];
    }
  }
  return out;
}

// Walks the AST JSON and patches two spots where polyglot's DuckDB output is wrong, in place:
//  - TO_CHAR(x, '<format>'): the Snowflake format string becomes a strftime one;
//  - DATEADD(unit, -n, x): becomes `x + INTERVAL -n DAY`, which DuckDB cannot parse; a parenthesised
//    amount comes out as `INTERVAL (-n) DAY`, which it can.
function patchForDuckDB(node: unknown): void {
  if (Array.isArray(node)) {
    for (const n of node) patchForDuckDB(n);
    return;
  }
  if (node === null || typeof node !== "object") return;
  const fn = (node as { function?: { name?: string; args?: Record<string, unknown>[] } }).function;
  const name = typeof fn?.name === "string" ? fn.name.toUpperCase() : "";
  if (name === "TO_CHAR" && fn!.args?.length === 2) {
    const lit = (fn!.args[1] as { literal?: { literal_type: string; value: string } }).literal;
    if (lit?.literal_type === "string") lit.value = strftimeFormat(lit.value);
  }
  if (name === "DATEADD" && fn!.args?.length === 3 && "neg" in fn!.args[1]) {
    fn!.args[1] = { paren: { this: fn!.args[1] } };
  }
  for (const v of Object.values(node)) patchForDuckDB(v);
}

/** Parses Snowflake SQL; throws with polyglot's message when it is not valid Snowflake SQL. */
export function parseSnowflake(sql: string): unknown[] {
  const r = parse(sql, Dialect.Snowflake);
  if (!r.success) throw new Error(`not valid Snowflake SQL: ${r.error}\n${sql}`);
  return r.ast as unknown[];
}

/** The DuckDB translation of one Snowflake statement. */
export function snowflakeToDuckDB(sql: string): string {
  const ast = parseSnowflake(sql);
  if (ast.length !== 1) throw new Error(`expected one statement, got ${ast.length}`);
  patchForDuckDB(ast);
  // generate() only prints an AST; the Snowflake → DuckDB rewrites happen in transpile().
  const fixed = generate(ast, Dialect.Snowflake);
  if (!fixed.success || !fixed.sql?.length) throw new Error(`cannot regenerate Snowflake SQL: ${fixed.error}\n${sql}`);
  const r = transpile(fixed.sql[0], Dialect.Snowflake, Dialect.DuckDB);
  if (!r.success || !r.sql?.length) throw new Error(`cannot translate to DuckDB: ${r.error}\n${sql}`);
  // polyglot prints CURRENT_TIMESTAMP() with parentheses, which DuckDB rejects (it is a keyword there).
  // The LookML qualifies MESH_QUANTILE/MESH_SKETCH_MERGE with @{DATABASE}.@{SCHEMA}, as Snowflake needs
  // when the session's schema differs; DuckDB resolves functions registered on a connection only
  // unqualified.
  return r.sql[0].replace(/\bCURRENT_TIMESTAMP\(\)/g, "CURRENT_TIMESTAMP").replace(/(?:\b\w+\.){2}(MESH_QUANTILE|MESH_SKETCH_MERGE)\s*\(/gi, "$1(");
}
