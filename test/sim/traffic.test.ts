import { describe, expect, it } from "vitest";
import {
  bookinfo,
  cardinalityAttack,
  exactQuantile,
  expectedSeries,
  flagMask,
  flagsToString,
  GroundTruth,
  isError,
  mixed,
  Rng,
  TrafficGenerator,
  type SimRequest,
} from "../../sim/traffic/index.ts";

/** A request without object references, for deep comparison of two runs. */
function flat(r: SimRequest): Record<string, unknown> {
  return { ...r, source: r.source.id, destination: r.destination.id, service: r.service.id, call: r.call.id };
}

function run(model = mixed(), seed: number | string = 7, n = 20_000) {
  const gen = new TrafficGenerator(model, { seed, requestsPerSecond: 500 });
  return gen.take(n);
}

describe("Rng", () => {
  it("is reproducible and roughly uniform", () => {
    const a = new Rng(123);
    const b = new Rng(123);
    const xs = Array.from({ length: 10_000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 10_000 }, () => b.next()));
    expect(new Rng(124).next()).not.toBe(xs[0]);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.48);
    expect(mean).toBeLessThan(0.52);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });
});

describe("TrafficGenerator", () => {
  it("puts up to requestsPerConnection requests of one workload pair on a connection, changing nothing else", () => {
    const model = mixed();
    const single = new TrafficGenerator(model, { seed: 3, requestsPerSecond: 500 }).take(5000);
    const reused = new TrafficGenerator(model, { seed: 3, requestsPerSecond: 500, requestsPerConnection: 5 }).take(5000);
    expect(single.map((r) => r.connection)).toEqual(single.map((r) => r.seq));
    expect(reused.map((r) => flat({ ...r, connection: 0 }))).toEqual(single.map((r) => flat({ ...r, connection: 0 })));
    const byConnection = new Map<number, SimRequest[]>();
    for (const r of reused) byConnection.set(r.connection, [...(byConnection.get(r.connection) ?? []), r]);
    for (const rs of byConnection.values()) {
      expect(rs.length).toBeLessThanOrEqual(5);
      expect(new Set(rs.map((r) => `${r.source.id}>${r.destination.id}`)).size).toBe(1);
    }
    // Every connection but a pair's last one is full.
    const open = new Set(reused.map((r) => `${r.source.id}>${r.destination.id}`)).size;
    expect([...byConnection.values()].filter((rs) => rs.length < 5).length).toBeLessThanOrEqual(open);
    expect(byConnection.size).toBeLessThan(5000 / 4);
    expect(() => new TrafficGenerator(model, { seed: 3, requestsPerConnection: 0 })).toThrow(/requestsPerConnection/);
  });

  it("produces the same stream for the same seed and a different one for another seed", () => {
    const a = run(mixed(), 7, 5000).map(flat);
    const b = run(mixed(), 7, 5000).map(flat);
    const c = run(mixed(), 8, 5000).map(flat);
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
  });

  it("moves the clock forward and keeps minute and end time consistent", () => {
    const start = Date.UTC(2026, 2, 3, 10, 59, 30);
    const reqs = new TrafficGenerator(bookinfo(), { seed: 1, requestsPerSecond: 1000, startTimeMs: start }).take(60_000);
    const bad = reqs.filter((r, i) => {
      const ms = Number(r.endNs / 1_000_000n);
      return (i > 0 && r.endNs < reqs[i - 1].endNs) || r.minuteMs !== ms - (ms % 60_000);
    });
    expect(bad).toEqual([]);
    // 60k requests at 1000/s span about a minute from 10:59:30, so two minutes are touched.
    expect(new Set(reqs.map((r) => r.minuteMs)).size).toBe(2);
  });

  it("reports each request from the sidecars that can see it", () => {
    const reqs = run(mixed(), 3, 30_000);
    const violations = reqs.filter(
      (r) =>
        r.sourceReports !== (r.source.proxy === "sidecar" || r.source.proxy === "gateway") ||
        r.destinationReports !== (r.upstreamConnected && !(r.responseFlags & flagMask("UT"))) ||
        !(r.sourceReports || r.destinationReports) ||
        r.mtls !== (r.source.principal !== null) ||
        (r.sourceReports && r.sourceDurationNs < r.destinationDurationNs) ||
        (r.protocol === "http" && r.grpcStatus !== -1) ||
        (r.protocol === "grpc" && r.responseCode === 200 && r.grpcStatus < 0),
    );
    expect(violations.map((r) => r.seq)).toEqual([]);
    // Every kind of outcome shows up.
    for (const flags of ["UH", "UF", "UF,URX", "UT", "DC", "-"]) {
      expect(reqs.some((r) => flagsToString(r.responseFlags) === flags)).toBe(true);
    }
  });
});

