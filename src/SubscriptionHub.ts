import { DurableObject } from "cloudflare:workers";
import { verifyTaskToken } from "./auth";
import { isTerminalEvent, type TaskEvent } from "./events";
import { TASK_ID } from "./schemas";

/** Most tasks one multi-task socket may follow at once. */
export const MAX_SUBSCRIPTIONS_PER_SOCKET = 1000;
/** Largest client frame accepted; anything bigger gets an error frame. */
const MAX_FRAME_BYTES = 64 * 1024;

interface Attachment {
	hub: string;
	/** "all": opened with an API key (or auth is off); "tokens": each subscription needs its task's token. */
	scope: "all" | "tokens";
	ids: string[];
}

type ClientFrame =
	| { type: "subscribe"; ids: string[]; tokens: Record<string, string> }
	| { type: "unsubscribe"; ids: string[] }
	| { type: "ping" };

/**
 * The object behind one multi-task WebSocket (`GET /v1/ws`): a fresh hub per connection, so a
 * dashboard following hundreds of tasks needs one socket, and no single object carries every
 * task's traffic. Each followed task's own object pushes its events here (`relay`).
 *
 * The socket hibernates (accepted with `ctx.acceptWebSocket`, its subscriptions kept in the
 * socket's attachment), so an idle dashboard costs nothing and survives eviction.
 */
export class SubscriptionHub extends DurableObject<Env> {
	override async fetch(request: Request): Promise<Response> {
		const hub = request.headers.get("x-edgetask-hub") ?? "";
		const scope = request.headers.get("x-edgetask-scope") === "all" ? "all" : "tokens";
		const { 0: client, 1: server } = new WebSocketPair();
		this.ctx.acceptWebSocket(server);
		server.serializeAttachment({ hub, scope, ids: [] } satisfies Attachment);
		return new Response(null, { status: 101, webSocket: client });
	}

	/** An event of a followed task; false when no socket here wants that task any more. */
	async relay(event: TaskEvent): Promise<boolean> {
		let wanted = false;
		for (const ws of this.ctx.getWebSockets()) {
			const att = ws.deserializeAttachment() as Attachment;
			if (!att.ids.includes(event.task_id)) continue;
			wanted = true;
			safeSend(ws, event);
			if (isTerminalEvent(event)) ws.serializeAttachment({ ...att, ids: att.ids.filter((id) => id !== event.task_id) });
		}
		return wanted && !isTerminalEvent(event);
	}

	override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		const frame = parseFrame(message);
		if ("error" in frame) {
			safeSend(ws, { type: "error", error: frame.error });
			return;
		}
		if (frame.type === "ping") {
			safeSend(ws, { type: "pong" });
			return;
		}
		const att = ws.deserializeAttachment() as Attachment;
		if (frame.type === "unsubscribe") {
			ws.serializeAttachment({ ...att, ids: att.ids.filter((id) => !frame.ids.includes(id)) });
			await Promise.allSettled(frame.ids.map((id) => this.env.TASKS.getByName(id).unfollow(att.hub)));
			safeSend(ws, { type: "unsubscribed", ids: frame.ids });
			return;
		}
		let fresh = frame.ids.filter((id) => !att.ids.includes(id));
		if (att.scope === "tokens") {
			const allowed = await Promise.all(fresh.map(async (id) => verifyTaskToken(this.env, id, frame.tokens[id] ?? "")));
			for (const id of fresh.filter((_, i) => !allowed[i])) {
				safeSend(ws, { type: "error", error: { code: "forbidden", message: `No valid token for task ${id}`, id } });
			}
			fresh = fresh.filter((_, i) => allowed[i]);
		}
		if (att.ids.length + fresh.length > MAX_SUBSCRIPTIONS_PER_SOCKET) {
			safeSend(ws, {
				type: "error",
				error: { code: "too_many_subscriptions", message: `At most ${MAX_SUBSCRIPTIONS_PER_SOCKET} tasks per socket` },
			});
			return;
		}
		// Record the subscriptions before asking the tasks, so no event sent in between is dropped.
		ws.serializeAttachment({ ...att, ids: [...att.ids, ...fresh] });
		const results = await Promise.all(
			fresh.map(async (id) => ({ id, snapshot: await this.env.TASKS.getByName(id).follow(att.hub).catch(() => null) })),
		);
		const now = ws.deserializeAttachment() as Attachment;
		const drop = new Set<string>();
		for (const { id, snapshot } of results) {
			if (!snapshot) {
				drop.add(id);
				safeSend(ws, { type: "error", error: { code: "task_not_found", message: `No task with id ${id}`, id } });
				continue;
			}
			safeSend(ws, snapshot);
			if (isTerminalEvent(snapshot)) drop.add(id);
		}
		ws.serializeAttachment({ ...now, ids: now.ids.filter((id) => !drop.has(id)) });
	}

	override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
		const att = ws.deserializeAttachment() as Attachment;
		await Promise.allSettled(att.ids.map((id) => this.env.TASKS.getByName(id).unfollow(att.hub)));
		try {
			ws.close(code === 1005 ? 1000 : code, reason);
		} catch {
			/* already closed */
		}
	}

	override async webSocketError(ws: WebSocket): Promise<void> {
		await this.webSocketClose(ws, 1011, "socket error");
	}
}

function safeSend(ws: WebSocket, value: unknown): void {
	try {
		ws.send(JSON.stringify(value));
	} catch {
		/* closing: webSocketClose cleans up */
	}
}

/**
 * Client frames: `{"type":"subscribe","ids":[...],"tokens"?:{id:token}}`,
 * `{"type":"unsubscribe","ids":[...]}` or `{"type":"ping"}`.
 */
function parseFrame(message: string | ArrayBuffer): ClientFrame | { error: { code: string; message: string } } {
	const bad = (msg: string) => ({ error: { code: "bad_frame", message: msg } });
	if (typeof message !== "string") return bad("Send JSON text frames");
	if (message.length > MAX_FRAME_BYTES) return bad(`Frames are limited to ${MAX_FRAME_BYTES} bytes`);
	let value: unknown;
	try {
		value = JSON.parse(message);
	} catch {
		return bad("Frame is not valid JSON");
	}
	if (typeof value !== "object" || value === null) return bad("Frame must be a JSON object");
	const { type, ids, tokens } = value as { type?: unknown; ids?: unknown; tokens?: unknown };
	if (type === "ping") return { type };
	if (type !== "subscribe" && type !== "unsubscribe") return bad('type must be "subscribe", "unsubscribe" or "ping"');
	if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_SUBSCRIPTIONS_PER_SOCKET) {
		return bad(`ids must be a non-empty array of at most ${MAX_SUBSCRIPTIONS_PER_SOCKET} task ids`);
	}
	if (!ids.every((id): id is string => typeof id === "string" && TASK_ID.test(id))) return bad("ids must be valid task ids");
	const unique = [...new Set(ids)];
	if (type === "unsubscribe") return { type, ids: unique };
	if (tokens !== undefined && (typeof tokens !== "object" || tokens === null || Array.isArray(tokens))) {
		return bad("tokens must be an object of task id to token");
	}
	const byId: Record<string, string> = {};
	for (const [id, token] of Object.entries((tokens ?? {}) as Record<string, unknown>)) if (typeof token === "string") byId[id] = token;
	return { type, ids: unique, tokens: byId };
}
