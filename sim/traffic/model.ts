/**
 * The synthetic mesh: workloads with SPIFFE identities, services in front of them, a weighted call graph,
 * per-workload behaviour (latency, error mix, sizes) and time-boxed scenarios (error burst, slow
 * dependency). Presets describe a mesh with names (`defineMesh`); the generator works on the resolved,
 * index-based `MeshModel`.
 */

/** What sits in front of a workload's traffic. */
export type ProxyKind =
  /** Envoy sidecar: reports inbound (`destination`) and outbound (`source`), mTLS, exchanges peer metadata. */
  | "sidecar"
  /** Envoy gateway: reports the requests it forwards (`source`), mTLS, exchanges peer metadata. */
  | "gateway"
  /** No Envoy but a mesh certificate (proxyless gRPC): mTLS peer with a principal, no peer metadata. */
  | "proxyless"
  /** Outside the mesh: plaintext, no principal, no peer metadata. */
  | "none";

export type Protocol = "http" | "grpc";

/**
 * Request duration at the server: lognormal body (`medianMs`, `sigma`) plus, with `tailProbability`, a
 * Pareto tail starting at `tailScaleMs` with shape `tailAlpha` (heavy for alpha < 2); capped at `maxMs`.
 */
export interface LatencyModel {
  medianMs: number;
  sigma: number;
  tailProbability: number;
  tailScaleMs: number;
  tailAlpha: number;
  maxMs: number;
}

/** Lognormal body size in bytes. */
export interface SizeModel {
  medianBytes: number;
  sigma: number;
}

/** How a workload answers when it is the destination. Rates are fractions of its requests. */
export interface Behaviour {
  latency: LatencyModel;
  /** Application 5xx (HTTP) or INTERNAL/UNAVAILABLE/UNKNOWN… (gRPC). */
  serverErrorRate: number;
  /** Application 4xx (HTTP) or NOT_FOUND/INVALID_ARGUMENT/… (gRPC). */
  clientErrorRate: number;
  /** The caller goes away before the response (Envoy flag DC, response code 0). */
  disconnectRate: number;
  responseBody: SizeModel;
}

export interface Workload {
  /** Index in `MeshModel.workloads`. */
  id: number;
  name: string;
  namespace: string;
  serviceAccount: string;
  /** `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`; null when the workload has no mesh certificate. */
  principal: string | null;
  canonicalService: string;
  canonicalRevision: string;
  app: string;
  version: string;
  /** Kubernetes cluster id (Istio `CLUSTER_ID`). */
  cluster: string;
  proxy: ProxyKind;
  /** Pod IP, used for source/destination addresses. */
  ip: string;
  behaviour: Behaviour;
}

export interface Service {
  /** Index in `MeshModel.services`. */
  id: number;
  name: string;
  namespace: string;
  /** `name.namespace.svc.cluster.local` */
  host: string;
  port: number;
  protocol: Protocol;
  /** Workload ids behind the service and the share of traffic each gets. */
  backends: number[];
  backendWeights: number[];
  /** Request paths (HTTP) or `/package.Service/Method` (gRPC), chosen uniformly. */
  paths: string[];
}

export interface Call {
  /** Index in `MeshModel.calls`. */
  id: number;
  source: number;
  service: number;
  /** Relative request rate of this edge. */
  weight: number;
  /** HTTP method (gRPC always POST). */
  method: string;
  requestBody: SizeModel;
  /** Client-side failures before any upstream answers: UH / UF / UF+URX (reported by the source only). */
  upstreamFailureRate: number;
  /** Client-side timeouts (UT, 504) after `timeoutMs`. */
  timeoutRate: number;
  timeoutMs: number;
  /** Share of requests carrying a validated JWT, and the `iss/sub` principals they come from. */
  endUserRate: number;
  endUsers: string[];
  /** The edge carries traffic only in [activeFromS, activeToS) (seconds since the generator's start). */
  activeFromS: number;
  activeToS: number;
}

export type Scenario =
  /**
   * Between `fromS` and `toS` (seconds since the generator's start) the workload fails `serverErrorRate`
   * of its requests — of those from the workload named `caller` only, when given.
   */
  | { kind: "error-burst"; workload: string; fromS: number; toS: number; serverErrorRate: number; caller?: string }
  /** Between `fromS` and `toS` the workload's latency is multiplied by `factor` (for `caller` only, when given). */
  | { kind: "slow"; workload: string; fromS: number; toS: number; factor: number; caller?: string };

