/** The webhook receiver the worker tests deliver to (started in Node by test/setup/workerGlobalSetup.ts). */
import { inject } from "vitest";
import type { ReceivedDelivery } from "../../shared/webhookDelivery";

export type { ReceivedDelivery };

declare module "vitest" {
	export interface ProvidedContext {
		/** Base URL of the receiver, `http://127.0.0.1:<port>`. */
		webhookReceiver: string;
	}
}

/** The receiver's base URL: a webhook URL is this plus a path that says how it answers (`/ok/…`, `/fail/…`, `/flaky-N/…`, `/slow-MS/…`). */
export function receiverUrl(): string {
	return inject("webhookReceiver");
}

/** What the receiver got on paths starting with `prefix`. */
export async function received(prefix: string): Promise<ReceivedDelivery[]> {
	const res = await fetch(`${receiverUrl()}/_deliveries?prefix=${encodeURIComponent(prefix)}`);
	return (await res.json()) as ReceivedDelivery[];
}

/** The Standard Webhooks payload of a delivery. */
export function payloadOf(d: ReceivedDelivery): { type: string; data: { task_id: string; seq: number; type: string } } {
	return JSON.parse(d.raw) as { type: string; data: { task_id: string; seq: number; type: string } };
}