describe("presets", () => {
  it("mixed has at least 50 identities, plaintext callers, gRPC, end users and a long tail", () => {
    const model = mixed();
    const principals = new Set(model.workloads.map((w) => w.principal).filter((p) => p !== null));
    expect(principals.size).toBeGreaterThanOrEqual(50);
    for (const p of principals) expect(p).toMatch(/^spiffe:\/\/cluster\.local\/ns\/[a-z-]+\/sa\/[a-z0-9-]+$/);
    const reqs = run(model, 11, 50_000);
    expect(reqs.some((r) => !r.mtls && r.destinationReports)).toBe(true);
    expect(reqs.some((r) => r.protocol === "grpc")).toBe(true);
    expect(reqs.some((r) => r.protocol === "http")).toBe(true);
    expect(reqs.some((r) => r.endUser !== null)).toBe(true);
    const truth = new GroundTruth();
    reqs.forEach((r) => truth.record(r));
    const all = truth.totals({ reporter: "destination" });
    // Long tail: the p99.9 is far above the median.
    expect(all.quantile(0.999)).toBeGreaterThan(10 * all.quantile(0.5));
  });

  it("bookinfo spans several namespaces with a plaintext caller, gRPC, an error burst and a slow spell", () => {
    const model = bookinfo({ durationS: 60 });
    expect(new Set(model.workloads.map((w) => w.namespace)).size).toBeGreaterThanOrEqual(3);
    expect(model.workloads.map((w) => w.name)).toEqual(expect.arrayContaining(["productpage-v1", "details-v1", "reviews-v1", "reviews-v2", "reviews-v3", "ratings-v1"]));
    const reqs = new TrafficGenerator(model, { seed: 5, requestsPerSecond: 1000 }).take(60_000);
    expect(reqs.some((r) => r.source.name === "legacy-batch" && !r.mtls)).toBe(true);
    expect(reqs.some((r) => r.protocol === "grpc")).toBe(true);
    const v3 = (lo: number, hi: number) => reqs.filter((r) => r.destination.name === "reviews-v3" && r.offsetNs >= lo * 1e9 && r.offsetNs < hi * 1e9 && r.destinationReports);
    const rate = (rs: SimRequest[]) => rs.filter((r) => r.responseCode >= 500).length / rs.length;
    expect(rate(v3(30, 42))).toBeGreaterThan(0.3);
    expect(rate(v3(0, 25))).toBeLessThan(0.05);
    const ratings = (lo: number, hi: number) => {
      const t = new GroundTruth({ reporters: ["destination"] });
      reqs.filter((r) => r.destination.name === "ratings-v1" && r.offsetNs >= lo * 1e9 && r.offsetNs < hi * 1e9).forEach((r) => t.record(r));
      return t.totals().quantile(0.5);
    };
    expect(ratings(12, 24)).toBeGreaterThan(3 * ratings(30, 60));
  });

  it("cardinality-attack brings the requested number of distinct principals", () => {
    const model = cardinalityAttack({ clients: 2000 });
    const reqs = new TrafficGenerator(model, { seed: 2 }).take(40_000);
    const truth = new GroundTruth({ reporters: ["destination"] });
    reqs.forEach((r) => truth.record(r));
    const principals = new Set(truth.rows().map((r) => r.dims.source_principal));
    expect(principals.size).toBeGreaterThan(1500);
  });
});

