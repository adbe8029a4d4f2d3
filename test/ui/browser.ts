// Headless Chromium for the dashboard tests: Debian's `chromium` driven by playwright-core (no bundled
// browser download). `.ci/run` installs the package when it is missing.
import { existsSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.MESHLOOK_CHROMIUM ?? "/usr/bin/chromium";

export interface Session {
  browser: BrowserContext;
  close(): Promise<void>;
}

/** A fresh profile each run, nothing phoning home (the dashboard must work offline). */
export async function launch(): Promise<Session> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (or set MESHLOOK_CHROMIUM)`);
  const profile = mkdtempSync(join(tmpdir(), "meshlook-chromium-"));
  const browser: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    browser,
    async close() {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** What went wrong on a page: console errors, failed requests, HTTP errors (4xx/5xx). */
export function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return problems;
}

/** Runs `action` and waits until the dashboard finished the load it caused (body[data-ready] changes). */
export async function settle(page: Page, action: () => Promise<unknown>): Promise<string> {
  const before = await page.evaluate(() => document.body.dataset.ready ?? "");
  await action();
  await page.waitForFunction((prev) => (document.body.dataset.ready ?? "") !== prev, before, { timeout: 60_000 });
  return page.evaluate(() => document.body.dataset.ready!);
}

export type { Browser, Page };