export interface MeshModel {
  name: string;
  trustDomain: string;
  meshId: string;
  workloads: Workload[];
  services: Service[];
  calls: Call[];
  scenarios: Scenario[];
}

// ---- description by name ------------------------------------------------------------------------------

export interface WorkloadSpec {
  name: string;
  namespace: string;
  /** Defaults to the workload name. */
  serviceAccount?: string;
  /** Defaults to `app`, else the name without a trailing `-v<N>`. */
  canonicalService?: string;
  /** Defaults to `version`, else `latest`. */
  canonicalRevision?: string;
  app?: string;
  version?: string;
  cluster?: string;
  proxy?: ProxyKind;
  behaviour?: Partial<Omit<Behaviour, "latency" | "responseBody">> & {
    latency?: Partial<LatencyModel>;
    responseBody?: Partial<SizeModel>;
  };
}

export interface ServiceSpec {
  name: string;
  namespace: string;
  port?: number;
  protocol?: Protocol;
  /** `namespace/workload` references and optional weights (default 1). */
  backends: Array<string | { workload: string; weight: number }>;
  paths?: string[];
}

export interface CallSpec {
  /** `namespace/workload` */
  from: string;
  /** `namespace/service` */
  to: string;
  weight: number;
  method?: string;
  requestBody?: Partial<SizeModel>;
  upstreamFailureRate?: number;
  timeoutRate?: number;
  timeoutMs?: number;
  endUserRate?: number;
  endUsers?: string[];
  /** The edge carries traffic from this second on (default: from the start): a caller that appears. */
  activeFromS?: number;
  /** The edge stops carrying traffic at this second (default: never): a caller or a service gone quiet. */
  activeToS?: number;
}

export interface MeshSpec {
  name: string;
  trustDomain?: string;
  meshId?: string;
  /** Default cluster id for workloads that name none. */
  cluster?: string;
  workloads: WorkloadSpec[];
  services: ServiceSpec[];
  calls: CallSpec[];
  scenarios?: Scenario[];
}

export const DEFAULT_LATENCY: LatencyModel = {
  medianMs: 4,
  sigma: 0.5,
  tailProbability: 0.01,
  tailScaleMs: 40,
  tailAlpha: 1.5,
  maxMs: 30_000,
};

export const DEFAULT_BEHAVIOUR: Behaviour = {
  latency: DEFAULT_LATENCY,
  serverErrorRate: 0.002,
  clientErrorRate: 0.01,
  disconnectRate: 0.0005,
  responseBody: { medianBytes: 400, sigma: 0.6 },
};

