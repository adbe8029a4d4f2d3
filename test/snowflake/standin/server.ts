// A loopback stand-in for Snowflake, for tests only: it speaks the part of Snowflake's REST protocol that
// snowflake-sdk 3.x uses (login with key-pair JWT or password, query requests with bindings and array
// bindings, JSON `rowtype`/`rowset` results, Snowflake error shapes, heartbeat, session-token renewal,
// session delete, request-id retries) and executes the SQL on DuckDB after translating it (translate.ts).
//
// Transactions and locking follow what Snowflake documents, and no more, for the statements meshlook issues
// (docs.snowflake.com/en/sql-reference/transactions, "Isolation level" and "Resource locking"; read
// 2026-12 for the current service):
//  - READ COMMITTED: outside a transaction, and inside one until its first write, every statement runs on
//    a fresh DuckDB snapshot, so it sees everything committed before it started;
//  - locks (StandinOptions.lockModel): the docs say UPDATE, DELETE and MERGE hold locks that "generally"
//    keep them from running in parallel with each other, and that most INSERTs write only new partitions
//    and "often can run in parallel" with other INSERTs and sometimes with UPDATE/DELETE/MERGE. The
//    default model, "documented", keeps only what is certain: UPDATE and DELETE lock their target table
//    until the transaction ends, while INSERT and an insert-only MERGE (WHEN NOT MATCHED THEN INSERT —
//    it writes only new rows) take no lock and run in parallel. "merge-serializes" also makes MERGE lock
//    its target, the behaviour the load protocol once relied on; tests use it to show that reliance;
//  - a lock waiter gives up after the session's LOCK_TIMEOUT (ALTER SESSION SET LOCK_TIMEOUT = n;
//    Snowflake's default 43200 s) with a statement error;
//  - a session whose client vanished keeps its open transaction and locks ("detached", docs section
//    "Aborting transactions") until the session ends or the transaction is aborted: SHOW TRANSACTIONS
//    lists the running explicit transactions of the caller's user (id = start time in ms, as Snowflake
//    assigns) and SELECT SYSTEM$ABORT_TRANSACTION(id) rolls one back and frees its locks (only the user
//    who started it may). Snowflake's own abort of a detached transaction that has blocked another for
//    5 idle minutes is not modelled: the collector must not depend on it;
//  - the DuckDB transaction behind a Snowflake transaction starts at its first write, *after* any lock
//    that write needed, so a statement that waited for a lock sees the rows its predecessor committed.
//    DuckDB cannot refresh a snapshot mid-transaction; a lock wait after the first write would therefore
//    be emulated wrongly, and the stand-in fails that statement instead of answering with stale data;
//  - DDL commits an open transaction first, as Snowflake does.
// One DuckDB database plays the configured database and schema; qualification is ignored.
import { DuckDBInstance, DuckDBScalarFunction, DOUBLE, VARCHAR, BOOLEAN, LIST, BIGINT, type DuckDBConnection, type DuckDBType } from "@duckdb/node-api";
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { gunzipSync } from "node:zlib";
import { verifyLoginJwt } from "./jwt.ts";
import { TranslationError, translate, type JsUdf, type Translated, type Verb } from "./translate.ts";

export interface StandinUser {
  /** Registered public keys (PEM): Snowflake's RSA_PUBLIC_KEY and RSA_PUBLIC_KEY_2. */
  publicKeys?: string[];
  /** Password for the SNOWFLAKE authenticator. */
  password?: string;
}

export interface StandinOptions {
  /** Account identifier the JWT must name (upper-cased). Default MESHTEST. */
  account?: string;
  users?: Record<string, StandinUser>;
  /** DuckDB database file; default in memory. */
  dbPath?: string;
  /** Session token lifetime announced at login (Snowflake: 3600). */
  sessionValidityS?: number;
  /** Added before every statement, to widen the windows in which concurrent loads interleave. */
  statementDelayMs?: number;
  /** CLIENT_STAGE_ARRAY_BINDING_THRESHOLD announced at login (Snowflake: 65280). */
  arrayBindingThreshold?: number;
  /** Which statements lock their target table (see the header). Default "documented". */
  lockModel?: "documented" | "merge-serializes";
}

