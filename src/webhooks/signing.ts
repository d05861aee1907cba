import type { TaskEvent } from "../task/events";
import { toBase64, fromBase64 } from "../lib/base64";
import { backoffMs } from "../lib/backoff";

/**
 * Webhook delivery per the Standard Webhooks spec: headers `webhook-id`, `webhook-timestamp`
 * (unix seconds) and `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
 * The secret comes from `wrangler secret put WEBHOOK_SECRET`; a `whsec_`-prefixed secret is
 * base64 after the prefix (as the spec's libraries expect), any other is used as raw bytes.
 */

/** Attempts per event before giving up; retries back off 2 s, 4 s, 8 s, … (× WEBHOOK_RETRY_BASE_S). */
export const WEBHOOK_MAX_ATTEMPTS = 6;
const DELIVERY_TIMEOUT_MS = 10_000;

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
	return backoffMs(attempt, { baseMs: baseS * 1000, capMs: 3_600_000 });
}

function secretBytes(secret: string): Uint8Array {
	if (!secret.startsWith("whsec_")) return new TextEncoder().encode(secret);
	const bytes = fromBase64(secret.slice(6));
	// A misconfigured secret must fail the delivery visibly, not sign with bytes no receiver has.
	if (!bytes) throw new Error("WEBHOOK_SECRET starts with whsec_ but the rest is not base64");
	return bytes;
}

/** `v1,<base64 signature>` for one message. */
export async function sign(secret: string, id: string, timestamp: number, body: string): Promise<string> {
	const key = await crypto.subtle.importKey("raw", secretBytes(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
	const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${id}.${timestamp}.${body}`));
	return `v1,${toBase64(mac)}`;
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
