import { bearer, bearerDigest } from "./auth";
import { settings } from "../config";
import { ApiError } from "./errors";

/**
 * Load shedding at the door: past these limits a request gets 429 with Retry-After, never a 5xx
 * or a hang.
 * - Submissions per client (API key, else address) are counted by Cloudflare's rate limiting
 *   binding (`SUBMIT_LIMITER`, `[[ratelimits]]` in wrangler.toml), not in the isolate: Cloudflare
 *   runs many isolates, and a per-isolate count would let a client spread over them go almost
 *   unlimited. The binding's count is kept by the platform per location (`wrangler dev`
 *   simulates it, persisted with the local state).
 * - MAX_WAITING_REQUESTS: requests held open at once waiting for a result (long-polls, /process),
 *   per isolate. That one is a local guard on purpose: it protects the isolate's own memory.
 */

/**
 * The `simple.period` of SUBMIT_LIMITER in wrangler.toml (the binding does not expose it; a
 * test checks they agree): a refused client is told to come back when a new window has begun.
 */
export const SUBMIT_WINDOW_S = 10;

/**
 * Whose submission budget a request spends: its API key (however the header is spelled), else
 * its address. A key is hashed first: the limiter's key leaves the Worker, and keys must not.
 */
export async function clientKey(request: Request): Promise<string> {
	const key = bearer(request);
	if (!key) return `ip:${request.headers.get("cf-connecting-ip") ?? "local"}`;
	// The digest authorization made of the same key, if it did (one SHA-256 per request).
	const digest = new Uint8Array(await bearerDigest(request, key));
	return `key:${Array.from(digest.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * Spends one submission of the request's client; 429 with Retry-After past the limit. A limiter
 * that fails admits the request (and says so in the log): an outage of the count must not
 * become an outage of the API.
 */
export async function admitSubmission(env: Env, request: Request): Promise<void> {
	const key = await clientKey(request);
	let admitted: boolean;
	try {
		admitted = (await env.SUBMIT_LIMITER.limit({ key })).success;
	} catch (e) {
		console.error(`submission rate limiter unavailable, admitting: ${String(e)}`);
		return;
	}
	if (admitted) return;
	throw new ApiError(429, "rate_limited", `Too many submissions; retry in ${SUBMIT_WINDOW_S} s`, undefined, {
		"Retry-After": String(SUBMIT_WINDOW_S),
	});
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
