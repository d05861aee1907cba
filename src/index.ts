import { Hono, type Context } from "hono";
import { admitSubmission, clientKey, withWaitingSlot } from "./admission";
import { apiKeys, authorize, taskToken, type Access } from "./auth";
import { settings } from "./config";
import { queue } from "./consumer";
import { ApiError } from "./errors";
import { healthReport } from "./health";
import { preferredWait, readJsonBody, taskIdParam } from "./request";
import { handleProcess } from "./seed";
import type { Task, TaskMessage } from "./task";
import { isTerminal } from "./task";
import { submit, toSpec, waitForTask } from "./tasks";

export { TaskCoordinator } from "./TaskCoordinator";
export { StatsShard } from "./StatsShard";
export { SubscriptionHub } from "./SubscriptionHub";

type App = { Bindings: Env; Variables: { access: Access } };
const app = new Hono<App>();

/** Token lifetime past the task's TTL (counted from now): its run and a day to spare for slow readers. */
const TOKEN_SLACK_S = 86_400;

/**
 * The task plus where to find it again. When API keys are in force the URLs carry a token for
 * this task alone, so they can be handed to a browser.
 */
async function withUrls(c: Context<App>, task: Task) {
	const path = `/v1/tasks/${encodeURIComponent(task.id)}`;
	const query = apiKeys(c.env).length > 0 ? `?token=${await taskToken(c.env, task.id, task.ttl_s + TOKEN_SLACK_S)}` : "";
	const http = new URL(path, c.req.url);
	const ws = new URL(http);
	ws.protocol = http.protocol === "https:" ? "wss:" : "ws:";
	return {
		...task,
		urls: {
			get: `${http.href}${query}`,
			ws: `${ws.href}/ws${query}`,
			events: `${http.href}/events${query}`,
			cancel: `${http.href}/cancel${query}`,
		},
	};
}

/** Everything but a minimal /health needs credentials when auth is on (see auth.ts). */
app.use("*", async (c, next) => {
	c.set("access", await authorize(c.env, c.req.raw));
	await next();
});

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

/** Submit a task. `Prefer: wait=N` answers 200 once it ends within N s, else 202. */
app.post("/v1/tasks", async (c) => {
	const wait = preferredWait(c);
	admitSubmission(c.env, clientKey(c.req.raw));
	const spec = await toSpec(c.env, await readJsonBody(c, settings(c.env).maxBodyBytes));
	const { task } = wait ? await withWaitingSlot(c.env, wait, () => submit(c.env, spec, wait)) : await submit(c.env, spec);
	if (wait !== null) c.header("Preference-Applied", `wait=${wait}`);
	c.header("Location", `/v1/tasks/${encodeURIComponent(task.id)}`);
	return c.json(await withUrls(c, task), isTerminal(task.status) ? 200 : 202);
});

/** Read a task; `Prefer: wait=N` long-polls until it is terminal or N s pass. */
app.get("/v1/tasks/:id", async (c) => {
	const id = taskIdParam(c);
	const wait = preferredWait(c);
	const task = wait ? await withWaitingSlot(c.env, wait, () => waitForTask(c.env, id, wait)) : await waitForTask(c.env, id, 0);
	if (wait !== null) c.header("Preference-Applied", `wait=${wait}`);
	return c.json(await withUrls(c, task), 200);
});

/** Cancel a task: a queued one never starts, a running one is aborted. 409 once it has ended otherwise. */
app.post("/v1/tasks/:id/cancel", async (c) => {
	const id = taskIdParam(c);
	const { outcome, task } = await c.env.TASKS.getByName(id).cancel();
	if (outcome === "unknown" || !task) throw new ApiError(404, "task_not_found", `No task with id ${id}`);
	if (outcome === "already_finished") {
		throw new ApiError(409, "task_finished", `Task ${id} already ended ${task.status}`, { task });
	}
	return c.json(await withUrls(c, task), 200);
});

/** A hibernating WebSocket of one task's events, held by the task's own object. */
app.get("/v1/tasks/:id/ws", async (c) => {
	const id = taskIdParam(c);
	requireWebSocketUpgrade(c);
	const after = resumeAfter(c);
	const url = new URL(c.req.url);
	url.search = after === null ? "" : `?after=${after}`;
	return c.env.TASKS.getByName(id).fetch(new Request(url, c.req.raw));
});

/** Server-Sent Events of one task: `event:` type, `id:` sequence; Last-Event-ID resumes. */
app.get("/v1/tasks/:id/events", async (c) => {
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
app.get("/v1/ws", async (c) => {
	requireWebSocketUpgrade(c);
	const hub = crypto.randomUUID();
	const request = new Request(c.req.raw);
	request.headers.set("x-edgetask-hub", hub);
	// Without an API key, each subscription must carry that task's token.
	request.headers.set("x-edgetask-scope", c.get("access") === "anonymous" ? "tokens" : "all");
	return c.env.HUBS.getByName(hub).fetch(request);
});

app.post("/process", handleProcess);

app.get("/health", async (c) => c.json(c.get("access") === "anonymous" ? { status: "ok" } : await healthReport(c.env)));

// Known paths with the wrong method: 405 with Allow, not 404.
for (const [path, allow] of [
	["/v1/tasks", "POST"],
	["/v1/tasks/:id", "GET"],
	["/v1/tasks/:id/cancel", "POST"],
	["/v1/tasks/:id/ws", "GET"],
	["/v1/tasks/:id/events", "GET"],
	["/v1/ws", "GET"],
	["/process", "POST"],
	["/health", "GET"],
] as const) {
	app.all(path, () => {
		throw new ApiError(405, "method_not_allowed", `Use ${allow} on this path`, undefined, { Allow: allow });
	});
}

app.notFound(() => {
	throw new ApiError(404, "not_found", "No such route");
});

/** The one error path: ApiErrors become their JSON envelope; anything else is logged and a 500. */
app.onError((err, c) => {
	if (err instanceof ApiError) {
		for (const [name, value] of Object.entries(err.headers)) c.header(name, value);
		return c.json(err.toBody(), err.status);
	}
	console.error(`${c.req.method} ${new URL(c.req.url).pathname}: ${err.stack ?? String(err)}`);
	return c.json({ error: { code: "internal_error", message: "Internal error" } }, 500);
});

export default { fetch: app.fetch, queue } satisfies ExportedHandler<Env, TaskMessage>;
