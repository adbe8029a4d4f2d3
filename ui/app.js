// The meshlook dashboard: reads the collector's read API with a reader token and draws the boards of
// ui/boards.js with Apache ECharts (served by the collector from the package, no CDN). View state lives in
// the URL fragment, so a view can be bookmarked and shared (the token never goes into it).
import { DEFAULT_RANGE, RANGES, boardRequests, counterInterval, percentileInterval } from "./boards.js";

/* global echarts */
const TOKEN_KEY = "meshlook.readerToken";
const FRESHNESS_POLL_MS = 5000;
const BOARDS = { golden: "Golden signals", identity: "Identity access", graph: "Service graph" };

// ---------------------------------------------------------------- state

const STATE_KEYS = ["board", "range", "reporter", "namespace", "service", "caller", "callerNamespace"];
function readState() {
  const h = new URLSearchParams(location.hash.slice(1));
  // A token handed over in the link (`#token=…`, as the demo prints it) moves to session storage and out of the URL.
  if (h.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, h.get("token"));
    h.delete("token");
    history.replaceState(null, "", `#${h}`);
  }
  const s = Object.fromEntries(STATE_KEYS.map((k) => [k, h.get(k) ?? ""]));
  if (!BOARDS[s.board]) s.board = "golden";
  if (!RANGES[s.range]) s.range = DEFAULT_RANGE;
  if (s.reporter !== "source") s.reporter = "destination";
  return s;
}
let state = readState();
function setState(patch) {
  state = { ...state, ...patch };
  const h = new URLSearchParams();
  for (const k of STATE_KEYS) if (state[k]) h.set(k, state[k]);
  history.pushState(null, "", `#${h}`);
  load();
}
window.addEventListener("popstate", () => {
  state = readState();
  load();
});

// ---------------------------------------------------------------- API

class Unauthorized extends Error {}
async function api(url) {
  const res = await fetch(url, { headers: { authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ""}` } });
  if (res.status === 401) throw new Unauthorized("reader token missing or not accepted");
  const body = await res.json();
  if (!res.ok) throw new Error(`${body.error}: ${body.message}`);
  return body;
}

// ---------------------------------------------------------------- formatting

const nf = new Intl.NumberFormat("en-US");
const fmt = {
  int: (v) => (v === null || v === undefined ? "–" : nf.format(v)),
  rate: (v) => (v === null || v === undefined ? "–" : v.toFixed(2)),
  pct: (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(2)} %`),
  ms: (v) => (v === null || v === undefined ? "–" : v.toFixed(2)),
  bytes: (v) =>
    v === null || v === undefined ? "–" : v >= 1e9 ? `${(v / 1e9).toFixed(1)} GB` : v >= 1e6 ? `${(v / 1e6).toFixed(1)} MB` : v >= 1e3 ? `${(v / 1e3).toFixed(1)} kB` : `${v} B`,
  time: (ms) => (ms === null || ms === undefined ? "–" : new Date(ms).toISOString().slice(0, 16).replace("T", " ")),
  text: (v) => (v === null || v === undefined ? "–" : String(v)),
};
const html = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const el = (tag, attrs = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) e.setAttribute(k, v);
  e.append(...children);
  return e;
};

// ---------------------------------------------------------------- tiles

const charts = new Map();
function tile(id, title, width, body, note) {
  const t = el("section", { class: `tile w${width}`, "data-tile": id, "data-state": "loading" }, el("h2", {}, title));
  if (note) t.append(el("p", { class: "note" }, note));
  t.append(body);
  return t;
}
const done = (t, rows) => t.setAttribute("data-state", rows > 0 ? "ok" : "empty");

function valueTile(id, title, value, format, detail) {
  const t = tile(id, title, 3, el("div", { class: "value", "data-value": value === null ? "" : String(value) }, format(value)));
  if (detail) t.append(el("div", { class: "detail" }, detail));
  done(t, value === null ? 0 : 1);
  return t;
}

function chartTile(id, title, width, option, rows, note) {
  const box = el("div", { class: "chart" });
  const t = tile(id, title, width, box, note);
  requestAnimationFrame(() => {
    const c = echarts.init(box, null, { renderer: "canvas" });
    c.setOption({ animation: false, grid: { left: 56, right: 16, top: 28, bottom: 28 }, tooltip: { trigger: "axis" }, legend: { top: 0 }, ...option });
    charts.set(id, c);
  });
  done(t, rows);
  return t;
}

