import { closeSocket, sendJson } from "../lib/sockets";
import { isTerminalEvent, SSE_KEEPALIVE_MS, sseFrame, type TaskEvent } from "./events";

/** Most subscription hubs (multi-task sockets) that may follow one task. */
export const MAX_FOLLOWERS = 1000;

/**
 * Everyone waiting on one task, and how each is told: long-poll resolvers, hibernating
 * WebSockets (held by the runtime, so they survive eviction), SSE streams, and subscription
 * hubs (per-connection objects of multi-task sockets, listed in SQLite so they survive too).
 * Lives inside the task's TaskCoordinator; never polls — `publish` pushes.
 */
export class Fanout {
	private readonly waiters = new Set<() => void>();
	private readonly streams = new Set<WritableStreamDefaultWriter<Uint8Array>>();
	private keepAliveTimer = 0;
	private readonly encoder = new TextEncoder();
	/** The relay to each hub still on its way: the next one waits for it, so a hub gets this task's events in order. */
	private readonly relays = new Map<string, Promise<void>>();

	constructor(
		private readonly ctx: DurableObjectState,
		private readonly env: Env,
	) {}

	/** Resolves when `end` is called or after `ms`; its timer never outlives it. */
	waitForEnd(ms: number): Promise<void> {
		return new Promise<void>((resolve) => {
			const release = () => {
				clearTimeout(timer);
				this.waiters.delete(release);
				resolve();
			};
			const timer = setTimeout(release, ms);
			this.waiters.add(release);
		});
	}

	/** True while a request waits on the task (a long-poll, a submit with `Prefer: wait`). */
	waiting(): boolean {
		return this.waiters.size > 0;
	}

	/** Whether anyone follows the task live through this object (a WebSocket or an SSE stream). */
	hasSubscribers(): boolean {
		return this.streams.size > 0 || this.ctx.getWebSockets().length > 0;
	}

	/** Accepts a hibernating WebSocket and sends it `initial`; closes it at once if the task has ended. */
	acceptSocket(initial: TaskEvent[], ended: boolean): Response {
		const { 0: client, 1: server } = new WebSocketPair();
		this.ctx.acceptWebSocket(server);
		for (const event of initial) server.send(JSON.stringify(event));
		if (ended) server.close(1000, "task finished");
		return new Response(null, { status: 101, webSocket: client });
	}

	/** An SSE stream that starts with `initial`; closed at once if the task has ended. */
	openStream(initial: TaskEvent[], ended: boolean): ReadableStream<Uint8Array> {
		const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
		const writer = writable.getWriter();
		// Tell the client how long to wait before reconnecting (it resumes with Last-Event-ID).
		this.write(writer, "retry: 1000\n\n");
		for (const event of initial) this.write(writer, sseFrame(event));
		if (ended) {
			writer.close().catch(() => {});
		} else {
			this.streams.add(writer);
			writer.closed.catch(() => {}).finally(() => this.dropStream(writer));
			this.startKeepAlive();
		}
		return readable;
	}

	/**
	 * Pushes an event to every subscriber; a terminal event also releases and closes them all.
	 * `json` is the event as stored: the same text goes to sockets and streams, and nothing is
	 * serialised for a kind of subscriber the task does not have.
	 */
	publish(event: TaskEvent, json: string, followers: string[], onGone: (hub: string) => void): void {
		const sockets = this.ctx.getWebSockets();
		for (const ws of sockets) sendJson(ws, json);
		if (this.streams.size > 0) {
			const frame = sseFrame(event, json);
			for (const writer of this.streams) this.write(writer, frame);
		}
		for (const hub of followers) {
			const relayed: Promise<void> = (this.relays.get(hub) ?? Promise.resolve())
				.then(() => this.env.HUBS.getByName(hub).relay(event))
				.then((wanted) => {
					if (!wanted) onGone(hub);
				})
				.catch((e: unknown) => console.error(`task ${event.task_id}: relay to hub failed: ${String(e)}`))
				.finally(() => {
					if (this.relays.get(hub) === relayed) this.relays.delete(hub);
				});
			this.relays.set(hub, relayed);
			this.ctx.waitUntil(relayed);
		}
		if (isTerminalEvent(event)) this.end(sockets);
	}

	/** Releases long-polls and closes sockets (1000) and streams. */
	end(sockets: WebSocket[] = this.ctx.getWebSockets()): void {
		for (const release of [...this.waiters]) release();
		for (const ws of sockets) closeSocket(ws, 1000, "task finished");
		for (const writer of [...this.streams]) {
			writer.close().catch(() => {});
			this.dropStream(writer);
		}
	}

	private write(writer: WritableStreamDefaultWriter<Uint8Array>, text: string): void {
		writer.write(this.encoder.encode(text)).catch(() => this.dropStream(writer));
	}

	private dropStream(writer: WritableStreamDefaultWriter<Uint8Array>): void {
		this.streams.delete(writer);
		if (this.streams.size === 0 && this.keepAliveTimer) {
			clearInterval(this.keepAliveTimer);
			this.keepAliveTimer = 0;
		}
	}

	private startKeepAlive(): void {
		if (this.keepAliveTimer) return;
		this.keepAliveTimer = setInterval(() => {
			for (const writer of this.streams) this.write(writer, ": keep-alive\n\n");
		}, SSE_KEEPALIVE_MS);
	}
}
