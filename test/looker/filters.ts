// Looker filter expressions → Snowflake SQL conditions, for the subset the project and its tests use.
// Anything outside the subset throws instead of being guessed, so a test can never pass on a filter
// this renderer silently misread.
//
//   string:  a,b   -a   %part%   -%part%          (comma list; "-" negates; % makes it a LIKE)
//   number:  5   5,7   >=5   <500   5 to 10   NOT 5
//   yesno:   Yes | No
//   time:    N minutes|hours|days|weeks (the last N including the current one)
//            2026-01-01 00:00 to 2026-01-01 01:00  |  2026-01-01  (one day)

export type FilterKind = "string" | "number" | "yesno" | "time";

const quote = (s: string) => `'${s.replace(/'/g, "''")}'`;

function splitList(expr: string): string[] {
  // "^," is Looker's escaped comma inside a value.
  return expr
    .split(/(?<!\^),/)
    .map((s) => s.trim().replace(/\^,/g, ","))
    .filter((s) => s.length > 0);
}

function stringCondition(target: string, expr: string): string {
  const include: string[] = [];
  const exclude: string[] = [];
  for (const item of splitList(expr)) {
    const negated = item.startsWith("-");
    const value = negated ? item.slice(1) : item;
    const like = value.includes("%");
    if (negated) exclude.push(like ? `${target} NOT LIKE ${quote(value)}` : `${target} <> ${quote(value)}`);
    else include.push(like ? `${target} LIKE ${quote(value)}` : quote(value));
  }
  const parts: string[] = [];
  const equals = include.filter((p) => p.startsWith("'"));
  const likes = include.filter((p) => !p.startsWith("'"));
  const positive = [...(equals.length === 1 ? [`${target} = ${equals[0]}`] : equals.length ? [`${target} IN (${equals.join(", ")})`] : []), ...likes];
  if (positive.length) parts.push(positive.length === 1 ? positive[0] : `(${positive.join(" OR ")})`);
  // Looker keeps NULLs when excluding a value: NULL is "not that value".
  for (const e of exclude) parts.push(`(${e} OR ${target} IS NULL)`);
  if (!parts.length) throw new Error(`empty string filter expression ${JSON.stringify(expr)}`);
  return parts.join(" AND ");
}

function numberCondition(target: string, expr: string): string {
  const alternatives = splitList(expr).map((item) => {
    let m: RegExpMatchArray | null;
    if ((m = item.match(/^(>=|<=|>|<|=|!=)\s*(-?\d+(?:\.\d+)?)$/))) return `${target} ${m[1] === "!=" ? "<>" : m[1]} ${m[2]}`;
    if ((m = item.match(/^NOT\s+(-?\d+(?:\.\d+)?)$/i))) return `${target} <> ${m[1]}`;
    if ((m = item.match(/^(-?\d+(?:\.\d+)?)\s+to\s+(-?\d+(?:\.\d+)?)$/i))) return `(${target} >= ${m[1]} AND ${target} <= ${m[2]})`;
    if ((m = item.match(/^-?\d+(?:\.\d+)?$/))) return `${target} = ${item}`;
    throw new Error(`unsupported number filter ${JSON.stringify(item)}`);
  });
  return alternatives.length === 1 ? alternatives[0] : `(${alternatives.join(" OR ")})`;
}

const UNITS: Record<string, string> = { minute: "minute", hour: "hour", day: "day", week: "week" };

/** An absolute timestamp literal as Snowflake reads it. */
function timestampLiteral(text: string): string {
  const m = text.trim().match(/^(\d{4}-\d{2}-\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/);
  if (!m) throw new Error(`unsupported time in filter: ${JSON.stringify(text)}`);
  return `TO_TIMESTAMP('${m[1]} ${m[2] ?? "00"}:${m[3] ?? "00"}:${m[4] ?? "00"}')`;
}

function timeCondition(target: string, expr: string): string {
  const e = expr.trim();
  let m: RegExpMatchArray | null;
  if ((m = e.match(/^(\d+)\s+(minute|hour|day|week)s?$/i))) {
    // "N units": from the start of the unit N-1 units ago to the end of the current one.
    const n = Number(m[1]);
    const unit = UNITS[m[2].toLowerCase()];
    const start = `DATEADD('${unit}', ${-(n - 1)}, DATE_TRUNC('${unit}', CAST(CURRENT_TIMESTAMP() AS TIMESTAMP_NTZ)))`;
    return `((${target}) >= (${start}) AND (${target}) < (DATEADD('${unit}', ${n}, ${start})))`;
  }
  if ((m = e.match(/^(.+?)\s+to\s+(.+)$/i))) {
    return `((${target}) >= (${timestampLiteral(m[1])}) AND (${target}) < (${timestampLiteral(m[2])}))`;
  }
  if ((m = e.match(/^(\d{4}-\d{2}-\d{2})$/))) {
    const start = timestampLiteral(m[1]);
    return `((${target}) >= (${start}) AND (${target}) < (DATEADD('day', 1, ${start})))`;
  }
  throw new Error(`unsupported time filter ${JSON.stringify(expr)}`);
}

/** The SQL condition a Looker filter expression puts on `target` (an expression of the field's kind). */
export function filterCondition(kind: FilterKind, target: string, expr: string): string {
  switch (kind) {
    case "string":
      return stringCondition(target, expr);
    case "number":
      return numberCondition(target, expr);
    case "time":
      return timeCondition(target, expr);
    case "yesno": {
      const v = expr.trim().toLowerCase();
      if (v === "yes") return `(${target})`;
      if (v === "no") return `NOT COALESCE(${target}, FALSE)`;
      throw new Error(`yesno filter must be Yes or No, got ${JSON.stringify(expr)}`);
    }
  }
}