/** A time axis over the board's whole range, so a gap in traffic shows as one. */
let range = { from: 0, to: 0 };
const timeAxis = () => ({ type: "time", min: range.from, max: range.to, axisLabel: { hideOverlap: true } });
const series = (name, rows, key, type = "line", extra = {}) => ({ name, type, showSymbol: rows.length < 30, data: rows.map((r) => [r.t, r[key]]), ...extra });

const num = "num";
function tableTile(id, title, width, rows, onRow, note) {
  const columns = columnsOf(id);
  const head = el("tr", {}, ...columns.map(([label, , , cls]) => el("th", { class: cls }, label)));
  const body = el("tbody");
  for (const r of rows) {
    const tr = el("tr", onRow ? { class: "clickable", "data-key": onRow.key(r) } : {}, ...columns.map(([, key, f, cls]) => el("td", { class: cls }, f(r[key]))));
    if (onRow) tr.addEventListener("click", () => onRow.click(r));
    body.append(tr);
  }
  const t = tile(id, title, width, el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), body)), note);
  done(t, rows.length);
  return t;
}
/** How each field shows in a table: default label, format, cell class. */
const FIELDS = {
  destination_service: ["Destination service", fmt.text],
  destination_node: ["Callee", fmt.text],
  source_node: ["Caller", fmt.text],
  source_principal: ["Source identity", fmt.text],
  source_namespace: ["Namespace", fmt.text],
  source_workload: ["Workload", fmt.text],
  response_flags: ["Response flags", fmt.text],
  response_code: ["Code", fmt.text],
  grpc_status: ["gRPC status", fmt.text],
  connection_security_policy: ["Security", fmt.text],
  requests: ["Requests", fmt.int, num],
  errors: ["Errors", fmt.int, num],
  requests_per_second: ["RPS", fmt.rate, num],
  error_rate: ["Error rate", fmt.pct, num],
  latency_p50_ms: ["p50 ms", fmt.ms, num],
  latency_p99_ms: ["p99 ms", fmt.ms, num],
  latency_p999_ms: ["p99.9 ms", fmt.ms, num],
  response_bytes: ["Bytes out", fmt.bytes, num],
  first_seen: ["First seen", fmt.time],
  last_seen: ["Last seen", fmt.time],
};
/** Identity-access tables name both ends of a call. */
const CALLER = {
  source_principal: "Caller identity",
  source_namespace: "Caller namespace",
  source_workload: "Caller workload",
  destination_service: "Callee service",
  requests: "Calls",
};
/** The fields of each table tile, in order, with the labels that differ from FIELDS'. */
const TABLES = {
  services: [["destination_service", "requests", "requests_per_second", "error_rate", "latency_p50_ms", "latency_p99_ms", "latency_p999_ms", "response_bytes"]],
  callers: [["source_principal", "source_namespace", "source_workload", "requests", "error_rate", "latency_p50_ms", "latency_p99_ms"]],
  failures: [["response_flags", "response_code", "grpc_status", "destination_service", "requests", "errors"]],
  who_calls_whom: [
    ["source_principal", "source_namespace", "source_workload", "destination_service", "connection_security_policy", "requests", "errors", "first_seen", "last_seen"],
    CALLER,
  ],
  plaintext_by_service: [["source_namespace", "source_workload", "destination_service", "requests", "first_seen", "last_seen"], CALLER],
  newest_callers: [["first_seen", "source_principal", "destination_service", "requests"], CALLER],
  edges: [["source_node", "destination_node", "requests", "requests_per_second", "error_rate", "latency_p99_ms"]],
};
const columnsOf = (id) => {
  const [fields, labels = {}] = TABLES[id];
  return fields.map((f) => [labels[f] ?? FIELDS[f][0], f, FIELDS[f][1], FIELDS[f][2]]);
};

// ---------------------------------------------------------------- boards

