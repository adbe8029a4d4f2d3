// Validates custom resources the way the Kubernetes API server would for a CRD: the version's
// openAPIV3Schema (structural schema, with strict field validation: unknown fields are errors, not
// silently pruned), the `x-kubernetes-*` extensions, and the CEL rules in `x-kubernetes-validations`.
//
// CEL rules are evaluated with @marcbachmann/cel-js plus the two Kubernetes library functions Istio's
// CRDs use (`isURL`, `url(...).getScheme()`, approximated with the WHATWG URL parser). A rule that the
// evaluator cannot run is reported as an error, never skipped, so a passing validation means every rule
// on the path of the object was checked.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Environment } from "@marcbachmann/cel-js";
import { Ajv, type AnySchema, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import YAML from "yaml";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = { [k: string]: any };

class KubeUrl {
  constructor(readonly url: URL) {}
}

function parseUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}

const cel = new Environment({ unlistedVariablesAreDyn: true })
  .registerType("URL", KubeUrl)
  .registerFunction("isURL(string): bool", (s: string) => parseUrl(s) !== undefined)
  .registerFunction("url(string): URL", (s: string) => {
    const u = parseUrl(s);
    if (!u) throw new Error(`url(): not a URL: ${s}`);
    return new KubeUrl(u);
  })
  .registerFunction({
    name: "getScheme",
    receiverType: "URL",
    returnType: "string",
    handler: (u: KubeUrl) => u.url.protocol.replace(/:$/, ""),
    params: [],
  });

/** CEL distinguishes int from double; JSON does not. Integers become CEL ints (bigint). */
function toCel(v: Json): unknown {
  if (typeof v === "number") return Number.isInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map(toCel);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toCel(x)]));
  return v;
}

interface CelRule {
  rule: string;
  message?: string;
}

/** Rules evaluated so far, by rule text: lets a test state exactly what it checked. */
export const celRulesEvaluated = new Set<string>();

function checkCel(rules: CelRule[], data: Json): Partial<ErrorObject>[] {
  const errors: Partial<ErrorObject>[] = [];
  for (const r of rules) {
    celRulesEvaluated.add(r.rule);
    let ok: unknown;
    try {
      ok = cel.evaluate(r.rule, { self: toCel(data) });
    } catch (err) {
      errors.push({ message: `CEL rule could not be evaluated (${(err as Error).message}): ${r.rule}` });
      continue;
    }
    if (ok !== true) errors.push({ message: r.message ?? `failed CEL rule: ${r.rule}` });
  }
  return errors;
}

/** Kubernetes list-type=map: no two items may share the values of the list-map-keys. */
function checkListMap(keys: string[], data: Json): boolean {
  if (!Array.isArray(data)) return true;
  const seen = new Set<string>();
  for (const item of data) {
    const id = JSON.stringify(keys.map((k) => (item as Record<string, Json>)?.[k] ?? null));
    if (seen.has(id)) return false;
    seen.add(id);
  }
  return true;
}

/** Strict field validation: an object schema with properties admits no other field unless it says so. */
function strictify(s: Schema): Schema {
  if (Array.isArray(s)) return s.map(strictify);
  if (!s || typeof s !== "object") return s;
  const out: Schema = {};
  for (const [k, v] of Object.entries(s)) {
    out[k] = k === "enum" || k === "required" || k === "x-kubernetes-validations" ? v : strictify(v);
  }
  if (out.properties && out.additionalProperties === undefined && !out["x-kubernetes-preserve-unknown-fields"]) {
    out.additionalProperties = false;
  }
  return out;
}

function makeAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats.default(ajv, ["date-time"]);
  ajv.addFormat("int32", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
  ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isSafeInteger(n) });
  ajv.addFormat("double", { type: "number", validate: () => true });
  for (const keyword of ["x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys"]) {
    ajv.addKeyword({ keyword }); // meaning handled by strictify / anyOf / list-type
  }
  ajv.addKeyword({
    keyword: "x-kubernetes-list-type",
    validate: function listType(this: unknown, type: string, data: Json, parent?: AnySchema) {
      const v = listType as unknown as { errors?: Partial<ErrorObject>[] };
      const ok =
        type === "map"
          ? checkListMap((parent as Schema)["x-kubernetes-list-map-keys"] ?? [], data)
          : type === "set"
            ? !Array.isArray(data) || new Set(data.map((x) => JSON.stringify(x))).size === data.length
            : true;
      v.errors = ok ? [] : [{ message: `duplicate items in a list of type ${type}` }];
      return ok;
    },
    errors: true,
  });
  ajv.addKeyword({
    keyword: "x-kubernetes-validations",
    validate: function validations(rules: CelRule[], data: Json) {
      const errors = checkCel(rules, data);
      (validations as unknown as { errors: Partial<ErrorObject>[] }).errors = errors;
      return errors.length === 0;
    },
    errors: true,
  });
  return ajv;
}

export interface Resource {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any;
  [k: string]: unknown;
}

/** A compiled schema, without ajv's type-guard signature (a failed check must not narrow to never). */
type Check = ((data: unknown) => boolean) & Pick<ValidateFunction, "errors">;

export class CrdValidator {
  private readonly validators = new Map<string, Check>();

  /** Loads every `*.crd.yaml` in a directory. */
  constructor(dir: string) {
    const ajv = makeAjv();
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".crd.yaml"))) {
      const crd = YAML.parse(readFileSync(join(dir, f), "utf8"));
      for (const v of crd.spec.versions) {
        if (!v.served || !v.schema?.openAPIV3Schema) continue;
        const schema = structuredClone(v.schema.openAPIV3Schema);
        // The API server supplies these for every object; CRD schemas leave them out.
        schema.properties = {
          apiVersion: { type: "string" },
          kind: { type: "string" },
          metadata: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
          ...schema.properties,
        };
        this.validators.set(`${crd.spec.group}/${v.name}/${crd.spec.names.kind}`, ajv.compile(strictify(schema)));
      }
    }
  }

  has(r: Pick<Resource, "apiVersion" | "kind">): boolean {
    return this.validators.has(`${r.apiVersion}/${r.kind}`);
  }

  /** Problems found, each with the path in the object; empty when valid. Throws for an unknown kind. */
  validate(r: Resource): string[] {
    const v = this.validators.get(`${r.apiVersion}/${r.kind}`);
    if (!v) throw new Error(`no CRD schema for ${r.apiVersion} ${r.kind}`);
    if (v(r)) return [];
    return (v.errors ?? []).map((e) => {
      const extra = e.keyword === "additionalProperties" ? ` (${e.params.additionalProperty})` : "";
      return `${r.kind}/${r.metadata?.name} ${e.instancePath || "/"}: ${e.message}${extra}`;
    });
  }
}
