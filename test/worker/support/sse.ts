/** Server-Sent Events from the worker: a parser, an incremental reader, and ways to open a stream. Every read is bounded. */
import { ORIGIN, send } from "./api";
import type { WireEvent } from "./events";

export interface SseFrame {
	id: string | null;
	event: string | null;
	data: string | null;
	retry: number | null;
	comments: string[];
}

/** Parses complete SSE blocks (separated by a blank line) out of `buffer`; returns them and the rest. */
export function parseSse(buffer: string): { frames: SseFrame[]; rest: string } {
	const frames: SseFrame[] = [];
	let rest = buffer;
	for (let end = rest.indexOf("\n\n"); end !== -1; end = rest.indexOf("\n\n")) {
		const block = rest.slice(0, end);
		rest = rest.slice(end + 2);
		const frame: SseFrame = { id: null, event: null, data: null, retry: null, comments: [] };
		for (const line of block.split("\n")) {
			if (line.startsWith(":")) {
				frame.comments.push(line.slice(1).trim());
				continue;
			}
			const colon = line.indexOf(":");
			const field = colon === -1 ? line : line.slice(0, colon);
			const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
			if (field === "id") frame.id = value;
			else if (field === "event") frame.event = value;
			else if (field === "data") frame.data = frame.data === null ? value : `${frame.data}\n${value}`;
			else if (field === "retry") frame.retry = Number(value);
		}
		frames.push(frame);
	}
	return { frames, rest };
}

/** Reads an SSE body incrementally; every read is bounded. */
export class SseReader {
	readonly frames: SseFrame[] = [];
	done = false;
	private buffer = "";
	private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
	private readonly decoder = new TextDecoder();

	constructor(body: ReadableStream<Uint8Array>) {
		this.reader = body.getReader();
	}

	/**
	 * Reads until `check` returns a value other than undefined (and returns it) or the stream ends
	 * (and returns null); rejects after `timeoutMs`.
	 */
	async readUntil<T>(check: () => T | undefined, timeoutMs: number): Promise<T | null> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const hit = check();
			if (hit !== undefined) return hit;
			if (this.done) return null;
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`SSE: timed out after ${timeoutMs} ms; frames so far: ${JSON.stringify(this.frames)}`);
			let timer = 0;
			const timeout = new Promise<"timeout">((resolve) => {
				timer = setTimeout(() => resolve("timeout"), left);
			});
			const read = await Promise.race([this.reader.read(), timeout]);
			clearTimeout(timer);
			if (read === "timeout") continue;
			if (read.done) {
				this.done = true;
				this.buffer += this.decoder.decode();
			} else {
				this.buffer += this.decoder.decode(read.value, { stream: true });
			}
			const { frames, rest } = parseSse(this.buffer);
			this.buffer = rest;
			this.frames.push(...frames);
		}
	}

	/** Reads until `match` holds for some frame (from index `from`) or the stream ends; rejects after `timeoutMs`. */
	until(match: ((frame: SseFrame) => boolean) | null, timeoutMs = 15_000, from = 0): Promise<SseFrame | null> {
		return this.readUntil(() => (match ? this.frames.slice(from).find(match) : undefined), timeoutMs);
	}

	/** Reads to the end of the stream (bounded); returns every frame. */
	async readAll(timeoutMs = 15_000): Promise<SseFrame[]> {
		await this.until(null, timeoutMs);
		return this.frames;
	}

	/** Leftover bytes after the last complete frame (should be empty at the end). */
	leftover(): string {
		return this.buffer;
	}

	async cancel(): Promise<void> {
		await this.reader.cancel().catch(() => {});
	}

	/** The frames that carry an event, parsed. */
	events(): WireEvent[] {
		return this.frames.filter((f) => f.data !== null).map((f) => JSON.parse(f.data!) as WireEvent);
	}
}

/** GET /v1/tasks/{id}/events with optional headers / query. */
export async function openSse(
	id: string,
	opts: { headers?: Record<string, string>; query?: string } = {},
): Promise<{ res: Response; reader: SseReader | null }> {
	const res = await send(
		new Request(`${ORIGIN}/v1/tasks/${encodeURIComponent(id)}/events${opts.query ?? ""}`, { headers: opts.headers ?? {} }),
	);
	if (res.status !== 200 || !res.body) return { res, reader: null };
	return { res, reader: new SseReader(res.body) };
}

/**
 * Reads an SSE body until `match` holds for the frames read so far, or the stream ends; then lets
 * go of the stream and returns the frames. Rejects after `timeoutMs`.
 */
export async function readSse(
	body: ReadableStream<Uint8Array>,
	match: (frames: SseFrame[]) => boolean,
	timeoutMs = 10_000,
): Promise<SseFrame[]> {
	const reader = new SseReader(body);
	try {
		await reader.readUntil(() => (match(reader.frames) ? true : undefined), timeoutMs);
		return reader.frames;
	} finally {
		await reader.cancel();
	}
}
