import { defineMesh, type CallSpec, type MeshModel, type ServiceSpec, type WorkloadSpec } from "./model.ts";
import { Rng } from "./prng.ts";

export interface BookinfoOptions {
  /** Planned run length in simulated seconds; the error burst and the slow spell are placed inside it. Default 60. */
  durationS?: number;
  trustDomain?: string;
}

/**
 * Bookinfo across three namespaces plus a legacy one: an ingress gateway (end users with JWTs) in front of
 * productpage, which calls details and reviews v1–v3; reviews v2/v3 call ratings over gRPC (the slow
 * dependency: heavy tail, and a spell four times slower); reviews-v3 has an error burst; a plaintext batch
 * job outside the mesh calls details.
 */
export function bookinfo(options: BookinfoOptions = {}): MeshModel {
  const d = options.durationS ?? 60;
  const users = Array.from({ length: 12 }, (_, i) => `https://idp.bookinfo.example/user-${i + 1}`);
  return defineMesh({
    name: "bookinfo",
    trustDomain: options.trustDomain ?? "cluster.local",
    cluster: "Kubernetes",
    workloads: [
      { name: "istio-ingressgateway", namespace: "istio-system", proxy: "gateway", serviceAccount: "istio-ingressgateway-service-account" },
      { name: "legacy-batch", namespace: "legacy", proxy: "none" },
      {
        name: "productpage-v1",
        namespace: "bookinfo",
        serviceAccount: "bookinfo-productpage",
        behaviour: { latency: { medianMs: 18, sigma: 0.45, tailProbability: 0.01, tailScaleMs: 150 }, responseBody: { medianBytes: 5200, sigma: 0.2 } },
      },
      {
        name: "details-v1",
        namespace: "bookinfo",
        serviceAccount: "bookinfo-details",
        behaviour: { latency: { medianMs: 2, sigma: 0.35 }, responseBody: { medianBytes: 180, sigma: 0.1 } },
      },
      ...["v1", "v2", "v3"].map(
        (v): WorkloadSpec => ({
          name: `reviews-${v}`,
          namespace: "bookinfo",
          serviceAccount: "bookinfo-reviews",
          behaviour: {
            latency: { medianMs: v === "v1" ? 4 : 9, sigma: 0.4 },
            responseBody: { medianBytes: v === "v1" ? 320 : 440, sigma: 0.15 },
          },
        }),
      ),
      {
        name: "ratings-v1",
        namespace: "bookinfo-ratings",
        serviceAccount: "bookinfo-ratings",
        behaviour: {
          latency: { medianMs: 3, sigma: 0.6, tailProbability: 0.04, tailScaleMs: 60, tailAlpha: 1.2, maxMs: 10_000 },
          responseBody: { medianBytes: 40, sigma: 0.1 },
        },
      },
    ],
    services: [
      { name: "productpage", namespace: "bookinfo", backends: ["bookinfo/productpage-v1"], paths: ["/productpage", "/api/v1/products", "/api/v1/products/0/reviews"] },
      { name: "details", namespace: "bookinfo", backends: ["bookinfo/details-v1"], paths: ["/details/0"] },
      { name: "reviews", namespace: "bookinfo", backends: ["bookinfo/reviews-v1", "bookinfo/reviews-v2", "bookinfo/reviews-v3"], paths: ["/reviews/0"] },
      { name: "ratings", namespace: "bookinfo-ratings", protocol: "grpc", backends: ["bookinfo-ratings/ratings-v1"], paths: ["/bookinfo.ratings.v1.Ratings/GetRatings"] },
    ],
    calls: [
      { from: "istio-system/istio-ingressgateway", to: "bookinfo/productpage", weight: 30, endUserRate: 0.6, endUsers: users },
      { from: "bookinfo/productpage-v1", to: "bookinfo/details", weight: 30 },
      { from: "bookinfo/productpage-v1", to: "bookinfo/reviews", weight: 30 },
      { from: "bookinfo/reviews-v2", to: "bookinfo-ratings/ratings", weight: 10, requestBody: { medianBytes: 24 } },
      { from: "bookinfo/reviews-v3", to: "bookinfo-ratings/ratings", weight: 10, requestBody: { medianBytes: 24 } },
      { from: "legacy/legacy-batch", to: "bookinfo/details", weight: 4 },
    ],
    scenarios: [
      { kind: "error-burst", workload: "reviews-v3", fromS: 0.5 * d, toS: 0.7 * d, serverErrorRate: 0.4 },
      { kind: "slow", workload: "ratings-v1", fromS: 0.2 * d, toS: 0.4 * d, factor: 4 },
    ],
  });
}

