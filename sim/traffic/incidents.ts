import { defineMesh, type CallSpec, type MeshModel, type Scenario, type WorkloadSpec } from "./model.ts";

export interface IncidentsOptions {
  /** Run length in simulated seconds; the incidents happen in its last minutes. Default 3 hours. */
  durationS?: number;
  /** Plant the incidents (default true); false gives the same mesh, clean, as a false-positive control. */
  incidents?: boolean;
  trustDomain?: string;
}

/**
 * One planted incident, stated in the terms of the mesh description (who calls which service, as the
 * destination sidecar reports it), independently of any detection code: what a correct detector must
 * find at the end of the run.
 */
export interface PlantedIncident {
  kind: "latency" | "error_rate" | "new_edge" | "traffic_drop" | "plaintext";
  /** Caller identity (SPIFFE ID) for edge incidents; undefined for service-wide ones. */
  sourcePrincipal?: string;
  /** Destination service host. */
  destinationService: string;
  what: string;
}

export interface Incidents {
  model: MeshModel;
  planted: PlantedIncident[];
}

const NS = "shop";
const host = (service: string) => `${service}.${NS}.svc.cluster.local`;
const CALLERS = 20;

/**
 * A shop mesh with twenty caller identities in front of `orders` and a handful of other services, and
 * (unless `incidents: false`) five incidents in the run's last minutes:
 *  - `caller-07`'s calls to `payments` get three times slower for the last 10 minutes;
 *  - `caller-03`'s calls to `orders` fail 5 % of the time instead of 0.1 % for the last 15 minutes, while
 *    the other 19 callers keep `orders` near 0.1 % overall;
 *  - `reporting`, an identity that never called `users`, starts calling it 12 minutes before the end;
 *  - `inventory` loses all its traffic 20 minutes before the end;
 *  - `legacy-cron`, outside the mesh, starts calling `payments` in plaintext 12 minutes before the end.
 */
export function incidents(options: IncidentsOptions = {}): Incidents {
  const d = options.durationS ?? 3 * 3600;
  const planted = options.incidents ?? true;
  const trustDomain = options.trustDomain ?? "cluster.local";
  const principal = (sa: string) => `spiffe://${trustDomain}/ns/${NS}/sa/${sa}`;
  const callers = Array.from({ length: CALLERS }, (_, i) => `caller-${String(i + 1).padStart(2, "0")}`);
  const quietHttp = { serverErrorRate: 0.001, clientErrorRate: 0.01, disconnectRate: 0.0002 };
  const workloads: WorkloadSpec[] = [
    ...callers.map((name): WorkloadSpec => ({ name, namespace: NS })),
    { name: "reporting", namespace: NS },
    { name: "legacy-cron", namespace: NS, proxy: "none" },
    { name: "orders-v1", namespace: NS, behaviour: { ...quietHttp, latency: { medianMs: 12, sigma: 0.4 } } },
    { name: "payments-v1", namespace: NS, behaviour: { ...quietHttp, latency: { medianMs: 25, sigma: 0.35, tailProbability: 0.005, tailScaleMs: 80 } } },
    { name: "users-v1", namespace: NS, behaviour: { ...quietHttp, latency: { medianMs: 3, sigma: 0.3 } } },
    { name: "inventory-v1", namespace: NS, behaviour: { ...quietHttp, latency: { medianMs: 6, sigma: 0.5 } } },
    { name: "search-v1", namespace: NS, behaviour: { ...quietHttp, latency: { medianMs: 40, sigma: 0.6, tailProbability: 0.02, tailScaleMs: 200 } } },
  ];
  const services = ["orders", "payments", "users", "inventory", "search"].map((name) => ({ name, namespace: NS, backends: [`${NS}/${name}-v1`] }));
  const calls: CallSpec[] = [];
  for (const [i, c] of callers.entries()) {
    calls.push({ from: `${NS}/${c}`, to: `${NS}/orders`, weight: 4 });
    if (i % 2 === 0) calls.push({ from: `${NS}/${c}`, to: `${NS}/payments`, weight: 2 });
    if (i % 3 === 0) calls.push({ from: `${NS}/${c}`, to: `${NS}/users`, weight: 3 });
    if (i % 4 === 0) calls.push({ from: `${NS}/${c}`, to: `${NS}/search`, weight: 2 });
    if (i % 5 === 1) calls.push({ from: `${NS}/${c}`, to: `${NS}/inventory`, weight: 3, activeToS: planted ? d - 20 * 60 : undefined });
  }
  const scenarios: Scenario[] = [];
  if (planted) {
    calls.push({ from: `${NS}/reporting`, to: `${NS}/users`, weight: 1, activeFromS: d - 12 * 60 });
    calls.push({ from: `${NS}/legacy-cron`, to: `${NS}/payments`, weight: 1, activeFromS: d - 12 * 60 });
    scenarios.push(
      { kind: "slow", workload: "payments-v1", caller: "caller-07", fromS: d - 10 * 60, toS: d + 3600, factor: 3 },
      { kind: "error-burst", workload: "orders-v1", caller: "caller-03", fromS: d - 15 * 60, toS: d + 3600, serverErrorRate: 0.05 },
    );
  }
  const model = defineMesh({ name: planted ? "incidents" : "incidents-clean", trustDomain, workloads, services, calls, scenarios });
  return {
    model,
    planted: planted
      ? [
          { kind: "latency", sourcePrincipal: principal("caller-07"), destinationService: host("payments"), what: "caller-07 → payments p99 ×3 for 10 min" },
          { kind: "error_rate", sourcePrincipal: principal("caller-03"), destinationService: host("orders"), what: "caller-03 → orders errors 0.1 % → 5 %" },
          { kind: "new_edge", sourcePrincipal: principal("reporting"), destinationService: host("users"), what: "reporting starts calling users" },
          { kind: "traffic_drop", destinationService: host("inventory"), what: "inventory loses all traffic" },
          { kind: "plaintext", destinationService: host("payments"), what: "legacy-cron calls payments in plaintext" },
        ]
      : [],
  };
}
