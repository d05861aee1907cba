/**
 * Helpers for the live-results suites (WebSocket, multi-task hub, SSE, cancel): a WebSocket
 * client that records every frame, an SSE reader, and a way to store a task without sending
 * its queue message (so a test decides when, or whether, it is dispatched). Every wait is bounded.
 */
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { toSpec } from "../../src/tasks";
import type { Task } from "../../src/task";
import { ORIGIN, sleep } from "./helpers";

export type EventType = "snapshot" | "queued" | "running" | "progress" | "retrying" | "succeeded" | "failed" | "canceled" | "timed_out";
export const TERMINAL_TYPES: readonly string[] = ["succeeded", "failed", "canceled", "timed_out"];

/** A task event as the wire carries it. */
export interface WireEvent {
	task_id: string;
	seq: number;
	type: EventType;
	at: string;
	data: Partial<Task> & Record<string, unknown>;
}

/** Anything a socket may send: events, errors, pongs, acks. */
export type Frame = WireEvent | { type: "error"; error: { code: string; message: string; id?: string } } | { type: string; [k: string]: unknown };

export function isEvent(frame: Frame): frame is WireEvent {
	return typeof (frame as WireEvent).seq === "number" && typeof (frame as WireEvent).task_id === "string";
}

export function isTerminalEvent(frame: Frame): boolean {
	if (!isEvent(frame)) return false;
	return TERMINAL_TYPES.includes(frame.type) || (frame.type === "snapshot" && TERMINAL_TYPES.includes(String(frame.data.status)));
}

/** A client WebSocket that records every frame (parsed JSON) and its close. */
export class LiveSocket {
	readonly frames: Frame[] = [];
	close: { code: number; reason: string } | null = null;
	private listeners = new Set<() => void>();

	constructor(readonly ws: WebSocket) {
		ws.addEventListener("message", (ev) => {
			const text = typeof ev.data === "string" ? ev.data : new TextDecoder().decode(ev.data as ArrayBuffer);
			let frame: Frame;
			try {
				frame = JSON.parse(text) as Frame;
			} catch {
				frame = { type: "unparsable", text };
			}
			this.frames.push(frame);
			this.notify();
		});
		ws.addEventListener("close", (ev) => {
			this.close = { code: ev.code, reason: ev.reason };
			this.notify();
		});
		ws.addEventListener("error", () => {
			this.close ??= { code: -1, reason: "error event" };
			this.notify();
		});
	}

	private notify(): void {
		for (const listener of [...this.listeners]) listener();
	}

