import type { TaskEvent } from "../clients/js/src/types";

/** What the page shows about its socket. */
export type LiveState = "connecting" | "open" | "closed";

const TERMINAL = new Set(["succeeded", "failed", "canceled", "timed_out"]);
/** Most ids per subscribe frame (the hub takes up to 1,000 per socket; frames stay small). */
const IDS_PER_FRAME = 100;
const PING_MS = 30_000;
const MAX_RETRY_MS = 15_000;

/**
 * The dashboard's one WebSocket: `GET /v1/ws`, following every unfinished task on screen.
 * Each subscription carries the task's capability token when the server has API keys (a
 * browser's WebSocket cannot send the key). After a drop it reconnects with backoff and
 * subscribes again; each task's snapshot then brings the page up to date.
 */
export class LiveTasks {
	private ws: WebSocket | null = null;
	/** Tasks followed, with their tokens (undefined when the server needs none). */
	private readonly followed = new Map<string, string | undefined>();
	private retries = 0;
	private stopped = false;
	private ping = 0;

	constructor(
		private readonly url: string,
		private readonly onEvent: (event: TaskEvent) => void,
		private readonly onState: (state: LiveState, detail?: string) => void,
	) {}

	start(): void {
		this.stopped = false;
		this.connect();
	}

	stop(): void {
		this.stopped = true;
		clearInterval(this.ping);
		this.ws?.close(1000, "page closed");
		this.ws = null;
	}

	/** Follows `id` until its terminal event; `token` from the task's URLs. */
	follow(id: string, token: string | undefined): void {
		if (this.followed.has(id)) return;
		this.followed.set(id, token);
		this.subscribe([id]);
	}

	unfollow(id: string): void {
		if (!this.followed.delete(id)) return;
		this.send({ type: "unsubscribe", ids: [id] });
	}

	isFollowing(id: string): boolean {
		return this.followed.has(id);
	}

	private connect(): void {
		const ws = new WebSocket(this.url);
		this.ws = ws;
		this.onState("connecting");
		ws.addEventListener("open", () => {
			this.retries = 0;
			this.onState("open");
			this.subscribe([...this.followed.keys()]);
			clearInterval(this.ping);
			this.ping = window.setInterval(() => this.send({ type: "ping" }), PING_MS);
		});
		ws.addEventListener("message", (message) => this.receive(message.data));
		ws.addEventListener("close", (event) => {
			if (this.ws !== ws) return;
			this.ws = null;
			clearInterval(this.ping);
			if (this.stopped) return;
			const delay = Math.min(MAX_RETRY_MS, 500 * 2 ** this.retries++);
			this.onState("closed", `live updates interrupted (${event.code}); reconnecting in ${Math.round(delay / 1000)} s`);
			window.setTimeout(() => {
				if (!this.stopped) this.connect();
			}, delay);
		});
	}

	private subscribe(ids: string[]): void {
		for (let i = 0; i < ids.length; i += IDS_PER_FRAME) {
			const chunk = ids.slice(i, i + IDS_PER_FRAME);
			const tokens: Record<string, string> = {};
			for (const id of chunk) {
				const token = this.followed.get(id);
				if (token) tokens[id] = token;
			}
			this.send({ type: "subscribe", ids: chunk, tokens });
		}
	}

	private send(frame: object): void {
		if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
	}

	private receive(data: unknown): void {
		if (typeof data !== "string") return;
		let frame: { type?: string; task_id?: string; error?: { code: string; message: string; id?: string } };
		try {
			frame = JSON.parse(data) as typeof frame;
		} catch {
			return;
		}
		if (frame.type === "error") {
			// A task that is gone (expired) or refused: stop asking for it.
			if (frame.error?.id) this.followed.delete(frame.error.id);
			return;
		}
		if (typeof frame.task_id !== "string") return; // pong, unsubscribed
		const event = frame as TaskEvent;
		const status = (event.data as { status?: string }).status;
		if (TERMINAL.has(event.type) || (event.type === "snapshot" && status !== undefined && TERMINAL.has(status))) {
			this.followed.delete(event.task_id);
		}
		this.onEvent(event);
	}
}
