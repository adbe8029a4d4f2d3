// The targets bench/run.ts holds its figures to: for each, the target as the table prints it and the
// run's verdict, met or missed and by how much either way.

/** One bound of a target: the figure this run measured against its limit. */
export interface Check {
  target: string;
  measured: boolean;
  met: boolean;
  /** How far inside (met) or outside (missed) the limit the figure is, as `show` prints it. */
  margin: string;
}

const check = (op: "≤" | "≥", value: number, limit: number, show: (n: number) => string, what: string): Check => ({
  target: `${what}${op} ${show(limit)}`,
  measured: Number.isFinite(value),
  met: op === "≤" ? value <= limit : value >= limit,
  margin: show(Math.abs(value - limit)),
});

/** `value` must not exceed `limit`; `what` names the quantity when it is not the figure itself. */
export const atMost = (value: number, limit: number, show: (n: number) => string, what = ""): Check => check("≤", value, limit, show, what);

export const atLeast = (value: number, limit: number, show: (n: number) => string, what = ""): Check => check("≥", value, limit, show, what);

/** The target column and the verdict for a figure held to every one of `checks`. */
export function judged(...checks: Check[]): { target: string; verdict: string } {
  const one = (c: Check) => (!c.measured ? "not measured" : c.met ? `met, ${c.margin} to spare` : `MISSED by ${c.margin}`);
  return {
    target: checks.map((c) => c.target).join("; "),
    verdict: checks.length === 1 ? one(checks[0]) : checks.map((c) => `${c.target}: ${one(c)}`).join("; "),
  };
}

/** A figure the targets ask for without setting a bound on it. */
export const FIGURE_ONLY = { target: "figure asked for, no bound", verdict: "-" };
