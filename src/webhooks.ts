import type { TaskEvent, TaskEventType } from "./events";

/**
 * Webhook delivery per the Standard Webhooks spec: headers `webhook-id`, `webhook-timestamp`
 * (unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
 * The secret comes from `wrangler secret put WEBHOOK_SECRET`; a `whsec_`-prefixed secret is
 * base64 after the prefix (as the spec's libraries expect), any other is used as raw bytes.
 */

export const WEBHOOK_EVENT_FILTERS = ["start", "progress", "completed"] as const;
export type WebhookEventFilter = (typeof WEBHOOK_EVENT_FILTERS)[number];

/** Attempts per event before giving up; retries back off 2 s, 4 s, 8 s, … (× WEBHOOK_RETRY_BASE_S). */
export const WEBHOOK_MAX_ATTEMPTS = 6;
const DELIVERY_TIMEOUT_MS = 10_000;

/** Which filter an event falls under, if any. */
export function filterFor(type: TaskEventType): WebhookEventFilter | null {
	if (type === "running") return "start";
	if (type === "progress") return "progress";
	if (type === "succeeded" || type === "failed" || type === "canceled" || type === "timed_out") return "completed";
	return null;
}

/** https only, except plain http to a loopback host (local development and tests). */
export function webhookUrlProblem(raw: string): string | null {
	let url: URL;
	try {
		url = new URL(raw);
	} catch {
		return "must be an absolute URL";
	}
	if (url.username || url.password) return "must not carry credentials";
	if (url.protocol === "https:") return null;
	const loopback = url.hostname === "localhost" || url.hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
	if (url.protocol === "http:" && loopback) return null;
	return "must use https (plain http is allowed only to localhost)";
}

/** Delay before retry number `attempt` (1 = first retry). */
export function webhookBackoffMs(attempt: number, baseS: number): number {
	return Math.min(3_600_000, baseS * 1000 * 2 ** (attempt - 1));
}

function secretBytes(secret: string): Uint8Array {
	if (secret.startsWith("whsec_")) return Uint8Array.from(atob(secret.slice(6)), (c) => c.charCodeAt(0));
	return new TextEncoder().encode(secret);
}

/** `v1,<base64 signature>` for one message. */
export async function sign(secret: string, id: string, timestamp: number, body: string): Promise<string> {
	const key = await crypto.subtle.importKey("raw", secretBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
	const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`));
	return `v1,${btoa(String.fromCharCode(...new Uint8Array(mac)))}`;
}

export interface DeliveryOutcome {
	ok: boolean;
	status: number | null;
	error: string | null;
}

/** One delivery attempt; never throws, never waits longer than 10 s. */
export async function deliver(url: string, secret: string, event: TaskEvent, payload: unknown): Promise<DeliveryOutcome> {
	const id = `${event.task_id}:${event.seq}`;
	const timestamp = Math.floor(Date.now() / 1000);
	const body = JSON.stringify(payload);
	try {
		const res = await fetch(url, {
			method: "POST",
			headers: {
				"content-type": "application/json",
				"webhook-id": id,
				"webhook-timestamp": String(timestamp),
				"webhook-signature": await sign(secret, id, timestamp, body),
			},
			body,
			signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
		});
		await res.body?.cancel();
		return { ok: res.ok, status: res.status, error: res.ok ? null : `HTTP ${res.status}` };
	} catch (e) {
		return { ok: false, status: null, error: e instanceof Error ? e.message : String(e) };
	}
}
