import { LineTooLong, lines } from "./body";

/**
 * Streamed answers: an origin that answers `application/x-ndjson` (one JSON object per line) or
 * `text/event-stream` (one JSON object per event's `data`) reports as it goes. Messages:
 * - `{"progress": 40, "message": "…"}` → task progress (message optional);
 * - `{"output": …}` → the task's output: the answer is complete, the rest is not read;
 * - `{"error": "…" | {"message": "…", …}}` → the task fails with it.
 * Anything else (keep-alives, SSE comments, `data: [DONE]`, unknown keys) is skipped.
 */
export type StreamFormat = "ndjson" | "sse";

/** How a streamed answer ended: its output, its error, or nothing (the origin closed early). */
export type StreamEnd = { kind: "output"; output: unknown } | { kind: "error"; error: unknown } | { kind: "closed" };

/** The stream format a content type names, or null for a plain (JSON) answer. */
export function streamFormat(contentType: string | null): StreamFormat | null {
	const media = (contentType ?? "").replace(/;.*$/s, "").trim().toLowerCase();
	if (media === "text/event-stream") return "sse";
	if (media === "application/x-ndjson" || media === "application/jsonl" || media === "application/jsonlines") return "ndjson";
	return null;
}

/** A line of NDJSON that is not JSON: the origin does not speak the format it announced. */
export class BadStreamLine extends Error {
	constructor(readonly line: number) {
		super(`line ${line} of the origin's application/x-ndjson answer is not JSON`);
		this.name = "BadStreamLine";
	}
}

type Progress = (percent: number, message?: string) => void;

/** Applies one message; returns how the stream ends if this message ends it. */
function apply(message: unknown, progress: Progress): StreamEnd | null {
	if (typeof message !== "object" || message === null || Array.isArray(message)) return null;
	const m = message as Record<string, unknown>;
	if (Object.hasOwn(m, "output")) return { kind: "output", output: m.output };
	if (Object.hasOwn(m, "error")) return { kind: "error", error: m.error };
	if (typeof m.progress === "number") progress(m.progress, typeof m.message === "string" ? m.message : undefined);
	return null;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false } {
	try {
		return { ok: true, value: JSON.parse(text) };
	} catch {
		return { ok: false };
	}
}

/**
 * Reads a streamed answer to its end: progress is reported as it comes, and the first `output`
 * or `error` message ends it (the connection is released, the rest unread). Each line (for SSE,
 * each event's data) is at most `maxLine` bytes.
 */
export async function followStream(
	format: StreamFormat,
	body: ReadableStream<Uint8Array> | null,
	maxLine: number,
	signal: AbortSignal,
	progress: Progress,
): Promise<StreamEnd> {
	let lineNo = 0;
	// SSE: an event's data lines, joined by "\n" when the blank line ends the event.
	let data: string[] | null = null;
	let dataLength = 0;
	const dispatch = (): StreamEnd | null => {
		if (data === null) return null;
		const parsed = parseJson(data.join("\n"));
		data = null;
		dataLength = 0;
		return parsed.ok ? apply(parsed.value, progress) : null;
	};
	for await (const line of lines(body, maxLine, signal)) {
		lineNo += 1;
		if (format === "ndjson") {
			if (line.trim() === "") continue;
			const parsed = parseJson(line);
			if (!parsed.ok) throw new BadStreamLine(lineNo);
			const end = apply(parsed.value, progress);
			if (end) return end;
			continue;
		}
		if (line === "") {
			const end = dispatch();
			if (end) return end;
			continue;
		}
		if (line.startsWith(":")) continue;
		const colon = line.indexOf(":");
		const field = colon === -1 ? line : line.slice(0, colon);
		if (field !== "data") continue;
		let value = colon === -1 ? "" : line.slice(colon + 1);
		if (value.startsWith(" ")) value = value.slice(1);
		dataLength += value.length;
		if (dataLength > maxLine) throw new LineTooLong(maxLine);
		(data ??= []).push(value);
	}
	// An event the origin did not end with a blank line still counts.
	return dispatch() ?? { kind: "closed" };
}
