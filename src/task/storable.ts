import { attemptFailure, type AttemptFailure } from "../processors/types";
import type { Json, TaskError, TaskProgress } from "./model";

/**
 * What a processor hands back (its output, what it throws, its progress), made safe to store.
 * A processor is arbitrary code: it may return a BigInt, a cycle or 3 MB, throw an object whose
 * `toString` throws, or report a 10 MB progress message. None of that may reach the task's
 * storage as it is: a write that fails there would leave the task stuck.
 */

/** Longest progress message stored and sent; longer ones are cut. */
export const MAX_PROGRESS_MESSAGE = 256;
/** Longest error message stored; longer ones are cut. */
export const MAX_ERROR_MESSAGE = 1024;
/** Longest error code a processor may set (`PermanentError`'s second argument). */
const MAX_ERROR_CODE = 64;
/** Largest `error.details` stored, as JSON; larger (or non-JSON) details are left out. */
const MAX_ERROR_DETAILS_BYTES = 16_384;

const encoder = new TextEncoder();

/** The UTF-8 size of `text` when it is over `limit`, else null (short texts are not encoded: 3 bytes a unit at most). */
function sizeOver(text: string, limit: number): number | null {
	if (text.length * 3 <= limit) return null;
	const bytes = encoder.encode(text).byteLength;
	return bytes > limit ? bytes : null;
}

/**
 * The output as it will be stored and served: its JSON text and round trip (so what the object
 * holds is exactly what a reader gets back; nothing returned is `null`), or why it cannot be
 * stored: `output_invalid` when it is not JSON (BigInt, a cycle, a throwing `toJSON`, a
 * function), `output_too_large` past `maxBytes` of JSON.
 */
export function storableOutput(
	value: unknown,
	maxBytes: number,
): { ok: true; output: Json; json: string } | { ok: false; error: TaskError } {
	let json: string | undefined;
	try {
		json = JSON.stringify(value ?? null);
	} catch (e) {
		return { ok: false, error: { code: "output_invalid", message: cut(`The output is not JSON: ${describe(e)}`, MAX_ERROR_MESSAGE) } };
	}
	if (json === undefined)
		return { ok: false, error: { code: "output_invalid", message: "The output is not JSON (a function or a symbol)" } };
	const bytes = sizeOver(json, maxBytes);
	if (bytes !== null) {
		const message = `The output is ${bytes} bytes of JSON; at most ${maxBytes} (MAX_OUTPUT_BYTES) are kept: return large data with ctx.files.put`;
		return { ok: false, error: { code: "output_too_large", message } };
	}
	return { ok: true, output: JSON.parse(json) as Json, json };
}

/**
 * What a processor threw, as a stored error: read as `attemptFailure` reads it (a
 * `PermanentError` is not retried, a `RetryableError` may say when to retry), then made safe:
 * the message cut at MAX_ERROR_MESSAGE, the code at 64 characters, details kept only when they
 * are JSON of at most 16 KiB, and a value that cannot even be shown described as such.
 */
export function storableError(thrown: unknown): AttemptFailure {
	let failure: AttemptFailure;
	try {
		failure = attemptFailure(thrown);
	} catch {
		// Reading it threw (a `message` getter, a `toString` that throws, no prototype at all).
		return { error: { code: "processor_error", message: describe(thrown) }, retryable: true };
	}
	const { code, message, details } = failure.error;
	const error: TaskError = {
		code: typeof code === "string" && code !== "" ? cut(code, MAX_ERROR_CODE) : "processor_error",
		message: cut(typeof message === "string" ? message : describe(message), MAX_ERROR_MESSAGE),
	};
	if (details !== undefined) {
		const stored = storableOutput(details, MAX_ERROR_DETAILS_BYTES);
		if (stored.ok) error.details = stored.output;
	}
	return { ...failure, error };
}

/** A `ctx.progress` call as stored: percent clamped to 0–100, message cut; null when percent is not a finite number. */
export function storableProgress(percent: unknown, message: unknown): TaskProgress | null {
	if (typeof percent !== "number" || !Number.isFinite(percent)) return null;
	return { percent: Math.min(100, Math.max(0, percent)), message: typeof message === "string" ? cut(message, MAX_PROGRESS_MESSAGE) : null };
}

/** `text` cut to `max` UTF-16 units, never leaving half of a surrogate pair at the end. */
export function cut(text: string, max: number): string {
	if (text.length <= max) return text;
	const code = text.charCodeAt(max - 1);
	return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/** A thrown value's message. Never throws: a getter or `toString` may. */
function describe(thrown: unknown): string {
	try {
		const message: unknown = thrown instanceof Error ? thrown.message : thrown;
		return typeof message === "string" ? message : String(message);
	} catch {
		return "(the processor threw a value that cannot be shown)";
	}
}
