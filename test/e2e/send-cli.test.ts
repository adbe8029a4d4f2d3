// `meshlook send` as a new user runs it: against a collector whose only token is scoped to one of the
// bookinfo mesh's namespaces, the sidecars of the others are refused (403 identity_mismatch). The collector
// logs no refusal, so the command itself must say why summaries were not acknowledged.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { startCollectorProcess, type CollectorProcess } from "../../sim/collector-process.ts";

const TOKEN = "send-cli-token-0123456789";
const dir = mkdtempSync(join(tmpdir(), "meshlook-send-cli-"));
let collector: CollectorProcess | undefined;

afterAll(async () => {
  await collector?.stop().catch(() => collector?.child.kill("SIGKILL"));
  rmSync(dir, { recursive: true, force: true });
});

it("names the collector's answers to the calls it did not get acknowledged", async () => {
  const tokens = join(dir, "tokens");
  writeFileSync(tokens, `${TOKEN} namespaces=bookinfo\n`);
  collector = await startCollectorProcess({ dataDir: join(dir, "data"), token: "", settings: { MESHLOOK_INGEST_TOKENS_FILE: tokens } });
  const run = promisify(execFile)(process.execPath, ["scripts/meshlook.mjs", "send", "--url", collector.url, "--token", TOKEN, "--duration", "5", "--rps", "20"], {
    cwd: join(import.meta.dirname, "..", ".."),
  });
  const err = await run.then(
    () => undefined,
    (e: { code: number; stdout: string; stderr: string }) => e,
  );
  // Some summaries (bookinfo's own sidecars) are acknowledged, those of the other namespaces are not.
  expect(err?.code).toBe(1);
  expect(err?.stdout).toMatch(/summaries sent \(\d+ calls\), [1-9]\d* acknowledged/);
  expect(err?.stderr).toMatch(/by answer: 403 identity_mismatch \(\d+\)/);
}, 240_000);
