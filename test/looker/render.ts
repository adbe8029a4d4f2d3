// Renders an explore query (fields + filters + sorts) into the SQL Looker sends to Snowflake for this
// project. It covers exactly the LookML constructs the project uses — single-view explores, sql_table_name
// and SQL derived tables, ${TABLE} / ${field} / @{CONSTANT} substitution, time dimension groups,
// sum/min/max/count/count_distinct/number/string/yesno fields, always_filter, access_filter,
// access grants, explore `fields:` sets and {% condition %} templated filters — and throws on anything
// else, so a construct added to the project without support here fails loudly instead of being misread.
import { filterCondition, type FilterKind } from "./filters.ts";
import { filterEntries, named, substituteConstants, type Field, type Lkml, type Project, type View } from "./project.ts";

export interface ExploreQuery {
  explore: string;
  /** Fully scoped field names, `view.field`. */
  fields: string[];
  /** Field → Looker filter expression. */
  filters?: Record<string, string>;
  /** `view.field` or `view.field desc`; fields must be selected. */
  sorts?: string[];
  limit?: number;
}

export interface User {
  /** Looker user attributes by name; an attribute an access filter needs must be set. */
  attributes: Record<string, string>;
}

const DEFAULT_LIMIT = 500;

/** Looker's Snowflake SQL for each timeframe of a `type: time` dimension group. */
const TIMEFRAME_SQL: Record<string, (x: string) => string> = {
  raw: (x) => x,
  time: (x) => `TO_CHAR(DATE_TRUNC('second', ${x}), 'YYYY-MM-DD HH24:MI:SS')`,
  minute: (x) => `TO_CHAR(DATE_TRUNC('minute', ${x}), 'YYYY-MM-DD HH24:MI')`,
  hour: (x) => `TO_CHAR(DATE_TRUNC('hour', ${x}), 'YYYY-MM-DD HH24')`,
  date: (x) => `TO_CHAR(TO_DATE(${x}), 'YYYY-MM-DD')`,
  week: (x) => `TO_CHAR(DATE_TRUNC('week', ${x}), 'YYYY-MM-DD')`,
  month: (x) => `TO_CHAR(DATE_TRUNC('month', ${x}), 'YYYY-MM')`,
  hour_of_day: (x) => `EXTRACT(HOUR FROM ${x})`,
};
export const SUPPORTED_TIMEFRAMES = Object.keys(TIMEFRAME_SQL);

const MEASURE_SQL: Record<string, (inner: string) => string> = {
  sum: (x) => `COALESCE(SUM(${x}), 0)`,
  min: (x) => `MIN(${x})`,
  max: (x) => `MAX(${x})`,
  count_distinct: (x) => `COUNT(DISTINCT ${x})`,
  count: () => "COUNT(*)",
  number: (x) => x,
  string: (x) => x,
};
export const SUPPORTED_MEASURE_TYPES = Object.keys(MEASURE_SQL);
export const SUPPORTED_DIMENSION_TYPES = ["string", "number", "yesno", "time"];

function splitName(scoped: string): [string, string] {
  const m = scoped.match(/^(\w+)\.(\w+)$/);
  if (!m) throw new Error(`field must be scoped as view.field, got ${JSON.stringify(scoped)}`);
  return [m[1], m[2]];
}

export class SqlRenderer {
  constructor(
    private readonly project: Project,
    private readonly user: User = { attributes: {} },
  ) {}

  /** The view and field behind `view.field`; throws for unknown names. */
  field(scoped: string): Field {
    const [viewName, name] = splitName(scoped);
    const view = this.view(viewName);
    const f = view.fields.get(name);
    if (!f) throw new Error(`view ${viewName} has no field ${name}`);
    return f;
  }

  private view(name: string): View {
    const v = this.project.views.get(name);
    if (!v) throw new Error(`no view ${name}`);
    return v;
  }

