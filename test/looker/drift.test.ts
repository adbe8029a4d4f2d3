// Schema drift: the views against the warehouse the real migrations build (collector/sink/duckdb.ts
// running shared/schema.ts MIGRATIONS on a fresh DuckDB file). A migration that drops or renames a
// column a field reads, or adds a fact column no field exposes, fails here.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DuckDBSink } from "../../collector/sink/duckdb.ts";
import { BOARD_HOUR_TABLE, BOARD_MINUTE_TABLE, FACT_TABLE, HOUR_TABLE, LEDGER_TABLE, LOCK_TABLE, LOSS_TABLE, OUTLIER_TABLE, SCHEMA_VERSION_TABLE } from "../../shared/schema.ts";
import { privilegedRenderer, schemaDrift, unexposedColumns, type Columns } from "./checks.ts";
import { snowflakeToDuckDB } from "./dialect.ts";
import { loadProject, type Project } from "./project.ts";

let dir: string;
let sink: DuckDBSink;
let project: Project;
let tables: Columns;
let derived: Columns;

async function columnsOf(sql: string): Promise<string[]> {
  const r = await sink.connection.runAndReadAll(sql);
  return r.columnNames().map((c) => c.toLowerCase());
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "meshlook-drift-"));
  sink = new DuckDBSink(join(dir, "meshlook.duckdb"));
  await sink.open();
  project = await loadProject({ DATABASE: "meshlook", SCHEMA: "main" });
  const rows = (
    await sink.connection.runAndReadAll("SELECT table_name, column_name FROM information_schema.columns WHERE table_catalog = 'meshlook' AND table_schema = 'main'")
  ).getRows();
  tables = new Map();
  for (const [t, c] of rows) {
    const name = String(t).toLowerCase();
    if (!tables.has(name)) tables.set(name, new Set());
    tables.get(name)!.add(String(c).toLowerCase());
  }
  derived = new Map();
  const renderer = privilegedRenderer(project);
  for (const view of project.views.values()) {
    if (!view.derivedSql) continue;
    const sql = snowflakeToDuckDB(`SELECT * FROM (${renderer.derivedTableSql(view.name)}) AS dt LIMIT 0`);
    derived.set(view.name, new Set(await columnsOf(sql)));
  }
});

afterAll(async () => {
  await sink.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("schema drift", () => {
  it("finds the migrated tables", () => {
    expect(tables.get(FACT_TABLE.name)?.size).toBe(FACT_TABLE.columns.length);
    expect(tables.get(LEDGER_TABLE.name)?.size).toBe(LEDGER_TABLE.columns.length);
    expect(tables.get(LOSS_TABLE.name)?.size).toBe(LOSS_TABLE.columns.length);
    expect(tables.get(SCHEMA_VERSION_TABLE.name)?.size).toBe(SCHEMA_VERSION_TABLE.columns.length);
    expect(tables.get(HOUR_TABLE.name)?.size).toBe(HOUR_TABLE.columns.length);
    expect(tables.get(LOCK_TABLE.name)?.size).toBe(LOCK_TABLE.columns.length);
    expect(tables.get(OUTLIER_TABLE.name)?.size).toBe(OUTLIER_TABLE.columns.length);
  });

  it("every column a view reads exists in the migrated warehouse", () => {
    expect(schemaDrift(project, tables, derived)).toEqual([]);
  });

  it("every column of every warehouse table is exposed by a view", () => {
    expect([...tables.keys()].sort()).toEqual(
      [
        BOARD_HOUR_TABLE.name,
        BOARD_MINUTE_TABLE.name,
        FACT_TABLE.name,
        HOUR_TABLE.name,
        LEDGER_TABLE.name,
        LOCK_TABLE.name,
        LOSS_TABLE.name,
        OUTLIER_TABLE.name,
        SCHEMA_VERSION_TABLE.name,
      ].sort(),
    );
    // The lock table holds no data, only the row each writer transaction updates first to run alone, and
    // mesh_board_hour and mesh_board_minute are the embedded read API's own pre-aggregates with binary sketches
    // (docs/schema.md); every other table is something a Looker user reads.
    const readApiOnly = [LOCK_TABLE.name, BOARD_HOUR_TABLE.name, BOARD_MINUTE_TABLE.name];
    for (const [table, columns] of tables) if (!readApiOnly.includes(table)) expect(unexposedColumns(project, table, columns), table).toEqual([]);
  });

  it("reports a field whose column a migration dropped", () => {
    const dropped = new Map(tables);
    dropped.set(FACT_TABLE.name, new Set([...tables.get(FACT_TABLE.name)!].filter((c) => c !== "latency_sketch")));
    const problems = schemaDrift(project, dropped, derived);
    expect(problems).toContain("mesh_traffic.latency_p99_ms reads mesh_traffic_minute.latency_sketch, which does not exist");
    expect(problems).toContain("service_edges.latency_p99_ms reads mesh_traffic_minute.latency_sketch, which does not exist");
  });

  it("reports a rollup column that the hourly derived table no longer reads", () => {
    const added = new Set([...tables.get(HOUR_TABLE.name)!, "retries"]);
    expect(unexposedColumns(project, HOUR_TABLE.name, added)).toEqual(["retries"]);
  });

  it("reports a new fact column that no view exposes", () => {
    const added = new Set([...tables.get(FACT_TABLE.name)!, "retries"]);
    expect(unexposedColumns(project, FACT_TABLE.name, added)).toEqual(["retries"]);
  });

  it("the identity derived table reads only migrated columns", () => {
    expect(derived.get("identity_access")).toEqual(
      new Set([
        "reporter",
        "source_principal",
        "source_workload",
        "source_namespace",
        "destination_principal",
        "destination_service",
        "destination_workload",
        "destination_namespace",
        "connection_security_policy",
        "first_seen",
        "last_seen",
        "requests",
        "errors",
      ]),
    );
  });

  it("every field's query runs on the migrated warehouse", async () => {
    const renderer = privilegedRenderer(project);
    const run = async (explore: string, fields: string[]) => sink.connection.run(snowflakeToDuckDB(renderer.render({ explore, fields })));
    const failures: string[] = [];
    let fieldsRun = 0;
    for (const [explore] of project.explores) {
      const exposed = [...project.views.get(explore)!.fields.values()]
        .filter((f) => f.category !== "filter")
        .map((f) => `${explore}.${f.name}`)
        .filter((scoped) => {
          try {
            renderer.render({ explore, fields: [scoped] });
            return true;
          } catch (err) {
            if (/does not expose/.test((err as Error).message)) return false;
            throw err;
          }
        });
      // One query per explore with every field; only when it fails, one per field to name the culprit.
      try {
        await run(explore, exposed);
        fieldsRun += exposed.length;
      } catch {
        for (const scoped of exposed) await run(explore, [scoped]).catch((err) => failures.push(`${scoped}: ${err.message}`));
      }
    }
    expect(failures).toEqual([]);
    expect(fieldsRun).toBeGreaterThan(80);
  });
});
