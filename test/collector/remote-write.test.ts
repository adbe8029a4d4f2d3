// The remote-write exporter's parts: the native-histogram mapping and the wire body, the cumulative
// state (retries, cap, snapshot), the spool retention it relies on, its settings, and its delivery
// behaviour against an HTTP endpoint that answers what the test tells it to.
import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../collector/config.ts";
import { RemoteWriteExporter, type RemoteWriteSettings } from "../../collector/remote-write/exporter.ts";
import { WriteRequestWriter, decodeWriteRequest, encodeWriteRequest, nativeHistogram, type NativeHistogram } from "../../collector/remote-write/protocol.ts";
import { ExportState, METRIC, OVERFLOW } from "../../collector/remote-write/state.ts";
import { Spool } from "../../collector/spool.ts";
import { decodeSummary } from "../../collector/summary.ts";
import { encodeSummary, sketchFromJson } from "../../shared/node.ts";
import { dims, latencies, series, summary } from "./helpers.ts";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "meshlook-rw-"));
  dirs.push(d);
  return d;
};
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** What the state writes for `kind` at `ts`, decoded back from the request body. */
function written(st: ExportState, kind: "zeros" | "values", ts: number) {
  const w = new WriteRequestWriter();
  st.encode(kind, ts, w);
  return decodeWriteRequest(w.finish([])).timeseries;
}

/** Native bucket counts by index, from spans and deltas as the remote-write spec defines them. */
function nativeBuckets(h: NativeHistogram): Map<number, number> {
  const out = new Map<number, number>();
  let index = 0;
  let count = 0;
  let d = 0;
  for (const span of h.positiveSpans) {
    index += span.offset;
    for (let k = 0; k < span.length; k++) {
      count += Number(h.positiveDeltas[d++]);
      out.set(index++, count);
    }
  }
  return out;
}

describe("native histogram of a sketch", () => {
  it("puts every value in the native bucket (base^(j-1), base^j] that holds it, at the sketch's scale", () => {
    for (const scale of [0, 3, 6, 8]) {
      const values = [...latencies(2000), 1, 2, 4, 1024, 3, 1_000_000];
      const sk = sketchFromJson(series("a", values, scale).sketch);
      const h = nativeHistogram(sk, 123, 1000);
      expect(h.schema).toBe(scale);
      expect(h.zeroCountInt).toBe(values.filter((v) => v === 0).length);
      expect(h.countInt).toBe(values.length);
      // Independent: Prometheus' index of v is the smallest j with v <= 2^(j / 2^scale).
      const want = new Map<number, number>();
      for (const v of values) {
        if (v === 0) continue;
        let j = Math.ceil(Math.log2(v) * 2 ** scale);
        while (2 ** ((j - 1) / 2 ** scale) >= v) j--;
        while (2 ** (j / 2 ** scale) < v) j++;
        want.set(j, (want.get(j) ?? 0) + 1);
      }
      expect(nativeBuckets(h)).toEqual(new Map([...want].sort((a, b) => a[0] - b[0])));
    }
  });

  it("round-trips through protobuf and snappy", () => {
    const sk = sketchFromJson(series("a", [5, 6, 700, 700, 90000]).sketch);
    const ts = [
      {
        labels: [
          { name: "__name__", value: "x" },
          { name: "a", value: "b" },
        ],
        histograms: [nativeHistogram(sk, 91411, 1700000000123)],
      },
    ];
    const back = decodeWriteRequest(encodeWriteRequest(ts));
    expect(back.timeseries[0].labels).toEqual(ts[0].labels);
    const h = back.timeseries[0].histograms![0];
    expect(nativeBuckets(h)).toEqual(nativeBuckets(ts[0].histograms[0]));
    expect([h.countInt, h.sum, h.timestamp]).toEqual([5, 91411, 1700000000123]);
  });
});