const APP_WORDS = [
  "api",
  "web",
  "cart",
  "orders",
  "catalog",
  "inventory",
  "pricing",
  "auth",
  "users",
  "search",
  "index",
  "ledger",
  "billing",
  "notify",
  "reports",
  "events",
  "media",
  "profile",
  "reco",
  "geo",
  "tax",
  "fraud",
];

export interface MixedOptions {
  trustDomain?: string;
}

/**
 * A larger mesh for exactness tests: 6 namespaces over 2 clusters, 54 applications (some with two
 * revisions sharing a service account), HTTP and gRPC services, 2 gateways with end users, 3 proxyless
 * gRPC clients and 3 plaintext callers outside the mesh — 59 distinct principals. The topology is fixed
 * (its own seed); the traffic seed only changes the requests.
 */
export function mixed(options: MixedOptions = {}): MeshModel {
  const topo = new Rng("mixed-topology-v1");
  const namespaces = ["shop", "payments", "search", "identity", "analytics", "platform"];
  const workloads: WorkloadSpec[] = [];
  const services: ServiceSpec[] = [];
  const apps: Array<{ ns: string; name: string; revisions: string[]; grpc: boolean }> = [];
  namespaces.forEach((ns, n) => {
    const cluster = n % 2 === 0 ? "east" : "west";
    for (let j = 0; j < 9; j++) {
      const name = `${APP_WORDS[(n * 5 + j) % APP_WORDS.length]}-${ns.slice(0, 3)}`;
      const revisions = topo.next() < 0.35 ? ["v1", "v2"] : ["v1"];
      const grpc = topo.next() < 0.4;
      apps.push({ ns, name, revisions, grpc });
      for (const v of revisions) {
        workloads.push({
          name: `${name}-${v}`,
          namespace: ns,
          serviceAccount: name,
          cluster,
          behaviour: {
            latency: {
              medianMs: 1 + topo.next() * 20,
              sigma: 0.3 + topo.next() * 0.5,
              tailProbability: topo.next() * 0.03,
              tailScaleMs: 20 + topo.next() * 200,
            },
            serverErrorRate: topo.next() * 0.02,
            clientErrorRate: topo.next() * 0.03,
            responseBody: { medianBytes: 50 + Math.round(topo.next() * 4000), sigma: 0.5 },
          },
        });
      }
      services.push({
        name,
        namespace: ns,
        protocol: grpc ? "grpc" : "http",
        backends: revisions.map((v) => ({ workload: `${ns}/${name}-${v}`, weight: v === "v1" ? 3 : 1 })),
        paths: grpc ? [`/${ns}.${name.replace(/-/g, "_")}.v1.Service/Get`, `/${ns}.${name.replace(/-/g, "_")}.v1.Service/List`] : [`/${name}`, `/${name}/items`],
      });
    }
  });
  for (const [i, ns] of ["shop", "search"].entries()) {
    workloads.push({ name: `gateway-${ns}`, namespace: ns, proxy: "gateway", cluster: i === 0 ? "east" : "west" });
  }
  for (let i = 0; i < 3; i++) {
    workloads.push({ name: `grpc-client-${i + 1}`, namespace: "analytics", proxy: "proxyless", cluster: "west" });
    workloads.push({ name: `legacy-${i + 1}`, namespace: "legacy", proxy: "none" });
  }

  const calls: CallSpec[] = [];
  // A DAG: each application calls one to three applications later in the list, so no cycles.
  apps.forEach((app, i) => {
    const fanOut = 1 + topo.int(3);
    for (let k = 0; k < fanOut && i + 1 < apps.length; k++) {
      const callee = apps[i + 1 + topo.int(Math.min(12, apps.length - i - 1))];
      for (const v of app.revisions) {
        calls.push({
          from: `${app.ns}/${app.name}-${v}`,
          to: `${callee.ns}/${callee.name}`,
          weight: 1 + topo.int(10),
          method: callee.grpc ? "POST" : topo.next() < 0.2 ? "POST" : "GET",
          requestBody: { medianBytes: callee.grpc ? 80 : 0 },
          upstreamFailureRate: topo.next() * 0.004,
        });
      }
    }
  });
  const users = Array.from({ length: 40 }, (_, i) => `https://login.example.com/u${i}`);
  calls.push({ from: "shop/gateway-shop", to: `${apps[0].ns}/${apps[0].name}`, weight: 20, endUserRate: 0.7, endUsers: users });
  calls.push({ from: "search/gateway-search", to: `${apps[1].ns}/${apps[1].name}`, weight: 12, endUserRate: 0.5, endUsers: users });
  const grpcApps = apps.filter((a) => a.grpc);
  const httpApps = apps.filter((a) => !a.grpc);
  for (let i = 0; i < 3; i++) {
    const g = grpcApps[(i * 3) % grpcApps.length];
    calls.push({ from: `analytics/grpc-client-${i + 1}`, to: `${g.ns}/${g.name}`, weight: 3, requestBody: { medianBytes: 60 } });
    const h = httpApps[(i * 4) % httpApps.length];
    calls.push({ from: `legacy/legacy-${i + 1}`, to: `${h.ns}/${h.name}`, weight: 2 });
  }
  return defineMesh({
    name: "mixed",
    trustDomain: options.trustDomain ?? "cluster.local",
    workloads,
    services,
    calls,
    scenarios: [
      { kind: "error-burst", workload: `${apps[5].name}-v1`, fromS: 20, toS: 40, serverErrorRate: 0.3 },
      { kind: "slow", workload: `${apps[8].name}-v1`, fromS: 10, toS: 50, factor: 5 },
    ],
  });
}

