// HTTP abuse against a collector process: missing, wrong and revoked tokens, oversized bodies, wrong
// media types, slow bodies and floods get clear 4xx/503 answers that echo nothing of the request, and
// a well-behaved client next to them is served throughout.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import { encodeSummary } from "../../shared/node.ts";
import { latencies, series, summary } from "../collector/helpers.ts";
import { CollectorReplica, INGEST_PATH, SUMMARY_TYPE, sleep } from "../faults/rig.ts";
import { fetchRetryingShed } from "../shared/shed-retry.ts";

const MARKER = "ECHO-MARKER-7f3a";
const MAX_BODY = 65_536;
const dir = mkdtempSync(join(tmpdir(), "meshlook-abuse-"));
const tokenFile = join(dir, "tokens");
const collector = new CollectorReplica("abuse", {
  MESHLOOK_DATA_DIR: dir,
  MESHLOOK_INGEST_TOKENS_FILE: tokenFile,
  MESHLOOK_MAX_BODY_BYTES: String(MAX_BODY),
  MESHLOOK_LOAD_INTERVAL_S: "1",
  // The summaries' windows are fixed at 2026-01-01: with retention on they would expire instead of load.
  MESHLOOK_RETENTION_MINUTE_DAYS: "0",
});
let url = "";
let seq = 0;

beforeAll(async () => {
  writeFileSync(tokenFile, "# ingest tokens\nalpha-token\nbeta-token\n");
  await collector.start();
  url = collector.url!;
});
afterAll(async () => {
  await collector.kill();
  rmSync(dir, { recursive: true, force: true });
});

const validBody = (producer = "abuse") => Buffer.from(encodeSummary(summary(++seq, 1_767_225_600_000, [series("svc", latencies(5))], producer)));

/** One POST, answered as the collector first answers it (the flood counts 503 overloaded as an answer). */
async function postOnce(headers: Record<string, string>, body: Buffer = validBody()) {
  return answered(await fetch(url + INGEST_PATH, { method: "POST", headers, body: new Uint8Array(body) }));
}
/** A POST sent again after 503 overloaded, as a sidecar does: load shedding is not what those tests are about. */
async function post(headers: Record<string, string>, body: Buffer = validBody()) {
  return answered(await fetchRetryingShed(() => fetch(url + INGEST_PATH, { method: "POST", headers, body: new Uint8Array(body) })));
}
async function answered(res: Response) {
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as { error?: string; message?: string; status?: string }, retryAfter: res.headers.get("retry-after") };
}
const auth = (token: string) => ({ "content-type": SUMMARY_TYPE, authorization: `Bearer ${token}` });

/** Sends raw bytes on a new connection and resolves with what the server answered before closing. */
function raw(bytes: string, waitMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(Number(new URL(url).port), "127.0.0.1");
    let got = "";
    s.on("data", (d) => (got += d.toString("latin1")));
    s.on("close", () => resolve(got));
    s.on("error", () => resolve(got));
    s.write(bytes);
    setTimeout(() => s.destroy(), waitMs);
  });
}