/** A fault applied to the next query request(s) whose SQL matches. */
export type Fault = { match?: RegExp; times?: number } & (
  | { kind: "http"; status: number }
  | { kind: "error"; code: string; sqlState: string; message: string }
  /** Execute the statement, then never answer (the socket stays open until stop()). */
  | { kind: "hold-after"; onHeld?: () => void }
  /** Execute the statement, then cut the connection; the driver retries under the same request id. */
  | { kind: "drop-after" }
);

export interface CapturedStatement {
  sessionId: number;
  user: string;
  sql: string;
  /** Rows bound: 0 without bindings, 1 for scalar bindings, n for array bindings. */
  bindRows: number;
  /** The driver's request id; its retries of one statement carry the same one. */
  requestId: string;
  /** Bytes of the request body (SQL text and bindings as JSON), uncompressed: what Snowflake's 1 MB statement limit is about. */
  bytes: number;
  /** The request id was executed before: a driver retry, answered from the first execution. */
  retry: boolean;
}

/** One HTTP request the driver made: a round trip, whatever it was for. */
export interface RoundTrip {
  path: string;
  /** Request body bytes on the wire (the driver gzips query requests) and uncompressed. */
  wireBytes: number;
  bytes: number;
  /** Response body bytes. */
  responseBytes: number;
}

export interface LoginRecord {
  user: string;
  ok: boolean;
  authenticator: string;
  fingerprint?: string;
  reason?: string;
}

