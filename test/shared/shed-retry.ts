// A blocked event loop (a whole pressure sample with no tick, which @fastify/under-pressure reports as
// eventLoopDelay = Infinity whatever the threshold) sheds ingest with 503 overloaded and Retry-After.
// That is an answer to the machine, not to the body: tests not about load shedding send again, as a
// sidecar does, and still require the final answer they expect.
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";

interface Answer {
  status: number;
  error: () => Promise<string | undefined>;
  retryAfterS: number;
}

async function retryingShed<T>(send: () => Promise<T>, answer: (res: T) => Answer, maxTries: number): Promise<T> {
  let res = await send();
  for (let tries = 0; tries < maxTries; tries++) {
    const a = answer(res);
    if (a.status !== 503 || (await a.error()) !== "overloaded") break;
    await new Promise((r) => setTimeout(r, Math.min(2, a.retryAfterS) * 1000));
    res = await send();
  }
  return res;
}

export const injectRetryingShed = (app: FastifyInstance, request: InjectOptions, maxTries = 30): Promise<LightMyRequestResponse> =>
  retryingShed(
    () => app.inject(request),
    (res) => ({ status: res.statusCode, error: async () => res.json().error, retryAfterS: Number(res.headers["retry-after"]) }),
    maxTries,
  );

/** The same over HTTP: `send` makes a fresh request each time (a body can be read once). */
export const fetchRetryingShed = (send: () => Promise<Response>, maxTries = 30): Promise<Response> =>
  retryingShed(
    send,
    (res) => ({
      status: res.status,
      error: async () => ((await res.clone().json()) as { error?: string }).error,
      retryAfterS: Number(res.headers.get("retry-after")),
    }),
    maxTries,
  );
