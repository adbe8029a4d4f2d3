// The collector ingest benchmark (bench/ingest.ts: autocannon posting realistic summaries to a collector
// process, spool fsync on) run as it is, its printed figures read back for the summary table.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

export interface IngestFigures {
  summariesPerS: number;
  /** Medians over the rounds; `*Spread` the "min–max" text printed with them. */
  seriesUpdatesPerCpuS: number;
  seriesUpdatesSpread: string;
  healthzPerS: number;
  /** The same summaries decoded only, in the benchmark process: the floor of the collector's work. */
  decodeOnlyPerCpuS: number;
  decodeOnlySpread: string;
  /** Median (and "min–max") over the rounds of each round's collector ÷ decode-only ratio. */
  decodeOnlyRatio: number;
  decodeOnlyRatioSpread: string;
  ackP99Ms: number;
  output: string;
}

/** `summaries` per round, `rounds` rounds, after `warmup` summaries (bench/ingest.ts). */
export async function measureIngest(summaries = 2000, rounds = 5, warmup = 2000): Promise<IngestFigures> {
  const root = join(import.meta.dirname, "..", "..");
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", join(root, "bench", "ingest.ts")], {
    cwd: root,
    env: { ...process.env, BENCH_SUMMARIES: String(summaries), BENCH_ROUNDS: String(rounds), BENCH_WARMUP: String(warmup) },
    maxBuffer: 16 << 20,
  });
  return readIngestOutput(stdout);
}

/** The figures of bench/ingest.ts's printed output. */
export function readIngestOutput(stdout: string): IngestFigures {
  // A line whose wording changed fails the section here rather than leaving a blank in the table.
  const printed = (label: RegExp) => {
    const m = label.exec(stdout);
    if (!m) throw new Error(`bench/ingest.ts printed no ${label}:\n${stdout}`);
    return m[1];
  };
  const figure = (label: RegExp) => Number(printed(label));
  const accepted = /accepted \(2xx \/ collector count\): (\d+) \/ (\d+), non-2xx (\d+)/.exec(stdout);
  if (!accepted || Number(accepted[1]) === 0 || Number(accepted[3]) > 0) {
    // A run with refusals prints "accepted (…): refused: <what>, non-2xx <rounds>" instead of the counts.
    throw new Error(`bench/ingest.ts: summaries refused (${/accepted \(2xx.*/.exec(stdout)?.[0] ?? "no acceptance line"})`);
  }
  return {
    summariesPerS: figure(/summaries\/s:\s+([\d.]+)/),
    seriesUpdatesPerCpuS: figure(/series-updates per CPU-s:\s+([\d.]+)/),
    seriesUpdatesSpread: printed(/series-updates per CPU-s:\s+[\d.]+ \(([\d.]+–[\d.]+)\)/),
    healthzPerS: figure(/baseline GET \/healthz req\/s:\s+([\d.]+)/),
    decodeOnlyPerCpuS: figure(/baseline decode only:\s+([\d.]+)/),
    decodeOnlySpread: printed(/baseline decode only:\s+[\d.]+ \(([\d.]+–[\d.]+)\)/),
    decodeOnlyRatio: figure(/collector\/decode-only ratio ([\d.]+)/),
    decodeOnlyRatioSpread: printed(/collector\/decode-only ratio [\d.]+ \(([\d.]+–[\d.]+)\)/),
    ackP99Ms: figure(/ack latency ms p99:\s+([\d.]+)/),
    output: stdout,
  };
}
