// The pluginConfig of the WasmPlugin: parsed, checked, defaults applied. The filter never refuses a
// configuration: Envoy turns a refused one into a NACK, and a proxy started after it installs the
// missing-config filter that answers every request with 500 (NFCF). So every problem is collected as
// one message naming the field (a JSON path) and the filter runs on in a documented safe mode: a bad or
// unknown field keeps its default, and without a usable collector cluster nothing is reported.
import { JsonKind, JsonParser, JsonValue } from "./json";
import { isValidUtf8 } from "./sdk/host";
import { DIMENSION_NAMES, DIM_COUNT, Dim } from "./dimensions";

export const MAX_CONFIG_BYTES = 65536;
// The smallest series record wire format v1 allows (docs/wire-format.md, "Series record"): a changed mask,
// one value reference (the series of a window differ in at least one dimension; only an overflow series
// right after a real series reporting the same values has none, a byte the summary's header more than
// makes up), seven counters and a sketch's scale, zero count and bucket count, one byte each.
export const MIN_RECORD_BYTES: i32 = 12;
// The default max_pending_bytes grows with max_series: a summary larger than the budget is dropped unsent
// every window (outbox.ts push), and summaries measure 97–152 bytes a series (bench/filter.ts summary-size),
// so a fixed 1 MiB holds a window of some 7 000–11 000 series, not 65 536. 512 bytes a series hold four
// windows at 128 bytes a series, as 1 MiB (kept as the least) does at the default 2000.
const MIN_DEFAULT_PENDING_BYTES: i32 = 1048576;
const PENDING_BYTES_PER_SERIES: i32 = 512;

export class Config {
  /** False in safe mode without a usable collector cluster: nothing is aggregated or sent. */
  reporting: bool = true;
  cluster: string = "";
  authority: string = "";
  path: string = "/v1/summaries";
  timeoutMs: u32 = 5000;
  flushIntervalS: u32 = 10;
  maxSeries: i32 = 2000;
  maxPendingBytes: i32 = MIN_DEFAULT_PENDING_BYTES;
  inbound: bool = true;
  outbound: bool = true;
  /** Per dimension index: read it (true) or report it as `unknown` / 0 (false). */
  dimensions: StaticArray<bool> = new StaticArray<bool>(DIM_COUNT);
  endUserPrincipal: bool = false;
  sketchScale: i32 = 6;
}

/** The configuration in force and every problem found on the way, one message per field. */
export class ConfigResult {
  config: Config = new Config();
  errors: Array<string> = [];

  report(field: string, problem: string): void {
    this.errors.push('pluginConfig field "' + field + '": ' + problem);
  }
}

const TOP_LEVEL: Array<string> = ["collector", "flush_interval_s", "max_series", "max_pending_bytes", "directions", "dimensions", "end_user_principal", "sketch_scale"];
const COLLECTOR: Array<string> = ["cluster", "authority", "path", "timeout_ms"];

function reportUnknown(r: ConfigResult, v: JsonValue, allowed: Array<string>, prefix: string): void {
  for (let i = 0; i < v.keys.length; i++) {
    if (!allowed.includes(v.keys[i])) r.report(prefix + v.keys[i], "unknown field (ignored)");
  }
}

/** Optional integer member `key` of `obj` within [min, max]; `fallback` (reported) when invalid. */
function intMember(r: ConfigResult, obj: JsonValue, prefix: string, key: string, min: i64, max: i64, fallback: i64): i64 {
  let v = obj.get(key);
  if (v === null) return fallback;
  let problem = "";
  if (v.kind != JsonKind.Number || v.num != Math.floor(v.num)) {
    problem = "must be an integer (got " + v.describe() + ")";
  } else if (v.num < <f64>min || v.num > <f64>max) {
    problem = "must be between " + min.toString() + " and " + max.toString() + " (got " + v.describe() + ")";
  }
  if (problem.length == 0) return <i64>v.num;
  r.report(prefix + key, problem + "; using the default " + fallback.toString());
  return fallback;
}