function golden(d) {
  const total = d.totals.rows[0] ?? {};
  const v = (k) => (total[k] === undefined ? null : total[k]);
  const pInterval = percentileInterval(state) === "minute" ? "minute" : "hour";
  const cInterval = counterInterval(state);
  const classes = [...new Set(d.classes.rows.map((r) => r.response_class))].sort();
  const out = [
    valueTile("requests", "Requests", v("requests"), fmt.int),
    valueTile("requests_per_second", "Requests per second", v("requests_per_second"), fmt.rate),
    valueTile("error_rate", "Error rate", v("error_rate"), fmt.pct, v("requests") === null ? "" : `${fmt.int(v("errors"))} errors`),
    valueTile("p99_latency", "p99 latency (ms)", v("latency_p99_ms"), fmt.ms),
    chartTile(
      "traffic_over_time",
      `Traffic and errors per ${cInterval}`,
      6,
      {
        xAxis: timeAxis(),
        yAxis: { type: "value" },
        series: [series("requests", d.traffic.rows, "requests", "line", { areaStyle: {} }), series("errors", d.traffic.rows, "errors", "line", { areaStyle: {} })],
      },
      d.traffic.rows.length,
    ),
    chartTile(
      "latency_over_time",
      `Latency percentiles per ${pInterval} (ms)`,
      6,
      {
        xAxis: timeAxis(),
        yAxis: { type: "value" },
        series: [
          ["p50", "latency_p50_ms"],
          ["p90", "latency_p90_ms"],
          ["p99", "latency_p99_ms"],
          ["p99.9", "latency_p999_ms"],
        ].map(([n, k]) => series(n, d.latency.rows, k)),
      },
      d.latency.rows.length,
    ),
    chartTile(
      "responses_by_class",
      `Responses by class per ${cInterval}`,
      6,
      {
        xAxis: timeAxis(),
        yAxis: { type: "value" },
        series: classes.map((c) => ({ name: c, type: "bar", stack: "c", data: d.classes.rows.filter((r) => r.response_class === c).map((r) => [r.t, r.requests]) })),
      },
      d.classes.rows.length,
    ),
    chartTile(
      "requests_lost_in_sidecars",
      "Requests lost in sidecars",
      6,
      {
        xAxis: timeAxis(),
        yAxis: [
          { type: "value", name: "requests" },
          { type: "value", name: "windows" },
        ],
        series: [series("dropped requests", d.loss.rows, "dropped_requests", "bar"), series("dropped windows", d.loss.rows, "dropped_windows", "line", { yAxisIndex: 1 })],
      },
      d.loss.rows.length,
      "Dropped while the collector was unreachable; not split by reporter or service. No bars: nothing lost.",
    ),
    tableTile("services", "Services", 12, d.services.rows, { key: (r) => r.destination_service, click: (r) => setState({ service: r.destination_service, caller: "" }) }),
    tableTile("callers", state.service ? `Callers of ${state.service}` : "Callers by identity", 12, d.callers.rows, {
      key: (r) => r.source_principal,
      click: (r) => setState({ caller: r.source_principal }),
    }),
  ];
  if (d.series) {
    out.push(
      chartTile(
        "series",
        `Series: ${state.caller} → ${state.service || "all services"} (per ${pInterval})`,
        12,
        {
          xAxis: timeAxis(),
          yAxis: [
            { type: "value", name: "requests" },
            { type: "value", name: "ms" },
          ],
          series: [
            series("requests", d.series.rows, "requests", "bar"),
            series("errors", d.series.rows, "errors", "bar"),
            series("p99 ms", d.series.rows, "latency_p99_ms", "line", { yAxisIndex: 1 }),
          ],
        },
        d.series.rows.length,
      ),
    );
  }
  out.push(
    tableTile(
      "failures",
      "Failures by response flags",
      12,
      d.failures.rows.filter((r) => r.errors > 0).sort((a, b) => b.errors - a.errors),
    ),
  );
  return out;
}

