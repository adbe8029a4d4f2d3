// CPU time and resident memory of another process, read from Linux's /proc: the benchmarks measure
// collector processes from outside, so the figures include every thread (V8's GC and compiler helpers,
// libuv's pool, DuckDB) and nothing of the benchmark's own work.
import { readFileSync, readdirSync } from "node:fs";

// utime + stime of a /proc stat line, in seconds (clock ticks, USER_HZ = 100).
const statCpuS = (stat: string) => {
  const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

/**
 * CPU seconds of this process and of its children that have ended (utime + stime + cutime + cstime): what a
 * stretch of work that runs child processes costs, which is how long it would take on idle cores when it
 * runs one thing at a time.
 */
export function cpuWithChildrenSeconds(): number {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
}

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
