// Evaluates the Looker expressions of LookML data-test `assert:` blocks against one result row, for
// the subset the project's tests use: ${view.field}, numbers, 'strings', + - * /, comparisons,
// AND / OR / NOT, parentheses, abs() and is_null(). Anything else is a parse error, not a pass.

type Value = number | string | boolean | null;

const TOKEN = /\s*(\$\{\w+\.\w+\}|\d+(?:\.\d+)?|'[^']*'|<=|>=|<>|!=|[-+*/()<>=,]|[A-Za-z_]\w*)/y;

function tokenize(src: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < src.length) {
    if (/^\s*$/.test(src.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(src);
    if (!m) throw new Error(`cannot read Looker expression at ${JSON.stringify(src.slice(at))}`);
    out.push(m[1]);
  }
  return out;
}

const FUNCTIONS: Record<string, (args: Value[]) => Value> = {
  abs: ([x]) => (x === null ? null : Math.abs(Number(x))),
  is_null: ([x]) => x === null,
};

/** Fields (`view.field`) an expression reads. */
export function expressionFields(src: string): string[] {
  return tokenize(src)
    .filter((t) => t.startsWith("${"))
    .map((t) => t.slice(2, -1));
}

/** The expression's value for `row` (keys `view.field`); comparisons with null are null, as in SQL. */
export function evaluate(src: string, row: Record<string, unknown>): Value {
  const tokens = tokenize(src);
  let i = 0;
  const peek = () => tokens[i];
  const take = (expected?: string) => {
    const t = tokens[i++];
    if (expected !== undefined && t?.toUpperCase() !== expected) throw new Error(`expected ${expected} in ${src}`);
    return t;
  };
  const num = (v: Value) => (v === null ? null : Number(v));

  function primary(): Value {
    const t = take();
    if (t === undefined) throw new Error(`unexpected end of expression: ${src}`);
    if (t === "(") {
      const v = or();
      take(")");
      return v;
    }
    if (t === "-") {
      const v = num(primary());
      return v === null ? null : -v;
    }
    if (t.startsWith("${")) {
      const name = t.slice(2, -1);
      if (!(name in row)) throw new Error(`expression reads ${name}, which the test's query does not select`);
      const v = row[name];
      return v === undefined ? null : (v as Value);
    }
    if (/^\d/.test(t)) return Number(t);
    if (t.startsWith("'")) return t.slice(1, -1);
    const fn = FUNCTIONS[t.toLowerCase()];
    if (fn && peek() === "(") {
      take("(");
      const args: Value[] = [or()];
      while (peek() === ",") {
        take(",");
        args.push(or());
      }
      take(")");
      return fn(args);
    }
    throw new Error(`unsupported token ${t} in ${src}`);
  }
  // Left-associative chain of `ops` over operands parsed by `next`.
  function chain(ops: string[], next: () => Value, apply: (op: string, l: Value, r: Value) => Value): Value {
    let v = next();
    while (peek() !== undefined && ops.includes(peek().toUpperCase())) {
      const op = take().toUpperCase();
      v = apply(op, v, next());
    }
    return v;
  }
  const arithmetic = (op: string, a: Value, b: Value): Value => {
    const l = num(a);
    const r = num(b);
    if (l === null || r === null) return null;
    if (op === "*") return l * r;
    if (op === "/") return r === 0 ? null : l / r;
    return op === "+" ? l + r : l - r;
  };
  const product = () => chain(["*", "/"], primary, arithmetic);
  const sum = () => chain(["+", "-"], product, arithmetic);
  function comparison(): Value {
    const l = sum();
    const op = peek();
    if (!["=", "<>", "!=", "<", "<=", ">", ">="].includes(op)) return l;
    take();
    const r = sum();
    if (l === null || r === null) return null;
    switch (op) {
      case "=":
        return l === r;
      case "<>":
      case "!=":
        return l !== r;
      case "<":
        return l < r;
      case "<=":
        return l <= r;
      case ">":
        return l > r;
      default:
        return l >= r;
    }
  }
  function not(): Value {
    if (peek()?.toUpperCase() === "NOT") {
      take();
      const v = not();
      return v === null ? null : !v;
    }
    return comparison();
  }
  // SQL three-valued logic: false AND null is false, true OR null is true, otherwise null wins.
  const and = () => chain(["AND"], not, (_, l, r) => (l === false || r === false ? false : l === null || r === null ? null : true));
  function or(): Value {
    return chain(["OR"], and, (_, l, r) => (l === true || r === true ? true : l === null || r === null ? null : false));
  }

  const value = or();
  if (i !== tokens.length) throw new Error(`unexpected ${tokens[i]} in ${src}`);
  return value;
}