export interface CardinalityAttackOptions {
  /** Distinct client identities (each its own service account). Default 3000. */
  clients?: number;
  /** Share of all requests that come from those clients. Default 0.5. */
  attackShare?: number;
  trustDomain?: string;
}

/**
 * Many distinct principals: a small legitimate mesh (frontend → api → store) plus `clients` proxyless
 * workloads, each with its own service account, hammering the api. Exercises the filter's cardinality guard.
 */
export function cardinalityAttack(options: CardinalityAttackOptions = {}): MeshModel {
  const clients = options.clients ?? 3000;
  const share = options.attackShare ?? 0.5;
  if (!(clients >= 1) || !(share > 0 && share < 1)) throw new Error("cardinalityAttack needs clients >= 1 and 0 < attackShare < 1");
  const workloads: WorkloadSpec[] = [
    { name: "frontend-v1", namespace: "edge" },
    { name: "api-v1", namespace: "core" },
    { name: "store-v1", namespace: "core", behaviour: { latency: { medianMs: 1.5 } } },
  ];
  const calls: CallSpec[] = [
    { from: "edge/frontend-v1", to: "core/api", weight: (1 - share) / 2 },
    { from: "core/api-v1", to: "core/store", weight: (1 - share) / 2 },
  ];
  for (let i = 0; i < clients; i++) {
    const name = `tenant-job-${String(i).padStart(5, "0")}`;
    workloads.push({ name, namespace: "tenants", proxy: "proxyless" });
    calls.push({ from: `tenants/${name}`, to: "core/api", weight: share / clients });
  }
  return defineMesh({
    name: "cardinality-attack",
    trustDomain: options.trustDomain ?? "cluster.local",
    workloads,
    services: [
      { name: "api", namespace: "core", protocol: "grpc", backends: ["core/api-v1"] },
      { name: "store", namespace: "core", backends: ["core/store-v1"] },
    ],
    calls,
  });
}

export const PRESETS = {
  bookinfo,
  mixed,
  "cardinality-attack": cardinalityAttack,
} as const;

export type PresetName = keyof typeof PRESETS;
