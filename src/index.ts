import { Hono, type Context } from "hono";
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

type App = { Bindings: Env };
const app = new Hono<App>();

/** The task plus where to find it again. */
function withUrls(c: Context<App>, task: Task) {
	const base = new URL(`/v1/tasks/${encodeURIComponent(task.id)}`, c.req.url).toString();
	return { ...task, urls: { get: base } };
}

/** Submit a task. `Prefer: wait=N` answers 200 once it ends within N s, else 202. */
app.post("/v1/tasks", async (c) => {
	const wait = preferredWait(c);
	const spec = await toSpec(c.env, await readJsonBody(c, settings(c.env).maxBodyBytes));
	let { task } = await submit(c.env, spec);
	if (wait !== null) {
		task = await waitForTask(c.env, task.id, wait);
		c.header("Preference-Applied", `wait=${wait}`);
	}
	c.header("Location", `/v1/tasks/${encodeURIComponent(task.id)}`);
	return c.json(withUrls(c, task), isTerminal(task.status) ? 200 : 202);
});

/** Read a task; `Prefer: wait=N` long-polls until it is terminal or N s pass. */
app.get("/v1/tasks/:id", async (c) => {
	const id = taskIdParam(c);
	const wait = preferredWait(c);
	const task = await waitForTask(c.env, id, wait ?? 0);
	if (wait !== null) c.header("Preference-Applied", `wait=${wait}`);
	return c.json(withUrls(c, task), 200);
});

app.post("/process", handleProcess);

app.get("/health", async (c) => c.json(await healthReport(c.env)));

// Known paths with the wrong method: 405 with Allow, not 404.
for (const [path, allow] of [
	["/v1/tasks", "POST"],
	["/v1/tasks/:id", "GET"],
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
