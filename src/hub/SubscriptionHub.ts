import { DurableObject } from "cloudflare:workers";
import { verifyTaskToken } from "../api/auth";
import { TASK_ID } from "../api/schemas";
import { answerPings, echoClose, sendJson } from "../lib/sockets";
import { isTerminalEvent, type TaskEvent } from "../task/events";

/** Most tasks one multi-task socket may follow at once. */
export const MAX_SUBSCRIPTIONS_PER_SOCKET = 1000;
/** Largest client frame accepted; anything bigger gets an error frame. */
const MAX_FRAME_BYTES = 64 * 1024;

/** Per-socket state kept in the attachment (small: the runtime caps attachments at 16 KiB). */
interface Attachment {
	hub: string;
	/** "all": opened with an API key (or auth is off); "tokens": each subscription needs its task's token. */
	scope: "all" | "tokens";
}

type ClientFrame =
	{ type: "subscribe"; ids: string[]; tokens: Record<string, string> } | { type: "unsubscribe"; ids: string[] } | { type: "ping" };

type ErrorFrame = { type: "error"; error: { code: string; message: string; id?: string } };

/**
 * The object behind one multi-task WebSocket (`GET /v1/ws`): a fresh hub per connection, so a
 * dashboard following hundreds of tasks needs one socket, and no single object carries every
 * task's traffic. Each followed task's own object pushes its events here (`relay`).
 *
 * The socket hibernates (accepted with `ctx.acceptWebSocket`), and the followed ids live in this
 * object's SQLite (one socket per hub), so an idle dashboard costs nothing and survives eviction.
 */
export class SubscriptionHub extends DurableObject<Env> {
	private readonly sql = this.ctx.storage.sql;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.sql.exec("CREATE TABLE IF NOT EXISTS subscriptions (task_id TEXT PRIMARY KEY)");
		answerPings(ctx);
	}

	override async fetch(request: Request): Promise<Response> {
		const hub = request.headers.get("x-edgetask-hub") ?? "";
		const scope = request.headers.get("x-edgetask-scope") === "all" ? "all" : "tokens";
		const { 0: client, 1: server } = new WebSocketPair();
		this.ctx.acceptWebSocket(server);
		server.serializeAttachment({ hub, scope } satisfies Attachment);
		return new Response(null, { status: 101, webSocket: client });
	}

	/** An event of a followed task; false when this hub no longer wants that task. */
	async relay(event: TaskEvent): Promise<boolean> {
		if (!this.isSubscribed(event.task_id)) return false;
		const sockets = this.ctx.getWebSockets();
		for (const ws of sockets) sendJson(ws, event);
		if (isTerminalEvent(event) || sockets.length === 0) {
			this.sql.exec("DELETE FROM subscriptions WHERE task_id = ?", event.task_id);
			return false;
		}
		return true;
	}

	override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		try {
			await this.handleFrame(ws, parseFrame(message));
		} catch (e) {
			// Never let one frame break the socket: report and carry on.
			console.error(`hub: frame failed: ${String(e)}`);
			sendJson(ws, errorFrame("internal_error", "The frame could not be handled"));
		}
	}

	private async handleFrame(ws: WebSocket, frame: ClientFrame | ErrorFrame): Promise<void> {
		if (frame.type === "error") {
			sendJson(ws, frame);
			return;
		}
		if (frame.type === "ping") {
			sendJson(ws, { type: "pong" });
			return;
		}
		const att = ws.deserializeAttachment() as Attachment;
		if (frame.type === "unsubscribe") {
			for (const id of frame.ids) this.sql.exec("DELETE FROM subscriptions WHERE task_id = ?", id);
			await Promise.allSettled(frame.ids.map((id) => this.env.TASKS.getByName(id).unfollow(att.hub)));
			sendJson(ws, { type: "unsubscribed", ids: frame.ids });
			return;
		}
		let fresh = frame.ids.filter((id) => !this.isSubscribed(id));
		if (att.scope === "tokens") {
			const allowed = await Promise.all(fresh.map((id) => verifyTaskToken(this.env, id, frame.tokens[id] ?? "")));
			for (const id of fresh.filter((_, i) => !allowed[i])) {
				sendJson(ws, errorFrame("forbidden", `No valid token for task ${id}`, id));
			}
			fresh = fresh.filter((_, i) => allowed[i]);
		}
		const count = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM subscriptions").one().n;
		if (count + fresh.length > MAX_SUBSCRIPTIONS_PER_SOCKET) {
			sendJson(ws, errorFrame("too_many_subscriptions", `At most ${MAX_SUBSCRIPTIONS_PER_SOCKET} tasks per socket`));
			return;
		}
		// Record the subscriptions before asking the tasks, so no event relayed in between is dropped.
		for (const id of fresh) this.sql.exec("INSERT OR IGNORE INTO subscriptions (task_id) VALUES (?)", id);
		const answers = await Promise.all(
			fresh.map(async (id) => ({
				id,
				answer: await this.env.TASKS.getByName(id)
					.follow(att.hub)
					.catch(() => "unavailable" as const),
			})),
		);
		for (const { id, answer } of answers) {
			if (typeof answer === "string") {
				this.sql.exec("DELETE FROM subscriptions WHERE task_id = ?", id);
				const reason =
					answer === "unknown"
						? errorFrame("task_not_found", `No task with id ${id}`, id)
						: answer === "too_many_followers"
							? errorFrame("too_many_followers", `Task ${id} has too many followers`, id)
							: errorFrame("unavailable", `Task ${id} could not be reached; subscribe again`, id);
				sendJson(ws, reason);
				continue;
			}
			sendJson(ws, answer);
			if (isTerminalEvent(answer)) this.sql.exec("DELETE FROM subscriptions WHERE task_id = ?", id);
		}
	}

	override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
		const att = ws.deserializeAttachment() as Attachment;
		const ids = this.sql
			.exec<{ task_id: string }>("SELECT task_id FROM subscriptions")
			.toArray()
			.map((row) => row.task_id);
		this.sql.exec("DELETE FROM subscriptions");
		await Promise.allSettled(ids.map((id) => this.env.TASKS.getByName(id).unfollow(att.hub)));
		echoClose(ws, code, reason);
	}

	override async webSocketError(ws: WebSocket): Promise<void> {
		await this.webSocketClose(ws, 1011, "socket error");
	}

	private isSubscribed(id: string): boolean {
		return this.sql.exec("SELECT 1 FROM subscriptions WHERE task_id = ?", id).toArray().length > 0;
	}
}

function errorFrame(code: string, message: string, id?: string): ErrorFrame {
	return { type: "error", error: id === undefined ? { code, message } : { code, message, id } };
}

/**
 * Client frames: `{"type":"subscribe","ids":[...],"tokens"?:{id:token}}`,
 * `{"type":"unsubscribe","ids":[...]}` or `{"type":"ping"}` (answered by the runtime).
 */
function parseFrame(message: string | ArrayBuffer): ClientFrame | ErrorFrame {
	const bad = (msg: string) => errorFrame("bad_frame", msg);
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
