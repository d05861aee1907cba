import type { Context } from "hono";
import { ApiError } from "./errors";
import { toBase64 } from "../lib/base64";
import { MAX_WAIT_S, TASK_ID } from "./schemas";

/**
 * Reads a JSON request body: 415 unless it is declared JSON, 413 past `maxBytes` (checked on the
 * bytes actually read, not only on Content-Length), 400 when it does not parse.
 */
export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
	const type = c.req.header("content-type") ?? "";
	if (!/^application\/([a-z0-9.+-]*\+)?json\s*(;|$)/i.test(type)) {
		throw new ApiError(415, "unsupported_media_type", "Send the body as JSON with Content-Type: application/json");
	}
	const declared = Number(c.req.header("content-length"));
	if (declared > maxBytes) throw tooLarge(maxBytes);
	const bytes = await c.req.arrayBuffer();
	if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
	return parseJson(bytes);
}

/** One decoder for every body: a whole-buffer `decode` (no `stream`) keeps no state between calls. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const encoder = new TextEncoder();

/** Parses JSON bytes (UTF-8, nesting at most MAX_JSON_DEPTH): 400 with the reason otherwise. */
export function parseJson(bytes: ArrayBuffer | Uint8Array): unknown {
	let text: string;
	try {
		text = utf8.decode(bytes);
	} catch {
		throw new ApiError(400, "invalid_json", "Body is not valid UTF-8");
	}
	const depth = nestingDepth(text);
	if (depth > MAX_JSON_DEPTH) {
		throw new ApiError(400, "json_too_deep", `JSON nesting is limited to ${MAX_JSON_DEPTH} levels (got ${depth})`);
	}
	try {
		return JSON.parse(text);
	} catch (e) {
		throw new ApiError(400, "invalid_json", `Body is not valid JSON: ${(e as Error).message}`);
	}
}

/** Deepest JSON nesting accepted: validators and hashing recurse, and must not overflow the stack. */
export const MAX_JSON_DEPTH = 64;

/** Deepest bracket nesting in JSON text, outside strings; stops counting past the limit. */
function nestingDepth(text: string): number {
	let depth = 0;
	let deepest = 0;
	let inString = false;
	for (let i = 0; i < text.length; i++) {
		const ch = text.charCodeAt(i);
		if (inString) {
			if (ch === 92 /* backslash: skip the escaped char */) i++;
			else if (ch === 34 /* " */) inString = false;
		} else if (ch === 34) inString = true;
		else if (ch === 91 || ch === 123 /* [ { */) {
			if (++depth > deepest) deepest = depth;
			if (deepest > MAX_JSON_DEPTH) return deepest;
		} else if (ch === 93 || ch === 125 /* ] } */) depth--;
	}
	return deepest;
}

export function tooLarge(maxBytes: number): ApiError {
	return new ApiError(413, "payload_too_large", `Body exceeds ${maxBytes} bytes`, { max_bytes: maxBytes });
}

/** Validates a task id from the path. */
export function taskIdParam(c: Context): string {
	const id = c.req.param("id") ?? "";
	if (!TASK_ID.test(id)) {
		throw new ApiError(400, "invalid_id", "Task ids are 1-128 characters of A-Z a-z 0-9 . _ : -");
	}
	return id;
}

/**
 * The `wait` preference of an RFC 7240 `Prefer` header, in seconds (null when absent).
 * `Prefer: respond-async, wait=10` → 10. Out of [0, 60] or not a number → 400.
 */
export function preferredWait(c: Context): number | null {
	const header = c.req.header("prefer");
	if (!header) return null;
	for (const part of header.split(",")) {
		// `name=value`: everything after the first "=" is the value ("wait=4=x" is not a wait of 4).
		const pair = part.split(";")[0] ?? "";
		const eq = pair.indexOf("=");
		const name = (eq < 0 ? pair : pair.slice(0, eq)).trim();
		const value = eq < 0 ? undefined : pair.slice(eq + 1).trim();
		if (name.toLowerCase() !== "wait") continue;
		const seconds = Number(value?.replace(/^"|"$/g, ""));
		if (value === undefined || value === "" || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_WAIT_S) {
			throw new ApiError(400, "invalid_prefer_wait", `Prefer: wait must be a number of seconds from 0 to ${MAX_WAIT_S}`);
		}
		return seconds;
	}
	return null;
}

/** A stable hash of a JSON value (keys sorted), to tell a repeated submission from a different one. */
export async function fingerprint(value: unknown): Promise<string> {
	const digest = await crypto.subtle.digest("SHA-256", encoder.encode(canonicalJson(value)));
	return toBase64(digest);
}

function canonicalJson(value: unknown): string {
	if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
	if (value !== null && typeof value === "object") {
		const entries = Object.entries(value as Record<string, unknown>)
			.filter(([, v]) => v !== undefined)
			.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
		return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
	}
	return JSON.stringify(value) ?? "null";
}
