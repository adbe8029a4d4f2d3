// The part of autocannon's programmatic API bench/ingest.ts uses (the package ships no types).
declare module "autocannon" {
  interface Request {
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    setupRequest?: (req: Request, context: object) => Request;
  }
  interface Options {
    url: string;
    connections?: number;
    amount?: number;
    duration?: number;
    requests?: Request[];
  }
  interface Result {
    "2xx": number;
    non2xx: number;
    errors: number;
    statusCodeStats: Record<string, { count: number }>;
    requests: { average: number };
    latency: { p50: number; p99: number; max: number };
  }
  export default function autocannon(opts: Options): Promise<Result>;
}
