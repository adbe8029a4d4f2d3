// The Looker explore URL of a finding: the model's own explore and field names (looker/, checked by
// test/looker/outliers.test.ts), filtered to the finding's series and to a time range around it, so
// one click shows the minutes that made the finding.
import type { Grain, OutlierKind } from "../../shared/outliers.ts";

export const LOOKER_MODEL = "meshlook";
export const LOOKER_EXPLORE = "mesh_traffic";

const f = (name: string) => `${LOOKER_EXPLORE}.${name}`;
export const EXPLORE_FIELDS = {
  time: f("traffic_minute"),
  reporter: f("reporter"),
  sourcePrincipal: f("source_principal"),
  sourceWorkload: f("source_workload"),
  destinationService: f("destination_service"),
  requests: f("requests"),
  errors: f("errors"),
  errorRate: f("error_rate"),
  p50: f("latency_p50_ms"),
  p99: f("latency_p99_ms"),
  plaintextRequests: f("plaintext_requests"),
  securityPolicy: f("connection_security_policy"),
} as const;

/** The columns each kind's drill shows, after the minute. */
const KIND_FIELDS: Record<OutlierKind, (keyof typeof EXPLORE_FIELDS)[]> = {
  error_rate: ["requests", "errors", "errorRate"],
  latency: ["requests", "p50", "p99"],
  traffic_drop: ["requests"],
  traffic_surge: ["requests"],
  new_edge: ["sourceWorkload", "requests", "errors"],
  plaintext: ["sourceWorkload", "securityPolicy", "requests", "plaintextRequests"],
};

/** A value as a Looker string filter matches it literally: `^` escapes its special characters. */
export function lookerLiteral(value: string): string {
  return value.replace(/[\^,%_"]/g, (c) => `^${c}`).replace(/^-/, "^-");
}

/** `YYYY-MM-DD HH:MM` in UTC, the form Looker's date-time filter ranges take. */
const minuteText = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");

export interface ExploreTarget {
  kind: OutlierKind;
  grain: Grain;
  sourcePrincipal: string | null;
  destinationService: string;
  reporter: string;
  /** Time range shown: from before the recent window (for context) to its end. */
  fromMs: number;
  toMs: number;
}

/** Field → filter expression of a finding's drill (the query the URL encodes). */
export function exploreQuery(t: ExploreTarget): { fields: string[]; filters: Record<string, string>; sorts: string[] } {
  const filters: Record<string, string> = {
    [EXPLORE_FIELDS.time]: `${minuteText(t.fromMs)} to ${minuteText(t.toMs)}`,
    [EXPLORE_FIELDS.reporter]: t.reporter,
    [EXPLORE_FIELDS.destinationService]: lookerLiteral(t.destinationService),
  };
  if (t.grain === "edge" && t.sourcePrincipal !== null) filters[EXPLORE_FIELDS.sourcePrincipal] = lookerLiteral(t.sourcePrincipal);
  return {
    fields: [EXPLORE_FIELDS.time, ...KIND_FIELDS[t.kind].map((k) => EXPLORE_FIELDS[k])],
    filters,
    // Newest first, so the row limit never cuts off the window the finding is about.
    sorts: [`${EXPLORE_FIELDS.time} desc`],
  };
}

/** `<base>/explore/meshlook/mesh_traffic?fields=…&f[…]=…&sorts=…` (base empty: a path for the Looker host). */
export function exploreUrl(base: string, t: ExploreTarget): string {
  const q = exploreQuery(t);
  const params = new URLSearchParams();
  params.set("fields", q.fields.join(","));
  for (const [field, expr] of Object.entries(q.filters)) params.set(`f[${field}]`, expr);
  params.set("sorts", q.sorts.join(","));
  params.set("limit", "500");
  return `${base.replace(/\/+$/, "")}/explore/${LOOKER_MODEL}/${LOOKER_EXPLORE}?${params.toString()}`;
}
