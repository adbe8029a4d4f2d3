// The pluginConfig of the WasmPlugin: parsed, validated, defaults applied. Every error names the
// field (as a JSON path) and the problem, so one log line tells the operator what to fix.
import { JsonKind, JsonParser, JsonValue } from "./json";
import { isValidUtf8 } from "./sdk/host";
import { DIMENSION_NAMES, DIM_COUNT, Dim } from "./dimensions";

export const MAX_CONFIG_BYTES = 65536;

export class Config {
  cluster: string = "";
  authority: string = "";
  path: string = "/v1/summaries";
  timeoutMs: u32 = 5000;
  flushIntervalS: u32 = 10;
  maxSeries: i32 = 2000;
  maxPendingBytes: i32 = 1048576;
  inbound: bool = true;
  outbound: bool = true;
  /** Per dimension index: read it (true) or report it as `unknown` / 0 (false). */
  dimensions: StaticArray<bool> = new StaticArray<bool>(DIM_COUNT);
  endUserPrincipal: bool = false;
  sketchScale: i32 = 6;
}

/** Result of parsing: either `config` or an `error` naming the field. */
export class ConfigResult {
  config: Config | null = null;
  error: string = "";
}

function fail(field: string, problem: string): ConfigResult {
  let r = new ConfigResult();
  r.error = "pluginConfig field \"" + field + "\": " + problem;
  return r;
}

const TOP_LEVEL: Array<string> = [
  "collector", "flush_interval_s", "max_series", "max_pending_bytes", "directions", "dimensions",
  "end_user_principal", "sketch_scale",
];
const COLLECTOR: Array<string> = ["cluster", "authority", "path", "timeout_ms"];

function unknownMember(v: JsonValue, allowed: Array<string>): string | null {
  for (let i = 0; i < v.keys.length; i++) if (!allowed.includes(v.keys[i])) return v.keys[i];
  return null;
}

// The problem found by the last field check ("" when none): a module variable, so a check can hand
// back both a value and an error without allocating a result object.
let problem = "";

/** Optional integer member `key` of `obj` within [min, max]; `fallback` when absent; sets `problem`. */
function intMember(obj: JsonValue, key: string, min: i64, max: i64, fallback: i64): i64 {
  problem = "";
  let v = obj.get(key);
  if (v === null) return fallback;
  if (v.kind != JsonKind.Number || v.num != Math.floor(v.num)) {
    problem = "must be an integer (got " + v.describe() + ")";
  } else if (v.num < <f64>min || v.num > <f64>max) {
    problem = "must be between " + min.toString() + " and " + max.toString() + " (got " + v.describe() + ")";
  }
  return problem.length ? fallback : <i64>v.num;
}

function nonEmptyString(v: JsonValue, maxLen: i32): string {
  if (v.kind != JsonKind.String) return "must be a string (got " + v.describe() + ")";
  if (v.str.length == 0) return "must not be empty";
  if (v.str.length > maxLen) return "must be at most " + maxLen.toString() + " characters";
  return "";
}

/** The host part of an Istio cluster name `direction|port|subset|host`, else the name itself. */
export function authorityFromCluster(cluster: string): string {
  let parts = cluster.split("|");
  if (parts.length == 4 && parts[3].length > 0) return parts[3];
  return cluster;
}

