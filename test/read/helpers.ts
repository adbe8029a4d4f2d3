// A read API over a warehouse, for tests: the collector's read routes on a bare Fastify app, reader tokens
// from a temporary file.
import Fastify, { type FastifyInstance } from "fastify";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ReaderTokens } from "../../collector/read/access.ts";
import { readRoutes } from "../../collector/read/routes.ts";
import { ReadWarehouse, type ReadSource } from "../../collector/read/warehouse.ts";

export const TOKENS = {
  operator: "operator-token-0123456789",
  shop: "shop-team-token-0123456789",
  people: "people-token-0123456789ab",
} as const;

export interface ReadApi {
  app: FastifyInstance;
  tokens: ReaderTokens;
  file: string;
  get(url: string, token?: string): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}

export async function readApi(
  source: ReadSource,
  nowMs: number,
  lines = `${TOKENS.operator} %\n${TOKENS.shop} shop,payments\n${TOKENS.people} % end_users\n`,
  maxMinuteSketches?: number,
): Promise<ReadApi> {
  const dir = mkdtempSync(join(tmpdir(), "meshlook-read-"));
  const file = join(dir, "reader-tokens");
  writeFileSync(file, lines);
  const tokens = new ReaderTokens(file);
  const warehouse = new ReadWarehouse(source, maxMinuteSketches);
  const app = Fastify();
  await app.register(readRoutes, { access: { mode: "tokens", tokens }, warehouse, now: () => nowMs });
  await app.ready();
  return {
    app,
    tokens,
    file,
    async get(url, token: string | undefined = TOKENS.operator) {
      const res = await app.inject({ url, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });
      return { status: res.statusCode, body: String(res.headers["content-type"] ?? "").includes("json") ? res.json() : res.body };
    },
    async close() {
      tokens.unwatch();
      await app.close();
      await warehouse.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const qs = (params: Record<string, string | string[]>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const x of [v].flat()) q.append(k, x);
  return q.toString();
};
