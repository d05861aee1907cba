import { z } from "zod";
import type { Context } from "hono";
import { routes, type App } from "../app";
import { ApiError } from "../errors";
import { describe, type ParameterDoc } from "../openapi/describe";
import { ErrorBody, TaskEvent } from "../openapi/wire";
import { taskIdParam } from "../request";

/** Live results: a task's WebSocket and SSE stream, and the multi-task socket. */
export const liveRoutes = routes();

function requireWebSocketUpgrade(c: Context<App>): void {
	if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
		throw new ApiError(426, "upgrade_required", "This endpoint speaks WebSocket: send Upgrade: websocket", undefined, {
			Upgrade: "websocket",
		});
	}
}

/** `?after=N` or `Last-Event-ID: N`: replay events after sequence N instead of starting from a snapshot. */
function resumeAfter(c: Context<App>): number | null {
	const raw = c.req.query("after") ?? c.req.header("last-event-id");
	if (raw === undefined || raw === "") return null;
	const n = Number(raw);
	if (!Number.isInteger(n) || n < 0) throw new ApiError(400, "invalid_resume", "after / Last-Event-ID must be a non-negative integer");
	return n;
}

const error = (description: string) => ({ description, schema: ErrorBody });
const AFTER: Record<string, ParameterDoc> = {
	after: {
		description: "Replay the stored events after this sequence number instead of starting with a snapshot",
		schema: z.number().int().min(0),
	},
};
const UPGRADE = {
	upgrade: { description: "`websocket`", schema: z.literal("websocket"), required: true },
};

/** A hibernating WebSocket of one task's events, held by the task's own object. */
liveRoutes.get(
	"/v1/tasks/:id/ws",
	describe({
		summary: "Follow one task over a WebSocket",
		description:
			"JSON text frames: first a `snapshot` event (or the events after `after`), then every event (`TaskEvent`); closed with 1000 after the terminal one. " +
			'`{"type":"ping"}` is answered `{"type":"pong"}`. A page on another origin must be allowed by CORS_ORIGINS.',
		tags: ["live"],
		access: "key-or-task-token",
		query: AFTER,
		headers: UPGRADE,
		responses: {
			101: { description: "Switching protocols: frames are TaskEvent JSON", schema: TaskEvent },
			400: error("Malformed id or `after`"),
			403: error("A browser page on an origin not allowed by CORS_ORIGINS (`origin_not_allowed`)"),
			404: error("No such task"),
			426: error("Not a WebSocket upgrade (`upgrade_required`)"),
		},
	}),
	async (c) => {
		const id = taskIdParam(c);
		requireWebSocketUpgrade(c);
		const after = resumeAfter(c);
		const url = new URL(c.req.url);
		url.search = after === null ? "" : `?after=${after}`;
		return c.env.TASKS.getByName(id).fetch(new Request(url, c.req.raw));
	},
);

/** Server-Sent Events of one task: `event:` type, `id:` sequence; Last-Event-ID resumes. */
liveRoutes.get(
	"/v1/tasks/:id/events",
	describe({
		summary: "Follow one task with Server-Sent Events",
		description:
			"`event:` is the event type, `id:` its sequence (so `Last-Event-ID` resumes), `data:` the TaskEvent JSON; a keep-alive comment every 15 s; closed after the terminal event.",
		tags: ["live"],
		access: "key-or-task-token",
		query: AFTER,
		headers: {
			"last-event-id": { description: "Resume after this sequence number (what EventSource sends on reconnect)", schema: z.string() },
		},
		responses: {
			200: {
				description: "The event stream",
				content: { mediaType: "text/event-stream", description: "SSE frames whose data is a TaskEvent" },
			},
			204: { description: "Resuming a finished task with nothing left to send: EventSource stops reconnecting" },
			400: error("Malformed id or `after`"),
			404: error("No such task"),
		},
	}),
	async (c) => {
		const id = taskIdParam(c);
		const stream = await c.env.TASKS.getByName(id).eventStream(resumeAfter(c));
		if (stream === "unknown") throw new ApiError(404, "task_not_found", `No task with id ${id}`);
		// Resuming a finished task with nothing left to send: 204 tells EventSource to stop reconnecting.
		if (stream === "ended") return c.body(null, 204);
		return new Response(stream, {
			headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" },
		});
	},
);

/** One WebSocket following many tasks (`subscribe` / `unsubscribe` frames); a fresh hub object per connection. */
liveRoutes.get(
	"/v1/ws",
	describe({
		summary: "Follow many tasks over one WebSocket",
		description:
			'Send `{"type":"subscribe","ids":[…],"tokens"?:{id: token}}` and `{"type":"unsubscribe","ids":[…]}` (≤ 1,000 per socket); receive TaskEvent frames of every task followed. ' +
			"Without an API key, each subscription needs its task's token.",
		tags: ["live"],
		access: "public",
		headers: UPGRADE,
		responses: {
			101: { description: "Switching protocols: frames are TaskEvent JSON", schema: TaskEvent },
			403: error("A browser page on an origin not allowed by CORS_ORIGINS (`origin_not_allowed`)"),
			426: error("Not a WebSocket upgrade (`upgrade_required`)"),
		},
	}),
	async (c) => {
		requireWebSocketUpgrade(c);
		const hub = crypto.randomUUID();
		const request = new Request(c.req.raw);
		request.headers.set("x-edgetask-hub", hub);
		// Without an API key, each subscription must carry that task's token.
		request.headers.set("x-edgetask-scope", c.get("access") === "anonymous" ? "tokens" : "all");
		return c.env.HUBS.getByName(hub).fetch(request);
	},
);
