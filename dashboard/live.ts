import { isTerminalEvent, type TaskEvent } from "../clients/js/src/types";

/** What the page shows about its socket. */
export type LiveState = "connecting" | "open" | "closed";

/** Most ids per subscribe frame (the hub takes up to 1,000 per socket; frames stay well under its 64 KiB). */
const IDS_PER_FRAME = 100;
/** Tasks one socket may follow (the hub's MAX_SUBSCRIPTIONS_PER_SOCKET). */
export const MAX_FOLLOWED = 1000;
/** A ping this often; a socket that answered nothing since the last one is dropped and reopened. */
const PING_MS = 25_000;
const MAX_RETRY_MS = 15_000;

/**
 * The dashboard's one WebSocket: `GET /v1/ws`, following every unfinished task on the page.
 * Each subscription carries the task's capability token when the server has API keys (a
 * browser's WebSocket cannot send the key). After a drop it reconnects with backoff and
 * subscribes again; each task's snapshot then brings the page up to date.
 */
export class LiveTasks {
	private ws: WebSocket | null = null;
	/** Tasks followed, with their tokens (undefined when the server needs none). */
	private readonly followed = new Map<string, string | undefined>();
	private retries = 0;
	private stopped = true;
	private ping = 0;
	private reconnect = 0;
	private heard = true;

	constructor(
		private readonly url: string,
		private readonly onEvent: (event: TaskEvent) => void,
		private readonly onState: (state: LiveState, detail?: string) => void,
		/** A task the server will not follow here (gone, or its token refused): the page stops expecting its events. */
		private readonly onRefused: (id: string, code: string) => void = () => {},
	) {}

	start(): void {
		if (!this.stopped) return;
		this.stopped = false;
		this.connect();
	}

	stop(): void {
		this.stopped = true;
		clearInterval(this.ping);
		clearTimeout(this.reconnect);
		this.ws?.close(1000, "page closed");
		this.ws = null;
	}

	/** Follows `id` until its terminal event; `token` from the task's URLs (a fresh one replaces an old one). */
	follow(id: string, token: string | undefined): void {
		const known = this.followed.has(id);
		if (known) {
			if (token) this.followed.set(id, token);
			return;
		}
		if (this.followed.size >= MAX_FOLLOWED) return;
		this.followed.set(id, token);
		this.subscribe([id]);
	}

	unfollow(ids: string[]): void {
		const gone = ids.filter((id) => this.followed.delete(id));
		for (let i = 0; i < gone.length; i += IDS_PER_FRAME) this.send({ type: "unsubscribe", ids: gone.slice(i, i + IDS_PER_FRAME) });
	}

	isFollowing(id: string): boolean {
		return this.followed.has(id);
	}

	get following(): number {
		return this.followed.size;
	}

	private connect(): void {
		const ws = new WebSocket(this.url);
		this.ws = ws;
		this.onState("connecting");
		ws.addEventListener("open", () => {
			this.retries = 0;
			this.heard = true;
			this.onState("open");
			this.subscribe([...this.followed.keys()]);
			clearInterval(this.ping);
			this.ping = window.setInterval(() => {
				if (!this.heard) {
					ws.close(4000, "no answer to ping");
					return;
				}
				this.heard = false;
				this.send({ type: "ping" });
			}, PING_MS);
		});
		ws.addEventListener("message", (message) => {
			this.heard = true;
			this.receive(message.data);
		});
		ws.addEventListener("close", (event) => {
			if (this.ws !== ws) return;
			this.ws = null;
			clearInterval(this.ping);
			if (this.stopped) return;
			const delay = Math.min(MAX_RETRY_MS, 500 * 2 ** this.retries++);
			this.onState("closed", `Live updates interrupted (${event.code}); reconnecting in ${Math.ceil(delay / 1000)} s`);
			this.reconnect = window.setTimeout(() => {
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
		let frame: { type?: string; task_id?: string; seq?: number; error?: { code: string; message: string; id?: string } };
		try {
			frame = JSON.parse(data) as typeof frame;
		} catch {
			return;
		}
		if (frame.type === "error") {
			const id = frame.error?.id;
			// "unavailable" is passing: the next refresh follows the task again.
			if (id !== undefined) {
				this.followed.delete(id);
				this.onRefused(id, frame.error?.code ?? "error");
			}
			return;
		}
		// Pongs and unsubscribe acknowledgements carry no task.
		if (typeof frame.task_id !== "string" || typeof frame.seq !== "number") return;
		const event = frame as TaskEvent;
		// The hub sends nothing after a task's end, and has already stopped following it.
		if (isTerminalEvent(event)) this.followed.delete(event.task_id);
		this.onEvent(event);
	}
}