describe("expectedSeries", () => {
  const reqs = run(bookinfo(), 9, 40_000);

  it("follows the inbound/outbound visibility rules", () => {
    const plaintext = reqs.find((r) => r.source.proxy === "none")!;
    const inbound = expectedSeries(plaintext, "destination");
    expect(inbound).toMatchObject({
      reporter: "destination",
      source_principal: "unknown",
      source_workload: "unknown",
      connection_security_policy: "none",
      destination_principal: "unknown",
      destination_workload: "details-v1",
      destination_service: "details.bookinfo.svc.cluster.local",
    });
    const meshed = reqs.find((r) => r.source.name === "productpage-v1" && r.responseCode === 200)!;
    expect(expectedSeries(meshed, "destination")).toMatchObject({
      source_principal: "spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage",
      source_workload: "productpage-v1",
      source_canonical_service: "productpage",
      source_canonical_revision: "v1",
      connection_security_policy: "mutual_tls",
      response_flags: "-",
      grpc_status: "-",
    });
    expect(expectedSeries(meshed, "source").connection_security_policy).toBe("unknown");
    const noUpstream = reqs.find((r) => !r.upstreamConnected)!;
    expect(expectedSeries(noUpstream, "source")).toMatchObject({
      destination_workload: "unknown",
      destination_principal: "unknown",
      source_principal: "unknown",
      source_workload: noUpstream.source.name,
      destination_service: noUpstream.service.host,
    });
  });

  it("reports the end user only when enabled and only inbound", () => {
    const withUser = reqs.find((r) => r.endUser !== null)!;
    expect(expectedSeries(withUser, "destination").end_user_principal).toBe("unknown");
    expect(expectedSeries(withUser, "destination", { endUserPrincipal: true }).end_user_principal).toBe(withUser.endUser);
    expect(expectedSeries(withUser, "source", { endUserPrincipal: true }).end_user_principal).toBe("unknown");
  });
});

describe("flags and errors", () => {
  it("renders Envoy's short form in bit order", () => {
    expect(flagsToString(0)).toBe("-");
    expect(flagsToString(flagMask("URX", "UF"))).toBe("UF,URX");
    expect(flagMask("UH")).toBe(0x2);
    expect(flagMask("DC")).toBe(0x4000);
  });

  it("counts 5xx, non-OK gRPC and failure flags as errors", () => {
    expect(isError(200, -1, 0)).toBe(false);
    expect(isError(404, -1, 0)).toBe(false);
    expect(isError(503, -1, 0)).toBe(true);
    expect(isError(200, 0, 0)).toBe(false);
    expect(isError(200, 14, 0)).toBe(true);
    expect(isError(0, -1, flagMask("DC"))).toBe(true);
    expect(isError(200, -1, flagMask("DI"))).toBe(false);
  });
});