function identity(d) {
  const rows = d.access.rows;
  const calls = rows.reduce((a, r) => a + r.requests, 0);
  const mtls = rows.reduce((a, r) => a + (r.connection_security_policy === "mutual_tls" ? r.requests : 0), 0);
  const plaintext = rows.filter((r) => r.connection_security_policy !== "mutual_tls");
  const byCallee = new Map();
  for (const r of rows) {
    const e = byCallee.get(r.destination_service) ?? { destination_service: r.destination_service, calls: 0, mtls: 0 };
    e.calls += r.requests;
    if (r.connection_security_policy === "mutual_tls") e.mtls += r.requests;
    byCallee.set(r.destination_service, e);
  }
  const callees = [...byCallee.values()]
    .map((e) => ({ ...e, share: e.mtls / e.calls }))
    .sort((a, b) => a.share - b.share)
    .slice(0, 50);
  const hourly = d.mtls_hourly.rows;
  return [
    valueTile("caller_identities", "Caller identities", rows.length ? new Set(rows.map((r) => r.source_principal)).size : null, fmt.int),
    valueTile("mtls_share", "mTLS share", calls ? mtls / calls : null, fmt.pct),
    valueTile("plaintext_callers", "Plaintext callers", rows.length ? new Set(plaintext.map((r) => `${r.source_namespace}/${r.source_workload}`)).size : null, fmt.int),
    valueTile("identity_calls", "Calls", rows.length ? calls : null, fmt.int),
    tableTile("who_calls_whom", "Who calls whom", 12, rows.slice(0, 500)),
    tableTile("plaintext_by_service", "Plaintext callers by service", 6, plaintext.slice(0, 500), undefined, "Calls whose connection was not mutual TLS."),
    chartTile(
      "mtls_share_by_callee",
      "mTLS share by callee",
      6,
      {
        tooltip: { trigger: "axis" },
        grid: { left: 260, right: 16, top: 28, bottom: 28 },
        xAxis: { type: "value", max: 1 },
        yAxis: { type: "category", data: callees.map((e) => e.destination_service) },
        series: [{ name: "mTLS share", type: "bar", data: callees.map((e) => e.share) }],
      },
      callees.length,
    ),
    tableTile("newest_callers", "Newest caller identities", 6, [...rows].sort((a, b) => b.first_seen - a.first_seen).slice(0, 100)),
    chartTile(
      "mtls_share_over_time",
      "mTLS share per hour",
      6,
      {
        xAxis: timeAxis(),
        yAxis: [
          { type: "value", max: 1, name: "share" },
          { type: "value", name: "plaintext" },
        ],
        series: [
          series("mTLS share", hourly, "mtls_share"),
          { name: "plaintext requests", type: "bar", yAxisIndex: 1, data: hourly.map((r) => [r.t, r.requests - r.mtls_requests]) },
        ],
      },
      hourly.length,
    ),
  ];
}

function graph(d) {
  const edges = d.edges.rows;
  const nodes = new Map();
  for (const e of edges) for (const n of [e.source_node, e.destination_node]) nodes.set(n, (nodes.get(n) ?? 0) + e.requests);
  const max = Math.max(1, ...nodes.values());
  const t = chartTile(
    "service_graph",
    "Service graph (caller → callee; rate, error rate, p99)",
    12,
    {
      tooltip: {
        trigger: "item",
        // ECharts renders a formatter's string as HTML: names come from the mesh, so they are escaped.
        formatter: (p) =>
          p.dataType === "edge"
            ? `${html(p.data.source)} → ${html(p.data.target)}<br>${fmt.rate(p.data.rps)} req/s, errors ${fmt.pct(p.data.errorRate)}, p99 ${fmt.ms(p.data.p99)} ms`
            : `${html(p.name)}: ${fmt.int(p.value)} requests`,
      },
      series: [
        {
          type: "graph",
          layout: "force",
          roam: true,
          draggable: true,
          edgeSymbol: ["none", "arrow"],
          edgeSymbolSize: 8,
          force: { repulsion: 400, edgeLength: [80, 200] },
          label: { show: true, position: "right", fontSize: 11 },
          edgeLabel: { show: edges.length <= 40, fontSize: 9, formatter: (p) => `${fmt.rate(p.data.rps)}/s ${fmt.pct(p.data.errorRate)} ${fmt.ms(p.data.p99)}ms` },
          data: [...nodes].map(([name, requests]) => ({ name, value: requests, symbolSize: 10 + 30 * Math.sqrt(requests / max) })),
          links: edges.map((e) => ({
            source: e.source_node,
            target: e.destination_node,
            rps: e.requests_per_second,
            errorRate: e.error_rate,
            p99: e.latency_p99_ms,
            lineStyle: { width: 1 + 4 * Math.sqrt(e.requests / max), color: e.error_rate > 0.05 ? "#d9534f" : e.error_rate > 0.01 ? "#f0ad4e" : "#7a8ca3" },
          })),
        },
      ],
    },
    edges.length,
  );
  const list = tableTile("edges", "Edges", 12, edges, {
    key: (r) => `${r.source_node} -> ${r.destination_node}`,
    click: (r) => setState({ board: "golden", namespace: r.destination_node.split("/")[0], service: "", caller: "" }),
  });
  requestAnimationFrame(() =>
    charts.get("service_graph")?.on("click", (p) => {
      if (p.dataType === "node") setState({ board: "golden", namespace: p.name.split("/")[0], service: "", caller: "" });
    }),
  );
  return [t, list];
}

const RENDER = { golden, identity, graph };

// ---------------------------------------------------------------- page

