// Parsers of the remote-write settings whose values are lists of pairs (config.ts applies them).
import { OWN_LABELS } from "./labels.ts";

/** Prometheus' label-name syntax; names starting with `__` are reserved for Prometheus itself. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
/** RFC 9110 token: what a header field name may hold. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** `name=value` pairs separated by commas (a value cannot hold a comma), or a JSON object. */
function pairs(raw: unknown, what: string, nameOk: (name: string) => string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const text = String(raw ?? "").trim();
  if (text === "") return out;
  let entries: [string, unknown][];
  if (text.startsWith("{")) {
    let obj: unknown;
    try {
      obj = JSON.parse(text);
    } catch {
      throw new Error(`must be a JSON object or name=value pairs separated by commas`);
    }
    entries = Object.entries(obj as Record<string, unknown>);
  } else {
    entries = text.split(",").map((p) => {
      const eq = p.indexOf("=");
      if (eq <= 0) throw new Error(`${what} ${JSON.stringify(p.trim())} is not name=value`);
      return [p.slice(0, eq).trim(), p.slice(eq + 1).trim()];
    });
  }
  for (const [name, value] of entries) {
    const problem = nameOk(name);
    if (problem) throw new Error(`${what} ${JSON.stringify(name)}: ${problem}`);
    if (typeof value !== "string") throw new Error(`${what} ${JSON.stringify(name)}: the value must be a string`);
    out[name] = value;
  }
  return out;
}

/** Extra HTTP headers for every remote-write request, e.g. `X-Scope-OrgID=team-a`. */
export function parseHeaders(raw: unknown): Record<string, string> {
  // Prometheus' own list (config/config.go reservedHeaders): the spec forbids letting users set them.
  const reserved = new Set([
    "content-type",
    "content-encoding",
    "content-length",
    "x-prometheus-remote-write-version",
    "user-agent",
    "host",
    "connection",
    "keep-alive",
    "accept-encoding",
  ]);
  return pairs(raw, "header", (name) =>
    !HEADER_NAME.test(name) ? "not a valid header name" : reserved.has(name.toLowerCase()) ? "is set by the remote-write protocol itself" : undefined,
  );
}

/** Labels added to every exported series, e.g. `cluster=prod-eu`. */
export function parseExternalLabels(raw: unknown): Record<string, string> {
  return pairs(raw, "label", (name) =>
    !LABEL_NAME.test(name) || name.startsWith("__") ? "not a valid label name" : OWN_LABELS.includes(name) ? "is already a meshlook label" : undefined,
  );
}
