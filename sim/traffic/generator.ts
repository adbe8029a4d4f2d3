import { flagMask } from "./flags.ts";
import type { Call, LatencyModel, MeshModel, Protocol, Service, SizeModel, Workload } from "./model.ts";
import { Rng, WeightedPicker } from "./prng.ts";

/**
 * One simulated HTTP or gRPC request, with everything the sidecars that observe it would learn.
 *
 * Both observing sidecars log the request at `endNs` (the host clock must read `endNs` when the stream is
 * delivered). The source's outbound sidecar observes it when `sourceReports`; the destination's inbound
 * sidecar when `destinationReports`. Client-side failures (UH, UF, URX, UT) never reach the destination.
 */
export interface SimRequest {
  /** 0-based position in the stream. */
  seq: number;
  /**
   * 0-based id of the connection from the source to the destination workload the request travels on
   * (see GeneratorOptions.requestsPerConnection); equal to `seq` when every request has its own.
   */
  connection: number;
  /** Unix time in ns at which the request completed. */
  endNs: bigint;
  /** ns since the generator's start (integer, exact in a double for ~104 days). */
  offsetNs: number;
  /** Start of the UTC minute of `endNs`, Unix ms. */
  minuteMs: number;
  source: Workload;
  destination: Workload;
  service: Service;
  call: Call;
  protocol: Protocol;
  method: string;
  path: string;
  /** `:authority` the client sends: the service host. */
  authority: string;
  /** HTTP status as the reporters saw it; 0 when no response was sent. */
  responseCode: number;
  /** gRPC status from the response, -1 when absent (HTTP, or no response). */
  grpcStatus: number;
  /** Envoy response flags bitmask (see flags.ts). */
  responseFlags: number;
  /** Envoy `response.code_details`. */
  responseCodeDetails: string;
  /** The hop was mutual TLS (the source holds a mesh certificate; destinations always run a sidecar). */
  mtls: boolean;
  /** An upstream connection to the destination was made (false for UH/UF: no peer, no peer certificate). */
  upstreamConnected: boolean;
  sourceReports: boolean;
  destinationReports: boolean;
  /** Duration seen by the source sidecar (request start to last response byte), ns; 0 if not observed. */
  sourceDurationNs: number;
  /** Duration seen by the destination sidecar, ns; 0 if not observed. */
  destinationDurationNs: number;
  requestHeaderBytes: number;
  requestBodyBytes: number;
  responseHeaderBytes: number;
  responseBodyBytes: number;
  /** Validated JWT principal `iss/sub`, known to the destination sidecar only; null when none. */
  endUser: string | null;
}

export interface GeneratorOptions {
  /** Same seed and model → the same request stream. */
  seed: number | string;
  /** Mean arrival rate over the whole mesh (Poisson), requests per simulated second. Default 1000. */
  requestsPerSecond?: number;
  /** Unix ms of simulated time zero. Default 2026-01-01T00:00:00Z (fixed, so runs are reproducible). */
  startTimeMs?: number;
  /**
   * Requests a connection between a source and a destination workload carries before the next request
   * of the pair opens a new one (HTTP/1.1 keep-alive, HTTP/2 streams). Default 1: every request on a
   * new connection. It only decides `connection`: the requests themselves are the same for any value.
   */
  requestsPerConnection?: number;
  /**
   * Daily swing of the arrival rate: the rate at simulated time t is
   * `requestsPerSecond × (1 + amplitude × sin(2π t / 1 day))`. Default 0 (a constant rate). In [0, 1).
   */
  diurnalAmplitude?: number;
}

export const DEFAULT_START_TIME_MS = Date.UTC(2026, 0, 1);

