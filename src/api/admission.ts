import { bearer } from "./auth";
import { settings } from "../config";
import { ApiError } from "./errors";

/**
 * Load shedding at the door: past these limits a request gets 429 with Retry-After, never a 5xx
 * or a hang. Both are per isolate (no shared object on the request path); Cloudflare runs many
 * isolates, so deployed the totals scale with traffic, while each isolate stays within what it
 * can hold. Limits come from vars:
 * - MAX_WAITING_REQUESTS: requests held open at once waiting for a result (long-polls, /process);
 * - SUBMIT_RATE_PER_S / SUBMIT_BURST: a token bucket of submissions per client (API key or IP).
 */

const buckets = new Map<string, { tokens: number; at: number }>();
const MAX_BUCKETS = 10_000;

/** Whose submission budget a request spends: its API key (however the header is spelled), else its address. */
export function clientKey(request: Request): string {
	const key = bearer(request);
	return key ? `key:${key}` : `ip:${request.headers.get("cf-connecting-ip") ?? "local"}`;
}

/**
 * Waiting slots, each with the time by which it is surely free. A client that disconnects
 * cancels its request before any `finally` runs, so slots are also reclaimed by deadline.
 */
const slots = new Map<symbol, number>();
const SLOT_MARGIN_MS = 1_000;

/** Holds a waiting slot for up to `waitS` (the duration of `work`); 429 when every slot is taken. */
export async function withWaitingSlot<T>(env: Env, waitS: number, work: () => Promise<T>): Promise<T> {
	const max = settings(env).maxWaitingRequests;
	const now = Date.now();
	if (slots.size >= max) {
		for (const [slot, freeBy] of slots) if (freeBy <= now) slots.delete(slot);
	}
	if (slots.size >= max) {
		throw new ApiError(
			429,
			"too_many_waiting",
			`${max} requests are already waiting here; retry, or submit without Prefer: wait and poll`,
			undefined,
			{
				"Retry-After": "1",
			},
		);
	}
	const slot = Symbol("waiting");
	slots.set(slot, now + waitS * 1000 + SLOT_MARGIN_MS);
	try {
		return await work();
	} finally {
		slots.delete(slot);
	}
}

/** Takes one submission token for `client`; 429 with the seconds until the next one otherwise. */
export function admitSubmission(env: Env, client: string): void {
	const { submitRatePerS: rate, submitBurst: burst } = settings(env);
	const now = Date.now();
	const key = `${client}|${rate}|${burst}`;
	const bucket = buckets.get(key) ?? { tokens: burst, at: now };
	bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
	bucket.at = now;
	if (bucket.tokens < 1) {
		buckets.set(key, bucket);
		const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / rate));
		throw new ApiError(429, "rate_limited", `Too many submissions; retry in ${retryAfter} s`, undefined, {
			"Retry-After": String(retryAfter),
		});
	}
	bucket.tokens -= 1;
	// Forget the oldest clients first; a bucket that is forgotten is simply full again.
	buckets.delete(key);
	if (buckets.size >= MAX_BUCKETS) buckets.delete(buckets.keys().next().value ?? "");
	buckets.set(key, bucket);
}
