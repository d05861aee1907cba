import { PermanentError, RetryableError } from "../processors/types";
import type { Json } from "../task/model";
import type { Origin } from "./config";

/**
 * How an origin's failures become task errors. A status the origin may get over (5xx, 408, 429)
 * and a transport failure (refused, reset, timed out) are retried, honouring `Retry-After`; any
 * other 4xx is the request's fault and fails at once. Every error says which origin, and its
 * `details` carry what the origin said, bounded.
 */

/** How much of an error answer's body the task keeps (`error.details.body`). */
export const ERROR_BODY_BYTES = 2048;
/** The longest `Retry-After` honoured; a longer one waits this long. */
export const MAX_RETRY_AFTER_S = 3600;

/** `Retry-After` (seconds or an HTTP date) as a delay in ms, capped; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
	const value = header?.trim();
	if (!value) return undefined;
	// Delay-seconds, or an HTTP date (every HTTP date format starts with the day's name).
	const ms = /^\d+$/.test(value) ? Number(value) * 1000 : /^[A-Za-z]/.test(value) ? Date.parse(value) - now : NaN;
	if (Number.isNaN(ms)) return undefined;
	return Math.min(Math.max(0, ms), MAX_RETRY_AFTER_S * 1000);
}

/** Statuses worth another attempt: the origin is overloaded, slow or broken right now. */
export function isRetryableStatus(status: number): boolean {
	return status >= 500 || status === 408 || status === 429;
}

/** A value for `error.details`: as it is when its JSON is small, else the start of its JSON. */
export function preview(value: unknown, maxChars = ERROR_BODY_BYTES): Json {
	let text: string | undefined;
	try {
		text = JSON.stringify(value);
	} catch {
		return String(value).slice(0, maxChars);
	}
	if (text === undefined) return null;
	return text.length <= maxChars ? (JSON.parse(text) as Json) : text.slice(0, maxChars);
}

/** The seed envelope's `msg` in an error body, if the body is one: a better message than a status. */
function seedMessage(body: string): string | null {
	try {
		const parsed: unknown = JSON.parse(body);
		if (typeof parsed === "object" && parsed !== null && "msg" in parsed && typeof parsed.msg === "string" && parsed.msg) {
			return parsed.msg.slice(0, 500);
		}
	} catch {
		/* not JSON: the status says it all */
	}
	return null;
}

/** A non-2xx answer: retried (5xx, 408, 429, with Retry-After) or failed at once (other 3xx/4xx). */
export function statusFailure(origin: Origin, res: Response, body: string): PermanentError | RetryableError {
	const said = seedMessage(body);
	const message = `Origin "${origin.name}" answered ${res.status}${res.statusText ? ` ${res.statusText}` : ""}${said ? `: ${said}` : ""}`;
	const details: Record<string, Json> = { status: res.status, body };
	const location = res.headers.get("location");
	if (location) details.location = location.slice(0, 2048);
	if (isRetryableStatus(res.status)) {
		return new RetryableError(message, "origin_http_error", details, retryAfterMs(res.headers.get("retry-after")));
	}
	return new PermanentError(message, "origin_http_error", details);
}

/** The request did not complete within the origin's `timeout_s`: aborted, retried. */
export function timeoutFailure(origin: Origin): RetryableError {
	return new RetryableError(`Origin "${origin.name}" did not answer within timeout_s=${origin.timeoutS}`, "origin_timeout");
}

/** Refused, reset, DNS, TLS: the origin could not be reached or dropped the connection; retried. */
export function transportFailure(origin: Origin, e: unknown): RetryableError {
	const why = e instanceof Error ? e.message : String(e);
	return new RetryableError(`Origin "${origin.name}" could not be reached: ${why.slice(0, 500)}`, "origin_unreachable");
}

/** The origin answered 2xx with something edgetask cannot read as it announced: no retry fixes that. */
export function badResponse(origin: Origin, problem: string, details?: Json): PermanentError {
	return new PermanentError(`Origin "${origin.name}" ${problem}`, "origin_bad_response", details);
}

/** The origin reported a failure in its answer (a stream's `{"error": …}`, the seed's `success: false`). */
export function reportedFailure(origin: Origin, error: unknown): PermanentError {
	const message =
		typeof error === "string"
			? error
			: typeof error === "object" && error !== null && "message" in error && typeof error.message === "string"
				? error.message
				: `Origin "${origin.name}" reported an error`;
	return new PermanentError(message.slice(0, 1000) || `Origin "${origin.name}" reported an error`, "origin_error", preview(error));
}