const UH = flagMask("UH");
const UF = flagMask("UF");
const UF_URX = flagMask("UF", "URX");
const UT = flagMask("UT");
const DC = flagMask("DC");
/** Envoy's gRPC status for its own 503/504 local replies (Grpc::Utility::httpToGrpcStatus). */
const GRPC_UNAVAILABLE = 14;
const SERVER_GRPC_STATUSES = [13, 14, 2, 4]; // INTERNAL, UNAVAILABLE, UNKNOWN, DEADLINE_EXCEEDED
const CLIENT_GRPC_STATUSES = [5, 3, 7, 16]; // NOT_FOUND, INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED
const SERVER_HTTP_CODES = [500, 500, 503, 502];
const CLIENT_HTTP_CODES = [404, 404, 400, 403];

/** Streams requests over a mesh model; pure computation, no I/O, no wall clock. */
export class TrafficGenerator {
  readonly model: MeshModel;
  readonly startTimeMs: number;
  readonly requestsPerSecond: number;
  /** Requests generated so far. */
  generated = 0;
  private offsetNs = 0;
  private readonly startNs: bigint;
  private readonly rng: Rng;
  private readonly meanGapNs: number;
  private readonly callPicker: WeightedPicker;
  private readonly backendPickers: WeightedPicker[];
  /** Scenarios per workload id, so the per-request check is a short list (usually empty). */
  private readonly scenariosByWorkload: MeshModel["scenarios"][];
  private readonly requestsPerConnection: number;
  /** The open connection of each (source, destination) workload pair and the requests it has left. */
  private readonly open = new Map<number, { id: number; left: number }>();
  private connections = 0;
  private readonly diurnalAmplitude: number;
  /** Some call is not active for the whole run, so a pick may have to be drawn again. */
  private readonly timeBoxedCalls: boolean;

  constructor(model: MeshModel, options: GeneratorOptions) {
    if (model.calls.length === 0) throw new Error(`mesh ${model.name} has no calls`);
    this.model = model;
    this.rng = new Rng(options.seed);
    this.requestsPerSecond = options.requestsPerSecond ?? 1000;
    if (!(this.requestsPerSecond > 0)) throw new Error("requestsPerSecond must be > 0");
    this.startTimeMs = options.startTimeMs ?? DEFAULT_START_TIME_MS;
    if (!Number.isInteger(this.startTimeMs)) throw new Error("startTimeMs must be an integer");
    this.startNs = BigInt(this.startTimeMs) * 1_000_000n;
    this.meanGapNs = 1e9 / this.requestsPerSecond;
    this.callPicker = new WeightedPicker(model.calls.map((c) => c.weight));
    this.backendPickers = model.services.map((s) => new WeightedPicker(s.backendWeights));
    this.scenariosByWorkload = model.workloads.map((w) => model.scenarios.filter((s) => s.workload === w.name));
    this.diurnalAmplitude = options.diurnalAmplitude ?? 0;
    if (!(this.diurnalAmplitude >= 0 && this.diurnalAmplitude < 1)) throw new Error("diurnalAmplitude must be in [0, 1)");
    this.timeBoxedCalls = model.calls.some((c) => c.activeFromS > -Infinity || c.activeToS < Infinity);
    this.requestsPerConnection = options.requestsPerConnection ?? 1;
    if (!Number.isInteger(this.requestsPerConnection) || this.requestsPerConnection < 1) {
      throw new Error("requestsPerConnection must be an integer ≥ 1");
    }
  }

  /** The connection the next request from `source` to `destination` (workload indexes) travels on. */
  private connectionFor(source: number, destination: number): number {
    const pair = source * this.model.workloads.length + destination;
    let c = this.open.get(pair);
    if (c === undefined || c.left === 0) {
      c = { id: this.connections++, left: this.requestsPerConnection };
      this.open.set(pair, c);
    }
    c.left--;
    return c.id;
  }

  /** Simulated time of the last generated request, ns since start. */
  get nowOffsetNs(): number {
    return this.offsetNs;
  }

