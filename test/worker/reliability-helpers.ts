/**
 * Helpers shared by the reliability-, auth- and fuzz- suites. Self-contained on purpose (the other
 * suites' helpers may change under us). Every wait is bounded.
 *
 * Two ways to call the worker:
 * - `exports.default.fetch` (the default): the worker as deployed in the test runtime, with the
 *   test bindings (AUTH_MODE "open", fault processors on, QUEUED_RECOVERY_S "2");
 * - `worker.fetch(request, { ...env, ...overrides }, ctx)` when a test needs other vars (API keys,
 *   limits). Only the worker's own code sees the overrides: Durable Objects keep the test bindings.
 */
import { env, exports } from "cloudflare:workers";
import { createExecutionContext, runInDurableObject } from "cloudflare:test";
import worker from "../../src/index";
import type { Task, TaskRecord } from "../../src/task";

export const ORIGIN = "http://edgetask.test";

export type TaskView = Task & { urls: { get: string; ws: string; events: string; cancel: string } };

export function newId(prefix = "rel"): string {
	return `${prefix}-${crypto.randomUUID()}`;
}

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with `what` if `promise` has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
	let timer = 0;
	const timeout = new Promise<never>((_, reject) => {
		timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms);
	});
	return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export type EnvOverrides = Partial<Record<keyof Env, string | undefined>>;

/** Sends `request` to the worker: through its service binding, or with `overrides` applied to env. */
export async function send(request: Request, overrides?: EnvOverrides): Promise<Response> {
	if (!overrides) return exports.default.fetch(request);
	return await worker.fetch(request, { ...env, ...overrides } as Env, createExecutionContext());
}

export interface Answer<T = any> {
	res: Response;
	body: T;
	text: string;
	elapsed: number;
}

/** Calls `path` and reads the whole body (parsed as JSON when it is JSON). */
export async function call<T = any>(path: string, init: RequestInit = {}, overrides?: EnvOverrides): Promise<Answer<T>> {
	const t0 = Date.now();
	const res = await send(new Request(`${ORIGIN}${path}`, init), overrides);
	const text = await res.text();
	const elapsed = Date.now() - t0;
	let body: unknown = text;
	try {
		body = JSON.parse(text);
	} catch {
		/* left as text; the assertion on it will show it */
	}
	return { res, body: body as T, text, elapsed };
}

export function submitTask(
	body: unknown,
	opts: { wait?: number; headers?: Record<string, string>; env?: EnvOverrides; signal?: AbortSignal } = {},
): Promise<Answer<TaskView>> {
	const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
	if (opts.wait !== undefined) headers.prefer = `wait=${opts.wait}`;
	return call<TaskView>("/v1/tasks", { method: "POST", headers, body: JSON.stringify(body), signal: opts.signal }, opts.env);
}

export function getTask(id: string, opts: { wait?: number; headers?: Record<string, string>; env?: EnvOverrides } = {}): Promise<Answer<TaskView>> {
	const headers: Record<string, string> = { ...opts.headers };
	if (opts.wait !== undefined) headers.prefer = `wait=${opts.wait}`;
	return call<TaskView>(`/v1/tasks/${encodeURIComponent(id)}`, { headers }, opts.env);
}

/** Long-polls until the task is terminal (at most `waitS`); fails unless it answered 200. */
export async function settled(id: string, waitS = 20): Promise<TaskView> {
	const { res, body } = await getTask(id, { wait: waitS });
	if (res.status !== 200) throw new Error(`GET ${id} answered ${res.status}: ${JSON.stringify(body)}`);
	return body;
}

/** Polls `probe` until it returns something other than undefined; fails after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value !== undefined) return value;
		if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
		await sleep(intervalMs);
	}
}

/** Polls GET until `match` holds for the task. */
export function taskWhere(id: string, match: (t: TaskView) => boolean, what: string, timeoutMs = 10_000): Promise<TaskView> {
	return eventually(
		async () => {
			const { res, body } = await getTask(id);
			return res.status === 200 && match(body) ? body : undefined;
		},
		what,
		timeoutMs,
	);
}

/** The stored record of a task's object (null if none) and its alarm. */
export function stored(id: string): Promise<{ record: TaskRecord | null; alarm: number | null }> {
	return runInDurableObject(env.TASKS.getByName(id), async (_instance, state) => {
		const hasTable = state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task'").toArray().length > 0;
		const row = hasTable ? state.storage.sql.exec<{ record: string }>("SELECT record FROM task").toArray()[0] : undefined;
		return { record: row ? (JSON.parse(row.record) as TaskRecord) : null, alarm: await state.storage.getAlarm() };
	});
}

