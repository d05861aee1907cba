import type { Context } from "hono";
import { routes, type App } from "../app";
import { ApiError } from "../errors";
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

/** A hibernating WebSocket of one task's events, held by the task's own object. */
liveRoutes.get("/v1/tasks/:id/ws", async (c) => {
	const id = taskIdParam(c);
	requireWebSocketUpgrade(c);
	const after = resumeAfter(c);
	const url = new URL(c.req.url);
	url.search = after === null ? "" : `?after=${after}`;
	return c.env.TASKS.getByName(id).fetch(new Request(url, c.req.raw));
});

/** Server-Sent Events of one task: `event:` type, `id:` sequence; Last-Event-ID resumes. */
liveRoutes.get("/v1/tasks/:id/events", async (c) => {
	const id = taskIdParam(c);
	const stream = await c.env.TASKS.getByName(id).eventStream(resumeAfter(c));
	if (stream === "unknown") throw new ApiError(404, "task_not_found", `No task with id ${id}`);
	// Resuming a finished task with nothing left to send: 204 tells EventSource to stop reconnecting.
	if (stream === "ended") return c.body(null, 204);
	return new Response(stream, {
		headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "x-accel-buffering": "no" },
	});
});

/** One WebSocket following many tasks (`subscribe` / `unsubscribe` frames); a fresh hub object per connection. */
liveRoutes.get("/v1/ws", async (c) => {
	requireWebSocketUpgrade(c);
	const hub = crypto.randomUUID();
	const request = new Request(c.req.raw);
	request.headers.set("x-edgetask-hub", hub);
	// Without an API key, each subscription must carry that task's token.
	request.headers.set("x-edgetask-scope", c.get("access") === "anonymous" ? "tokens" : "all");
	return c.env.HUBS.getByName(hub).fetch(request);
});