/** Problem with a string member, or "" when it is a usable non-empty string. */
function stringProblem(v: JsonValue, maxLen: i32): string {
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

function noCollector(r: ConfigResult, field: string, problem: string): ConfigResult {
  r.report(field, problem + "; nothing will be reported until it is fixed");
  r.config.reporting = false;
  return r;
}

/** Parses and checks the plugin configuration bytes (`len` may be 0: no configuration). */
export function parseConfig(ptr: usize, len: i32): ConfigResult {
  let r = new ConfigResult();
  let c = r.config;
  for (let i = 0; i < DIM_COUNT; i++) c.dimensions[i] = i != Dim.EndUserPrincipal;
  if (len == 0) return noCollector(r, "collector.cluster", "is required (the plugin configuration is empty)");
  if (len > MAX_CONFIG_BYTES) return noCollector(r, "(root)", "configuration larger than " + MAX_CONFIG_BYTES.toString() + " bytes");
  if (!isValidUtf8(ptr, len)) return noCollector(r, "(root)", "configuration is not valid UTF-8");
  let parser = new JsonParser(ptr, len);
  let root = parser.parse();
  if (root === null) return noCollector(r, "(root)", "not valid JSON: " + parser.error);
  if (root.kind != JsonKind.Object) return noCollector(r, "(root)", "must be a JSON object (got " + root.describe() + ")");
  reportUnknown(r, root, TOP_LEVEL, "");

  readCollector(r, root);
  c.flushIntervalS = <u32>intMember(r, root, "", "flush_interval_s", 1, 3600, c.flushIntervalS);
  // Lower bound: room for the overflow series (one per direction) plus real series.
  // Upper bound: the most series one wire format v1 summary carries.
  c.maxSeries = <i32>intMember(r, root, "", "max_series", 10, 65536, c.maxSeries);
  readPendingBytes(r, root);
  readDirections(r, root.get("directions"));
  readDimensions(r, root.get("dimensions"));

  let v = root.get("end_user_principal");
  if (v !== null) {
    if (v.kind == JsonKind.Bool) c.endUserPrincipal = v.bool;
    else r.report("end_user_principal", "must be true or false (got " + v.describe() + "); using the default false");
  }
  c.dimensions[Dim.EndUserPrincipal] = c.endUserPrincipal;
  c.sketchScale = <i32>intMember(r, root, "", "sketch_scale", 0, 8, c.sketchScale);
  return r;
}

/** The budget when `max_pending_bytes` is absent or unusable: it grows with `max_series` (above). */
function defaultPendingBytes(maxSeries: i32): i32 {
  let derived = maxSeries * PENDING_BYTES_PER_SERIES;
  if (derived < MIN_DEFAULT_PENDING_BYTES) return MIN_DEFAULT_PENDING_BYTES;
  return derived;
}

/**
 * `max_pending_bytes`, also checked against `max_series`: a summary larger than the whole budget is dropped
 * unsent whether or not the collector answers (outbox.ts push), so a budget below the smallest summary a
 * window at the cap can encode to would drop every full window. Such a budget keeps the default, which
 * holds that much at any max_series, like any other value out of range.
 */
function readPendingBytes(r: ConfigResult, root: JsonValue): void {
  let c = r.config;
  let fallback = defaultPendingBytes(c.maxSeries);
  c.maxPendingBytes = <i32>intMember(r, root, "", "max_pending_bytes", 4096, 67108864, fallback);
  let least = <i64>c.maxSeries * <i64>MIN_RECORD_BYTES;
  if (<i64>c.maxPendingBytes >= least) return;
  r.report(
    "max_pending_bytes",
    "cannot hold one summary at max_series " +
      c.maxSeries.toString() +
      " (got " +
      c.maxPendingBytes.toString() +
      "; such a summary takes at least " +
      least.toString() +
      " bytes, and one larger than the budget is dropped unsent); using the default " +
      fallback.toString(),
  );
  c.maxPendingBytes = fallback;
}

function readCollector(r: ConfigResult, root: JsonValue): void {
  let c = r.config;
  let collector = root.get("collector");
  if (collector === null) {
    noCollector(r, "collector.cluster", "is required");
    return;
  }
  if (collector.kind != JsonKind.Object) {
    noCollector(r, "collector", "must be an object (got " + collector.describe() + ")");
    return;
  }
  reportUnknown(r, collector, COLLECTOR, "collector.");
  let v = collector.get("cluster");
  if (v === null) noCollector(r, "collector.cluster", "is required");
  else {
    let problem = stringProblem(v, 1024);
    if (problem.length) noCollector(r, "collector.cluster", problem);
    else {
      c.cluster = v.str;
      c.authority = authorityFromCluster(c.cluster);
    }
  }
  v = collector.get("authority");
  if (v !== null) {
    let problem = stringProblem(v, 1024);
    if (problem.length) r.report("collector.authority", problem + "; using the cluster's host");
    else c.authority = v.str;
  }
  v = collector.get("path");
  if (v !== null) {
    let problem = stringProblem(v, 1024);
    if (problem.length == 0 && v.str.charCodeAt(0) != 0x2f) problem = "must start with '/' (got " + v.describe() + ")";
    if (problem.length) r.report("collector.path", problem + "; using the default " + c.path);
    else c.path = v.str;
  }
  c.timeoutMs = <u32>intMember(r, collector, "collector.", "timeout_ms", 1, 600000, c.timeoutMs);
}

/** `directions`: a bad entry is skipped; no usable entry at all keeps the default (both). */
function readDirections(r: ConfigResult, v: JsonValue | null): void {
  if (v === null) return;
  if (v.kind != JsonKind.Array) {
    r.report("directions", "must be an array (got " + v.describe() + "); reporting both directions");
    return;
  }
  let inbound = false;
  let outbound = false;
  for (let i = 0; i < v.items.length; i++) {
    let d = v.items[i];
    let field = "directions[" + i.toString() + "]";
    if (d.kind != JsonKind.String || (d.str != "inbound" && d.str != "outbound")) {
      r.report(field, 'must be "inbound" or "outbound" (got ' + d.describe() + "); ignored");
    } else if (d.str == "inbound") {
      if (inbound) r.report(field, "duplicate " + d.describe() + "; ignored");
      inbound = true;
    } else {
      if (outbound) r.report(field, "duplicate " + d.describe() + "; ignored");
      outbound = true;
    }
  }
  if (!inbound && !outbound) {
    r.report("directions", 'names neither "inbound" nor "outbound"; reporting both directions');
    return;
  }
  r.config.inbound = inbound;
  r.config.outbound = outbound;
}

/** `dimensions`: a bad entry is skipped (the rest apply); not an array keeps the default (all). */
function readDimensions(r: ConfigResult, v: JsonValue | null): void {
  let c = r.config;
  if (v === null) return;
  if (v.kind != JsonKind.Array) {
    r.report("dimensions", "must be an array (got " + v.describe() + "); reading every dimension");
    return;
  }
  for (let i = 0; i < DIM_COUNT; i++) c.dimensions[i] = false;
  let seen = new StaticArray<bool>(DIM_COUNT);
  for (let i = 0; i < v.items.length; i++) {
    let d = v.items[i];
    let field = "dimensions[" + i.toString() + "]";
    let idx = -1;
    if (d.kind == JsonKind.String) idx = DIMENSION_NAMES.indexOf(d.str);
    if (idx < 0) r.report(field, "not a dimension of docs/schema.md (got " + d.describe() + "); ignored");
    else if (idx == Dim.EndUserPrincipal) r.report(field, "end_user_principal is switched by the end_user_principal field; ignored");
    else if (seen[idx]) r.report(field, "duplicate " + d.describe() + "; ignored");
    else {
      seen[idx] = true;
      c.dimensions[idx] = true;
    }
  }
  // The reporter is always part of the key: overflow series are kept per reporter.
  c.dimensions[Dim.Reporter] = true;
}