describe("cumulative export state", () => {
  it("adds each summary once: a retry (same or lower seq of its producer) is skipped", () => {
    const st = new ExportState("c1", 100);
    expect(st.apply(summary(0, 1, [series("a", [10, 20])]), 0).duplicate).toBe(false);
    expect(st.apply(summary(1, 2, [series("a", [30])]), 0).duplicate).toBe(false);
    expect(st.apply(summary(1, 2, [series("a", [30])]), 0).duplicate).toBe(true);
    expect(st.apply(summary(0, 1, [series("a", [10, 20])]), 0).duplicate).toBe(true);
    expect(st.apply(summary(0, 1, [series("a", [40])], "p2"), 0).duplicate).toBe(false);
    const req = written(st, "values", 5).find((t) => t.labels[0].value === METRIC.requests)!;
    expect(req.samples).toEqual([{ value: 4, timestamp: 5 }]);
  });

  it("writes zero samples only for series not yet confirmed, and sorted labels with Istio's names", () => {
    const st = new ExportState("c1", 100, { cluster: "eu" });
    st.apply(summary(0, 1, [series("a", [10])]), 0);
    const zeros = written(st, "zeros", 7);
    expect(zeros.length).toBe(5);
    expect(zeros.every((t) => (t.samples?.length ? t.samples[0].value : t.histograms![0].countInt) === 0)).toBe(true);
    const names = zeros[0].labels.map((l) => l.name);
    expect(names).toEqual([...names].sort());
    expect(names).toContain("source_workload_namespace");
    expect(names).toContain("grpc_response_status");
    expect(zeros[0].labels.find((l) => l.name === "cluster")?.value).toBe("eu");
    st.confirmZeros();
    expect(written(st, "zeros", 8)).toEqual([]);
    st.apply(summary(1, 2, [series("b", [10])]), 0);
    expect(written(st, "zeros", 9).map((t) => t.labels.find((l) => l.name === "destination_service")!.value)).toEqual(["b", "b", "b", "b", "b"]);
  });

  it("folds label sets beyond the cap into the overflow series of their reporter, keeping totals", () => {
    const st = new ExportState("c1", 2);
    const r = st.apply(
      summary(
        0,
        1,
        ["a", "b", "c", "d"].map((s) => series(s, [s.charCodeAt(0)])),
      ),
      0,
    );
    expect(r.overflowed).toBe(2);
    expect(st.series.size).toBe(3);
    const reqs = written(st, "values", 1).filter((t) => t.labels[0].value === METRIC.requests);
    const overflow = reqs.find((t) => t.labels.find((l) => l.name === "destination_service")!.value === OVERFLOW)!;
    expect(overflow.samples![0].value).toBe(2);
    expect(overflow.labels.find((l) => l.name === "response_code")!.value).toBe("0");
    expect(reqs.reduce((n, t) => n + t.samples![0].value, 0)).toBe(4);
  });

  it("restores totals, sketches, producers and pending zeros from its snapshot", () => {
    const st = new ExportState("c1", 100);
    st.apply(summary(0, 1, [series("a", latencies(300))]), 0);
    st.cursor = { segment: 3, offset: 99 };
    const copy = new ExportState("c1", 100);
    copy.restore(JSON.parse(JSON.stringify(st.snapshot())));
    expect(written(copy, "values", 1)).toEqual(written(st, "values", 1));
    expect(copy.pendingZeros).toBe(1);
    expect(copy.apply(summary(0, 1, [series("a", [1])]), 0).duplicate).toBe(true);
    expect(copy.cursor).toEqual({ segment: 3, offset: 99 });
    // Under another instance name the series are new to Prometheus: they start from zero again.
    st.confirmZeros();
    const renamed = new ExportState("c2", 100);
    renamed.restore(st.snapshot());
    expect(renamed.pendingZeros).toBe(1);
  });
});

