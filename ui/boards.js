// The dashboard's boards as data: which API request each tile makes for a given view state. Shared by the
// page (ui/app.js) and the benchmark (bench/dashboard.ts), so the benchmark times exactly what a browser
// loads. The tiles follow looker/dashboards/*.dashboard.lookml.

export const RANGES = { "15m": 15, "1h": 60, "6h": 360, "24h": 1440, "7d": 10080 };
export const DEFAULT_RANGE = "1h";
/** Per-minute percentiles merge a sketch per series and minute; longer ranges chart them per hour. */
const MINUTE_PERCENTILES_UP_TO = 60;
/** Counters are cheap per minute; past a day a minute chart has more points than pixels. */
const MINUTE_COUNTERS_UP_TO = 1440;

/**
 * @typedef {{ board: string, range: string, reporter: string, namespace: string, service: string,
 *   caller: string, callerNamespace?: string }} ViewState
 */

/** The API parameters every traffic tile shares: time range, reporter and the board's filters. */
export function commonParams(s, nowMs) {
  // Whole minutes (the data's grain), so loads within the same minute ask the same question and the
  // collector answers them from its cache until the next warehouse load.
  const to = Math.ceil(nowMs / 60_000) * 60_000;
  const p = { from: new Date(to - RANGES[s.range] * 60_000).toISOString(), to: new Date(to).toISOString(), reporter: s.reporter };
  if (s.namespace) p.destination_namespace = s.namespace;
  if (s.service) p.destination_service = s.service;
  return p;
}

export const percentileInterval = (s) => (RANGES[s.range] <= MINUTE_PERCENTILES_UP_TO ? "minute" : "hour");
export const counterInterval = (s) => (RANGES[s.range] <= MINUTE_COUNTERS_UP_TO ? "minute" : "hour");

const callerNamespace = (s) => (s.callerNamespace ? { source_namespace: s.callerNamespace } : {});

/** `[path, params]` of each request a tile needs; tiles sharing a request share the answer. */
export const TILES = {
  golden: {
    totals: (c) => ["/traffic", c],
    traffic: (c, s) => ["/traffic", { ...c, interval: counterInterval(s), percentiles: "false" }],
    latency: (c, s) => ["/traffic", { ...c, interval: percentileInterval(s) }],
    loss: (c, s) => ["/sidecar-loss", { from: c.from, to: c.to, interval: counterInterval(s), ...(s.namespace ? { destination_namespace: s.namespace } : {}) }],
    classes: (c, s) => ["/traffic", { ...c, interval: counterInterval(s), group_by: "response_class", percentiles: "false" }],
    services: (c) => ["/traffic", { ...c, group_by: "destination_service", limit: "500" }],
    callers: (c) => ["/traffic", { ...c, group_by: "source_principal,source_namespace,source_workload", limit: "500" }],
    failures: (c) => ["/traffic", { ...c, group_by: "response_flags,response_code,grpc_status,destination_service", percentiles: "false", limit: "500" }],
    series: (c, s) => (s.caller ? ["/traffic", { ...c, source_principal: s.caller, interval: percentileInterval(s) }] : null),
  },
  // The identity-access dashboard's "Caller namespace" filter listens on every tile.
  identity: {
    access: (c, s) => ["/identity-access", { ...c, ...callerNamespace(s), reporter: "destination", limit: "10000" }],
    mtls_hourly: (c, s) => ["/traffic", { ...c, ...callerNamespace(s), reporter: "destination", interval: "hour", percentiles: "false" }],
  },
  graph: {
    edges: (c) => ["/edges", c],
  },
};

/** Query string of a request: repeated keys for list values, sorted so equal requests read equal. */
export function requestUrl(path, params) {
  const q = new URLSearchParams();
  for (const k of Object.keys(params).sort()) for (const v of [params[k]].flat()) if (v !== undefined && v !== "") q.append(k, v);
  return `/api/v1${path}?${q}`;
}

/** The distinct request URLs one board makes for a state, by tile. */
export function boardRequests(s, nowMs) {
  const c = commonParams(s, nowMs);
  const out = {};
  for (const [tile, req] of Object.entries(TILES[s.board])) {
    const r = req(c, s);
    if (r) out[tile] = requestUrl(r[0], r[1]);
  }
  return out;
}