/** Resolves names to indices, fills defaults and rejects an inconsistent description with a clear message. */
export function defineMesh(spec: MeshSpec): MeshModel {
  const trustDomain = spec.trustDomain ?? "cluster.local";
  const workloadIds = new Map<string, number>();
  const workloads = spec.workloads.map((w, id): Workload => {
    const ref = `${w.namespace}/${w.name}`;
    if (workloadIds.has(ref)) throw new Error(`mesh ${spec.name}: workload ${ref} defined twice`);
    workloadIds.set(ref, id);
    const proxy = w.proxy ?? "sidecar";
    const sa = w.serviceAccount ?? w.name;
    const app = w.app ?? w.name.replace(/-v\d+$/, "");
    const version = w.version ?? /-(v\d+)$/.exec(w.name)?.[1] ?? "";
    const b = w.behaviour ?? {};
    return {
      id,
      name: w.name,
      namespace: w.namespace,
      serviceAccount: sa,
      principal: proxy === "none" ? null : `spiffe://${trustDomain}/ns/${w.namespace}/sa/${sa}`,
      canonicalService: w.canonicalService ?? app,
      canonicalRevision: w.canonicalRevision ?? (version || "latest"),
      app,
      version,
      cluster: w.cluster ?? spec.cluster ?? "Kubernetes",
      proxy,
      ip: `10.${(id >> 16) & 255}.${(id >> 8) & 255}.${(id & 255) + 1}`,
      behaviour: {
        ...DEFAULT_BEHAVIOUR,
        ...b,
        latency: { ...DEFAULT_BEHAVIOUR.latency, ...b.latency },
        responseBody: { ...DEFAULT_BEHAVIOUR.responseBody, ...b.responseBody },
      },
    };
  });
  const workloadRef = (ref: string, where: string): number => {
    const id = workloadIds.get(ref);
    if (id === undefined) throw new Error(`mesh ${spec.name}: ${where} names unknown workload ${ref}`);
    return id;
  };

  const serviceIds = new Map<string, number>();
  const services = spec.services.map((s, id): Service => {
    const ref = `${s.namespace}/${s.name}`;
    if (serviceIds.has(ref)) throw new Error(`mesh ${spec.name}: service ${ref} defined twice`);
    serviceIds.set(ref, id);
    if (s.backends.length === 0) throw new Error(`mesh ${spec.name}: service ${ref} has no backends`);
    const backends = s.backends.map((b) => workloadRef(typeof b === "string" ? b : b.workload, `service ${ref}`));
    for (const b of backends) {
      if (workloads[b].proxy !== "sidecar") {
        throw new Error(`mesh ${spec.name}: service ${ref} backend ${workloads[b].name} must run a sidecar`);
      }
    }
    const protocol = s.protocol ?? "http";
    return {
      id,
      name: s.name,
      namespace: s.namespace,
      host: `${s.name}.${s.namespace}.svc.cluster.local`,
      port: s.port ?? (protocol === "grpc" ? 9090 : 9080),
      protocol,
      backends,
      backendWeights: s.backends.map((b) => (typeof b === "string" ? 1 : b.weight)),
      paths: s.paths ?? (protocol === "grpc" ? [`/${s.name}.v1.${capitalize(s.name)}/Get`] : [`/${s.name}`]),
    };
  });

  const calls = spec.calls.map((c, id): Call => {
    const service = serviceIds.get(c.to);
    if (service === undefined) throw new Error(`mesh ${spec.name}: call from ${c.from} names unknown service ${c.to}`);
    const source = workloadRef(c.from, `call to ${c.to}`);
    const endUsers = c.endUsers ?? [];
    const endUserRate = c.endUserRate ?? 0;
    if (endUserRate > 0 && endUsers.length === 0) {
      throw new Error(`mesh ${spec.name}: call ${c.from} -> ${c.to} has endUserRate but no endUsers`);
    }
    return {
      id,
      source,
      service,
      weight: c.weight,
      method: services[service].protocol === "grpc" ? "POST" : (c.method ?? "GET"),
      requestBody: { medianBytes: 0, sigma: 0.5, ...c.requestBody },
      upstreamFailureRate: c.upstreamFailureRate ?? 0.0005,
      timeoutRate: c.timeoutRate ?? 0.0002,
      timeoutMs: c.timeoutMs ?? 15_000,
      endUserRate,
      endUsers,
      activeFromS: c.activeFromS ?? -Infinity,
      activeToS: c.activeToS ?? Infinity,
    };
  });
  if (!calls.some((c) => c.activeFromS === -Infinity)) {
    throw new Error(`mesh ${spec.name}: at least one call must carry traffic from the start`);
  }

  // The ground truth packs workload and service ids into one exact integer key.
  if (workloads.length > 65536) throw new Error(`mesh ${spec.name}: at most 65536 workloads`);
  if (services.length > 4096) throw new Error(`mesh ${spec.name}: at most 4096 services`);

  for (const s of spec.scenarios ?? []) {
    if (!workloads.some((w) => w.name === s.workload)) {
      throw new Error(`mesh ${spec.name}: scenario ${s.kind} names unknown workload ${s.workload}`);
    }
    if (s.caller !== undefined && !workloads.some((w) => w.name === s.caller)) {
      throw new Error(`mesh ${spec.name}: scenario ${s.kind} names unknown caller ${s.caller}`);
    }
    if (!(s.toS > s.fromS)) throw new Error(`mesh ${spec.name}: scenario ${s.kind} on ${s.workload} needs toS > fromS`);
  }

  return {
    name: spec.name,
    trustDomain,
    meshId: spec.meshId ?? "cluster.local",
    workloads,
    services,
    calls,
    scenarios: spec.scenarios ?? [],
  };
}

function capitalize(s: string): string {
  return s.replace(/(^|-)([a-z])/g, (_, _dash: string, c: string) => c.toUpperCase());
}