describe("spool retention for a second reader", () => {
  it("keeps loaded segments the retainer needs, hides them from the loader, deletes them on release", async () => {
    const spool = await Spool.open(tempDir(), { segmentBytes: 64 * 1024 });
    let needFrom = 0;
    spool.retain((id) => id >= needFrom);
    await spool.append(Buffer.from("a"), 1);
    const first = await spool.seal();
    await spool.append(Buffer.from("b"), 2);
    await spool.remove(first);
    expect(spool.segmentIds()).toEqual([...first, first[0] + 1]);
    expect(await spool.seal()).toEqual([first[0] + 1]);
    needFrom = first[0] + 1;
    await spool.release();
    expect(spool.segmentIds()).toEqual([first[0] + 1]);
    await spool.close();
  });
});

describe("remote-write settings", () => {
  const env = (extra: Record<string, string>) => ({ MESHLOOK_DATA_DIR: tempDir(), MESHLOOK_AUTH_DISABLED: "true", ...extra });
  it("is off by default and reads headers, labels and limits", () => {
    expect(loadConfig(env({})).remoteWrite.url).toBe("");
    const c = loadConfig(
      env({ MESHLOOK_REMOTE_WRITE_URL: "https://p:9090/api/v1/write", MESHLOOK_REMOTE_WRITE_HEADERS: "X-Scope-OrgID=team-a", MESHLOOK_REMOTE_WRITE_EXTERNAL_LABELS: "cluster=eu" }),
    );
    expect(c.remoteWrite.headers).toEqual({ "X-Scope-OrgID": "team-a" });
    expect(c.remoteWrite.externalLabels).toEqual({ cluster: "eu" });
  });

  it("names every bad setting", () => {
    const problems = (e: Record<string, string>) => {
      try {
        loadConfig(env(e));
        return [];
      } catch (err) {
        return (err as ConfigError).problems;
      }
    };
    expect(problems({ MESHLOOK_REMOTE_WRITE_URL: "ftp://x" })[0]).toMatch(/^MESHLOOK_REMOTE_WRITE_URL: must be http/);
    expect(problems({ MESHLOOK_REMOTE_WRITE_URL: "http://x", MESHLOOK_REMOTE_WRITE_TLS_CERT_FILE: "/c" })[0]).toMatch(/TLS_KEY_FILE must be set together/);
    expect(problems({ MESHLOOK_REMOTE_WRITE_EXTERNAL_LABELS: "source_principal=x" })[0]).toMatch(/already a meshlook label/);
    expect(problems({ MESHLOOK_REMOTE_WRITE_HEADERS: "Content-Type=x" })[0]).toMatch(/set by the remote-write protocol/);
    expect(problems({ MESHLOOK_REMOTE_WRITE_HEADERS: "User-Agent=x" })[0]).toMatch(/set by the remote-write protocol/);
    expect(
      problems({ MESHLOOK_REMOTE_WRITE_URL: "http://x", MESHLOOK_REMOTE_WRITE_HEADERS: "authorization=Basic eA==", MESHLOOK_REMOTE_WRITE_BEARER_TOKEN_FILE: "/t" })[0],
    ).toMatch(/Authorization header contradicts MESHLOOK_REMOTE_WRITE_BEARER_TOKEN_FILE/);
    expect(problems({ MESHLOOK_REMOTE_WRITE_URL: "http://x", MESHLOOK_SPOOL_MAX_BYTES: String(64 << 20), MESHLOOK_REMOTE_WRITE_MAX_LAG_BYTES: String(48 << 20) })[0]).toMatch(
      /MAX_LAG_BYTES: .* at most half of MESHLOOK_SPOOL_MAX_BYTES/,
    );
  });
});