export interface Standin {
  /** http://127.0.0.1:PORT — pass as snowflake-sdk's accessUrl. */
  readonly url: string;
  readonly account: string;
  /** Every statement received, in arrival order. */
  readonly statements: CapturedStatement[];
  /** Every HTTP request received (logins, statements, heartbeats, token renewals, …), in arrival order. */
  readonly roundTrips: RoundTrip[];
  readonly logins: LoginRecord[];
  /** How many statements had to wait for another session's table lock. */
  readonly lockWaits: number;
  setUser(name: string, user: StandinUser): void;
  inject(fault: Fault): void;
  /** Expires every session token now: the next request must renew it with the master token. */
  expireSessionTokens(): void;
  /** Reads DuckDB directly (bypassing the protocol), for assertions. */
  query(sql: string): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

interface Session {
  id: number;
  user: string;
  token: string;
  masterToken: string;
  tokenExpiresMs: number;
  conn: DuckDBConnection;
  inTxn: boolean;
  duckTxn: boolean;
  locks: Set<string>;
  temps: Set<string>;
  /** LOCK_TIMEOUT set for the session, seconds (Snowflake's default 43200). */
  lockTimeoutS: number;
  /** Id (start time, ms) of the open explicit transaction. */
  txnId?: number;
  /** Statements of one session run one after another, as Snowflake runs a session's synchronous queries. */
  tail: Promise<unknown>;
  requests: Map<string, Promise<SfBody>>;
}

interface SfBody {
  success: boolean;
  code: string | null;
  message: string | null;
  data: Record<string, unknown> | null;
}

class SfError extends Error {
  constructor(
    readonly code: string,
    readonly sqlState: string,
    message: string,
  ) {
    super(message);
  }
}

interface Column {
  name: string;
  type: string;
  scale: number;
  precision: number;
  nullable: boolean;
  length: number | null;
  byteLength: number | null;
  database: string;
  schema: string;
  table: string;
}

interface ResultSet {
  rowtype: Column[];
  rowset: (string | null)[][];
  statementTypeId: number;
}

const STATEMENT_TYPE: Record<Verb, number> = { select: 0x1000, insert: 0x3100, update: 0x3200, delete: 0x3300, merge: 0x3400, ddl: 0x6000, other: 0x6000 };
const DML_COLUMN: Partial<Record<Verb, string>> = {
  insert: "number of rows inserted",
  update: "number of rows updated",
  delete: "number of rows deleted",
  merge: "number of rows inserted",
};

function column(name: string, type: string, scale = 0, precision = 0): Column {
  return { name, type, scale, precision, nullable: true, length: null, byteLength: null, database: "", schema: "", table: "" };
}

const statusResult = (text: string): ResultSet => ({ rowtype: [column("status", "text")], rowset: [[text]], statementTypeId: 0x6000 });

/** Maps a DuckDB error onto the Snowflake code and SQLSTATE a client would get for the same mistake. */
function sfErrorFromDuck(err: unknown): SfError {
  const msg = err instanceof Error ? err.message : String(err);
  if (/JavaScript execution error/.test(msg)) return new SfError("100132", "P0000", msg);
  if (/^Catalog Error/.test(msg)) return new SfError("002003", "42S02", `SQL compilation error: ${msg}`);
  if (/^(Binder|Parser) Error/.test(msg)) return new SfError("000904", "42000", `SQL compilation error: ${msg}`);
  if (/^(Conversion|Constraint|Invalid Input) Error/.test(msg)) return new SfError("100038", "22018", msg);
  return new SfError("000603", "XX000", `SQL execution internal error: ${msg}`);
}

// Bound values arrive as strings tagged with Snowflake's logical type (snowflake-sdk's buildBindsMap).
function bindValue(type: string, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  const s = String(v);
  switch (type) {
    case "FIXED":
      return /^-?\d+$/.test(s) ? BigInt(s) : Number(s);
    case "REAL":
      return Number(s);
    case "BOOLEAN":
      return s === "true" || s === "1";
    default:
      return s;
  }
}

function duckTypeFor(sfType: string): DuckDBType {
  switch (sfType) {
    case "ARRAY":
      return LIST(VARCHAR);
    case "DOUBLE":
    case "FLOAT":
    case "REAL":
    case "NUMBER":
      return DOUBLE;
    case "BOOLEAN":
      return BOOLEAN;
    case "BIGINT":
    case "INTEGER":
    case "INT":
      return BIGINT;
    default:
      return VARCHAR;
  }
}

function toResultSet(names: string[], types: string[], rows: unknown[][]): ResultSet {
  const rowtype = names.map((raw, i) => {
    // Snowflake folds unquoted identifiers to upper case, and so does every result column name it returns.
    const name = raw.toUpperCase();
    const t = types[i];
    if (/^(U?TINYINT|U?SMALLINT|U?INTEGER|U?BIGINT|U?HUGEINT)$/.test(t)) return column(name, "fixed", 0, 38);
    const dec = /^DECIMAL\((\d+),(\d+)\)$/.exec(t);
    if (dec) return column(name, "fixed", Number(dec[2]), Number(dec[1]));
    if (t === "DOUBLE" || t === "FLOAT") return column(name, "real");
    if (t === "BOOLEAN") return column(name, "boolean");
    if (t === "TIMESTAMP") return column(name, "timestamp_ntz", 6, 0);
    if (t.endsWith("[]")) return column(name, "array");
    return column(name, "text");
  });
  const rowset = rows.map((r) =>
    r.map((v, i): string | null => {
      if (v === null || v === undefined) return null;
      const type = rowtype[i].type;
      if (type === "timestamp_ntz") {
        const micros = (v as { micros: bigint }).micros;
        const neg = micros < 0n;
        const abs = neg ? -micros : micros;
        return `${neg ? "-" : ""}${abs / 1_000_000n}.${String(abs % 1_000_000n).padStart(6, "0")}`;
      }
      if (type === "array") return JSON.stringify((v as { items: unknown[] }).items);
      if (type === "boolean") return v ? "1" : "0";
      return String(v);
    }),
  );
  return { rowtype, rowset, statementTypeId: STATEMENT_TYPE.select };
}

class TableLocks {
  private holders = new Map<string, { session: number; waiters: (() => void)[] }>();
  waits = 0;

