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

/** A hub whose socket went away without a close event is cleaned up by an alarm this often. */
const SWEEP_MS = 10 * 60_000;

/**
 * The object behind one multi-task WebSocket (`GET /v1/ws`): a fresh hub per connection, so a
 * dashboard following hundreds of tasks needs one socket, and no single object carries every
 * task's traffic. Each followed task's own object pushes its events here (`relay`).
 *
 * The socket hibernates (accepted with `ctx.acceptWebSocket`), and the followed ids live in this
 * object's SQLite (one socket per hub), so an idle dashboard costs nothing and survives eviction.
 * Storage is created with the first subscription and deleted when the socket closes (or, if no
 * close ever arrives, by the alarm that sweeps a hub without sockets), so hubs leave nothing behind.
 *
 * Per task, the client sees the snapshot first, then events in increasing `seq`, and nothing
 * after the terminal event: relays that arrive while `follow()` is still answering are held and
 * sent after the snapshot, and any event the client already has (by `seq`) is dropped.
 */
export class SubscriptionHub extends DurableObject<Env> {
	private readonly sql = this.ctx.storage.sql;
	/** Tasks whose `follow()` is being answered: the events relayed meanwhile, held for after the snapshot. */
	private readonly pending = new Map<string, TaskEvent[]>();
	/** The last `seq` the client got per followed task, this instance's knowledge (storage has the snapshot's). */
	private readonly lastSent = new Map<string, number>();
	/** Whether the follows table exists (null: not looked yet). */
	private hasTable: boolean | null = null;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
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
		const id = event.task_id;
		const held = this.pending.get(id);
		if (held) {
			held.push(event);
			return true;
		}
		const seen = this.lastSent.get(id) ?? this.storedSeq(id);
		if (seen === undefined) return false;
		// Already covered by the snapshot or sent before: a late relay must not move seq backwards.
		if (event.seq <= seen) return true;
		const sockets = this.ctx.getWebSockets();
		for (const ws of sockets) sendJson(ws, event);
		if (isTerminalEvent(event) || sockets.length === 0) {
			this.forget([id]);
			return false;
		}
		this.lastSent.set(id, event.seq);
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
			this.forget(frame.ids);
			await Promise.allSettled(frame.ids.map((id) => this.env.TASKS.getByName(id).unfollow(att.hub)));
			sendJson(ws, { type: "unsubscribed", ids: frame.ids });
			return;
		}
		let fresh = frame.ids.filter((id) => !this.isFollowing(id));
		if (att.scope === "tokens") {
			const allowed = await Promise.all(fresh.map((id) => verifyTaskToken(this.env, id, frame.tokens[id] ?? "")));
			for (const id of fresh.filter((_, i) => !allowed[i])) {
				sendJson(ws, errorFrame("forbidden", `No valid token for task ${id}`, id));
			}
			// Another frame may have started following some of them meanwhile.
			fresh = fresh.filter((id, i) => allowed[i] && !this.isFollowing(id));
		}
		if (this.followCount() + fresh.length > MAX_SUBSCRIPTIONS_PER_SOCKET) {
			sendJson(ws, errorFrame("too_many_subscriptions", `At most ${MAX_SUBSCRIPTIONS_PER_SOCKET} tasks per socket`));
			return;
		}
		// Held from before the tasks are asked, so no event relayed in between is lost or sent early.
		for (const id of fresh) this.pending.set(id, []);
		const answers = await Promise.all(
			fresh.map(async (id) => ({
				id,
				answer: await this.env.TASKS.getByName(id)
					.follow(att.hub)
					.catch(() => "unavailable" as const),
			})),
		);
		for (const { id, answer } of answers) {
			const held = this.pending.get(id);
			this.pending.delete(id);
			// Unsubscribed (or the socket closed) while the task answered.
			if (!held) continue;
			if (typeof answer === "string") {
				const reason =
					answer === "unknown"
						? errorFrame("task_not_found", `No task with id ${id}`, id)
						: answer === "too_many_followers"
							? errorFrame("too_many_followers", `Task ${id} has too many followers`, id)
							: errorFrame("unavailable", `Task ${id} could not be reached; subscribe again`, id);
				sendJson(ws, reason);
				continue;
			}
			this.deliverFrom(answer, held);
		}
	}

	/** Sends a snapshot and the events held behind it, in order, and records how far the client got. */
	private deliverFrom(snapshot: TaskEvent, held: TaskEvent[]): void {
		const id = snapshot.task_id;
		const sockets = this.ctx.getWebSockets();
		let last = snapshot.seq;
		let ended = isTerminalEvent(snapshot);
		for (const ws of sockets) sendJson(ws, snapshot);
		for (const event of held.sort((a, b) => a.seq - b.seq)) {
			if (ended || event.seq <= last) continue;
			for (const ws of sockets) sendJson(ws, event);
			last = event.seq;
			ended = isTerminalEvent(event);
		}
		if (ended) return;
		this.ensureStorage();
		this.sql.exec("INSERT OR REPLACE INTO follows (task_id, seq) VALUES (?, ?)", id, last);
		this.lastSent.set(id, last);
	}

	override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
		const others = this.ctx.getWebSockets().filter((s) => s !== ws && s.readyState === WebSocket.OPEN);
		if (others.length === 0) await this.tearDown((ws.deserializeAttachment() as Attachment).hub);
		echoClose(ws, code, reason);
	}

	override async webSocketError(ws: WebSocket): Promise<void> {
		await this.webSocketClose(ws, 1011, "socket error");
	}

	/** The sweep: a hub whose socket is gone without a close event deletes itself all the same. */
	override async alarm(): Promise<void> {
		if (this.ctx.getWebSockets().some((s) => s.readyState === WebSocket.OPEN)) {
			await this.ctx.storage.setAlarm(Date.now() + SWEEP_MS);
			return;
		}
		await this.tearDown(this.ctx.storage.kv.get<string>("hub") ?? null);
	}

	/** Stops following every task and deletes everything this hub stored. */
	private async tearDown(hub: string | null): Promise<void> {
		const ids = [...this.pending.keys(), ...this.followedIds()];
		this.pending.clear();
		this.lastSent.clear();
		// deleteAll removes the alarm too (compatibility date 2026-02-24 and later); a deleteAlarm
		// after it would leave the runtime's metadata table behind.
		await this.ctx.storage.deleteAll();
		this.hasTable = false;
		if (hub) await Promise.allSettled(ids.map((id) => this.env.TASKS.getByName(id).unfollow(hub)));
	}

	/** Creates the follows table with the first subscription, and the sweep alarm that will remove it. */
	private ensureStorage(): void {
		if (this.tableExists()) return;
		this.sql.exec("CREATE TABLE IF NOT EXISTS follows (task_id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID");
		this.hasTable = true;
		// The sweep needs the hub's name to tell its tasks, even when no socket is left to carry it.
		const hub = (this.ctx.getWebSockets()[0]?.deserializeAttachment() as Attachment | undefined)?.hub;
		if (hub) this.ctx.storage.kv.put("hub", hub);
		void this.ctx.storage.setAlarm(Date.now() + SWEEP_MS);
	}

	private tableExists(): boolean {
		this.hasTable ??= this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'follows'").toArray().length > 0;
		return this.hasTable;
	}

	/** The seq the client had of a followed task when it was last stored (its snapshot's); undefined if not followed. */
	private storedSeq(id: string): number | undefined {
		if (!this.tableExists()) return undefined;
		return this.sql.exec<{ seq: number }>("SELECT seq FROM follows WHERE task_id = ?", id).toArray()[0]?.seq;
	}

	private followedIds(): string[] {
		if (!this.tableExists()) return [];
		return this.sql
			.exec<{ task_id: string }>("SELECT task_id FROM follows")
			.toArray()
			.map((row) => row.task_id);
	}

	private followCount(): number {
		const stored = this.tableExists() ? this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM follows").one().n : 0;
		return stored + this.pending.size;
	}

	private isFollowing(id: string): boolean {
		return this.pending.has(id) || this.storedSeq(id) !== undefined;
	}

	/** Stops following `ids` here (the tasks are told by the caller, or find out at their next relay). */
	private forget(ids: string[]): void {
		for (const id of ids) {
			this.pending.delete(id);
			this.lastSent.delete(id);
			if (this.tableExists()) this.sql.exec("DELETE FROM follows WHERE task_id = ?", id);
		}
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
