import { settings } from "../../config";
import { releaseFiles } from "../../files/uploads";
import { isTerminal } from "../../task/model";
import { admitSubmission, clientKey, withWaitingSlot } from "../admission";
import { routes } from "../app";
import { ApiError } from "../errors";
import { preferredWait, readJsonBody, taskIdParam } from "../request";
import { isMultipart, readSubmitForm, specWithFiles } from "../submitFiles";
import { submit, waitForTask } from "../tasks";
import { withUrls } from "../urls";

/** Submitting, reading and canceling tasks. */
export const taskRoutes = routes();

/**
 * Submit a task: JSON, or multipart/form-data with a `json` part and file parts (see
 * submitFiles.ts). `Prefer: wait=N` answers 200 once it ends within N s, else 202.
 */
taskRoutes.post("/v1/tasks", async (c) => {
	const wait = preferredWait(c);
	admitSubmission(c.env, clientKey(c.req.raw));
	const cfg = settings(c.env);
	const form = isMultipart(c) ? await readSubmitForm(c, cfg) : null;
	const { spec, stored } = await specWithFiles(c.env, cfg, form ? form.body : await readJsonBody(c, cfg.maxBodyBytes), form);
	let outcome;
	try {
		outcome = wait ? await withWaitingSlot(c.env, wait, () => submit(c.env, spec, wait)) : await submit(c.env, spec);
	} catch (e) {
		if (stored.length > 0) await releaseFiles(c.env, spec.id, stored);
		throw e;
	}
	const { created, task } = outcome;
	// A repeated multipart submit found its task: the parts stored again are not used.
	if (!created && stored.length > 0) await releaseFiles(c.env, spec.id, stored);
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
