/**
 * Reading an origin's answer without trusting it: every read is capped, stops when the request's
 * signal aborts, and releases the connection (cancels the rest) when it stops early. A huge,
 * endless or stalled body can cost at most the cap and the request's deadline.
 */

/** The body's chunks as they arrive; aborting `signal` (timeout, cancel) ends the read with its reason. */
async function* chunks(body: ReadableStream<Uint8Array>, signal: AbortSignal): AsyncGenerator<Uint8Array> {
	const reader = body.getReader();
	const onAbort = () => void reader.cancel(signal.reason).catch(() => {});
	signal.addEventListener("abort", onAbort, { once: true });
	let done = false;
	try {
		for (;;) {
			signal.throwIfAborted();
			const next = await reader.read();
			signal.throwIfAborted();
			if (next.done) {
				done = true;
				return;
			}
			yield next.value;
		}
	} finally {
		signal.removeEventListener("abort", onAbort);
		// Stopped early (cap reached, answer complete, error): the rest is not wanted.
		if (!done) await reader.cancel().catch(() => {});
		reader.releaseLock();
	}
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
	const out = new Uint8Array(length);
	let at = 0;
	for (const part of parts) {
		out.set(part, at);
		at += part.byteLength;
	}
	return out;
}

/** The whole body if it is at most `max` bytes; null (and the rest left unread) if it is larger. */
export async function readCapped(body: ReadableStream<Uint8Array> | null, max: number, signal: AbortSignal): Promise<Uint8Array | null> {
	if (!body) return new Uint8Array(0);
	const parts: Uint8Array[] = [];
	let length = 0;
	for await (const chunk of chunks(body, signal)) {
		length += chunk.byteLength;
		if (length > max) return null;
		parts.push(chunk);
	}
	return concat(parts, length);
}

/** The first `n` bytes of the body as text (a character cut at the end is dropped); the rest is not read. */
export async function readPrefix(body: ReadableStream<Uint8Array> | null, n: number, signal: AbortSignal): Promise<string> {
	if (!body) return "";
	const parts: Uint8Array[] = [];
	let length = 0;
	for await (const chunk of chunks(body, signal)) {
		parts.push(chunk);
		length += chunk.byteLength;
		if (length >= n) break;
	}
	const bytes = concat(parts, length).subarray(0, n);
	// stream: true holds back an incomplete trailing character instead of emitting U+FFFD.
	return new TextDecoder().decode(bytes, { stream: true });
}

/** A line longer than the cap: the answer is refused rather than buffered without end. */
export class LineTooLong extends Error {
	constructor(readonly max: number) {
		super(`a line of the origin's stream exceeds ${max} bytes`);
		this.name = "LineTooLong";
	}
}

/**
 * The body's lines as they arrive (split at LF, a trailing CR removed), each at most `maxLine`
 * bytes (longer: `LineTooLong`). A last line without a newline is yielded at the end.
 */
export async function* lines(body: ReadableStream<Uint8Array> | null, maxLine: number, signal: AbortSignal): AsyncGenerator<string> {
	if (!body) return;
	const decoder = new TextDecoder();
	let pending: Uint8Array[] = [];
	let pendingLength = 0;
	const take = (tail: Uint8Array): string => {
		const bytes = pending.length ? concat([...pending, tail], pendingLength + tail.byteLength) : tail;
		pending = [];
		pendingLength = 0;
		const end = bytes.byteLength > 0 && bytes[bytes.byteLength - 1] === 0x0d ? bytes.byteLength - 1 : bytes.byteLength;
		return decoder.decode(bytes.subarray(0, end));
	};
	for await (const chunk of chunks(body, signal)) {
		let start = 0;
		for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
			if (pendingLength + nl - start > maxLine) throw new LineTooLong(maxLine);
			yield take(chunk.subarray(start, nl));
			start = nl + 1;
		}
		if (start < chunk.byteLength) {
			const rest = chunk.subarray(start);
			if (pendingLength + rest.byteLength > maxLine) throw new LineTooLong(maxLine);
			// Copied: the runtime may reuse the chunk's buffer.
			pending.push(rest.slice());
			pendingLength += rest.byteLength;
		}
	}
	if (pendingLength > 0) yield take(new Uint8Array(0));
}