describe("collector under HTTP abuse", () => {
  it("refuses missing, malformed and unknown tokens with 401 and never echoes them", async () => {
    expect((await post(auth("alpha-token"))).status).toBe(200);
    for (const headers of [
      { "content-type": SUMMARY_TYPE },
      auth(MARKER),
      auth(""),
      { "content-type": SUMMARY_TYPE, authorization: `Basic alpha-token` },
      { "content-type": SUMMARY_TYPE, authorization: `Bearer alpha-token ${MARKER}` },
      auth("alpha-tokenx"), // a near miss
      auth("alpha-toke"),
    ]) {
      const r = await post(headers);
      expect(r.status).toBe(401);
      expect(r.json.error).toBe("unauthorized");
      expect(r.text).not.toContain(MARKER);
      expect(r.text).not.toContain("alpha-token");
    }
    // Refused before the body is read: a huge announced upload with a wrong token is answered at once.
    const answer = await raw(`POST ${INGEST_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Type: ${SUMMARY_TYPE}\r\nContent-Length: 100000000\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
  });

  it("stops accepting a token removed from the token file, keeps the others", async () => {
    expect((await post(auth("beta-token"))).status).toBe(200);
    writeFileSync(tokenFile + ".new", "alpha-token\n");
    renameSync(tokenFile + ".new", tokenFile); // an atomic swap, as a mounted Secret is updated
    let status = 200;
    for (let i = 0; i < 100 && status === 200; i++) {
      await sleep(100);
      status = (await post(auth("beta-token"))).status;
    }
    expect(status).toBe(401);
    expect((await post(auth("alpha-token"))).status).toBe(200);
    expect(collector.logs()).not.toContain("beta-token");
    expect(collector.logs()).not.toContain("alpha-token");
  });

  it("answers oversized bodies 413 and wrong media types 415", async () => {
    const big = Buffer.alloc(MAX_BODY + 1, 0x41);
    const r = await post(auth("alpha-token"), big);
    expect([r.status, r.json.error]).toEqual([413, "body_too_large"]);
    for (const type of [undefined, "application/json", "text/plain", "multipart/form-data; boundary=x", `${SUMMARY_TYPE}x`]) {
      const headers: Record<string, string> = { authorization: "Bearer alpha-token" };
      if (type) headers["content-type"] = type;
      const res = await post(headers);
      expect([res.status, res.json.error]).toEqual([415, "unsupported_media_type"]);
    }
  });

  it("echoes nothing of the request in refusals", async () => {
    const s = summary(++seq, 1_767_225_600_000, [series(MARKER, [1])], `producer-${MARKER}`);
    const good = Buffer.from(encodeSummary(s));
    const bodies = [
      Buffer.concat([good, Buffer.from(MARKER)]), // trailing bytes
      good.subarray(0, good.length - 3), // truncated
      Buffer.from(MARKER.repeat(50)), // not a summary at all
      Buffer.from(good).fill(0x7f, good.length - 6, good.length - 4), // checksum
    ];
    for (const b of bodies) {
      const r = await post(auth("alpha-token"), b);
      expect(r.status).toBe(400);
      expect(r.text).not.toContain(MARKER);
    }
  });

  it("keeps identity values out of /metrics", async () => {
    const s = summary(++seq, 1_767_225_600_000, [series(`svc-${MARKER}`, [1, 2])], `producer-${MARKER}`);
    s.series[0].dimensions.source_principal = `spiffe://cluster.local/ns/${MARKER}/sa/x`;
    expect((await post(auth("alpha-token"), Buffer.from(encodeSummary(s)))).status).toBe(200);
    const text = await (await fetch(`${url}/metrics`)).text();
    expect(text).toContain("meshlook_summaries_accepted_total");
    expect(text).not.toContain(MARKER);
  });

  it("does not reflect an unknown path in its 404", async () => {
    const res = await fetch(`${url}/${MARKER}?q=${MARKER}`);
    expect(res.status).toBe(404);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: "not_found", message: expect.any(String) });
    expect(text).not.toContain(MARKER);
  });

  it("keeps serving a well-behaved client while slow bodies hold connections open", async () => {
    const slow: Socket[] = [];
    for (let i = 0; i < 50; i++) {
      const s = connect(Number(new URL(url).port), "127.0.0.1");
      s.on("error", () => undefined);
      s.write(`POST ${INGEST_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alpha-token\r\nContent-Type: ${SUMMARY_TYPE}\r\nContent-Length: 5000\r\n\r\nM`);
      slow.push(s);
    }
    try {
      for (let i = 0; i < 10; i++) {
        expect((await post(auth("alpha-token"))).status).toBe(200);
        for (const s of slow) s.write("L");
      }
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
    } finally {
      for (const s of slow) s.destroy();
    }
  });

  it("under a flood of unauthenticated and valid posts answers only 401, 200 or 503 with Retry-After, and loads every acknowledged summary", async () => {
    // Start from a drained collector: every summary the earlier tests posted is loaded.
    while ((await collector.metric("meshlook_summaries_loaded_total")) < (await collector.metric("meshlook_summaries_accepted_total"))) await sleep(100);
    const loadedBefore = await collector.metric("meshlook_summaries_loaded_total");
    const statuses: Record<string, number> = {};
    const wrong: string[] = [];
    let acknowledged = 0;
    // 1 500 posts, 300 in flight at a time (beyond that the kernel's accept queue, not the collector, answers).
    const flood = (async () => {
      for (let first = 0; first < 1500; first += 300) {
        await Promise.all(
          Array.from({ length: 300 }, async (_, k) => {
            const i = first + k;
            const valid = i % 3 === 0;
            const r = await postOnce(auth(valid ? "alpha-token" : "wrong"), validBody(`flood-${i % 7}`));
            const key = `${r.status}${r.status === 503 ? `/${r.json.error}/${r.retryAfter ? "retry-after" : "none"}` : ""}`;
            statuses[key] = (statuses[key] ?? 0) + 1;
            if (valid && r.status === 200 && r.json.status === "accepted") acknowledged++;
            if (valid ? ![200, 503].includes(r.status) : r.status !== 401) wrong.push(`${valid ? "valid" : "unauthenticated"} post answered ${r.text}`);
          }),
        );
      }
    })();
    const bystander = (async () => {
      for (let i = 0; i < 20; i++) {
        expect((await fetch(`${url}/healthz`)).status).toBe(200);
        await sleep(20);
      }
    })();
    await Promise.all([flood, bystander]);
    expect(wrong).toEqual([]);
    const allowed = ["200", "401", "503/overloaded/retry-after", "503/spool_full/retry-after", "503/spool_unavailable/retry-after"];
    expect(
      Object.keys(statuses).filter((k) => !allowed.includes(k)),
      JSON.stringify(statuses),
    ).toEqual([]);
    let loaded = 0;
    for (let i = 0; i < 200 && loaded < acknowledged; i++) {
      await sleep(100);
      loaded = (await collector.metric("meshlook_summaries_loaded_total")) - loadedBefore;
    }
    expect(loaded).toBe(acknowledged);
  });

  it("runs open only when told to, and says so in its log", async () => {
    const open = new CollectorReplica("open", { MESHLOOK_DATA_DIR: join(dir, "open"), MESHLOOK_AUTH_DISABLED: "true" });
    try {
      await open.start();
      const warning = open
        .logs()
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { level: number; msg: string })
        .find((l) => /AUTHENTICATION IS DISABLED/.test(l.msg));
      expect(warning?.level).toBe(40); // pino "warn"
      const res = await fetchRetryingShed(() => fetch(open.url + INGEST_PATH, { method: "POST", headers: { "content-type": SUMMARY_TYPE }, body: new Uint8Array(validBody()) }));
      expect(res.status).toBe(200);
    } finally {
      await open.kill();
    }
  });

  it("bounds how long a request body may take to arrive, answering 408 in the error contract", async () => {
    const c = await startCollector(
      loadConfig({ MESHLOOK_DATA_DIR: join(dir, "inproc"), MESHLOOK_INGEST_TOKENS: "x", MESHLOOK_HOST: "127.0.0.1", MESHLOOK_PORT: "0", MESHLOOK_REQUEST_TIMEOUT_S: "1" }),
      pino({ level: "silent" }),
    );
    try {
      expect(c.app.server.requestTimeout).toBe(1000);
      // Headers complete, body promised but never finished: the server must give up on its own (the
      // client would wait 10 s before closing the socket itself).
      const slowBody = () =>
        new Promise<string>((resolve) => {
          const s = connect(Number(new URL(c.url).port), "127.0.0.1");
          let got = "";
          const giveUp = setTimeout(() => s.destroy(), 10_000);
          s.on("data", (d) => (got += d.toString("latin1")));
          s.on("close", () => {
            clearTimeout(giveUp);
            resolve(got);
          });
          s.on("error", () => undefined);
          s.write(`POST ${INGEST_PATH} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\nContent-Type: ${SUMMARY_TYPE}\r\nContent-Length: 5000\r\n\r\n${MARKER}`);
        });
      // A starved machine may shed the request before its body times out; a sidecar would send it again.
      let answer = await slowBody();
      for (let tries = 0; tries < 30 && /^HTTP\/1\.1 503 [\s\S]*"overloaded"/.test(answer); tries++) {
        await sleep(1000);
        answer = await slowBody();
      }
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4))).toEqual({ error: "request_timeout", message: expect.any(String) });
      expect(answer).not.toContain(MARKER);
      // The collector still serves complete requests.
      expect((await fetch(`${c.url}/healthz`)).status).toBe(200);
    } finally {
      await c.close();
    }
  });
});
