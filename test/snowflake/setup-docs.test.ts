// What docs/snowflake.md tells an administrator to run, and the DDL the sink sends, checked against what a
// real Snowflake account needs — mistakes no stand-in would show, because the stand-in has no roles,
// warehouses, users or time zones:
//  - a role can only run queries with USAGE on a warehouse (docs.snowflake.com/en/user-guide/
//    security-access-control-privileges, "Virtual warehouse privileges"), so Looker's user needs its
//    own warehouse granted to its role;
//  - a session's TIMEZONE defaults to America/Los_Angeles (docs.snowflake.com/en/sql-reference/
//    parameters, TIMEZONE); the Looker user must be UTC or "last 24 hours" shifts by the offset;
//  - CREATE OR REPLACE drops the privileges granted on the object unless COPY GRANTS is given
//    (docs.snowflake.com/en/sql-reference/sql/create-function, COPY GRANTS), so each collector start
//    would take Looker's USAGE on MESH_QUANTILE away.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { meshQuantileUdfSql, meshSketchMergeUdfSql, snowflakeMigrationSql } from "../../collector/sink/snowflake.ts";

/** The statements of the setup block (the ```sql block that creates MESHLOOK_READER), comments removed. */
function setupStatements(markdown: string): string[] {
  const block = [...markdown.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => /CREATE ROLE IF NOT EXISTS MESHLOOK_READER/i.test(b));
  if (!block) throw new Error("docs/snowflake.md has no setup block creating MESHLOOK_READER");
  return block
    .replace(/--[^\n]*/g, "")
    .split(";")
    .map((s) => s.replace(/\s+/g, " ").trim())
    .filter((s) => s !== "");
}

