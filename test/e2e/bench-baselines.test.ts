// The baselines `npm run bench` compares meshlook with must themselves be right: Prometheus'
// histogram_quantile interpolation (checked on cases worked out by hand from its definition) and the
// Istio-stats exposition (parsed back with an independent Prometheus text parser).
import parsePrometheus from "parse-prometheus-text-format";
import { describe, expect, it } from "vitest";
import { ENVOY_DEFAULT_BUCKETS, IstioStats, histogramQuantile } from "../../bench/lib/prometheus.ts";
import { expectedSeries, TrafficGenerator, bookinfo } from "../../sim/traffic/index.ts";

describe("histogram_quantile over Envoy's default buckets", () => {
  it("interpolates linearly inside the bucket that holds rank q·n", () => {
    // Buckets (0,0.5] (0.5,1] (1,5] (5,10]: counts 0, 1, 2, 1. q=0.5 → rank 2 → (1,5], 1 of its 2 → 1 + 4·(1/2) = 3.
    expect(histogramQuantile([0.7, 3, 3, 7], 0.5)).toBe(3);
    // q=0.75 → rank 3 → still (1,5], both of its 2 → its upper bound.
    expect(histogramQuantile([0.7, 3, 3, 7], 0.75)).toBe(5);
    // q=1 → rank 4 → (5,10], its only value → 10: the bucket bound, not the 7 that was observed.
    expect(histogramQuantile([0.7, 3, 3, 7], 1)).toBe(10);
    // The first bucket starts at 0: one value 0.2 → q=0.5 → 0 + 0.5·0.5.
    expect(histogramQuantile([0.2], 0.5)).toBe(0.25);
  });

  it("answers the highest finite bound for ranks in the +Inf bucket", () => {
    expect(histogramQuantile([1, 5_000_000], 0.99)).toBe(ENVOY_DEFAULT_BUCKETS.at(-1));
  });
});

describe("the Istio stats exposition", () => {
  it("parses as Prometheus text with one counter and three histograms per series, every bucket cumulative", async () => {
    const stats = new IstioStats();
    const generator = new TrafficGenerator(bookinfo(), { seed: 3 });
    let observed = 0;
    const keys = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const r = generator.next();
      if (!r.destinationReports || r.destination.name !== "details-v1") continue;
      const dims = expectedSeries(r, "destination");
      keys.add(JSON.stringify(dims));
      stats.record(dims, Math.floor(r.destinationDurationNs / 1000), r.requestHeaderBytes + r.requestBodyBytes, r.responseHeaderBytes + r.responseBodyBytes);
      observed++;
    }
    expect(observed).toBeGreaterThan(20);
    const text = await stats.text();
    const families = new Map(parsePrometheus(text).map((f) => [f.name, f]));
    const requests = families.get("istio_requests_total")!;
    expect(requests.type).toBe("COUNTER");
    expect(requests.metrics).toHaveLength(keys.size);
    expect(requests.metrics.reduce((n, m) => n + Number(m.value), 0)).toBe(observed);
    expect(Object.keys(requests.metrics[0].labels!)).toHaveLength(25);
    // Histogram samples read line by line (the parser above folds histograms whose label sets differ only
    // in some values into one): per series 20 cumulative buckets at Envoy's bounds, then sum and count.
    const lines = text.split("\n");
    for (const name of ["istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"]) {
      expect(families.get(name)!.type).toBe("HISTOGRAM");
      const counts = lines.filter((l) => l.startsWith(`${name}_count{`)).map((l) => Number(l.split(" ").at(-1)));
      expect(counts).toHaveLength(keys.size);
      expect(counts.reduce((a, b) => a + b, 0)).toBe(observed);
      const buckets = lines.filter((l) => l.startsWith(`${name}_bucket{`));
      const perSeries = ENVOY_DEFAULT_BUCKETS.length + 1;
      expect(buckets).toHaveLength(keys.size * perSeries);
      for (let k = 0; k < keys.size; k++) {
        const series = buckets.slice(k * perSeries, (k + 1) * perSeries);
        expect(series.map((l) => /le="([^"]+)"/.exec(l)![1])).toEqual([...ENVOY_DEFAULT_BUCKETS.map(String), "+Inf"]);
        const cumulative = series.map((l) => Number(l.split(" ").at(-1)));
        cumulative.slice(1).forEach((c, i) => expect(c).toBeGreaterThanOrEqual(cumulative[i]));
        expect(cumulative.at(-1)).toBe(counts[k]);
      }
    }
  });
});