const $ = (id) => document.getElementById(id);
let generation = 0;
let lastLoad;
let lastVersion;

async function fillSelect(select, dimension, current, extra = {}) {
  const now = Date.now();
  const q = new URLSearchParams({ dimension, from: new Date(now - RANGES[state.range] * 60_000).toISOString(), reporter: state.reporter, ...extra });
  const { values } = await api(`/api/v1/values?${q}`);
  select.replaceChildren(el("option", { value: "" }, "all"), ...values.map((v) => el("option", { value: v }, v)));
  if (current && !values.includes(current)) select.append(el("option", { value: current }, current));
  select.value = current;
}

function controls() {
  for (const b of document.querySelectorAll("[data-board]")) b.classList.toggle("active", b.dataset.board === state.board);
  $("range").value = state.range;
  $("reporter").value = state.reporter;
  $("caller").textContent = state.caller ? `caller: ${state.caller} ✕` : "";
  $("caller").hidden = !state.caller;
  $("caller-namespace-filter").hidden = state.board !== "identity";
}

async function load() {
  const mine = ++generation;
  controls();
  const grid = $("grid");
  $("status").textContent = "loading…";
  try {
    const who = await api("/api/v1/whoami");
    $("scope").textContent = `namespaces: ${who.namespaces.join(", ")}`;
    await Promise.all([
      fillSelect($("namespace"), "destination_namespace", state.namespace),
      fillSelect($("service"), "destination_service", state.service, state.namespace ? { destination_namespace: state.namespace } : {}),
      state.board === "identity" && fillSelect($("caller-namespace"), "source_namespace", state.callerNamespace, state.namespace ? { destination_namespace: state.namespace } : {}),
    ]);
    const urls = boardRequests(state, Date.now());
    const answers = new Map();
    for (const url of new Set(Object.values(urls))) answers.set(url, api(url));
    const data = {};
    for (const [t, url] of Object.entries(urls)) data[t] = await answers.get(url);
    if (mine !== generation) return;
    const first = Object.values(data)[0];
    range = { from: first.from, to: first.to };
    for (const c of charts.values()) c.dispose();
    charts.clear();
    grid.replaceChildren(...RENDER[state.board](data));
    $("login").hidden = true;
    const f = await api("/api/v1/freshness");
    lastLoad = f.latest_load;
    lastVersion = f.data_version;
    $("status").textContent = f.latest_load ? `data loaded ${fmt.time(f.latest_load)} UTC` : "no data loaded yet";
    document.body.dataset.ready = String(mine);
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof Unauthorized) {
      grid.replaceChildren();
      $("login").hidden = false;
      $("status").textContent = err.message;
    } else {
      $("status").textContent = `error: ${err.message}`;
    }
    document.body.dataset.ready = `error-${mine}`;
  }
}

// Auto-refresh when what the board shows may have changed: a new load, or any other commit that changed
// rows (a load stamped by a replica's clock behind, retention's deletes), which the data version counts; it
// is null while a commit is under way, so the next poll decides.
setInterval(async () => {
  if (document.hidden || !sessionStorage.getItem(TOKEN_KEY)) return;
  try {
    const f = await api("/api/v1/freshness");
    const changed = f.latest_load !== lastLoad || (f.data_version !== null && f.data_version !== lastVersion);
    if (lastLoad !== undefined && changed) load();
  } catch {
    /* the next poll tries again; the status line keeps the last answer */
  }
}, FRESHNESS_POLL_MS);

window.addEventListener("resize", () => charts.forEach((c) => c.resize()));
document.querySelector("nav").append(
  ...Object.entries(BOARDS).map(([id, label]) => {
    const b = el("button", { "data-board": id, type: "button" }, label);
    b.addEventListener("click", () => setState({ board: id }));
    return b;
  }),
);
$("range").replaceChildren(...Object.keys(RANGES).map((r) => el("option", { value: r }, `last ${r}`)));
$("range").addEventListener("change", (e) => setState({ range: e.target.value }));
$("reporter").addEventListener("change", (e) => setState({ reporter: e.target.value }));
$("namespace").addEventListener("change", (e) => setState({ namespace: e.target.value, service: "", caller: "" }));
$("service").addEventListener("change", (e) => setState({ service: e.target.value, caller: "" }));
$("caller-namespace").addEventListener("change", (e) => setState({ callerNamespace: e.target.value }));
$("caller").addEventListener("click", () => setState({ caller: "" }));
$("login").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token").value = "";
  load();
});
load();