	/** Resolves once `check` returns a value other than undefined; rejects after `timeoutMs`. */
	private until<T>(check: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
		const first = check();
		if (first !== undefined) return Promise.resolve(first);
		return new Promise<T>((resolve, reject) => {
			const listener = () => {
				const value = check();
				if (value === undefined) return;
				done();
				resolve(value);
			};
			const timer = setTimeout(() => {
				done();
				reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; frames so far: ${JSON.stringify(this.frames.map(brief))}; close: ${JSON.stringify(this.close)}`));
			}, timeoutMs);
			const done = () => {
				clearTimeout(timer);
				this.listeners.delete(listener);
			};
			this.listeners.add(listener);
		});
	}

	/** The first frame (from index `from`) matching `match`, waiting for it if need be. */
	waitFor(match: (frame: Frame) => boolean, what: string, timeoutMs = 10_000, from = 0): Promise<Frame> {
		return this.until(() => this.frames.slice(from).find(match), what, timeoutMs);
	}

	/** Waits until at least `n` frames arrived. */
	waitForCount(n: number, timeoutMs = 10_000): Promise<Frame[]> {
		return this.until(() => (this.frames.length >= n ? this.frames.slice() : undefined), `${n} frames`, timeoutMs);
	}

	/** Waits for the server to close the socket; returns the code and reason. */
	closed(timeoutMs = 15_000): Promise<{ code: number; reason: string }> {
		return this.until(() => this.close ?? undefined, "the socket to close", timeoutMs);
	}

	/** Events only (no error/pong frames), optionally of one task. */
	events(taskId?: string): WireEvent[] {
		return this.frames.filter(isEvent).filter((e) => taskId === undefined || e.task_id === taskId);
	}

	send(value: unknown): void {
		this.ws.send(typeof value === "string" || value instanceof ArrayBuffer ? value : JSON.stringify(value));
	}

	/** Closes from the client side (ignored if already closed). */
	shut(): void {
		try {
			this.ws.close(1000, "test done");
		} catch {
			/* already closed */
		}
	}
}

function brief(frame: Frame): unknown {
	if (isEvent(frame)) return `${frame.task_id.slice(0, 8)}#${frame.seq}:${frame.type}${frame.type === "snapshot" ? `(${String(frame.data.status)})` : ""}`;
	return frame;
}

/** GET `path` with Upgrade: websocket. Returns the response and, on a 101, the accepted socket. */
export async function connect(path: string, headers: Record<string, string> = {}): Promise<{ res: Response; socket: LiveSocket | null }> {
	const res = await exports.default.fetch(new Request(`${ORIGIN}${path}`, { headers: { upgrade: "websocket", ...headers } }));
	const ws = res.webSocket;
	if (!ws) return { res, socket: null };
	ws.accept();
	return { res, socket: new LiveSocket(ws) };
}

/** Like `connect`, but fails the test unless the upgrade succeeded. */
export async function openSocket(path: string): Promise<LiveSocket> {
	const { res, socket } = await connect(path);
	if (res.status !== 101 || !socket) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`);
	return socket;
}

/** The per-task socket of `id`; `after` adds `?after=N`. */
export function taskSocket(id: string, after?: number): Promise<LiveSocket> {
	return openSocket(`/v1/tasks/${encodeURIComponent(id)}/ws${after === undefined ? "" : `?after=${after}`}`);
}

/** Every frame of a per-task socket until the server closes it, and the close. */
export async function drain(socket: LiveSocket, timeoutMs = 15_000): Promise<{ events: WireEvent[]; close: { code: number; reason: string } }> {
	const close = await socket.closed(timeoutMs);
	return { events: socket.events(), close };
}

/** Seqs strictly increase; returns them. */
export function expectIncreasingSeqs(events: WireEvent[]): number[] {
	const seqs = events.map((e) => e.seq);
	for (let i = 1; i < seqs.length; i++) {
		expect(seqs[i], `seq after ${seqs[i - 1]} in ${JSON.stringify(events.map((e) => [e.seq, e.type]))}`).toBeGreaterThan(seqs[i - 1]!);
	}
	return seqs;
}

/** Event types with consecutive progress events collapsed to one `progress*`, for order checks. */
export function shape(events: WireEvent[]): string[] {
	const out: string[] = [];
	for (const e of events) {
		const t = e.type === "progress" ? "progress*" : e.type;
		if (t === "progress*" && out.at(-1) === "progress*") continue;
		out.push(t);
	}
	return out;
}

/**
 * Stores a task in its object exactly as POST /v1/tasks would, but sends no queue message: it
 * stays queued (until its recovery alarm re-sends the message, QUEUED_RECOVERY_S = 2 in the test
 * bindings) or until the test calls `dispatch`.
 */
export async function createWithoutMessage(body: Record<string, unknown>): Promise<Task> {
	const spec = await toSpec(env, body);
	const { outcome, task } = await env.TASKS.getByName(spec.id).create(spec);
	if (outcome !== "created") throw new Error(`create ${spec.id}: ${outcome}`);
	return task as Task;
}

/** What the consumer does when the task's message arrives. */
export function dispatch(id: string) {
	return env.TASKS.getByName(id).dispatch();
}

/** POST /v1/tasks/{id}/cancel. */
export async function cancelTask(id: string): Promise<{ res: Response; body: any; elapsed: number }> {
	const t0 = Date.now();
	const res = await exports.default.fetch(new Request(`${ORIGIN}/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST" }));
	const text = await res.text();
	let body: unknown = text;
	try {
		body = JSON.parse(text);
	} catch {
		/* keep the text */
	}
	return { res, body, elapsed: Date.now() - t0 };
}

/** Polls GET /v1/tasks/{id} until `match` holds (at most `timeoutMs`); returns that task. */
export async function pollTask(id: string, match: (task: Task) => boolean, what: string, timeoutMs = 10_000): Promise<Task> {
	const deadline = Date.now() + timeoutMs;
	let last: unknown = null;
	for (;;) {
		const res = await exports.default.fetch(new Request(`${ORIGIN}/v1/tasks/${encodeURIComponent(id)}`));
		last = await res.json();
		if (res.status === 200 && match(last as Task)) return last as Task;
		if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
		await sleep(30);
	}
}

// ---- Server-Sent Events ----

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

	/** Reads until `match` holds for some frame (from index `from`) or the stream ends; rejects after `timeoutMs`. */
	async until(match: ((frame: SseFrame) => boolean) | null, timeoutMs = 15_000, from = 0): Promise<SseFrame | null> {
		const deadline = Date.now() + timeoutMs;
		for (;;) {
			const hit = match ? this.frames.slice(from).find(match) : undefined;
			if (hit) return hit;
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
export async function openSse(id: string, opts: { headers?: Record<string, string>; query?: string } = {}): Promise<{ res: Response; reader: SseReader | null }> {
	const res = await exports.default.fetch(
		new Request(`${ORIGIN}/v1/tasks/${encodeURIComponent(id)}/events${opts.query ?? ""}`, { headers: opts.headers ?? {} }),
	);
	if (res.status !== 200 || !res.body) return { res, reader: null };
	return { res, reader: new SseReader(res.body) };
}