  /** The next request; end times never decrease. */
  next(): SimRequest {
    const rng = this.rng;
    const gapNs = rng.exponential(this.meanGapNs);
    // A time-varying Poisson rate, approximated by scaling each gap by the rate where it starts.
    this.offsetNs += Math.round(this.diurnalAmplitude > 0 ? gapNs / (1 + this.diurnalAmplitude * Math.sin((2 * Math.PI * this.offsetNs) / 86_400e9)) : gapNs);
    const offsetNs = this.offsetNs;
    const model = this.model;
    const call = this.pickCall(offsetNs / 1e9);
    const service = model.services[call.service];
    const destinationIndex = service.backends[this.backendPickers[service.id].pick(rng)];
    const destination = model.workloads[destinationIndex];
    const source = model.workloads[call.source];
    const grpc = service.protocol === "grpc";
    const sourceReports = source.proxy === "sidecar" || source.proxy === "gateway";
    const path = service.paths.length === 1 ? service.paths[0] : service.paths[rng.int(service.paths.length)];
    const endUser = call.endUserRate > 0 && rng.next() < call.endUserRate ? call.endUsers[rng.int(call.endUsers.length)] : null;
    const seconds = offsetNs / 1e9;

    let responseCode: number;
    let grpcStatus = -1;
    let responseFlags = 0;
    let details = "via_upstream";
    let upstreamConnected = true;
    let destinationReports = true;
    let serverNs = 0;
    let sourceNs: number;
    let responseBodyBytes: number;

    const r = rng.next();
    const failureCut = sourceReports ? call.upstreamFailureRate : 0;
    const timeoutCut = failureCut + (sourceReports ? call.timeoutRate : 0);
    const disconnectCut = timeoutCut + destination.behaviour.disconnectRate;
    if (r < failureCut) {
      // Envoy answers locally; for gRPC its local reply is HTTP 200 with grpc-status UNAVAILABLE.
      const kind = rng.next();
      responseFlags = kind < 0.5 ? UH : kind < 0.8 ? UF : UF_URX;
      details = kind < 0.5 ? "no_healthy_upstream" : "upstream_reset_before_response_started{connection_failure}";
      responseCode = grpc ? 200 : 503;
      grpcStatus = grpc ? GRPC_UNAVAILABLE : -1;
      upstreamConnected = false;
      destinationReports = false;
      sourceNs = msToNs(kind < 0.5 ? 0.05 + rng.exponential(0.2) : lognormal(rng, kind < 0.8 ? 5 : 15, 0.8));
      responseBodyBytes = grpc ? 0 : kind < 0.5 ? 19 : 91;
    } else if (r < timeoutCut) {
      responseFlags = UT;
      details = "response_timeout";
      responseCode = grpc ? 200 : 504;
      grpcStatus = grpc ? GRPC_UNAVAILABLE : -1;
      destinationReports = false;
      sourceNs = msToNs(call.timeoutMs);
      responseBodyBytes = grpc ? 0 : 24;
    } else {
      serverNs = msToNs(this.latencyMs(destination, source, seconds));
      sourceNs = serverNs + msToNs(lognormal(rng, 0.3, 0.4));
      if (r < disconnectCut) {
        // The caller hung up part way: no response code, no body; both sides saw the reset.
        responseCode = 0;
        responseFlags = DC;
        details = "downstream_remote_disconnect";
        serverNs = Math.round(serverNs * rng.next());
        sourceNs = serverNs;
        responseBodyBytes = 0;
      } else {
        const serverErrorRate = this.serverErrorRate(destination, source, seconds);
        const u = rng.next();
        if (u < serverErrorRate) {
          responseCode = grpc ? 200 : SERVER_HTTP_CODES[rng.int(SERVER_HTTP_CODES.length)];
          if (grpc) grpcStatus = SERVER_GRPC_STATUSES[rng.int(SERVER_GRPC_STATUSES.length)];
          responseBodyBytes = grpc ? 5 : 60 + rng.int(120);
        } else if (u < serverErrorRate + destination.behaviour.clientErrorRate) {
          responseCode = grpc ? 200 : CLIENT_HTTP_CODES[rng.int(CLIENT_HTTP_CODES.length)];
          if (grpc) grpcStatus = CLIENT_GRPC_STATUSES[rng.int(CLIENT_GRPC_STATUSES.length)];
          responseBodyBytes = grpc ? 5 : 40 + rng.int(80);
        } else {
          responseCode = 200;
          if (grpc) grpcStatus = 0;
          responseBodyBytes = sizeBytes(rng, destination.behaviour.responseBody) + (grpc ? 5 : 0);
        }
      }
    }

    const requestBodyBytes = sizeBytes(rng, call.requestBody) + (grpc ? 5 : 0);
    const request: SimRequest = {
      seq: this.generated++,
      connection: this.connectionFor(call.source, destinationIndex),
      endNs: this.startNs + BigInt(offsetNs),
      offsetNs,
      minuteMs: Math.floor((this.startTimeMs + Math.floor(offsetNs / 1e6)) / 60_000) * 60_000,
      source,
      destination,
      service,
      call,
      protocol: service.protocol,
      method: call.method,
      path,
      authority: service.host,
      responseCode,
      grpcStatus,
      responseFlags,
      responseCodeDetails: details,
      mtls: source.proxy !== "none",
      upstreamConnected,
      sourceReports,
      destinationReports,
      sourceDurationNs: sourceReports ? sourceNs : 0,
      destinationDurationNs: destinationReports ? serverNs : 0,
      requestHeaderBytes: 180 + service.host.length + path.length + rng.int(120) + (endUser ? 760 : 0),
      requestBodyBytes,
      responseHeaderBytes: responseCode === 0 ? 0 : 120 + rng.int(80) + (grpc ? 40 : 0),
      responseBodyBytes,
      endUser,
    };
    return request;
  }