  private granted(grant: string): boolean {
    const def = this.project.model.access_grant?.[grant];
    if (!def) throw new Error(`access grant ${grant} is not defined in the model`);
    const value = this.user.attributes[def.user_attribute];
    return value !== undefined && (def.allowed_values as string[]).includes(value);
  }

  private requireGrants(what: string, grants: string[]): void {
    for (const g of grants) {
      if (!this.granted(g)) throw new Error(`${what} requires access grant ${g}`);
    }
  }

  /** `@{CONSTANT}`, `${TABLE}`, `${field}` and `${view.field}` substituted into a field's SQL, as Looker does. */
  private expand(view: string, sql: string, stack: string[]): string {
    return substituteConstants(sql.trim(), this.project.constants)
      .replace(/\$\{TABLE\}/g, view)
      .replace(/\$\{(?:(\w+)\.)?(\w+)\}/g, (_, v: string | undefined, f: string) => {
        const scoped = `${v ?? view}.${f}`;
        if (stack.includes(scoped)) throw new Error(`circular field reference: ${[...stack, scoped].join(" -> ")}`);
        return `(${this.refSql(this.field(scoped), [...stack, scoped])})`;
      });
  }

  /** The SQL a reference to the field stands for (a yesno is its condition). */
  private refSql(f: Field, stack: string[] = []): string {
    const at = [...stack, `${f.view}.${f.name}`];
    if (f.category === "filter") throw new Error(`${f.view}.${f.name} is a filter-only field; it has no value`);
    if (f.category === "measure") {
      const render = MEASURE_SQL[f.type];
      if (!render) throw new Error(`${f.view}.${f.name}: measure type ${f.type} is not supported`);
      if (f.type !== "count" && !f.sql) throw new Error(`${f.view}.${f.name}: measure needs sql`);
      return render(f.type === "count" ? "" : this.expand(f.view, f.sql!, at));
    }
    if (!SUPPORTED_DIMENSION_TYPES.includes(f.type)) throw new Error(`${f.view}.${f.name}: dimension type ${f.type} is not supported`);
    if (!f.sql) throw new Error(`${f.view}.${f.name}: dimension needs sql`);
    const base = this.expand(f.view, f.sql, at);
    if (f.timeframe === undefined) return base;
    const tf = TIMEFRAME_SQL[f.timeframe];
    if (!tf) throw new Error(`${f.view}.${f.name}: timeframe ${f.timeframe} is not supported`);
    return tf(base);
  }

  /** The SQL selecting the field (what Looker puts in the SELECT list). */
  selectSql(f: Field): string {
    const sql = this.refSql(f);
    return f.type === "yesno" && f.category === "dimension" ? `CASE WHEN ${sql} THEN 'Yes' ELSE 'No' END` : sql;
  }

  private filterKind(f: Field): FilterKind {
    if (f.type === "time" || f.type === "date" || f.type === "date_time") return "time";
    if (f.type === "yesno") return "yesno";
    if (f.category === "measure") return "number";
    if (f.type === "number") return "number";
    if (f.type === "string") return "string";
    throw new Error(`${f.view}.${f.name}: cannot filter a field of type ${f.type}`);
  }

  /** The condition a filter expression puts on a dimension or measure; time fields filter their raw value. */
  condition(f: Field, expr: string): string {
    const target = f.timeframe !== undefined ? this.refSql({ ...f, timeframe: "raw" }) : this.refSql(f);
    return filterCondition(this.filterKind(f), target, expr);
  }

  /** A derived table's SQL with its templated filters applied (`{% condition %}` → 1=1 when unset). */
  derivedTableSql(viewName: string, filters: Map<string, string> = new Map()): string {
    const view = this.view(viewName);
    if (!view.derivedSql) throw new Error(`view ${viewName} is not a derived table`);
    return this.templated(view, view.derivedSql, filters);
  }

