// Snowflake SQL → what the stand-in runs on DuckDB.
//
// @polyglot-sql/sdk does the work: it parses Snowflake SQL (the syntax check every test applies to what
// the sink sends) and transpiles it to DuckDB. Where it falls short, the smallest honest fix is applied
// here, each for a stated reason:
//  - it writes Snowflake's TIMESTAMP_NTZ as `TIMESTAMPNTZ`, a type DuckDB does not have → `TIMESTAMP`;
//  - PRIMARY KEY clauses are dropped: Snowflake accepts but never enforces them on standard tables, and
//    a DuckDB-enforced key would hide exactly the double insert the load ledger design must prevent;
//  - transaction control, JavaScript UDFs and session statements are not SQL for DuckDB at all: they are
//    classified here and emulated by the server (sessions, locks, a JavaScript UDF runner).
import * as polyglot from "@polyglot-sql/sdk";

await polyglot.init();

/** The parse error polyglot reports for `sql` read as Snowflake SQL, or undefined when it parses. */
export function snowflakeSyntaxError(sql: string): string | undefined {
  // polyglot's grammar lacks CREATE FUNCTION's `COPY GRANTS` clause, which Snowflake documents
  // (docs.snowflake.com/en/sql-reference/sql/create-function: `CREATE [ OR REPLACE ] … FUNCTION <name>
  // ( … ) [ COPY GRANTS ] RETURNS …`); the rest of the statement is still checked.
  const v = polyglot.validate(sql.replace(/^(\s*CREATE\s+OR\s+REPLACE\s+(?:SECURE\s+)?FUNCTION\s+[\w.$"]+\s*\([^)]*\))\s+COPY\s+GRANTS\b/i, "$1"), "snowflake");
  if (v.valid) return undefined;
  return v.errors
    .filter((e) => e.severity !== "warning")
    .map((e) => (e.line ? `line ${e.line}:${e.column}: ${e.message}` : e.message))
    .join("; ");
}

export interface JsUdf {
  name: string;
  params: { name: string; type: string }[];
  returns: string;
  body: string;
}

export type Verb = "select" | "insert" | "update" | "delete" | "merge" | "ddl" | "other";

export type Translated =
  | { kind: "begin" }
  | { kind: "commit" }
  | { kind: "rollback" }
  /** ALTER SESSION SET …: the parameters set (upper-cased name → raw value); USE …: none. */
  | { kind: "session"; set: Record<string, string> }
  | { kind: "show-transactions" }
  | { kind: "abort-transaction"; id: string }
  | { kind: "js-udf"; udf: JsUdf }
  | { kind: "sql"; duck: string; verb: Verb; target?: string; temporaryTable?: string };

export class TranslationError extends Error {}

const JS_UDF =
  /^CREATE\s+(?:OR\s+REPLACE\s+)?(?:SECURE\s+)?FUNCTION\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.$"]+)\s*\(([^)]*)\)\s+(?:COPY\s+GRANTS\s+)?RETURNS\s+(\w+)(?:\s+NOT\s+NULL)?\s+LANGUAGE\s+JAVASCRIPT\b[\s\S]*?\bAS\s+\$\$([\s\S]*)\$\$\s*;?\s*$/i;

/** Last part of a possibly qualified, possibly quoted identifier, folded as Snowflake folds unquoted ones. */
export function objectName(ident: string): string {
  const last = ident.split(".").pop()!;
  return last.startsWith('"') ? last.slice(1, -1) : last.toLowerCase();
}

function verbOf(sql: string): { verb: Verb; target?: string } {
  const head = /^\s*(\w+)(?:\s+(\w+))?/.exec(sql);
  const first = head?.[1]?.toUpperCase() ?? "";
  const target = (re: RegExp) => {
    const m = re.exec(sql);
    return m ? objectName(m[1]) : undefined;
  };
  switch (first) {
    case "SELECT":
    case "WITH":
    case "SHOW":
    case "DESCRIBE":
      return { verb: "select" };
    case "INSERT":
      return { verb: "insert", target: target(/^\s*INSERT\s+(?:OVERWRITE\s+)?INTO\s+([^\s(]+)/i) };
    case "UPDATE":
      return { verb: "update", target: target(/^\s*UPDATE\s+([^\s(]+)/i) };
    case "DELETE":
      return { verb: "delete", target: target(/^\s*DELETE\s+FROM\s+([^\s(]+)/i) };
    case "MERGE":
      return { verb: "merge", target: target(/^\s*MERGE\s+INTO\s+([^\s(]+)/i) };
    case "CREATE":
    case "ALTER":
    case "DROP":
      return { verb: "ddl" };
    default:
      return { verb: "other" };
  }
}

const cache = new Map<string, Translated>();

/** Classifies one Snowflake statement and, for plain SQL, translates it to DuckDB (memoized: loads repeat their statements). */
export function translate(sql: string): Translated {
  let t = cache.get(sql);
  if (t === undefined) {
    t = translateOnce(sql);
    if (cache.size > 500) cache.clear();
    cache.set(sql, t);
  }
  return t;
}

function translateOnce(sql: string): Translated {
  const syntax = snowflakeSyntaxError(sql);
  if (syntax !== undefined) throw new TranslationError(`SQL compilation error: ${syntax}`);
  const trimmed = sql.trim().replace(/;\s*$/, "");
  if (/^(BEGIN|START\s+TRANSACTION)(\s+(WORK|TRANSACTION))?$/i.test(trimmed)) return { kind: "begin" };
  if (/^COMMIT(\s+WORK)?$/i.test(trimmed)) return { kind: "commit" };
  if (/^ROLLBACK(\s+WORK)?$/i.test(trimmed)) return { kind: "rollback" };
  const alter = /^ALTER\s+SESSION\s+SET\s+([\s\S]+)$/i.exec(trimmed);
  if (alter) {
    const set: Record<string, string> = {};
    for (const m of alter[1].matchAll(/(\w+)\s*=\s*('[^']*'|[^\s,]+)/g)) set[m[1].toUpperCase()] = m[2].replace(/^'|'$/g, "");
    return { kind: "session", set };
  }
  if (/^(ALTER\s+SESSION|USE)\b/i.test(trimmed)) return { kind: "session", set: {} };
  if (/^SHOW\s+TRANSACTIONS$/i.test(trimmed)) return { kind: "show-transactions" };
  const abort = /^SELECT\s+SYSTEM\$ABORT_TRANSACTION\s*\(\s*(\d+)\s*\)$/i.exec(trimmed);
  if (abort) return { kind: "abort-transaction", id: abort[1] };
  const udf = JS_UDF.exec(trimmed);
  if (udf) {
    const params = udf[2]
      .split(",")
      .map((p) => p.trim())
      .filter((p) => p !== "")
      .map((p) => {
        const [name, type] = p.split(/\s+/);
        return { name: name.replace(/"/g, ""), type: (type ?? "").toUpperCase() };
      });
    return { kind: "js-udf", udf: { name: objectName(udf[1]), params, returns: udf[3].toUpperCase(), body: udf[4] } };
  }
  const out = polyglot.transpile(trimmed, polyglot.Dialect.Snowflake, polyglot.Dialect.DuckDB);
  if (!out.success || !out.sql || out.sql.length !== 1) {
    throw new TranslationError(`stand-in cannot translate this statement to DuckDB: ${out.error ?? "not exactly one statement"}`);
  }
  // One DuckDB database plays the database and schema, so a qualified function call (the LookML writes
  // @{DATABASE}.@{SCHEMA}.MESH_QUANTILE) names the function registered unqualified.
  let duck = out.sql[0].replace(/(?:\b\w+\.){2}(MESH_QUANTILE|MESH_SKETCH_MERGE)\s*\(/gi, "$1(");
  const { verb, target } = verbOf(trimmed);
  let temporaryTable: string | undefined;
  if (verb === "ddl" && /^\s*CREATE\b/i.test(trimmed)) {
    duck = duck.replace(/\bTIMESTAMPNTZ\b/g, "TIMESTAMP").replace(/,\s*PRIMARY\s+KEY\s*\([^)]*\)/i, "");
    const temp = /^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:LOCAL\s+|GLOBAL\s+)?(?:TEMP|TEMPORARY)\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([^\s(]+)/i.exec(trimmed);
    if (temp) temporaryTable = objectName(temp[1]);
  }
  return { kind: "sql", duck, verb, target, temporaryTable };
}
