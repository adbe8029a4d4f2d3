// Structural checks of the LookML project. Each returns a list of problems (empty when the project is
// sound) so the tests can show both the clean project and a broken variant being caught.
import { named, type Lkml, type Project, type View } from "./project.ts";
import { SqlRenderer, type ExploreQuery } from "./render.ts";

/** Column name → its table's columns, as the warehouse has them (lower case). */
export type Columns = Map<string, Set<string>>;

/** `${TABLE}.column` references of a view's fields. */
export function tableColumnRefs(view: View): { field: string; column: string }[] {
  const refs: { field: string; column: string }[] = [];
  for (const f of view.fields.values()) {
    for (const m of (f.sql ?? "").matchAll(/\$\{TABLE\}\.(\w+)/g)) refs.push({ field: f.name, column: m[1].toLowerCase() });
  }
  return refs;
}

/** A view that only holds fields for others to extend (`extension: required`); Looker never queries it. */
export function isExtension(view: View): boolean {
  return view.raw.extension === "required";
}

/** The warehouse table a view reads (`DB.SCHEMA.table` → `table`), undefined for derived tables. */
export function viewTable(view: View): string | undefined {
  return view.table?.split(".").pop()?.toLowerCase();
}

/**
 * Drift between the views and the warehouse: a view on a missing table, or a field reading a column the
 * table (or the derived table's SELECT) does not have. `derived` holds the output columns of each
 * derived-table view.
 */
export function schemaDrift(project: Project, tables: Columns, derived: Columns): string[] {
  const problems: string[] = [];
  for (const view of project.views.values()) {
    if (isExtension(view)) continue;
    const table = viewTable(view);
    const columns = table ? tables.get(table) : derived.get(view.name);
    if (!columns) {
      problems.push(`view ${view.name}: ${table ? `table ${table} does not exist` : "derived table has no known columns"}`);
      continue;
    }
    for (const { field, column } of tableColumnRefs(view)) {
      if (!columns.has(column)) problems.push(`${view.name}.${field} reads ${table ?? view.name}.${column}, which does not exist`);
    }
  }
  return problems;
}

/**
 * Columns of `table` that no field of any view on that table reads. A table no view reads directly
 * (a rollup read only through a derived table, like mesh_traffic_hour) counts the columns the SQL of
 * the derived tables selecting from it names instead.
 */
export function unexposedColumns(project: Project, table: string, columns: Set<string>): string[] {
  const read = new Set<string>();
  const views = [...project.views.values()];
  for (const view of views) if (viewTable(view) === table) for (const r of tableColumnRefs(view)) read.add(r.column);
  if (!views.some((v) => viewTable(v) === table)) {
    const readsTable = new RegExp(`\\bFROM\\s+[\\w.@{}]*\\b${table}\\b`, "i");
    for (const view of views) {
      if (!view.derivedSql || !readsTable.test(view.derivedSql)) continue;
      for (const c of columns) if (new RegExp(`\\b${c}\\b`, "i").test(view.derivedSql)) read.add(c);
    }
  }
  return [...columns].filter((c) => !read.has(c));
}

/** Fields without a description (Looker shows it as the field's help text). */
export function missingDescriptions(project: Project): string[] {
  const out: string[] = [];
  for (const view of project.views.values()) {
    for (const f of view.fields.values()) {
      if (!f.description || !f.description.trim()) out.push(`${view.name}.${f.name}`);
    }
  }
  return out;
}

/** A renderer that holds every access grant the model defines (for checks that are not about access). */
export function privilegedRenderer(project: Project, attributes: Record<string, string> = {}): SqlRenderer {
  const all: Record<string, string> = { meshlook_allowed_namespaces: "%" };
  for (const [, grant] of named(project.model.access_grant)) all[grant.user_attribute] = grant.allowed_values[0];
  return new SqlRenderer(project, { attributes: { ...all, ...attributes } });
}

export interface TileQuery {
  dashboard: string;
  tile: string;
  query: ExploreQuery;
}

/**
 * The explore query of every dashboard tile: its fields, sorts, limit and own filters, plus the values of
 * the dashboard filters it listens to (their defaults, or `filterValues` by filter name).
 */