/** Parses and validates the plugin configuration bytes (`len` may be 0: no configuration). */
export function parseConfig(ptr: usize, len: i32): ConfigResult {
  if (len == 0) return fail("collector.cluster", "is required (the plugin configuration is empty)");
  if (len > MAX_CONFIG_BYTES) return fail("(root)", "configuration larger than " + MAX_CONFIG_BYTES.toString() + " bytes");
  if (!isValidUtf8(ptr, len)) return fail("(root)", "configuration is not valid UTF-8");
  let parser = new JsonParser(ptr, len);
  let root = parser.parse();
  if (root === null) return fail("(root)", "not valid JSON: " + parser.error);
  if (root.kind != JsonKind.Object) return fail("(root)", "must be a JSON object (got " + root.describe() + ")");
  let extra = unknownMember(root, TOP_LEVEL);
  if (extra !== null) return fail(extra, "unknown field");

  let c = new Config();

  let collector = root.get("collector");
  if (collector === null) return fail("collector.cluster", "is required");
  if (collector.kind != JsonKind.Object) return fail("collector", "must be an object (got " + collector.describe() + ")");
  extra = unknownMember(collector, COLLECTOR);
  if (extra !== null) return fail("collector." + extra, "unknown field");
  let v = collector.get("cluster");
  if (v === null) return fail("collector.cluster", "is required");
  problem = nonEmptyString(v, 1024);
  if (problem.length) return fail("collector.cluster", problem);
  c.cluster = v.str;
  c.authority = authorityFromCluster(c.cluster);
  v = collector.get("authority");
  if (v !== null) {
    problem = nonEmptyString(v, 1024);
    if (problem.length) return fail("collector.authority", problem);
    c.authority = v.str;
  }
  v = collector.get("path");
  if (v !== null) {
    problem = nonEmptyString(v, 1024);
    if (problem.length == 0 && v.str.charCodeAt(0) != 0x2f) problem = "must start with '/' (got " + v.describe() + ")";
    if (problem.length) return fail("collector.path", problem);
    c.path = v.str;
  }
  c.timeoutMs = <u32>intMember(collector, "timeout_ms", 1, 600000, c.timeoutMs);
  if (problem.length) return fail("collector.timeout_ms", problem);
  c.flushIntervalS = <u32>intMember(root, "flush_interval_s", 1, 3600, c.flushIntervalS);
  if (problem.length) return fail("flush_interval_s", problem);
  // Lower bound: room for the overflow series (one per direction) plus real series.
  // Upper bound: the most series one wire format v1 summary carries.
  c.maxSeries = <i32>intMember(root, "max_series", 10, 65536, c.maxSeries);
  if (problem.length) return fail("max_series", problem);
  c.maxPendingBytes = <i32>intMember(root, "max_pending_bytes", 4096, 67108864, c.maxPendingBytes);
  if (problem.length) return fail("max_pending_bytes", problem);

  v = root.get("directions");
  if (v !== null) {
    if (v.kind != JsonKind.Array) return fail("directions", "must be an array (got " + v.describe() + ")");
    if (v.items.length == 0) return fail("directions", "must name at least one of \"inbound\", \"outbound\"");
    c.inbound = false;
    c.outbound = false;
    for (let i = 0; i < v.items.length; i++) {
      let d = v.items[i];
      let field = "directions[" + i.toString() + "]";
      if (d.kind != JsonKind.String || (d.str != "inbound" && d.str != "outbound")) {
        return fail(field, "must be \"inbound\" or \"outbound\" (got " + d.describe() + ")");
      }
      let seen = d.str == "inbound" ? c.inbound : c.outbound;
      if (seen) return fail(field, "duplicate " + d.describe());
      if (d.str == "inbound") c.inbound = true;
      else c.outbound = true;
    }
  }

  v = root.get("dimensions");
  for (let i = 0; i < DIM_COUNT; i++) c.dimensions[i] = v === null;
  if (v !== null) {
    if (v.kind != JsonKind.Array) return fail("dimensions", "must be an array (got " + v.describe() + ")");
    for (let i = 0; i < v.items.length; i++) {
      let d = v.items[i];
      let field = "dimensions[" + i.toString() + "]";
      let idx = d.kind == JsonKind.String ? DIMENSION_NAMES.indexOf(d.str) : -1;
      if (idx < 0) return fail(field, "not a dimension of docs/schema.md (got " + d.describe() + ")");
      if (idx == Dim.EndUserPrincipal) return fail(field, "end_user_principal is switched by the end_user_principal field");
      if (c.dimensions[idx]) return fail(field, "duplicate " + d.describe());
      c.dimensions[idx] = true;
    }
  }
  // The reporter is always part of the key: overflow series are kept per reporter.
  c.dimensions[Dim.Reporter] = true;

  v = root.get("end_user_principal");
  if (v !== null) {
    if (v.kind != JsonKind.Bool) return fail("end_user_principal", "must be true or false (got " + v.describe() + ")");
    c.endUserPrincipal = v.bool;
  }
  c.dimensions[Dim.EndUserPrincipal] = c.endUserPrincipal;

  c.sketchScale = <i32>intMember(root, "sketch_scale", 0, 8, c.sketchScale);
  if (problem.length) return fail("sketch_scale", problem);

  let r = new ConfigResult();
  r.config = c;
  return r;
}