/** Asserts the JSON error envelope shape and returns the error. */
export function errorOf(body: unknown): { code: string; message: string; details?: unknown } {
	const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
	if (!error || typeof error.code !== "string" || typeof error.message !== "string") {
		throw new Error(`not an error envelope: ${JSON.stringify(body)?.slice(0, 500)}`);
	}
	return error as { code: string; message: string };
}

// ---- WebSockets ----

export interface WireEvent {
	task_id: string;
	seq: number;
	type: string;
	at: string;
	data: Record<string, any>;
}

export type Frame = Record<string, any>;

export function isEvent(frame: Frame): frame is WireEvent {
	return typeof frame.seq === "number" && typeof frame.task_id === "string";
}

/** A client WebSocket that records every frame (parsed JSON, or `{type:"unparsable"}`) and its close. */
export class Socket {
	readonly frames: Frame[] = [];
	close: { code: number; reason: string } | null = null;
	private readonly listeners = new Set<() => void>();

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
				reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; frames: ${JSON.stringify(this.frames).slice(0, 2000)}; close: ${JSON.stringify(this.close)}`));
			}, timeoutMs);
			const done = () => {
				clearTimeout(timer);
				this.listeners.delete(listener);
			};
			this.listeners.add(listener);
		});
	}

	/** The first frame from index `from` matching `match`. */
	waitFor(match: (frame: Frame) => boolean, what: string, timeoutMs = 10_000, from = 0): Promise<Frame> {
		return this.until(() => this.frames.slice(from).find(match), what, timeoutMs);
	}

	closed(timeoutMs = 20_000): Promise<{ code: number; reason: string }> {
		return this.until(() => this.close ?? undefined, "the socket to close", timeoutMs);
	}

	events(): WireEvent[] {
		return this.frames.filter(isEvent);
	}

	send(value: unknown): void {
		this.ws.send(typeof value === "string" || value instanceof ArrayBuffer || ArrayBuffer.isView(value) ? (value as string) : JSON.stringify(value));
	}

	/** Sends a ping and waits for the pong that follows it. */
	async ping(timeoutMs = 10_000): Promise<void> {
		const from = this.frames.length;
		this.send({ type: "ping" });
		await this.waitFor((f) => f.type === "pong", "pong", timeoutMs, from);
	}

	shut(): void {
		try {
			this.ws.close(1000, "test done");
		} catch {
			/* already closed */
		}
	}
}

/** GET `path` with Upgrade: websocket; on 101 the socket is accepted and wrapped. */
export async function connect(
	path: string,
	opts: { headers?: Record<string, string>; env?: EnvOverrides } = {},
): Promise<{ res: Response; socket: Socket | null }> {
	const res = await send(new Request(`${ORIGIN}${path}`, { headers: { upgrade: "websocket", ...opts.headers } }), opts.env);
	const ws = res.webSocket;
	if (!ws) return { res, socket: null };
	ws.accept();
	return { res, socket: new Socket(ws) };
}

export async function openSocket(path: string, opts: { headers?: Record<string, string>; env?: EnvOverrides } = {}): Promise<Socket> {
	const { res, socket } = await connect(path, opts);
	if (res.status !== 101 || !socket) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`);
	return socket;
}

// ---- Server-Sent Events ----

/** Reads an SSE body until `match` holds for some parsed event frame; bounded. */
export async function readSse(
	body: ReadableStream<Uint8Array>,
	match: (frames: { event: string | null; data: string | null }[]) => boolean,
	timeoutMs = 10_000,
): Promise<{ event: string | null; data: string | null }[]> {
	const reader = body.getReader();
	const decoder = new TextDecoder();
	const frames: { event: string | null; data: string | null }[] = [];
	let buffer = "";
	const deadline = Date.now() + timeoutMs;
	try {
		while (!match(frames)) {
			const left = deadline - Date.now();
			if (left <= 0) throw new Error(`SSE: nothing matched within ${timeoutMs} ms; frames: ${JSON.stringify(frames).slice(0, 1000)}`);
			const read = await within(reader.read(), left, "an SSE chunk");
			if (read.done) break;
			buffer += decoder.decode(read.value, { stream: true });
			for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
				const block = buffer.slice(0, end);
				buffer = buffer.slice(end + 2);
				let event: string | null = null;
				let data: string | null = null;
				for (const line of block.split("\n")) {
					if (line.startsWith("event:")) event = line.slice(6).trim();
					else if (line.startsWith("data:")) data = line.slice(5).trim();
				}
				frames.push({ event, data });
			}
		}
		return frames;
	} finally {
		await reader.cancel().catch(() => {});
	}
}
