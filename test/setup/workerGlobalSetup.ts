/**
 * Runs in Node before the worker tests: a real webhook receiver on 127.0.0.1 that the task
 * objects deliver to (its URL is provided as `webhookReceiver`), checking signatures with the
 * plain-string WEBHOOK_SECRET the worker project runs with (vitest.config.ts).
 */
import type { TestProject } from "vitest/node";
import { startWebhookReceiver } from "./webhookReceiver";

/** The worker project's WEBHOOK_SECRET: a plain string, not `whsec_` (the e2e suite signs with one of those). */
export const WORKER_WEBHOOK_SECRET = "plain string secret, not whsec_: its UTF-8 bytes are the key";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
	const receiver = await startWebhookReceiver(WORKER_WEBHOOK_SECRET);
	// (ProvidedContext is declared in test/worker/support/webhooks.ts, where the tests read it.)
	(project.provide as (key: string, value: string) => void)("webhookReceiver", receiver.url);
	return () => receiver.close();
}