/** Users, role grants and warehouse grants the statements set up, read the way Snowflake parses them. */
function accessModel(statements: readonly string[]) {
  const users = new Map<string, Map<string, string>>();
  const roleOfUser = new Map<string, Set<string>>();
  const privileges: { privileges: string[]; on: string; role: string }[] = [];
  const warehouses = new Set<string>();
  for (const s of statements) {
    let m = /^CREATE USER (?:IF NOT EXISTS )?(\w+) (.*)$/i.exec(s);
    if (m) {
      const props = new Map<string, string>();
      for (const p of m[2].matchAll(/(\w+) = ('[^']*'|\S+)/g)) props.set(p[1].toUpperCase(), p[2].replace(/^'|'$/g, ""));
      users.set(m[1].toUpperCase(), props);
      continue;
    }
    m = /^GRANT ROLE (\w+) TO USER (\w+)$/i.exec(s);
    if (m) {
      const set = roleOfUser.get(m[2].toUpperCase()) ?? new Set();
      set.add(m[1].toUpperCase());
      roleOfUser.set(m[2].toUpperCase(), set);
      continue;
    }
    m = /^GRANT (.+?) ON (.+) TO ROLE (\w+)$/i.exec(s);
    if (m) {
      privileges.push({ privileges: m[1].split(",").map((p) => p.trim().toUpperCase()), on: m[2].toUpperCase(), role: m[3].toUpperCase() });
      continue;
    }
    m = /^CREATE WAREHOUSE (?:IF NOT EXISTS )?(\w+)/i.exec(s);
    if (m) warehouses.add(m[1].toUpperCase());
  }
  const has = (role: string, privilege: string, on: string) => privileges.some((p) => p.role === role && p.privileges.includes(privilege) && p.on === on);
  return { users, roleOfUser, warehouses, has };
}

describe("docs/snowflake.md setup SQL", () => {
  const model = accessModel(setupStatements(readFileSync(new URL("../../docs/snowflake.md", import.meta.url), "utf8")));
  const lookerUsers = [...model.roleOfUser].filter(([, roles]) => roles.has("MESHLOOK_READER")).map(([user]) => user);

  it("creates a Looker user with the reader role, in UTC, on a warehouse the reader role may use", () => {
    expect(lookerUsers.length).toBeGreaterThan(0);
    for (const user of lookerUsers) {
      const props = model.users.get(user);
      expect(props, `user ${user} is granted MESHLOOK_READER but never created`).toBeDefined();
      expect(props!.get("DEFAULT_ROLE")).toBe("MESHLOOK_READER");
      expect(props!.get("TIMEZONE"), `user ${user} must have TIMEZONE = 'UTC'`).toBe("UTC");
      const warehouse = props!.get("DEFAULT_WAREHOUSE")?.toUpperCase();
      expect(warehouse, `user ${user} has no DEFAULT_WAREHOUSE`).toBeDefined();
      expect(model.warehouses.has(warehouse!), `warehouse ${warehouse} is never created`).toBe(true);
      expect(model.has("MESHLOOK_READER", "USAGE", `WAREHOUSE ${warehouse}`), `MESHLOOK_READER has no USAGE on ${warehouse}`).toBe(true);
    }
  });

  it("lets the reader role read the tables and call the functions", () => {
    expect(model.has("MESHLOOK_READER", "USAGE", "DATABASE MESHLOOK")).toBe(true);
    expect(model.has("MESHLOOK_READER", "USAGE", "SCHEMA MESHLOOK.TRAFFIC")).toBe(true);
    expect(model.has("MESHLOOK_READER", "SELECT", "FUTURE TABLES IN SCHEMA MESHLOOK.TRAFFIC")).toBe(true);
    expect(model.has("MESHLOOK_READER", "USAGE", "FUTURE FUNCTIONS IN SCHEMA MESHLOOK.TRAFFIC")).toBe(true);
  });
});

/** Every statement of every ```sql block, in order, each with the role a `USE ROLE` before it left in effect. */
function statementsWithRole(markdown: string): { sql: string; role: string | undefined }[] {
  let role: string | undefined;
  const out: { sql: string; role: string | undefined }[] = [];
  for (const [, block] of markdown.matchAll(/```sql\n([\s\S]*?)```/g)) {
    // Statements up to a `;` at the end of a line: a task's BEGIN … END body keeps its inner semicolons.
    for (const raw of block.replace(/--[^\n]*/g, "").split(/;\s*\n(?![ \t])/)) {
      const sql = raw.replace(/\s+/g, " ").trim();
      const use = /^USE ROLE (\w+)$/i.exec(sql);
      if (use) role = use[1].toUpperCase();
      else if (sql !== "") out.push({ sql, role });
    }
  }
  return out;
}

describe("docs/snowflake.md statements run as a role that may run them", () => {
  const statements = statementsWithRole(readFileSync(new URL("../../docs/snowflake.md", import.meta.url), "utf8"));

  // docs.snowflake.com/en/user-guide/session-policies-managing, "Summary of commands, operations, and
  // privileges": creating a policy takes CREATE SESSION POLICY on the schema, setting one on a user
  // APPLY SESSION POLICY on the account; SECURITYADMIN has neither by default, ACCOUNTADMIN both.
  it("creates and applies the session policy as ACCOUNTADMIN", () => {
    const policy = statements.filter((s) => /^(CREATE SESSION POLICY|ALTER USER \w+ SET SESSION POLICY)\b/i.test(s.sql));
    expect(policy).toHaveLength(2);
    for (const s of policy) expect(s.role, s.sql).toBe("ACCOUNTADMIN");
  });

  // docs.snowflake.com/user-guide/tasks-ts, "Verify the permissions granted to the task owner": a task runs as its owner role,
  // which needs the global EXECUTE TASK privilege.
  it("creates the retention task as a role that owns the tables and was granted EXECUTE TASK", () => {
    const task = statements.find((s) => /^CREATE TASK\b/i.test(s.sql));
    expect(task?.role).toBe("MESHLOOK_LOADER");
    expect(statements.some((s) => /^GRANT EXECUTE TASK ON ACCOUNT TO ROLE MESHLOOK_LOADER$/i.test(s.sql) && s.role === "ACCOUNTADMIN")).toBe(true);
  });
});

describe("the sink's function DDL", () => {
  it("replaces MESH_QUANTILE and MESH_SKETCH_MERGE keeping their grants (COPY GRANTS)", () => {
    const replaces = [meshQuantileUdfSql(), meshSketchMergeUdfSql(), ...snowflakeMigrationSql().flatMap((m) => m.statements)].filter((s) =>
      /^\s*CREATE\s+OR\s+REPLACE\s+(?:SECURE\s+)?FUNCTION\b/i.test(s),
    );
    expect(replaces.length).toBeGreaterThanOrEqual(2);
    for (const sql of replaces) expect(sql.split("LANGUAGE")[0]).toMatch(/\)\s+COPY\s+GRANTS\s+RETURNS\b/i);
  });
});
