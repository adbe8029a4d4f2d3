// Sets up the collector's read surface from its configuration: who may read (reader tokens, or the
// demo opt-out, or off) and the warehouse connection answers come from.
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { Gauge } from "prom-client";
import type { CollectorConfig } from "../config.ts";
import type { Sink } from "../sink/types.ts";
import { BoardRollup } from "./board-rollup.ts";
import { ReaderTokens, ensureGeneratedReaderToken, isOperator } from "./access.ts";
import { readRoutes, type ReadAccess } from "./routes.ts";
import { ReadWarehouse, type ReadSource } from "./warehouse.ts";

/** How reading is set up, for the startup line (never a token). */
export type ReadInfo = { mode: "tokens"; file: string; generated: boolean; created: boolean } | { mode: "open" } | { mode: "off"; reason: string };

export interface ReadSurface {
  info: ReadInfo;
  /** Whether a request may read every namespace: an operator's reader token (`%`), or the demo opt-out. */
  readsEverything(req: FastifyRequest): boolean;
  close(): Promise<void>;
}

const isReadSource = (sink: Sink): sink is Sink & ReadSource => typeof (sink as Partial<ReadSource>).connectReader === "function";

/**
 * The post-load stage keeping the read API's pre-aggregate current (board-rollup.ts), when the read API
 * serves this sink; the collector runs it after each load cycle.
 */
export function boardRollupStage(config: CollectorConfig, sink: Sink, log: Logger, waitingGauge: Gauge): BoardRollup | undefined {
  return config.readApi && isReadSource(sink) ? new BoardRollup(sink, log, { waitingGauge }) : undefined;
}

export async function mountReadSurface(app: FastifyInstance, config: CollectorConfig, sink: Sink, log: Logger): Promise<ReadSurface> {
  let access: ReadAccess;
  let info: ReadInfo;
  let tokens: ReaderTokens | undefined;
  if (!config.readApi) {
    info = access = { mode: "off", reason: "the read API is off (MESHLOOK_READ_API=false)" };
  } else if (!isReadSource(sink)) {
    // Snowflake: dashboards there belong to Looker, and every tile would be a billed warehouse query.
    info = access = { mode: "off", reason: `the read API serves the embedded DuckDB warehouse; with the ${sink.kind} sink use Looker (docs/read-api.md)` };
  } else if (config.readAuthDisabled) {
    log.warn("READ AUTHENTICATION IS DISABLED (MESHLOOK_READ_AUTH_DISABLED=true): anyone who can reach the collector can read all traffic");
    info = access = { mode: "open" };
  } else {
    const generated = config.readerTokensFile ? undefined : ensureGeneratedReaderToken(config.dataDir);
    const file = config.readerTokensFile ?? generated!.file;
    tokens = new ReaderTokens(file, log);
    if (!generated) tokens.watch();
    access = { mode: "tokens", tokens };
    info = { mode: "tokens", file, generated: generated !== undefined, created: generated?.created ?? false };
  }
  const warehouse = access.mode === "off" ? undefined : new ReadWarehouse(sink as Sink & ReadSource);
  await app.register(readRoutes, { access, warehouse });
  return {
    info,
    readsEverything(req) {
      if (access.mode !== "tokens") return access.mode === "open";
      const scope = access.tokens.match(req.headers.authorization);
      return scope !== undefined && isOperator(scope);
    },
    async close() {
      tokens?.unwatch();
      await warehouse?.close();
    },
  };
}