  /** `{% condition filter %} expr {% endcondition %}` → the filter's condition on expr, or 1=1 when unset. */
  private templated(view: View, sql: string, filters: Map<string, string>): string {
    const out = sql.replace(/\{%\s*condition\s+(\w+)\s*%\}([\s\S]*?)\{%\s*endcondition\s*%\}/g, (_, name: string, expr: string) => {
      const f = this.field(`${view.name}.${name}`);
      if (f.category !== "filter") throw new Error(`{% condition ${name} %} must name a filter field of ${view.name}`);
      const value = filters.get(`${view.name}.${name}`);
      return value === undefined ? "1=1" : filterCondition(this.filterKind(f), expr.trim(), value);
    });
    if (/\{%|\{\{/.test(out)) throw new Error(`view ${view.name}: unsupported Liquid in derived table SQL`);
    return out;
  }

  /** Fields (`view.field`) the named explore exposes through its `fields:` list, or null for all. */
  exposedFields(exploreName: string): Set<string> | null {
    return this.exploreFieldList(this.explore(exploreName), exploreName);
  }

  /** Fields the explore exposes (its `fields:` list, resolving `view.set*`), or null for all. */
  private exploreFieldList(explore: Lkml, viewName: string): Set<string> | null {
    const list = explore.fields as string[] | undefined;
    if (!list) return null;
    const allowed = new Set<string>();
    for (const entry of list) {
      const set = entry.match(/^(\w+)\.(\w+)\*$/);
      if (set) {
        const fields = this.view(set[1]).sets.get(set[2]);
        if (!fields) throw new Error(`explore ${explore.$name}: no set ${set[2]} in view ${set[1]}`);
        for (const f of fields) allowed.add(f.includes(".") ? f : `${set[1]}.${f}`);
      } else if (/^\w+\.\w+$/.test(entry)) {
        allowed.add(entry);
      } else {
        throw new Error(`explore ${explore.$name}: unsupported fields entry ${entry}`);
      }
    }
    // Dimension-group names in a set stand for all of their timeframes.
    for (const f of this.view(viewName).fields.values()) {
      if (f.group && allowed.has(`${viewName}.${f.group}`)) allowed.add(`${viewName}.${f.name}`);
    }
    return allowed;
  }

  /**
   * The filters the query runs with: its own, plus always_filter defaults it does not override, plus
   * conditionally_filter defaults unless it filters on one of their fields or the `unless` fields.
   */
  effectiveFilters(query: ExploreQuery): Map<string, string> {
    const explore = this.explore(query.explore);
    const filters = new Map(Object.entries(query.filters ?? {}));
    for (const [field, value] of filterEntries(explore.always_filter?.filters)) {
      if (!filters.has(field)) filters.set(field, value);
    }
    const conditional = explore.conditionally_filter;
    if (conditional) {
      const defaults = filterEntries(conditional.filters);
      const releasing = [...defaults.map(([f]) => f), ...((conditional.unless ?? []) as string[])];
      if (!releasing.some((f) => query.filters?.[f] !== undefined)) for (const [f, v] of defaults) filters.set(f, v);
    }
    return filters;
  }

  private explore(name: string): Lkml {
    const e = this.project.explores.get(name);
    if (!e) throw new Error(`no explore ${name}`);
    for (const key of ["join", "from", "view_name", "sql_always_where", "sql_always_having"]) {
      if (e[key] !== undefined) throw new Error(`explore ${name}: ${key} is not supported by this renderer`);
    }
    return e;
  }

  /** The Snowflake SQL Looker runs for the query. */
  render(query: ExploreQuery): string {
    const explore = this.explore(query.explore);
    const viewName = query.explore;
    const view = this.view(viewName);
    this.requireGrants(`explore ${viewName}`, (explore.required_access_grants ?? []) as string[]);
    const allowed = this.exploreFieldList(explore, viewName);
    const check = (scoped: string): Field => {
      const f = this.field(scoped);
      if (f.view !== viewName) throw new Error(`explore ${viewName} has no view ${f.view}`);
      if (allowed && !allowed.has(scoped)) throw new Error(`explore ${viewName} does not expose ${scoped}`);
      this.requireGrants(`field ${scoped}`, f.requiredAccessGrants);
      return f;
    };
    if (query.fields.length === 0) throw new Error("a query selects at least one field");
    const selected = query.fields.map((s) => ({ scoped: s, field: check(s) }));
    for (const { scoped, field } of selected) {
      if (field.category === "filter") throw new Error(`${scoped} is a filter-only field and cannot be selected`);
    }

    const filters = this.effectiveFilters(query);
    const where: string[] = [];
    const having: string[] = [];
    for (const [scoped, expr] of filters) {
      const f = check(scoped);
      if (f.category === "filter") continue; // applied through {% condition %} in the view's SQL
      (f.category === "measure" ? having : where).push(this.condition(f, expr));
    }
    for (const af of [explore.access_filter ?? []].flat() as Lkml[]) {
      const value = this.user.attributes[af.user_attribute];
      if (value === undefined || value === "") {
        throw new Error(`explore ${viewName}: user attribute ${af.user_attribute} has no value, so access is denied`);
      }
      where.push(this.condition(this.field(af.field), value));
    }

    let from: string;
    let withClause = "";
    if (view.table) {
      from = `${view.table} AS ${viewName}`;
    } else if (view.derivedSql) {
      withClause = `WITH ${viewName} AS (${this.derivedTableSql(viewName, filters)})\n`;
      from = viewName;
    } else {
      throw new Error(`view ${viewName} has neither sql_table_name nor derived_table.sql`);
    }

    const columns = selected.map(({ scoped, field }) => `    ${this.selectSql(field)} AS "${scoped}"`);
    const dims = selected.map((s, i) => (s.field.category === "dimension" ? i + 1 : 0)).filter((i) => i > 0);

    const order = (
      query.sorts ??
      this.defaultSorts(
        selected.map((s) => s.field),
        query.fields,
      )
    ).map((s) => {
      const [name, dir] = s.trim().split(/\s+/);
      const index = query.fields.indexOf(name);
      if (index < 0) throw new Error(`sort on ${name}, which the query does not select`);
      return `${index + 1}${dir && dir.toLowerCase() === "desc" ? " DESC" : ""}`;
    });

    let sql = `${withClause}SELECT\n${columns.join(",\n")}\nFROM ${from}\n`;
    if (where.length) sql += `WHERE ${where.map((w) => `(${w})`).join(" AND ")}\n`;
    if (dims.length) sql += `GROUP BY ${dims.join(", ")}\n`;
    if (having.length) sql += `HAVING ${having.map((h) => `(${h})`).join(" AND ")}\n`;
    if (order.length) sql += `ORDER BY ${order.join(", ")}\n`;
    sql += `LIMIT ${query.limit ?? DEFAULT_LIMIT}`;
    return sql;
  }

  // Looker's default order: newest time first if a time dimension is selected, else the first measure
  // descending, else the first dimension.
  private defaultSorts(fields: Field[], names: string[]): string[] {
    const time = fields.findIndex((f) => f.timeframe !== undefined);
    if (time >= 0) return [`${names[time]} desc`];
    const measure = fields.findIndex((f) => f.category === "measure");
    if (measure >= 0) return [`${names[measure]} desc`];
    return [names[0]];
  }
}

/** The explore query a LookML `test:` block runs: its columns, filters and explore. */
export function dataTestQuery(test: Lkml): { query: ExploreQuery; asserts: [string, string][] } {
  const sources = named(test.explore_source);
  if (sources.length !== 1) throw new Error(`test ${test.$name}: exactly one explore_source expected`);
  const [explore, source] = sources[0];
  return {
    query: {
      explore,
      fields: named(source.column).map(([, c]) => String(c.field)),
      filters: Object.fromEntries(filterEntries(source.filters)),
      limit: 5000,
    },
    asserts: named(test.assert).map(([name, a]) => [name, String(a.expression).trim()]),
  };
}
