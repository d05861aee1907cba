/** WebSocket clients of the worker (per-task and hub sockets) that record what they receive. Every wait is bounded. */
import { ORIGIN, send, type EnvOverrides } from "./api";
import { isEvent, type Frame, type WireEvent } from "./events";

/** A client WebSocket that records every frame (parsed JSON, or `{type:"unparsable"}`) and its close. */
export class RecordingSocket {
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
				reject(
					new Error(
						`timed out after ${timeoutMs} ms waiting for ${what}; frames so far: ${JSON.stringify(this.frames.map(brief))}; close: ${JSON.stringify(this.close)}`,
					),
				);
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
	closed(timeoutMs = 20_000): Promise<{ code: number; reason: string }> {
		return this.until(() => this.close ?? undefined, "the socket to close", timeoutMs);
	}

	/** Events only (no error/pong frames), optionally of one task. */
	events(taskId?: string): WireEvent[] {
		return this.frames.filter(isEvent).filter((e) => taskId === undefined || e.task_id === taskId);
	}

	/** Sends strings and binary as they are, anything else as JSON. */
	send(value: unknown): void {
		this.ws.send(
			typeof value === "string" || value instanceof ArrayBuffer || ArrayBuffer.isView(value) ? (value as string) : JSON.stringify(value),
		);
	}

	/** Sends a ping and waits for the pong that follows it. */
	async ping(timeoutMs = 10_000): Promise<void> {
		const from = this.frames.length;
		this.send({ type: "ping" });
		await this.waitFor((f) => f.type === "pong", "pong", timeoutMs, from);
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
	if (isEvent(frame))
		return `${frame.task_id.slice(0, 8)}#${frame.seq}:${frame.type}${frame.type === "snapshot" ? `(${String(frame.data.status)})` : ""}`;
	return frame;
}

export interface ConnectOptions {
	headers?: Record<string, string>;
	env?: EnvOverrides;
}

/** GET `path` with Upgrade: websocket. Returns the response and, on a 101, the accepted socket. */
export async function connect(path: string, opts: ConnectOptions = {}): Promise<{ res: Response; socket: RecordingSocket | null }> {
	const res = await send(new Request(`${ORIGIN}${path}`, { headers: { upgrade: "websocket", ...opts.headers } }), opts.env);
	const ws = res.webSocket;
	if (!ws) return { res, socket: null };
	ws.accept();
	return { res, socket: new RecordingSocket(ws) };
}

/** Like `connect`, but fails the test unless the upgrade succeeded. */
export async function openSocket(path: string, opts: ConnectOptions = {}): Promise<RecordingSocket> {
	const { res, socket } = await connect(path, opts);
	if (res.status !== 101 || !socket) throw new Error(`GET ${path} answered ${res.status}: ${await res.text()}`);
	return socket;
}

/** The per-task socket of `id`; `after` adds `?after=N`. */
export function taskSocket(id: string, after?: number): Promise<RecordingSocket> {
	return openSocket(`/v1/tasks/${encodeURIComponent(id)}/ws${after === undefined ? "" : `?after=${after}`}`);
}

/** Every frame of a per-task socket until the server closes it, and the close. */
export async function drain(
	socket: RecordingSocket,
	timeoutMs = 15_000,
): Promise<{ events: WireEvent[]; close: { code: number; reason: string } }> {
	const close = await socket.closed(timeoutMs);
	return { events: socket.events(), close };
}
