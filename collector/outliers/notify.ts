// Webhook delivery of new findings: one JSON POST per run that opened findings, retried by undici's
// RetryAgent on network errors, 429 and 5xx (honouring Retry-After), with a `text` field Slack's
// incoming webhooks display when the format is `slack`. Which findings to send — at most once per
// finding per cooldown — is decided by dueForNotification, from what mesh_outlier records.
import { Agent, RetryAgent, request } from "undici";
import { findingJson, type StoredFinding } from "./store.ts";

export interface WebhookSettings {
  url: string;
  format: "json" | "slack";
  cooldownMs: number;
  /** Retries after the first attempt. */
  retries: number;
  /** First retry delay; doubled per retry. */
  retryDelayMs: number;
}

/**
 * Findings to send: opened in this run (a new finding, or one back after being resolved) and not sent
 * within the cooldown. An ongoing finding is sent once, when it opens.
 */
export function dueForNotification(findings: readonly StoredFinding[], nowMs: number, cooldownMs: number): StoredFinding[] {
  return findings.filter((f) => f.opened && (f.notifiedAt === undefined || nowMs - f.notifiedAt >= cooldownMs));
}

/** The JSON body: the findings with their evidence and explore URLs, and a Slack-readable text. */
export function webhookBody(findings: readonly StoredFinding[], format: WebhookSettings["format"]): Record<string, unknown> {
  const body: Record<string, unknown> = {
    findings: findings.map(findingJson),
  };
  if (format === "slack") {
    body.text = [
      `meshlook: ${findings.length} new outlier finding${findings.length === 1 ? "" : "s"}`,
      ...findings.map((f) => `• *${f.kind}* ${f.summary} <${f.exploreUrl}|explore>`),
    ].join("\n");
  }
  return body;
}

export class Webhook {
  private readonly dispatcher: RetryAgent;

  constructor(private readonly settings: WebhookSettings) {
    this.dispatcher = new RetryAgent(new Agent(), {
      maxRetries: settings.retries,
      minTimeout: settings.retryDelayMs,
      timeoutFactor: 2,
      methods: ["POST"],
    });
  }

  /** POSTs the findings; throws when the receiver still refuses after the retries. */
  async send(findings: readonly StoredFinding[]): Promise<void> {
    const res = await request(this.settings.url, {
      method: "POST",
      dispatcher: this.dispatcher,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(webhookBody(findings, this.settings.format)),
    });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`webhook answered HTTP ${res.statusCode}`);
  }

  close(): Promise<void> {
    return this.dispatcher.close();
  }
}
