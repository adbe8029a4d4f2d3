import { describe, expect, it } from "vitest";
import { peerObject, streamInput, workloadNode } from "../../sim/sidecar.ts";
import type { StreamInput } from "../../sim/host/index.ts";
import { FieldObject, Message, Typed } from "../../sim/host/values.ts";
import { bookinfo, expectedSeries, mixed, TrafficGenerator, type Reporter } from "../../sim/traffic/index.ts";
import { readSeries, type Lookup } from "./istio-reading.ts";

/** Walks the glue's attribute tree directly (no host), for checks that need no wasm. */
function directLookup(input: StreamInput, node: Record<string, unknown>): Lookup {
  return (...path) => {
    if (path[0] === "xds" && path[1] === "node") return walk({ metadata: node }, path.slice(2));
    if (path[0] === "response" && path[1] === "grpc_status") {
      const all = [...pairs(input.responseTrailers), ...pairs(input.responseHeaders)];
      const s = all.find(([k]) => k === "grpc-status");
      return s ? Number(s[1]) : undefined;
    }
    return walk(input.attributes, path);
  };
}

function pairs(h: StreamInput["requestHeaders"] | undefined): [string, string][] {
  return h === undefined ? [] : (h as [string, string][]);
}

function walk(root: unknown, path: string[]): string | number | bigint | boolean | undefined {
  let v: unknown = root;
  for (const key of path) {
    if (v instanceof FieldObject || v instanceof Message) v = v.fields[key];
    else if (v && typeof v === "object") v = (v as Record<string, unknown>)[key];
    else return undefined;
    if (v === undefined) return undefined;
  }
  if (v instanceof Typed) return v.value as string | number | bigint | boolean;
  return v as string | number | bigint | boolean;
}

function checkAll(model = mixed(), n = 20_000) {
  const gen = new TrafficGenerator(model, { seed: 4 });
  let checked = 0;
  const mismatches: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = gen.next();
    for (const reporter of ["source", "destination"] as Reporter[]) {
      if (reporter === "source" ? !r.sourceReports : !r.destinationReports) continue;
      const input = streamInput(r, reporter);
      const w = reporter === "source" ? r.source : r.destination;
      const node = workloadNode(w, model).metadata!;
      const header = (name: string) => pairs(input.requestHeaders).find(([k]) => k === name)?.[1];
      for (const endUser of [false, true]) {
        const got = readSeries(directLookup(input, node), header, endUser);
        const want = expectedSeries(r, reporter, { endUserPrincipal: endUser });
        if (JSON.stringify(got) !== JSON.stringify(want) && mismatches.length < 5) {
          mismatches.push(`${r.seq}/${reporter}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
        }
      }
      checked++;
    }
  }
  return { checked, mismatches };
}

describe("streamInput", () => {
  it("carries exactly the facts of expectedSeries, read the way Istio's stats read them (mixed)", () => {
    const { checked, mismatches } = checkAll(mixed());
    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(20_000);
  });

  it("does the same for bookinfo (gateway, end users, plaintext caller)", () => {
    expect(checkAll(bookinfo(), 10_000).mismatches).toEqual([]);
  });

  it("states durations, sizes and timing with Envoy's types", () => {
    const model = bookinfo();
    const r = new TrafficGenerator(model, { seed: 1 }).take(200).find((x) => x.sourceReports && x.destinationReports)!;
    for (const reporter of ["source", "destination"] as Reporter[]) {
      const a = streamInput(r, reporter).attributes!;
      const dur = reporter === "source" ? r.sourceDurationNs : r.destinationDurationNs;
      expect(a.request!.duration).toEqual(new Typed("duration", BigInt(dur)));
      // request.time + request.duration is the request's end, the moment both sidecars log it.
      expect((a.request!.time as Typed).value).toBe(r.endNs - BigInt(dur));
      expect(a.request!.total_size).toBe(r.requestHeaderBytes + r.requestBodyBytes);
      expect(a.response!.total_size).toBe(r.responseHeaderBytes + r.responseBodyBytes);
    }
  });

  it("refuses a reporter that does not observe the request", () => {
    const r = new TrafficGenerator(bookinfo(), { seed: 1 }).take(5000).find((x) => !x.destinationReports)!;
    expect(() => streamInput(r, "destination")).toThrow(/not observed by its destination sidecar/);
  });

  it("shares one immutable peer object per workload", () => {
    const w = bookinfo().workloads[2];
    expect(peerObject(w)).toBe(peerObject(w));
    expect((peerObject(w) as Record<string, unknown>).workload).toBe(w.name);
  });
});
