// A large Snowflake load must not hold the event loop: the collector keeps answering /healthz while the
// load rolls up a spool left by an earlier process (summaries this process acknowledged were folded as
// they arrived; a replay decodes and folds them during the load). Observed as an ordering, not a time:
// every /healthz response (over a real socket) and every summary the rollup folds in (a spy on
// MinuteRollup.add that only records) go into one event log, and the test counts the /healthz responses
// that completed between the load's first and last fold. A rollup done in one synchronous block lets
// exactly none through.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pino from "pino";
import { describe, expect, it } from "vitest";
import { startCollector } from "../../collector/collector.ts";
import { loadConfig } from "../../collector/config.ts";
import { Spool } from "../../collector/spool.ts";
import { encodeSummary } from "../../shared/node.ts";
import { FACT_TABLE } from "../../shared/schema.ts";
import { MinuteRollup } from "../../collector/rollup.ts";
import { series, summary } from "../collector/helpers.ts";
import { standForSuite } from "./helpers.ts";

// Many summaries folding into few rows: a rollup with real work, and little for the stand-in to store.
const SUMMARIES = 600;
const SERIES = 60;

describe("a large Snowflake load", () => {
  const s = standForSuite({ migrate: true });

  it("keeps /healthz answering while it rolls the batch up", async () => {
    const config = loadConfig({
      ...s.env(),
      MESHLOOK_DATA_DIR: mkdtempSync(join(tmpdir(), "meshlook-sfr-")),
      MESHLOOK_INGEST_TOKENS: "t0ken",
      MESHLOOK_HOST: "127.0.0.1",
      MESHLOOK_PORT: "0",
      MESHLOOK_MAX_EVENT_LOOP_DELAY_MS: "60000",
      // The summaries' windows end in 1970: with retention on they would expire instead of load.
      MESHLOOK_RETENTION_MINUTE_DAYS: "0",
    });
    const perSummary = Array.from({ length: SERIES }, (_, k) => series(`svc-${k}`, [100 + k, 2000 + 3 * k, 50_000 + 7 * k]));
    const requests = SUMMARIES * perSummary.reduce((n, x) => n + x.requests, 0);
    // What an earlier process acknowledged and could not load before it stopped.
    const spool = await Spool.open(config.spoolDir, { segmentBytes: config.spoolSegmentBytes });
    for (let i = 0; i < SUMMARIES; i++) await spool.append(encodeSummary(summary(i + 1, 120_000, perSummary, `pod-${i % 10}`)), 0);
    await spool.close();

    const events: string[] = [];
    const add = MinuteRollup.prototype.add;
    MinuteRollup.prototype.add = function (this: MinuteRollup, ...args: Parameters<typeof add>) {
      events.push("fold");
      return add.apply(this, args);
    };
    // The startup cycle (connect, then the replay) starts as the collector listens.
    const c = await startCollector(config, pino({ level: "silent" }));
    try {
      let loading = true;
      const pinger = (async () => {
        while (loading) {
          // Over a real socket, as a kubelet probe or a sidecar's POST would arrive.
          const res = await fetch(`${c.url}/healthz`);
          expect(res.status).toBe(200);
          await res.arrayBuffer();
          await sleep(2); // a probe's pace, not a second load on the same two cores
          events.push("healthz");
        }
      })();
      await c.loader.loadNow(); // runs after the startup cycle
      loading = false;
      await pinger;
      MinuteRollup.prototype.add = add;

      // Each /healthz answer inside the stretch is a turn of the event loop the rollup gave up.
      const folds = events.filter((e) => e === "fold").length;
      const during = events.slice(events.indexOf("fold"), events.lastIndexOf("fold"));
      const answered = during.filter((e) => e === "healthz").length;
      expect(folds).toBe(SUMMARIES);
      expect(answered).toBeGreaterThan(0);
      const [row] = await s.sf.query(`SELECT SUM(requests) AS n, COUNT(*) AS rows FROM ${FACT_TABLE.name}`);
      // One cycle, one transaction: one row per series of the one minute.
      expect(Number(row.n)).toBe(requests);
      expect(Number(row.rows)).toBe(SERIES);
    } finally {
      MinuteRollup.prototype.add = add;
      await c.close();
    }
  });
});