export function tileQueries(project: Project, filterValues: Record<string, string> = {}): TileQuery[] {
  const out: TileQuery[] = [];
  for (const { dashboard } of project.dashboards) {
    const defaults = new Map<string, string>(((dashboard.filters ?? []) as Lkml[]).map((f) => [f.name, String(f.default_value ?? "")]));
    for (const el of (dashboard.elements ?? []) as Lkml[]) {
      if (!el.explore) continue; // text tiles
      const filters: Record<string, string> = { ...(el.filters ?? {}) };
      for (const [filterName, field] of Object.entries((el.listen ?? {}) as Record<string, string>)) {
        const value = filterValues[filterName] ?? defaults.get(filterName) ?? "";
        if (value !== "") filters[field] = value;
      }
      out.push({
        dashboard: dashboard.dashboard,
        tile: el.title ?? el.name,
        query: { explore: el.explore, fields: el.fields ?? [], filters, sorts: el.sorts, limit: el.limit },
      });
    }
  }
  return out;
}

/** Dashboard references that would break in Looker: unknown model, explore, field or dashboard filter. */
export function dashboardProblems(project: Project): string[] {
  const problems: string[] = [];
  const renderer = privilegedRenderer(project);
  const fieldOk = (where: string, explore: string, scoped: string) => {
    try {
      renderer.render({ explore, fields: [scoped], filters: {}, sorts: [scoped] });
    } catch (err) {
      // A filter-only field cannot be selected but can be filtered on.
      try {
        const f = renderer.field(scoped);
        if (f.category === "filter" && f.view === explore) return;
      } catch {
        /* reported below */
      }
      problems.push(`${where}: ${scoped}: ${(err as Error).message}`);
    }
  };
  for (const { file, dashboard } of project.dashboards) {
    const at = `${file} ${dashboard.dashboard}`;
    if (!dashboard.dashboard || !dashboard.title) problems.push(`${file}: a dashboard needs dashboard and title`);
    const filterNames = new Set<string>();
    for (const f of (dashboard.filters ?? []) as Lkml[]) {
      filterNames.add(f.name);
      if (f.model !== project.modelName) problems.push(`${at} filter ${f.name}: model ${f.model}`);
      else if (!project.explores.has(f.explore)) problems.push(`${at} filter ${f.name}: no explore ${f.explore}`);
      else fieldOk(`${at} filter ${f.name}`, f.explore, f.field);
      for (const l of (f.listens_to_filters ?? []) as string[]) {
        if (!((dashboard.filters ?? []) as Lkml[]).some((o) => o.name === l)) problems.push(`${at} filter ${f.name}: listens to unknown ${l}`);
      }
    }
    for (const el of (dashboard.elements ?? []) as Lkml[]) {
      const where = `${at} tile ${el.title ?? el.name}`;
      if (!el.explore) continue;
      if (el.model !== project.modelName) {
        problems.push(`${where}: model ${el.model}`);
        continue;
      }
      if (!project.explores.has(el.explore)) {
        problems.push(`${where}: no explore ${el.explore}`);
        continue;
      }
      const fields = (el.fields ?? []) as string[];
      if (!fields.length) problems.push(`${where}: no fields`);
      for (const f of fields) fieldOk(where, el.explore, f);
      for (const p of (el.pivots ?? []) as string[]) if (!fields.includes(p)) problems.push(`${where}: pivot ${p} is not a tile field`);
      for (const s of (el.sorts ?? []) as string[]) {
        const name = s.split(/\s+/)[0];
        if (!fields.includes(name)) problems.push(`${where}: sort ${name} is not a tile field`);
      }
      for (const f of Object.keys(el.filters ?? {})) fieldOk(where, el.explore, f);
      for (const [filterName, field] of Object.entries((el.listen ?? {}) as Record<string, string>)) {
        if (!filterNames.has(filterName)) problems.push(`${where}: listens to unknown dashboard filter ${filterName}`);
        fieldOk(where, el.explore, field);
      }
    }
  }
  return problems;
}

// LookML parameters per object, as Looker's reference documents them, limited to the ones a meshlook
// project plausibly uses. lookml-parser accepts any name, so a misspelt parameter (`descripton:`) would
// parse and only fail in Looker's validator; this list catches it here. Extend it when a new, valid
// parameter is used.
const FIELD_COMMON = ["type", "sql", "label", "group_label", "description", "hidden", "value_format_name", "required_access_grants", "view_label", "tags"];
const PARAMETERS: Record<string, string[]> = {
  model: ["connection", "label", "include", "datagroup", "persist_with", "access_grant", "view", "explore", "test"],
  view: ["sql_table_name", "derived_table", "label", "extends", "extension", "dimension", "dimension_group", "measure", "filter", "set", "include"],
  derived_table: ["sql", "datagroup_trigger", "persist_for"],
  dimension: [...FIELD_COMMON, "primary_key", "link"],
  dimension_group: [...FIELD_COMMON, "timeframes", "convert_tz", "datatype"],
  measure: [...FIELD_COMMON],
  filter: [...FIELD_COMMON],
  set: ["fields"],
  explore: ["label", "description", "fields", "always_filter", "conditionally_filter", "access_filter", "required_access_grants", "include"],
  always_filter: ["filters"],
  conditionally_filter: ["filters", "unless"],
  access_filter: ["field", "user_attribute"],
  datagroup: ["label", "description", "sql_trigger", "max_cache_age", "interval_trigger"],
  access_grant: ["user_attribute", "allowed_values"],
  test: ["explore_source", "assert"],
  explore_source: ["column", "filters"],
  column: ["field"],
  assert: ["expression"],
  dashboard: ["dashboard", "title", "description", "layout", "preferred_viewer", "crossfilter_enabled", "refresh", "filters", "elements"],
  dashboard_filter: ["name", "title", "type", "default_value", "allow_multiple_values", "required", "ui_config", "model", "explore", "listens_to_filters", "field"],
  element: ["title", "name", "model", "explore", "type", "fields", "pivots", "sorts", "limit", "filters", "listen", "stacking", "note_text", "row", "col", "width", "height"],
};

