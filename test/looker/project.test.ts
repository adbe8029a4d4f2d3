// The LookML project parses, is laid out as a Looker block, documents every field, and its dashboards,
// data tests, access rules and README all refer to things that exist.
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dashboardProblems, excludedReferences, isExtension, missingDescriptions, privilegedRenderer, tileQueries, unknownParameters } from "./checks.ts";
import { parseSnowflake } from "./dialect.ts";
import { expressionFields } from "./expression.ts";
import { LOOKER_DIR, loadProject, named, type Project } from "./project.ts";
import { dataTestQuery, SqlRenderer } from "./render.ts";

let project: Project;
beforeAll(async () => {
  project = await loadProject();
});

// Copies of looker/ with one deliberate defect, to show each check failing; removed at the end.
const copies: string[] = [];
afterAll(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});
function brokenCopy(file: string, edit: (text: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-lkml-"));
  copies.push(dir);
  cpSync(LOOKER_DIR, dir, { recursive: true });
  const path = join(dir, file);
  writeFileSync(path, edit(existsSync(path) ? readFileSync(path, "utf8") : ""));
  return dir;
}

describe("LookML project layout", () => {
  it("has a manifest with overridable connection, database and schema constants", () => {
    for (const c of ["CONNECTION_NAME", "DATABASE", "SCHEMA"]) {
      expect(project.constants[c], c).toBeTruthy();
    }
    const manifest = readFileSync(join(LOOKER_DIR, "manifest.lkml"), "utf8");
    expect(manifest).toMatch(/export:\s*override_optional/);
    expect(project.model.connection).toBe("@{CONNECTION_NAME}");
  });

  it("keeps one model, views, explores, dashboards and tests in their folders", () => {
    const byFolder = (re: RegExp) => project.files.filter((f) => re.test(f));
    expect(byFolder(/\.model\.lkml$/)).toEqual(["meshlook.model.lkml"]);
    expect(byFolder(/^views\/.+\.view\.lkml$/).length).toBe(project.views.size);
    expect(byFolder(/^explores\/.+\.explore\.lkml$/).length).toBe(project.explores.size);
    expect(byFolder(/^dashboards\/.+\.dashboard\.lookml$/).length).toBeGreaterThanOrEqual(2);
    expect(project.files.every((f) => /^(manifest|meshlook\.model)\.lkml$|^(views|explores|dashboards|tests)\//.test(f))).toBe(true);
  });

  it("reads tables only through the DATABASE and SCHEMA constants", () => {
    for (const view of project.views.values()) {
      if (isExtension(view)) continue; // holds fields only; the views extending it name the table
      const raw = String(view.raw.sql_table_name ?? view.raw.derived_table.sql);
      // Common table expressions the derived SQL defines itself are not warehouse tables.
      const ctes = new Set([...raw.matchAll(/(?:\bWITH|,)\s+(\w+)\s+AS\s*\(/gi)].map((m) => m[1].toLowerCase()));
      for (const m of raw.matchAll(/(?:FROM|JOIN)\s+([\w.@{}]+)/gi)) {
        if (ctes.has(m[1].toLowerCase())) continue;
        expect(m[1], view.name).toMatch(/^@\{DATABASE\}\.@\{SCHEMA\}\.\w+$/);
      }
      if (view.raw.sql_table_name) expect(view.raw.sql_table_name.trim()).toMatch(/^@\{DATABASE\}\.@\{SCHEMA\}\.\w+$/);
    }
  });

  it("uses only known LookML parameters", () => {
    expect(unknownParameters(project)).toEqual([]);
  });

  it("catches a misspelt parameter that the parser accepts", async () => {
    const dir = brokenCopy("views/mesh_loads.view.lkml", (t) => t.replace('description: "Summaries loaded."', 'descripton: "Summaries loaded."'));
    expect(unknownParameters(await loadProject({}, dir))).toEqual(["mesh_loads.summaries: unknown measure parameter descripton"]);
  });

  it("gives every field a description", () => {
    expect(missingDescriptions(project)).toEqual([]);
  });

  it("computes every latency percentile by merging sketches, at the quantile its name says", () => {
    const percentiles = [...project.views.values()].flatMap((v) => [...v.fields.values()].filter((f) => /^latency_p\d+_ms$/.test(f.name)));
    expect(percentiles.map((f) => `${f.view}.${f.name}`)).toEqual(expect.arrayContaining(["p50", "p90", "p95", "p99", "p999"].map((p) => `mesh_traffic.latency_${p}_ms`)));
    for (const f of percentiles) {
      const m = f.sql!.trim().match(/^@\{DATABASE\}\.@\{SCHEMA\}\.MESH_QUANTILE\(ARRAY_AGG\(\$\{TABLE\}\.latency_sketch\), (0\.\d+)\) \/ 1000\.0$/);
      expect(m, `${f.view}.${f.name}`).not.toBeNull();
      const digits = f.name.match(/p(\d+)/)![1];
      expect(Number(m![1]), f.name).toBe(Number(`0.${digits}`));
    }
  });

  it("renders every field of every explore as Snowflake SQL", () => {
    const renderer = privilegedRenderer(project);
    let rendered = 0;
    for (const [explore] of project.explores) {
      for (const f of project.views.get(explore)!.fields.values()) {
        if (f.category === "filter") continue;
        const scoped = `${explore}.${f.name}`;
        try {
          parseSnowflake(renderer.render({ explore, fields: [scoped] }));
          rendered++;
        } catch (err) {
          // Explores may expose a subset of their view (fields: [...]); anything else is a failure.
          expect((err as Error).message, scoped).toMatch(/does not expose/);
        }
      }
    }
    expect(rendered).toBeGreaterThan(80);
  });
});

describe("LookML parsing is a real check", () => {
  it("names the file that does not parse", async () => {
    const dir = brokenCopy("views/mesh_loads.view.lkml", (t) => t.replace("dimension: seq {", "dimension: seq {{"));
    await expect(loadProject({}, dir)).rejects.toThrow(/mesh_loads\.view/);
  });

  it("rejects a dashboard that is not YAML", async () => {
    const dir = brokenCopy("dashboards/broken.dashboard.lookml", () => "- dashboard: x\n  title: [unclosed\n");
    await expect(loadProject({}, dir)).rejects.toThrow(/broken\.dashboard\.lookml: not valid YAML/);
  });
});

describe("dashboards", () => {
  it("exist for golden signals and identity access", () => {
    expect(project.dashboards.map((d) => d.dashboard.title).sort()).toEqual(["Identity access", "Mesh golden signals"]);
  });

  it("refer only to explores, fields and filters that exist", () => {
    expect(dashboardProblems(project)).toEqual([]);
  });

  it("catch a tile that refers to a field the explore does not have", () => {
    const broken: Project = {
      ...project,
      dashboards: project.dashboards.map(({ file, dashboard }) => ({
        file,
        dashboard: {
          ...dashboard,
          elements: dashboard.elements.map((e: Record<string, unknown>, i: number) => (i === 0 ? { ...e, fields: ["mesh_traffic.requests_total"] } : e)),
        },
      })),
    };
    expect(dashboardProblems(broken).join("\n")).toMatch(/requests_total/);
  });

  it("render every tile query as Snowflake SQL", () => {
    const renderer = privilegedRenderer(project);
    const tiles = tileQueries(project);
    expect(tiles.length).toBeGreaterThanOrEqual(15);
    for (const t of tiles) expect(() => parseSnowflake(renderer.render(t.query)), `${t.dashboard}: ${t.tile}`).not.toThrow();
  });
});

describe("LookML data tests", () => {
  it("cover the key measures", () => {
    const covered = new Set([...project.tests.values()].flatMap((t) => dataTestQuery(t).query.fields));
    for (const m of ["requests", "errors", "error_rate", "success_rate", "latency_p50_ms", "latency_p99_ms", "latency_p999_ms", "latency_mean_ms", "latency_max_ms"]) {
      expect(covered.has(`mesh_traffic.${m}`), m).toBe(true);
    }
  });

  it("assert only on columns their query selects, and render", () => {
    const renderer = privilegedRenderer(project);
    for (const [name, test] of project.tests) {
      const { query, asserts } = dataTestQuery(test);
      expect(asserts.length, name).toBeGreaterThan(0);
      for (const [, expression] of asserts) {
        for (const f of expressionFields(expression)) expect(query.fields, `${name}: ${f}`).toContain(f);
      }
      expect(() => parseSnowflake(renderer.render(query)), name).not.toThrow();
    }
  });
});

describe("governed access", () => {
  const traffic = { explore: "mesh_traffic", fields: ["mesh_traffic.requests"] };

  it("scopes every traffic explore to the user's namespaces", () => {
    for (const name of ["mesh_traffic", "service_edges", "identity_access"]) {
      const af = project.explores.get(name)!.access_filter;
      expect(af, name).toEqual(expect.objectContaining({ field: `${name}.destination_namespace`, user_attribute: "meshlook_allowed_namespaces" }));
    }
  });

  it("denies a user without the namespace attribute", () => {
    expect(() => new SqlRenderer(project, { attributes: {} }).render(traffic)).toThrow(/meshlook_allowed_namespaces has no value/);
  });

  it("puts the user's namespaces into the WHERE clause", () => {
    const sql = new SqlRenderer(project, { attributes: { meshlook_allowed_namespaces: "shop,payments" } }).render(traffic);
    expect(sql).toContain("mesh_traffic.destination_namespace IN ('shop', 'payments')");
  });

  it("exposes, in every explore with a fields list, each field its exposed fields reference", () => {
    expect(excludedReferences(project)).toEqual([]);
  });

  it("calls MESH_QUANTILE and MESH_SKETCH_MERGE qualified by @{DATABASE}.@{SCHEMA} (Looker's session has no schema of ours)", () => {
    const unqualified: string[] = [];
    for (const view of project.views.values()) {
      const sqls = [...view.fields.values()].map((f) => [f.name, f.sql ?? ""]).concat([["derived_table", view.derivedSql ?? ""]]);
      for (const [name, sql] of sqls) {
        for (const m of sql.matchAll(/(\S*?)\b(MESH_QUANTILE|MESH_SKETCH_MERGE)\s*\(/gi)) {
          // Derived-table SQL arrives with the constants already substituted.
          if (!/(?:@\{DATABASE\}\.@\{SCHEMA\}|\w+\.\w+)\.$/.test(m[1])) unqualified.push(`${view.name}.${name}: ${m[0]}`);
        }
      }
    }
    expect(unqualified).toEqual([]);
  });

  it("hides end-user principals and the load ledger without their grants", () => {
    const user = new SqlRenderer(project, { attributes: { meshlook_allowed_namespaces: "%" } });
    expect(() => user.render({ explore: "mesh_traffic", fields: ["mesh_traffic.end_user_principal"] })).toThrow(/can_see_end_users/);
    expect(() => user.render({ explore: "mesh_loads", fields: ["mesh_loads.summaries"] })).toThrow(/can_see_collector_loads/);
    expect(() => user.render({ explore: "schema_migrations", fields: ["schema_migrations.latest_version"] })).toThrow(/can_see_collector_loads/);
    // Producer ids name pods and make sequence numbers guessable: operators only, also in Sidecar loss.
    expect(() => user.render({ explore: "mesh_sidecar_loss", fields: ["mesh_sidecar_loss.producer_id"] })).toThrow(/can_see_collector_loads/);
    // So does the sender (service accounts of every namespace).
    expect(() => user.render({ explore: "mesh_sidecar_loss", fields: ["mesh_sidecar_loss.caller"] })).toThrow(/can_see_collector_loads/);
    expect(() => user.render({ explore: "mesh_sidecar_loss", fields: ["mesh_sidecar_loss.namespace", "mesh_sidecar_loss.reporting_sidecars"] })).not.toThrow();
    expect(() => privilegedRenderer(project).render({ explore: "mesh_traffic", fields: ["mesh_traffic.end_user_principal"] })).not.toThrow();
  });
});

describe("looker/README.md", () => {
  const readme = () => readFileSync(join(LOOKER_DIR, "README.md"), "utf8");

  it("documents every user attribute the model uses", () => {
    const attributes = new Set<string>();
    for (const [, g] of named(project.model.access_grant)) attributes.add(g.user_attribute);
    for (const e of project.explores.values()) if (e.access_filter) attributes.add(e.access_filter.user_attribute);
    for (const a of attributes) expect(readme(), a).toContain(a);
  });

  it("describes every dashboard and every tile", () => {
    const text = readme();
    for (const { dashboard } of project.dashboards) {
      expect(text, dashboard.title).toContain(dashboard.title);
      for (const el of dashboard.elements) expect(text, `${dashboard.title}: ${el.title}`).toContain(el.title);
    }
  });

  it("names the constants an installation sets", () => {
    for (const c of Object.keys(project.constants)) expect(readme(), c).toContain(c);
  });
});