  /**
   * Takes the table's lock for the session; resolves true when it had to wait for another session, and
   * rejects when the wait exceeds `timeoutS` (the waiter leaves the queue).
   */
  async acquire(table: string, session: number, timeoutS: number): Promise<boolean> {
    const h = this.holders.get(table);
    if (!h) {
      this.holders.set(table, { session, waiters: [] });
      return false;
    }
    if (h.session === session) return false;
    this.waits++;
    let grant!: () => void;
    let timer: NodeJS.Timeout | undefined;
    const granted = await Promise.race([
      new Promise<true>((resolve) => h.waiters.push((grant = () => resolve(true)))),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutS * 1000))),
    ]);
    clearTimeout(timer);
    if (!granted) {
      h.waiters.splice(h.waiters.indexOf(grant), 1);
      throw new SfError("000625", "57014", `Statement waited for the lock on table ${table.toUpperCase()} longer than LOCK_TIMEOUT (${timeoutS} s) and was aborted.`);
    }
    this.holders.get(table)!.session = session;
    return true;
  }

  release(table: string): void {
    const h = this.holders.get(table);
    if (!h) return;
    const next = h.waiters.shift();
    if (next) next();
    else this.holders.delete(table);
  }
}

async function readBody(req: IncomingMessage): Promise<{ json: unknown; wireBytes: number; bytes: number }> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  let buf = Buffer.concat(chunks);
  const wireBytes = buf.length;
  if (buf.length === 0) return { json: {}, wireBytes, bytes: 0 };
  if (req.headers["content-encoding"] === "gzip") buf = gunzipSync(buf);
  return { json: JSON.parse(buf.toString("utf8")), wireBytes, bytes: buf.length };
}

const sfError = (code: string, message: string, data: Record<string, unknown> = {}): SfBody => ({
  success: false,
  code,
  message,
  data: { errorCode: code, age: 0, internalError: false, ...data },
});