describe("GroundTruth", () => {
  const reqs = run(mixed(), 21, 60_000);
  const truth = new GroundTruth({ endUserPrincipal: true });
  reqs.forEach((r) => truth.record(r));

  it("adds up: rows sum to totals, per reporter and per minute", () => {
    const rows = truth.rows();
    const sum = (f: (r: (typeof rows)[number]) => number) => rows.reduce((s, r) => s + f(r), 0);
    const total = truth.totals();
    expect(sum((r) => r.stats.requests)).toBe(total.requests);
    expect(total.requests).toBe(truth.observations);
    expect(total.requests).toBe(reqs.filter((r) => r.sourceReports).length + reqs.filter((r) => r.destinationReports).length);
    expect(truth.totals({ reporter: "source" }).requests + truth.totals({ reporter: "destination" }).requests).toBe(total.requests);
    let perMinute = 0;
    for (const m of truth.minuteList()) perMinute += truth.totals({ fromMinuteMs: m, toMinuteMs: m + 60_000 }).requests;
    expect(perMinute).toBe(total.requests);
    expect(sum((r) => r.stats.errors)).toBe(total.errors);
    expect(sum((r) => r.stats.latencySumUs)).toBe(total.latencySumUs);
    expect(sum((r) => r.stats.requestBytes)).toBe(total.requestBytes);
    expect(Math.max(...rows.map((r) => r.stats.latencyMaxUs))).toBe(total.latencyMaxUs);
    expect(Math.min(...rows.map((r) => r.stats.latencyMinUs))).toBe(total.latencyMinUs);
  });

  it("matches an independent recount from the raw requests", () => {
    const dest = reqs.filter((r) => r.destinationReports);
    const t = truth.totals({ reporter: "destination" });
    expect(t.errors).toBe(dest.filter((r) => r.responseCode >= 500 || r.grpcStatus > 0 || r.responseFlags !== 0).length);
    expect(t.latencySumUs).toBe(dest.reduce((s, r) => s + Math.floor(r.destinationDurationNs / 1000), 0));
    expect(t.responseBytes).toBe(dest.reduce((s, r) => s + r.responseHeaderBytes + r.responseBodyBytes, 0));
    const sorted = dest.map((r) => Math.floor(r.destinationDurationNs / 1000)).sort((a, b) => a - b);
    for (const q of [0.5, 0.9, 0.99, 0.999]) expect(t.quantile(q)).toBe(sorted[Math.ceil(q * sorted.length) - 1]);
  });

  it("keys each row by its own series", () => {
    const keys = new Set<string>();
    const rows = truth.rows();
    for (const row of rows) keys.add(`${row.minuteMs}|${row.key}`);
    expect(keys.size).toBe(rows.length);
    expect(truth.seriesCount).toBeGreaterThan(50);
  });

  it("records only the configured reporters", () => {
    const inboundOnly = new GroundTruth({ reporters: ["destination"] });
    reqs.forEach((r) => inboundOnly.record(r));
    expect(inboundOnly.totals().requests).toBe(truth.totals({ reporter: "destination" }).requests);
    expect(inboundOnly.rows().every((r) => r.dims.reporter === "destination")).toBe(true);
  });

  it("aggregates by any grouping", () => {
    const bySource = truth.aggregate((r) => r.dims.source_principal);
    let n = 0;
    for (const s of bySource.values()) n += s.requests;
    expect(n).toBe(truth.observations);
    expect(bySource.has("unknown")).toBe(true);
  });
});

describe("exactQuantile", () => {
  it("uses nearest rank", () => {
    const v = [10, 20, 30, 40];
    expect(exactQuantile(v, 0)).toBe(10);
    expect(exactQuantile(v, 0.25)).toBe(10);
    expect(exactQuantile(v, 0.26)).toBe(20);
    expect(exactQuantile(v, 0.5)).toBe(20);
    expect(exactQuantile(v, 1)).toBe(40);
    expect(exactQuantile([], 0.5)).toBeNaN();
  });
});

describe("dimension selection", () => {
  it("reports left-out dimensions as unknown (response_code 0) and merges the series they split", () => {
    const reqs = run(mixed(), 5, 20_000);
    const narrow = new GroundTruth({ dimensions: ["destination_service", "response_code"] });
    const full = new GroundTruth();
    reqs.forEach((r) => {
      narrow.record(r);
      full.record(r);
    });
    const rows = narrow.rows();
    expect(rows.every((r) => r.dims.source_workload === "unknown" && r.dims.response_flags === "unknown")).toBe(true);
    expect(new Set(rows.map((r) => r.dims.response_code)).size).toBeGreaterThan(3);
    expect(narrow.seriesCount).toBeLessThan(full.seriesCount);
    expect(narrow.totals().requests).toBe(full.totals().requests);
    const dropped = expectedSeries(reqs[0], "destination", { dimensions: ["destination_service"] });
    expect(dropped.response_code).toBe(0);
    expect(dropped.reporter).toBe("destination");
  });
});
