import { settings } from "../../config";
import { isTerminal } from "../../task/model";
import { admitSubmission, clientKey, withWaitingSlot } from "../admission";
import { routes } from "../app";
import { ApiError } from "../errors";
import { preferredWait, readJsonBody, taskIdParam } from "../request";
import { submit, toSpec, waitForTask } from "../tasks";
import { withUrls } from "../urls";

/** Submitting, reading and canceling tasks. */
export const taskRoutes = routes();

/** Submit a task. `Prefer: wait=N` answers 200 once it ends within N s, else 202. */
taskRoutes.post("/v1/tasks", async (c) => {
	const wait = preferredWait(c);
	admitSubmission(c.env, clientKey(c.req.raw));
	const spec = await toSpec(c.env, await readJsonBody(c, settings(c.env).maxBodyBytes));
	const { task } = wait ? await withWaitingSlot(c.env, wait, () => submit(c.env, spec, wait)) : await submit(c.env, spec);
	if (wait !== null) c.header("Preference-Applied", `wait=${wait}`);
	c.header("Location", `/v1/tasks/${encodeURIComponent(task.id)}`);
	return c.json(await withUrls(c, task), isTerminal(task.status) ? 200 : 202);
});

/** Read a task; `Prefer: wait=N` long-polls until it is terminal or N s pass. */
taskRoutes.get("/v1/tasks/:id", async (c) => {
	const id = taskIdParam(c);
	const wait = preferredWait(c);
	const task = wait ? await withWaitingSlot(c.env, wait, () => waitForTask(c.env, id, wait)) : await waitForTask(c.env, id, 0);
	if (wait !== null) c.header("Preference-Applied", `wait=${wait}`);
	return c.json(await withUrls(c, task), 200);
});

/** Cancel a task: a queued one never starts, a running one is aborted. 409 once it has ended otherwise. */
taskRoutes.post("/v1/tasks/:id/cancel", async (c) => {
	const id = taskIdParam(c);
	const { outcome, task } = await c.env.TASKS.getByName(id).cancel();
	if (outcome === "unknown" || !task) throw new ApiError(404, "task_not_found", `No task with id ${id}`);
	if (outcome === "already_finished") {
		throw new ApiError(409, "task_finished", `Task ${id} already ended ${task.status}`, { task });
	}
	return c.json(await withUrls(c, task), 200);
});