  /** The next `n` requests. */
  take(n: number): SimRequest[] {
    const out = new Array<SimRequest>(n);
    for (let i = 0; i < n; i++) out[i] = this.next();
    return out;
  }

  /** A call active at `seconds` (calls outside their active span are drawn again). */
  private pickCall(seconds: number): Call {
    const calls = this.model.calls;
    for (let attempt = 0; attempt < 10_000; attempt++) {
      const call = calls[this.callPicker.pick(this.rng)];
      if (!this.timeBoxedCalls || (seconds >= call.activeFromS && seconds < call.activeToS)) return call;
    }
    throw new Error(`mesh ${this.model.name}: no call carries traffic at ${seconds} s`);
  }

  private latencyMs(w: Workload, caller: Workload, seconds: number): number {
    let ms = drawLatencyMs(this.rng, w.behaviour.latency);
    for (const s of this.scenariosByWorkload[w.id]) {
      if (s.kind === "slow" && seconds >= s.fromS && seconds < s.toS && (s.caller === undefined || s.caller === caller.name)) ms *= s.factor;
    }
    return Math.min(ms, w.behaviour.latency.maxMs);
  }

  private serverErrorRate(w: Workload, caller: Workload, seconds: number): number {
    let rate = w.behaviour.serverErrorRate;
    for (const s of this.scenariosByWorkload[w.id]) {
      if (s.kind === "error-burst" && seconds >= s.fromS && seconds < s.toS && (s.caller === undefined || s.caller === caller.name)) {
        rate = Math.max(rate, s.serverErrorRate);
      }
    }
    return rate;
  }
}

function drawLatencyMs(rng: Rng, m: LatencyModel): number {
  let ms = lognormal(rng, m.medianMs, m.sigma);
  if (m.tailProbability > 0 && rng.next() < m.tailProbability) ms += rng.pareto(m.tailScaleMs, m.tailAlpha);
  return Math.min(ms, m.maxMs);
}

function lognormal(rng: Rng, median: number, sigma: number): number {
  return median * Math.exp(sigma * rng.normal());
}

function sizeBytes(rng: Rng, m: SizeModel): number {
  return m.medianBytes <= 0 ? 0 : Math.round(lognormal(rng, m.medianBytes, m.sigma));
}

function msToNs(ms: number): number {
  return Math.round(ms * 1e6);
}
