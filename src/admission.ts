import { ApiError } from "./errors";

/**
 * Load shedding at the door: past these limits a request gets 429 with Retry-After, never a 5xx
 * or a hang. Both are per isolate (no shared object on the request path); Cloudflare runs many
 * isolates, so deployed the totals scale with traffic, while each isolate stays within what it
 * can hold. Limits come from vars:
 * - MAX_WAITING_REQUESTS: requests held open at once waiting for a result (long-polls, /process);
 * - SUBMIT_RATE_PER_S / SUBMIT_BURST: a token bucket of submissions per client (API key or IP).
 */

/** Whose submission budget a request spends: its API key, else its address. */
export function clientKey(request: Request): string {
	const auth = request.headers.get("authorization");
	return auth ? `auth:${auth}` : `ip:${request.headers.get("cf-connecting-ip") ?? "local"}`;
}

let waiting = 0;
const buckets = new Map<string, { tokens: number; at: number }>();
const MAX_BUCKETS = 10_000;

function limit(raw: string | undefined, fallback: number): number {
	const n = Number(raw);
	return Number.isFinite(n) && n > 0 ? n : fallback;
}

/** Holds a waiting slot for the duration of `work`; 429 when every slot is taken. */
export async function withWaitingSlot<T>(env: Env, work: () => Promise<T>): Promise<T> {
	const max = limit(env.MAX_WAITING_REQUESTS, 5000);
	if (waiting >= max) {
		throw new ApiError(429, "too_many_waiting", `${max} requests are already waiting here; retry, or submit without Prefer: wait and poll`, undefined, {
			"Retry-After": "1",
		});
	}
	waiting++;
	try {
		return await work();
	} finally {
		waiting--;
	}
}

/** Takes one submission token for `client`; 429 with the seconds until the next one otherwise. */
export function admitSubmission(env: Env, client: string): void {
	const rate = limit(env.SUBMIT_RATE_PER_S, 500);
	const burst = limit(env.SUBMIT_BURST, 1000);
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
