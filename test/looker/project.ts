// Loads the LookML project in looker/ the way Looker reads it: every .lkml file through lookml-parser
// (models assembled from their includes, extends applied), every LookML dashboard through a YAML
// parser, and the fields of each view expanded (dimension groups into one field per timeframe).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import lookmlParser from "lookml-parser";
import { parse as parseYaml } from "yaml";

export const LOOKER_DIR = fileURLToPath(new URL("../../looker/", import.meta.url));
export const MODEL_NAME = "meshlook";

// Parsed LookML is loosely typed JSON: objects keyed by name, `$name`/`$type` metadata.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Lkml = Record<string, any>;

export type FieldCategory = "dimension" | "measure" | "filter";

export interface Field {
  view: string;
  /** Name within the view; for a dimension group, `<group>_<timeframe>`. */
  name: string;
  category: FieldCategory;
  type: string;
  /** The field's `sql`, untouched (undefined for `type: count` and filter-only fields). */
  sql?: string;
  /** Set for fields expanded from a `dimension_group`. */
  group?: string;
  timeframe?: string;
  hidden: boolean;
  description?: string;
  requiredAccessGrants: string[];
}

export interface View {
  name: string;
  /** `sql_table_name` with constants substituted, or undefined for a derived table. */
  table?: string;
  derivedSql?: string;
  fields: Map<string, Field>;
  sets: Map<string, string[]>;
  raw: Lkml;
}

export interface Project {
  modelName: string;
  model: Lkml;
  views: Map<string, View>;
  explores: Map<string, Lkml>;
  constants: Record<string, string>;
  dashboards: { file: string; dashboard: Lkml }[];
  tests: Map<string, Lkml>;
  /** Every .lkml/.lookml file of the project, relative to looker/. */
  files: string[];
}

/** Children of a named collection (`view.dimension`…), without the parser's `$` metadata keys. */
export function named(collection: Lkml | undefined): [string, Lkml][] {
  return Object.entries(collection ?? {}).filter(([k]) => !k.startsWith("$")) as [string, Lkml][];
}

/** A `filters: [a: "x", b: "y"]` map as entries, without metadata keys. */
export function filterEntries(filters: Lkml | undefined): [string, string][] {
  return named(filters).map(([k, v]) => [k, String(v)]);
}

/** `@{NAME}` → the constant's value (manifest value, or an override for this installation). */
export function substituteConstants(text: string, constants: Record<string, string>): string {
  return text.replace(/@\{(\w+)\}/g, (_, name: string) => {
    if (!(name in constants)) throw new Error(`LookML references undefined constant @{${name}}`);
    return constants[name];
  });
}

function expandFields(viewName: string, view: Lkml): Map<string, Field> {
  const fields = new Map<string, Field>();
  const add = (f: Field) => {
    if (fields.has(f.name)) throw new Error(`view ${viewName}: field ${f.name} is defined twice`);
    fields.set(f.name, f);
  };
  const common = (def: Lkml) => ({
    view: viewName,
    hidden: def.hidden === true || def.hidden === "yes",
    description: def.description as string | undefined,
    requiredAccessGrants: (def.required_access_grants ?? []) as string[],
    sql: def.sql as string | undefined,
  });
  for (const [name, def] of named(view.dimension)) {
    add({ ...common(def), name, category: "dimension", type: def.type ?? "string" });
  }
  for (const [group, def] of named(view.dimension_group)) {
    if (def.type !== "time") throw new Error(`view ${viewName}: dimension_group ${group} has unsupported type ${def.type}`);
    for (const timeframe of def.timeframes as string[]) {
      add({ ...common(def), name: `${group}_${timeframe}`, category: "dimension", type: "time", group, timeframe });
    }
  }
  for (const [name, def] of named(view.measure)) {
    add({ ...common(def), name, category: "measure", type: def.type ?? "string" });
  }
  for (const [name, def] of named(view.filter)) {
    add({ ...common(def), name, category: "filter", type: def.type ?? "string" });
  }
  return fields;
}

/** Reads looker/ (or `dir`) and returns the assembled model; throws listing every file that fails to parse. */
export async function loadProject(overrides: Record<string, string> = {}, dir = LOOKER_DIR): Promise<Project> {
  const files = readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => /\.(lkml|lookml)$/.test(f))
    .sort();
  const parsed = await lookmlParser.parseFiles({
    cwd: dir,
    source: "**/*.lkml",
    console: { log() {}, warn() {}, error() {} },
    transformations: { applyExtensionsRefinements: true },
  });
  if (parsed.errors?.length) {
    const list = parsed.errors.map((e: Lkml) => `${e.$file_path}: ${e.error?.message ?? e.error}`);
    throw new Error(`LookML files that do not parse:\n${list.join("\n")}`);
  }
  const model = parsed.model?.[MODEL_NAME];
  if (!model) throw new Error(`no model ${MODEL_NAME} in ${dir}`);

  const constants: Record<string, string> = {};
  for (const [name, def] of named(parsed.manifest?.constant)) constants[name] = String(def.value);
  Object.assign(constants, overrides);

  const views = new Map<string, View>();
  for (const [name, def] of named(model.view)) {
    views.set(name, {
      name,
      table: def.sql_table_name ? substituteConstants(def.sql_table_name.trim(), constants) : undefined,
      derivedSql: def.derived_table?.sql ? substituteConstants(def.derived_table.sql.trim(), constants) : undefined,
      fields: expandFields(name, def),
      sets: new Map(named(def.set).map(([s, d]) => [s, d.fields as string[]])),
      raw: def,
    });
  }

  const dashboards = files
    .filter((f) => f.endsWith(".dashboard.lookml"))
    .flatMap((file) => {
      let doc: unknown;
      try {
        doc = parseYaml(readFileSync(join(dir, file), "utf8"));
      } catch (err) {
        throw new Error(`${file}: not valid YAML: ${(err as Error).message}`);
      }
      if (!Array.isArray(doc)) throw new Error(`${file}: a LookML dashboard file is a YAML list of dashboards`);
      return doc.map((dashboard: Lkml) => ({ file, dashboard }));
    });

  return {
    modelName: MODEL_NAME,
    model,
    views,
    explores: new Map(named(model.explore)),
    constants,
    dashboards,
    tests: new Map(named(model.test)),
    files,
  };
}