describe("delivery", () => {
  /** An endpoint answering each request with the next status of `statuses` (then 204), recording bodies. */
  async function endpoint(statuses: { code: number; retryAfter?: string }[]) {
    const got: { headers: IncomingMessage["headers"]; series: ReturnType<typeof decodeWriteRequest>["timeseries"] }[] = [];
    const server: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const next = statuses.shift() ?? { code: 204 };
        if (next.code === 204) got.push({ headers: req.headers, series: decodeWriteRequest(Buffer.concat(chunks)).timeseries });
        res.writeHead(next.code, next.retryAfter ? { "retry-after": next.retryAfter } : {});
        res.end(next.code === 204 ? "" : "nope");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/api/v1/write`, got };
  }

  const settings = (url: string, extra: Partial<RemoteWriteSettings> = {}): RemoteWriteSettings => ({
    url,
    headers: { "X-Scope-OrgID": "t1" },
    insecureSkipVerify: false,
    timeoutS: 5,
    intervalS: 1,
    maxSeries: 100,
    seriesIdleS: 3600,
    maxLagBytes: 1 << 20,
    instance: "test",
    externalLabels: {},
    readyMaxLagS: 0,
    ...extra,
  });

  async function exporterOn(url: string, extra: Partial<RemoteWriteSettings> = {}) {
    const spool = await Spool.open(tempDir(), { segmentBytes: 1 << 20 });
    cleanups.push(() => spool.close());
    const registry = new Registry();
    const exporter = await RemoteWriteExporter.open(spool, settings(url, extra), decodeSummary, registry, pino({ level: "silent" }));
    const metric = async (name: string) => (await registry.getSingleMetric(name)!.get()).values;
    return { spool, exporter, metric };
  }

  const body = (seq: number, service: string, n: number) => encodeSummary(summary(seq, 1, [{ ...series(service, latencies(n)), dimensions: dims(service) }]));

  it("writes zero samples of new series before their totals, with the configured headers", async () => {
    const ep = await endpoint([]);
    const { spool, exporter } = await exporterOn(ep.url);
    await spool.append(body(0, "a", 50), Date.now());
    await exporter.runCycle();
    expect(ep.got.length).toBe(2);
    expect(ep.got[0].headers["x-scope-orgid"]).toBe("t1");
    expect(ep.got[0].headers["x-prometheus-remote-write-version"]).toBe("0.1.0");
    expect(ep.got[0].headers["user-agent"]).toMatch(/^meshlook-collector\/\d+\.\d+\.\d+/);
    const value = (i: number) => ep.got[i].series.find((t) => t.labels[0].value === METRIC.requests)!.samples![0];
    expect(value(0).value).toBe(0);
    expect(value(1).value).toBe(50);
    expect(value(1).timestamp).toBeGreaterThan(value(0).timestamp);
    await exporter.stop(1000);
  });

  it("retries 5xx and 429 (honouring Retry-After) without losing counts; drops a 4xx and counts it", async () => {
    const ep = await endpoint([{ code: 503 }, { code: 429, retryAfter: "0" }, { code: 400 }]);
    const { spool, exporter, metric } = await exporterOn(ep.url);
    await spool.append(body(0, "a", 10), Date.now());
    await exporter.runCycle(); // zeros: 503
    expect(ep.got.length).toBe(0);
    await exporter.runCycle(); // zeros: 429
    await exporter.runCycle(); // zeros: 400 → dropped; then totals: 204
    await spool.append(body(1, "a", 5), Date.now());
    await exporter.runCycle();
    const failures = Object.fromEntries((await metric("meshlook_remote_write_failures_total")).map((v) => [v.labels.reason, v.value]));
    expect(failures).toMatchObject({ http_5xx: 1, http_429: 1, http_4xx: 1 });
    expect((await metric("meshlook_remote_write_dropped_requests_total"))[0].value).toBe(1);
    const last = ep.got[ep.got.length - 1].series.find((t) => t.labels[0].value === METRIC.requests)!;
    expect(last.samples![0].value).toBe(15);
    await exporter.stop(1000);
  });

  it("exports every summary once across restarts, while the loader empties the spool behind it", async () => {
    const ep = await endpoint([]);
    const dir = tempDir();
    const open = async () => {
      const spool = await Spool.open(dir, { segmentBytes: 1 << 20 });
      cleanups.push(() => spool.close());
      const exporter = await RemoteWriteExporter.open(spool, settings(ep.url), decodeSummary, new Registry(), pino({ level: "silent" }));
      return { spool, exporter };
    };
    let { spool, exporter } = await open();
    let seq = 0;
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 5; i++) await spool.append(body(seq++, "a", 10), Date.now());
      if (round % 3 === 0) await spool.remove(await spool.seal()); // the loader, on its own schedule
      if (round % 2 === 0) await exporter.runCycle();
      // A restart (the old objects are abandoned, as by SIGKILL) — the spool may be empty by then, and its
      // segment ids would start again from 1.
      if (round % 7 === 6) ({ spool, exporter } = await open());
    }
    for (let i = 0; i < 5; i++) await exporter.runCycle();
    const last = ep.got[ep.got.length - 1].series.find((t) => t.labels[0].value === METRIC.requests)!;
    expect(last.samples![0].value).toBe(seq * 10);
  });

  it("sets an unreadable state file aside and starts from fresh totals instead of refusing to start", async () => {
    const ep = await endpoint([]);
    const dir = tempDir();
    writeFileSync(join(dir, "remote-write.json"), "{ torn");
    const spool = await Spool.open(dir, { segmentBytes: 1 << 20 });
    cleanups.push(() => spool.close());
    const exporter = await RemoteWriteExporter.open(spool, settings(ep.url), decodeSummary, new Registry(), pino({ level: "silent" }));
    await spool.append(body(0, "a", 3), Date.now());
    await exporter.runCycle();
    expect(readdirSync(dir).filter((f) => f.startsWith("remote-write.json.unreadable-")).length).toBe(1);
    expect(ep.got[ep.got.length - 1].series.find((t) => t.labels[0].value === METRIC.requests)!.samples![0].value).toBe(3);
  });

  it("reports itself not ready only when MESHLOOK_REMOTE_WRITE_READY_MAX_LAG_S is set and exceeded", async () => {
    const ep = await endpoint(Array.from({ length: 4 }, () => ({ code: 503 })));
    const lenient = await exporterOn(ep.url);
    const strict = await exporterOn(ep.url, { readyMaxLagS: 60 });
    for (const { spool, exporter } of [lenient, strict]) {
      await spool.append(body(0, "a", 10), Date.now() - 120_000);
      await exporter.runCycle();
    }
    expect(lenient.exporter.notReady()).toBeUndefined();
    expect(strict.exporter.notReady()).toMatch(/^remote write is 1\d\d s behind \(limit 60 s\): .* answered 503/);
    await lenient.exporter.stop(0);
    await strict.exporter.stop(0);
  });

  it("adds a backlog beyond MESHLOOK_REMOTE_WRITE_MAX_LAG_BYTES into its totals while the endpoint is down, releasing the spool", async () => {
    const ep = await endpoint(Array.from({ length: 3 }, () => ({ code: 503 })));
    const { spool, exporter, metric } = await exporterOn(ep.url, { maxLagBytes: 4 * 1024 });
    let seq = 0;
    for (let i = 0; i < 40; i++) await spool.append(body(seq++, "a", 300), Date.now());
    await spool.seal(); // as the loader does
    for (let i = 0; i < 40; i++) await spool.append(body(seq++, "a", 300), Date.now());
    await exporter.runCycle();
    expect((await metric("meshlook_remote_write_unsent_summaries_total"))[0].value).toBeGreaterThan(0);
    expect((await metric("meshlook_remote_write_lag_bytes"))[0].value).toBeLessThanOrEqual(4 * 1024);
    for (let i = 0; i < 20; i++) await exporter.runCycle();
    const last = ep.got[ep.got.length - 1].series.find((t) => t.labels[0].value === METRIC.requests)!;
    expect(last.samples![0].value).toBe(80 * 300);
    await exporter.stop(1000);
  });
});