function unknownKeys(kind: string, where: string, obj: Lkml, out: string[]): void {
  const allowed = PARAMETERS[kind];
  for (const key of Object.keys(obj)) {
    if (key.startsWith("$")) continue;
    if (!allowed.includes(key)) out.push(`${where}: unknown ${kind} parameter ${key}`);
  }
}

/** Parameters the project uses that are not (known) LookML parameters of their object. */
export function unknownParameters(project: Project): string[] {
  const out: string[] = [];
  unknownKeys("model", "model", project.model, out);
  for (const view of project.views.values()) {
    const v = view.raw;
    unknownKeys("view", `view ${view.name}`, v, out);
    if (v.derived_table) unknownKeys("derived_table", `view ${view.name}`, v.derived_table, out);
    for (const kind of ["dimension", "dimension_group", "measure", "filter", "set"]) {
      for (const [name, def] of named(v[kind])) unknownKeys(kind, `${view.name}.${name}`, def, out);
    }
  }
  for (const [name, e] of project.explores) {
    unknownKeys("explore", `explore ${name}`, e, out);
    for (const kind of ["always_filter", "conditionally_filter", "access_filter"]) {
      for (const block of [e[kind] ?? []].flat() as Lkml[]) unknownKeys(kind, `explore ${name}`, block, out);
    }
  }
  for (const kind of ["datagroup", "access_grant"]) {
    for (const [name, def] of named(project.model[kind])) unknownKeys(kind, `${kind} ${name}`, def, out);
  }
  for (const [name, t] of project.tests) {
    unknownKeys("test", `test ${name}`, t, out);
    for (const [, src] of named(t.explore_source)) {
      unknownKeys("explore_source", `test ${name}`, src, out);
      for (const [c, col] of named(src.column)) unknownKeys("column", `test ${name} column ${c}`, col, out);
    }
    for (const [a, assert] of named(t.assert)) unknownKeys("assert", `test ${name} assert ${a}`, assert, out);
  }
  for (const { dashboard } of project.dashboards) {
    unknownKeys("dashboard", `dashboard ${dashboard.dashboard}`, dashboard, out);
    for (const f of (dashboard.filters ?? []) as Lkml[]) unknownKeys("dashboard_filter", `dashboard ${dashboard.dashboard} filter ${f.name}`, f, out);
    for (const el of (dashboard.elements ?? []) as Lkml[]) unknownKeys("element", `dashboard ${dashboard.dashboard} tile ${el.title}`, el, out);
  }
  return out;
}

/**
 * Fields an explore's `fields:` list exposes that reference (`${field}` in their SQL) a field it leaves
 * out. Looker's validator refuses such an explore ("references excluded field"; Looker docs, `fields` for
 * Explores): the field cannot be computed without the one excluded.
 */
export function excludedReferences(project: Project): string[] {
  const problems: string[] = [];
  const renderer = new SqlRenderer(project);
  for (const name of project.explores.keys()) {
    const exposed = renderer.exposedFields(name);
    const view = project.views.get(name);
    if (!exposed || !view) continue;
    for (const scoped of exposed) {
      const field = view.fields.get(scoped.slice(name.length + 1));
      for (const m of (field?.sql ?? "").matchAll(/\$\{(?:(\w+)\.)?(\w+)\}/g)) {
        if (m[2] === "TABLE") continue;
        const ref = `${m[1] ?? name}.${m[2]}`;
        if (!exposed.has(ref)) problems.push(`explore ${name}: ${scoped} references ${ref}, which its fields list excludes`);
      }
    }
  }
  return problems;
}
