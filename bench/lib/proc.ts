// CPU time and resident memory read from Linux's /proc: the benchmarks measure collector processes from
// outside, so the figures include every thread (V8's GC and compiler helpers, libuv's pool, DuckDB) and
// nothing of the benchmark's own work; and a benchmark's own CPU with that of the children it waited for.
import { readFileSync, readdirSync } from "node:fs";

// The sum of a /proc stat line's fields `from` to `to` (indices after the command name, which may hold
// spaces and parentheses: 11 utime, 12 stime, 13 cutime, 14 cstime), clock ticks (USER_HZ = 100) as seconds.
const statSeconds = (stat: string, from: number, to: number) =>
  stat
    .slice(stat.lastIndexOf(") ") + 2)
    .split(" ")
    .slice(from, to + 1)
    .reduce((s, v) => s + Number(v), 0) / 100;

// utime + stime of a /proc stat line, in seconds.
const statCpuS = (stat: string) => statSeconds(stat, 11, 12);

/**
 * CPU seconds of this process and of its children that have ended (utime + stime + cutime + cstime): what a
 * stretch of work that runs child processes costs, which is how long it would take on idle cores when it
 * runs one thing at a time.
 */
export const cpuWithChildrenSeconds = (): number => statSeconds(readFileSync("/proc/self/stat", "utf8"), 11, 14);

/** CPU seconds (user + system, all threads) of a process.cpuUsage() figure of this process. */
export const usageSeconds = (u: NodeJS.CpuUsage): number => (u.user + u.system) / 1e6;

/** CPU seconds of a process so far, all its threads. */
export const cpuSeconds = (pid: number): number => statCpuS(readFileSync(`/proc/${pid}/stat`, "utf8"));

/**
 * CPU seconds of the main (event-loop) thread and of all other threads: V8's helpers (parallel and
 * concurrent GC, optimizing compiler), libuv's pool (spool writev + fdatasync) and DuckDB's threads.
 * Node names them all "node", so they are not told apart here.
 */
export function threadCpuSeconds(pid: number): { main: number; others: number } {
  let others = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    if (tid === String(pid)) continue;
    try {
      others += statCpuS(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"));
    } catch {
      // the thread ended between readdir and read; its time is in the process total
    }
  }
  return { main: statCpuS(readFileSync(`/proc/${pid}/task/${pid}/stat`, "utf8")), others };
}

const statusMiB = (pid: number, field: "VmHWM" | "VmRSS") => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

/** Peak resident set size of a process so far (VmHWM), in MiB. */
export const peakRssMiB = (pid: number): number => statusMiB(pid, "VmHWM");

/** Resident set size of a process now (VmRSS), in MiB. */
export const rssMiB = (pid: number): number => statusMiB(pid, "VmRSS");
