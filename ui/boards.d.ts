// Types of ui/boards.js (plain JavaScript, served to the browser as is) for the TypeScript that imports it.
export interface ViewState {
  board: "golden" | "identity" | "graph" | string;
  range: string;
  reporter: string;
  namespace: string;
  service: string;
  caller: string;
  /** Identity board only: the callers' namespace (the LookML "Caller namespace" filter). */
  callerNamespace?: string;
}
export const RANGES: Record<string, number>;
export const DEFAULT_RANGE: string;
export function commonParams(s: ViewState, nowMs: number): Record<string, string>;
export function percentileInterval(s: ViewState): "minute" | "hour";
export function counterInterval(s: ViewState): "minute" | "hour";
export function requestUrl(path: string, params: Record<string, string | string[]>): string;
export function boardRequests(s: ViewState, nowMs: number): Record<string, string>;