/** Starts the stand-in on 127.0.0.1 (a free port). */
export async function startStandin(options: StandinOptions = {}): Promise<Standin> {
  const account = (options.account ?? "MESHTEST").toUpperCase();
  const users = new Map<string, StandinUser>(Object.entries(options.users ?? {}).map(([k, v]) => [k.toUpperCase(), v]));
  const instance = await DuckDBInstance.create(options.dbPath ?? ":memory:");
  const admin = await instance.connect();
  const sessions = new Map<string, Session>();
  const byMaster = new Map<string, Session>();
  const locks = new TableLocks();
  const lockModel = options.lockModel ?? "documented";
  // Transaction ids are start times in ms, unique (Snowflake: "a unique start time … serves as the ID").
  let lastTxnId = 0;
  const nextTxnId = () => (lastTxnId = Math.max(Date.now(), lastTxnId + 1));
  const faults: Fault[] = [];
  const statements: CapturedStatement[] = [];
  const roundTrips: RoundTrip[] = [];
  const logins: LoginRecord[] = [];
  const held = new Set<Socket>();
  const udfs = new Map<string, (...args: unknown[]) => unknown>();
  const registeredUdfs = new Set<string>();
  let nextSession = 1;

  function registerUdf(udf: JsUdf): void {
    // Snowflake runs the body as a function whose parameters are the upper-cased argument names.
    const fn = new Function(...udf.params.map((p) => p.name.toUpperCase()), udf.body) as (...a: unknown[]) => unknown;
    udfs.set(udf.name, fn);
    const signature = `${udf.name}(${udf.params.map((p) => p.type).join(",")})`;
    if (registeredUdfs.has(signature)) return;
    registeredUdfs.add(signature);
    admin.registerScalarFunction(
      DuckDBScalarFunction.create({
        name: udf.name,
        returnType: duckTypeFor(udf.returns),
        parameterTypes: udf.params.map((p) => duckTypeFor(p.type)),
        specialHandling: true,
        mainFunction: (info, input, output) => {
          const current = udfs.get(udf.name)!;
          const vectors = udf.params.map((_, i) => input.getColumnVector(i));
          try {
            for (let row = 0; row < input.rowCount; row++) {
              // SQL NULL reaches JavaScript as undefined; lists as arrays.
              const args = vectors.map((v) => {
                const x = v.getItem(row) as unknown;
                if (x === null) return undefined;
                if (typeof x === "object" && x !== null && "items" in x) return [...(x as { items: unknown[] }).items];
                return typeof x === "bigint" ? Number(x) : x;
              });
              const out = current(...args);
              output.setItem(row, (out === undefined ? null : out) as never);
            }
            output.flush();
          } catch (err) {
            info.setError(`JavaScript execution error: Uncaught ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} in ${udf.name.toUpperCase()}`);
          }
        },
      }),
    );
  }

  async function endTxn(s: Session, how: "COMMIT" | "ROLLBACK"): Promise<void> {
    if (s.duckTxn) await s.conn.run(how);
    s.inTxn = false;
    s.duckTxn = false;
    s.txnId = undefined;
    for (const t of s.locks) locks.release(t);
    s.locks.clear();
  }

  async function runDuck(s: Session, t: Extract<Translated, { kind: "sql" }>, binds: Record<string, { type: string; value: unknown }> | undefined): Promise<ResultSet> {
    const keys = binds ? Object.keys(binds).sort((a, b) => Number(a) - Number(b)) : [];
    const arrayRows = keys.length > 0 && Array.isArray(binds![keys[0]].value) ? (binds![keys[0]].value as unknown[]).length : -1;
    if (arrayRows >= 0) {
      const values = /^([\s\S]*\bVALUES\s*)(\([^()]*\))\s*$/i.exec(t.duck);
      if (t.verb !== "insert" || !values) throw new SfError("002014", "22000", "Array binding is supported for INSERT ... VALUES (...) only");
      // Snowflake runs an array-bound INSERT as one statement; so does the stand-in, as a multi-row VALUES.
      let inserted = 0;
      for (let from = 0; from < arrayRows; from += 500) {
        const n = Math.min(500, arrayRows - from);
        const flat: unknown[] = [];
        for (let r = from; r < from + n; r++) for (const k of keys) flat.push(bindValue(binds![k].type, (binds![k].value as unknown[])[r]));
        const sql = values[1] + Array.from({ length: n }, () => values[2]).join(", ");
        inserted += (await s.conn.run(sql, flat as never)).rowsChanged;
      }
      return { rowtype: [column(DML_COLUMN.insert!, "fixed", 0, 38)], rowset: [[String(inserted)]], statementTypeId: STATEMENT_TYPE.insert };
    }
    const values = keys.map((k) => bindValue(binds![k].type, binds![k].value));
    const reader = await s.conn.runAndReadAll(t.duck, values.length > 0 ? (values as never) : undefined);
    const dml = DML_COLUMN[t.verb];
    if (dml) return { rowtype: [column(dml, "fixed", 0, 38)], rowset: [[String(reader.rowsChanged)]], statementTypeId: STATEMENT_TYPE[t.verb] };
    if (t.verb === "ddl" || t.verb === "other") return statusResult("Statement executed successfully.");
    return toResultSet(
      reader.columnNames(),
      reader.columnTypes().map((c) => c.toString()),
      reader.getRows() as unknown[][],
    );
  }

  async function execute(s: Session, sql: string, binds: Record<string, { type: string; value: unknown }> | undefined): Promise<ResultSet> {
    if (options.statementDelayMs) await new Promise((r) => setTimeout(r, options.statementDelayMs));
    let t: Translated;
    try {
      t = translate(sql);
    } catch (err) {
      if (err instanceof TranslationError) throw new SfError("001003", "42000", err.message);
      throw err;
    }
    switch (t.kind) {
      case "begin":
        if (!s.inTxn) s.txnId = nextTxnId();
        s.inTxn = true;
        return statusResult("Statement executed successfully.");
      case "commit":
      case "rollback":
        await endTxn(s, t.kind === "commit" ? "COMMIT" : "ROLLBACK");
        return statusResult("Statement executed successfully.");
      case "session":
        if (t.set.LOCK_TIMEOUT !== undefined) s.lockTimeoutS = Number(t.set.LOCK_TIMEOUT);
        return statusResult("Statement executed successfully.");
      case "show-transactions": {
        const mine = [...sessions.values()].filter((x) => x.user === s.user && x.inTxn && x.txnId !== undefined);
        const rs = toResultSet(
          ["id", "user", "session", "name", "started_on", "state", "scope"],
          ["BIGINT", "VARCHAR", "BIGINT", "VARCHAR", "TIMESTAMP", "VARCHAR", "VARCHAR"],
          mine.map((x) => [x.txnId, x.user, x.id, String(x.txnId), { micros: BigInt(x.txnId!) * 1000n }, "running", "0"]),
        );
        // SHOW output keeps Snowflake's lower-case column names.
        rs.rowtype.forEach((c, i) => (c.name = ["id", "user", "session", "name", "started_on", "state", "scope"][i]));
        return rs;
      }
      case "abort-transaction": {
        const target = [...sessions.values()].find((x) => x.txnId !== undefined && String(x.txnId) === t.id);
        if (target && target.user !== s.user) throw new SfError("003001", "42501", "Insufficient privileges to abort the transaction");
        if (target) await endTxn(target, "ROLLBACK");
        return { ...toResultSet([`SYSTEM$ABORT_TRANSACTION(${t.id})`], ["VARCHAR"], [[`Aborted transaction id: ${t.id}`]]) };
      }
      case "js-udf":
        if (s.inTxn) await endTxn(s, "COMMIT");
        registerUdf(t.udf);
        return statusResult(`Function ${t.udf.name.toUpperCase()} successfully created.`);
    }
    if (t.verb === "merge" && /\bWHEN\s+MATCHED\b/i.test(sql)) {
      throw new SfError("001003", "42000", "stand-in: MERGE with WHEN MATCHED is not emulated (its result splits inserted/updated counts)");
    }
    if (t.verb === "ddl") {
      if (s.inTxn) await endTxn(s, "COMMIT");
      const out = await runDuck(s, t, binds);
      if (t.temporaryTable) s.temps.add(t.temporaryTable);
      return out;
    }
    const write = t.verb === "insert" || t.verb === "update" || t.verb === "delete" || t.verb === "merge";
    const locking = t.verb === "update" || t.verb === "delete" || (t.verb === "merge" && lockModel === "merge-serializes");
    const lockTable = locking && t.target && !s.temps.has(t.target) ? t.target : undefined;
    if (lockTable && !s.locks.has(lockTable)) {
      const waited = await locks.acquire(lockTable, s.id, s.lockTimeoutS);
      s.locks.add(lockTable);
      if (waited && s.duckTxn) {
        throw new SfError("000603", "XX000", "stand-in: a lock wait after the transaction's first write cannot be emulated on DuckDB");
      }
    }
    if (!s.inTxn) {
      // Autocommit: the statement is its own transaction (array binds included), locks end with it.
      await s.conn.run("BEGIN TRANSACTION");
      s.duckTxn = true;
      try {
        const out = await runDuck(s, t, binds);
        await endTxn(s, "COMMIT");
        return out;
      } catch (err) {
        await endTxn(s, "ROLLBACK");
        throw err;
      }
    }
    if (write && !s.duckTxn) {
      await s.conn.run("BEGIN TRANSACTION");
      s.duckTxn = true;
    }
    return runDuck(s, t, binds);
  }

  function sessionFromAuth(req: IncomingMessage, master: boolean): Session | SfBody {
    const m = /Snowflake Token="([^"]+)"/.exec(req.headers.authorization ?? "");
    const s = m ? (master ? byMaster.get(m[1]) : sessions.get(m[1])) : undefined;
    if (!s) return sfError("390104", "User must login again to access the service.");
    if (!master && Date.now() > s.tokenExpiresMs) return sfError("390112", "Your session has expired. Please login again.");
    return s;
  }

  async function login(url: URL, body: { data?: Record<string, string> }): Promise<SfBody> {
    const d = body.data ?? {};
    const userName = String(d.LOGIN_NAME ?? "").toUpperCase();
    const authenticator = String(d.AUTHENTICATOR ?? "SNOWFLAKE").toUpperCase();
    const user = users.get(userName);
    const refuse = (code: string, message: string, reason: string) => {
      logins.push({ user: userName, ok: false, authenticator, reason });
      return sfError(code, message);
    };
    if (String(d.ACCOUNT_NAME ?? "").toUpperCase() !== account) return refuse("390100", "Incorrect username or password was specified.", "unknown account");
    if (!user) return refuse("390100", "Incorrect username or password was specified.", "unknown user");
    let fingerprint: string | undefined;
    if (authenticator === "SNOWFLAKE_JWT") {
      const check = verifyLoginJwt(String(d.TOKEN ?? ""), account, userName, user.publicKeys ?? []);
      if (!check.ok) return refuse("390144", "JWT token is invalid.", check.reason);
      fingerprint = check.fingerprint;
    } else if (authenticator === "SNOWFLAKE") {
      if (!user.password || d.PASSWORD !== user.password) return refuse("390100", "Incorrect username or password was specified.", "wrong password");
    } else {
      return refuse("390100", `Authenticator ${authenticator} is not supported by the stand-in.`, "authenticator");
    }
    const validity = options.sessionValidityS ?? 3600;
    const s: Session = {
      id: nextSession++,
      user: userName,
      token: `st-${randomUUID()}`,
      masterToken: `mt-${randomUUID()}`,
      tokenExpiresMs: Date.now() + validity * 1000,
      conn: await instance.connect(),
      inTxn: false,
      duckTxn: false,
      locks: new Set(),
      temps: new Set(),
      lockTimeoutS: 43200,
      tail: Promise.resolve(),
      requests: new Map(),
    };
    sessions.set(s.token, s);
    byMaster.set(s.masterToken, s);
    logins.push({ user: userName, ok: true, authenticator, fingerprint });
    return {
      success: true,
      code: null,
      message: null,
      data: {
        token: s.token,
        masterToken: s.masterToken,
        validityInSeconds: validity,
        masterValidityInSeconds: 14400,
        sessionId: s.id,
        parameters: [
          { name: "CLIENT_STAGE_ARRAY_BINDING_THRESHOLD", value: options.arrayBindingThreshold ?? 65280 },
          { name: "TIMEZONE", value: "UTC" },
        ],
        sessionInfo: {
          databaseName: url.searchParams.get("databaseName"),
          schemaName: url.searchParams.get("schemaName"),
          warehouseName: url.searchParams.get("warehouse"),
          roleName: url.searchParams.get("roleName"),
        },
      },
    };
  }

  function takeFault(sql: string): Fault | undefined {
    const i = faults.findIndex((f) => !f.match || f.match.test(sql));
    if (i < 0) return undefined;
    const f = faults[i];
    if (f.times === undefined || f.times <= 1) faults.splice(i, 1);
    else f.times--;
    return f;
  }

  async function closeSession(s: Session): Promise<void> {
    sessions.delete(s.token);
    byMaster.delete(s.masterToken);
    await s.tail.catch(() => undefined);
    if (s.inTxn) await endTxn(s, "ROLLBACK").catch(() => undefined);
    s.conn.closeSync();
  }

  type Reply = { status: number; body: SfBody } | { status: number; raw: string } | "hold" | "drop";

  async function route(req: IncomingMessage, url: URL, trip: RoundTrip): Promise<Reply> {
    const read = await readBody(req);
    trip.wireBytes = read.wireBytes;
    trip.bytes = read.bytes;
    const body = read.json as Record<string, unknown>;
    const path = url.pathname;
    if (path === "/session/v1/login-request") return { status: 200, body: await login(url, body as { data?: Record<string, string> }) };
    if (path === "/session/token-request") {
      const s = sessionFromAuth(req, true);
      if (!("conn" in s)) return { status: 200, body: sfError("390114", "Authentication token has expired. The user must authenticate again.") };
      sessions.delete(s.token);
      s.token = `st-${randomUUID()}`;
      s.tokenExpiresMs = Date.now() + (options.sessionValidityS ?? 3600) * 1000;
      sessions.set(s.token, s);
      return {
        status: 200,
        body: {
          success: true,
          code: null,
          message: null,
          data: { sessionToken: s.token, validityInSecondsST: options.sessionValidityS ?? 3600, masterToken: s.masterToken, validityInSecondsMT: 14400 },
        },
      };
    }
    if (path === "/telemetry/send" || path === "/queries/v1/abort-request") return { status: 200, body: { success: true, code: null, message: null, data: null } };
    const s = sessionFromAuth(req, false);
    if (!("conn" in s)) return { status: 200, body: s };
    if (path === "/session/heartbeat") return { status: 200, body: { success: true, code: null, message: null, data: null } };
    if (path === "/session" && url.searchParams.get("delete") === "true") {
      await closeSession(s);
      return { status: 200, body: { success: true, code: null, message: null, data: null } };
    }
    if (path !== "/queries/v1/query-request") return { status: 404, raw: "not found" };

    // The driver stages binds (PUT, then bindStage) above its array-binding threshold; the sink must
    // stay below it, so a staged bind is refused here rather than emulated.
    if (body.bindStage) return { status: 200, body: sfError("002003", "SQL compilation error: stage binding is not available on the stand-in", { sqlState: "02000" }) };
    const sql = String(body.sqlText ?? "");
    const binds = body.bindings as Record<string, { type: string; value: unknown }> | undefined;
    const requestId = url.searchParams.get("requestId") ?? randomUUID();
    const firstKey = binds ? Object.keys(binds)[0] : undefined;
    const bindRows = !binds || firstKey === undefined ? 0 : Array.isArray(binds[firstKey].value) ? (binds[firstKey].value as unknown[]).length : 1;
    const previous = s.requests.get(requestId);
    statements.push({ sessionId: s.id, user: s.user, sql, bindRows, requestId, retry: previous !== undefined, bytes: read.bytes });
    // Snowflake answers a retried request id with the outcome of its first execution.
    if (previous) return { status: 200, body: await previous };
    const fault = takeFault(sql);
    if (fault?.kind === "http") return { status: fault.status, raw: "injected failure" };
    if (fault?.kind === "error") return { status: 200, body: sfError(fault.code, fault.message, { sqlState: fault.sqlState }) };
    const queryId = randomUUID();
    const run = s.tail.then(async (): Promise<SfBody> => {
      try {
        const r = await execute(s, sql, binds);
        return {
          success: true,
          code: null,
          message: null,
          data: { ...r, queryId, total: r.rowset.length, returned: r.rowset.length, version: 1, queryResultFormat: "json", parameters: [], finalDatabaseName: null },
        };
      } catch (err) {
        const e = err instanceof SfError ? err : sfErrorFromDuck(err);
        return sfError(e.code, e.message, { sqlState: e.sqlState, queryId });
      }
    });
    s.tail = run;
    s.requests.set(requestId, run);
    if (s.requests.size > 1000) s.requests.delete(s.requests.keys().next().value!);
    const out = await run;
    if (fault?.kind === "hold-after") {
      fault.onHeld?.();
      return "hold";
    }
    if (fault?.kind === "drop-after") return "drop";
    return { status: 200, body: out };
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const trip: RoundTrip = { path: url.pathname, wireBytes: 0, bytes: 0, responseBytes: 0 };
    roundTrips.push(trip);
    route(req, url, trip).then(
      (reply) => {
        if (reply === "hold") {
          held.add(req.socket);
          return;
        }
        if (reply === "drop") {
          req.socket.destroy();
          return;
        }
        if ("raw" in reply) {
          trip.responseBytes = Buffer.byteLength(reply.raw);
          res.writeHead(reply.status, { "content-type": "text/plain" }).end(reply.raw);
          return;
        }
        const out = JSON.stringify(reply.body);
        trip.responseBytes = Buffer.byteLength(out);
        res.writeHead(reply.status, { "content-type": "application/json" }).end(out);
      },
      (err: Error) => {
        res.writeHead(500, { "content-type": "text/plain" }).end(`stand-in failure: ${err.message}`);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    account,
    statements,
    roundTrips,
    logins,
    get lockWaits() {
      return locks.waits;
    },
    setUser(name, user) {
      users.set(name.toUpperCase(), user);
    },
    inject(fault) {
      faults.push({ ...fault });
    },
    expireSessionTokens() {
      for (const s of sessions.values()) s.tokenExpiresMs = 0;
    },
    async query(sql) {
      const reader = await admin.runAndReadAll(sql);
      const names = reader.columnNames();
      return reader.getRowsJS().map((r) => Object.fromEntries(names.map((n, i) => [n, r[i]])));
    },
    async stop() {
      for (const sock of held) sock.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of [...sessions.values()]) await closeSession(s);
      admin.closeSync();
      instance.closeSync();
    },
  };
}
