// A blocked event loop (a whole pressure sample with no tick, which @fastify/under-pressure reports as
// eventLoopDelay = Infinity whatever the threshold) sheds ingest with 503 overloaded and Retry-After.
// That is an answer to the machine, not to the body: tests not about load shedding send again, as a
// sidecar does, and still require the final answer they expect.
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";

export async function injectRetryingShed(app: FastifyInstance, request: InjectOptions, maxTries = 30): Promise<LightMyRequestResponse> {
  let res = await app.inject(request);
  for (let tries = 0; res.statusCode === 503 && res.json().error === "overloaded" && tries < maxTries; tries++) {
    await new Promise((r) => setTimeout(r, Math.min(2, Number(res.headers["retry-after"])) * 1000));
    res = await app.inject(request);
  }
  return res;
}
