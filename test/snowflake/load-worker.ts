// A collector-like process for the multi-process Snowflake tests: opens a Snowflake sink, says READY,
// waits for GO on stdin (so several processes start loading at the same moment), loads its batches in
// order and prints one RESULT line per batch. Job file (argv[2]): { settings, batches }.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import type { SnowflakeSettings } from "../../collector/config.ts";
import { SnowflakeSink } from "../../collector/sink/snowflake.ts";
import type { DecodedSummary } from "../../collector/summary.ts";

const job = JSON.parse(readFileSync(process.argv[2], "utf8")) as { settings: SnowflakeSettings; batches: DecodedSummary[][] };
let conflicts = 0;
const sink = new SnowflakeSink(job.settings, undefined, {
  maxAttempts: 20,
  backoffMs: 10,
  onRetry: (err) => {
    if (err.reason === "conflict") conflicts++;
  },
});
await sink.open();
process.stdout.write("READY\n");
const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === "GO") break;
for (const batch of job.batches) {
  const r = await sink.load(batch);
  process.stdout.write(`RESULT ${JSON.stringify({ ...r, conflicts })}\n`);
}
await sink.close();
process.exit(0);
