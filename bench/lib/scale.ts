// The scale benchmark (bench/scale.ts: a simulated mesh of N sidecars posting to collector processes,
// DuckDB and the Snowflake stand-in with two replicas) run as it is, its figures read back for the
// summary table.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { ScaleRun } from "../scale.ts";

/** CPU-seconds per simulated minute per 1,000 sidecars. */
export const perMinutePerThousand = (cpuS: number, r: Pick<ScaleRun, "minutes" | "sidecars">): number => cpuS / r.minutes / (r.sidecars / 1000);

export async function measureScale(options: { sidecars: number[]; minutes?: number }): Promise<{ runs: ScaleRun[]; output: string }> {
  const root = join(import.meta.dirname, "..", "..");
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", join(root, "bench", "scale.ts")], {
    cwd: root,
    env: { ...process.env, BENCH_SIDECARS: options.sidecars.join(","), ...(options.minutes === undefined ? {} : { BENCH_MINUTES: String(options.minutes) }) },
    maxBuffer: 16 << 20,
  });
  const runs = [...stdout.matchAll(/^RUN (.*)$/gm)].map((m) => JSON.parse(m[1]) as ScaleRun);
  if (runs.length === 0) throw new Error(`bench/scale.ts printed no figures:\n${stdout}`);
  return { runs, output: stdout.replace(/^RUN .*\n/gm, "").trim() };
}
