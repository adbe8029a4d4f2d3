// The load-cycle benchmark (bench/load-cycle.ts: one Snowflake and one DuckDB load cycle per sidecar
// count, each in a process of its own) run as it is, its figures read back for the summary table.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import type { CycleFigures } from "../load-cycle.ts";

export async function measureLoadCycle(options: { sidecars: number[]; intervalS: number }): Promise<{ cycles: CycleFigures[]; output: string }> {
  const root = join(import.meta.dirname, "..", "..");
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", join(root, "bench", "load-cycle.ts")], {
    cwd: root,
    env: { ...process.env, BENCH_SIDECARS: options.sidecars.join(","), BENCH_INTERVAL_S: String(options.intervalS) },
    maxBuffer: 16 << 20,
  });
  const json = /^JSON (.*)$/m.exec(stdout);
  if (!json) throw new Error(`bench/load-cycle.ts printed no figures:\n${stdout}`);
  return { cycles: JSON.parse(json[1]) as CycleFigures[], output: stdout.replace(/^JSON .*$/m, "").trimEnd() };
}
