import { z } from "zod";
import { settings } from "../../config";
import { releaseFiles } from "../../files/uploads";
import { isTerminal } from "../../task/model";
import { admitSubmission, withWaitingSlot } from "../admission";
import { routes } from "../app";
import { ApiError } from "../errors";
import { describe } from "../openapi/describe";
import { ErrorBody, TaskView } from "../openapi/wire";
import { preferredWait, readJsonBody, taskIdParam } from "../request";
import { MAX_WAIT_S, SubmitBody } from "../schemas";
import { isMultipart, readSubmitForm, specWithFiles } from "../submitFiles";
import { submit, waitForTask } from "../tasks";
import { withUrls } from "../urls";

/** Submitting, reading and canceling tasks. */
export const taskRoutes = routes();

const PREFER_WAIT = {
	prefer: {
		description: `\`wait=N\` (0-${MAX_WAIT_S} s, RFC 7240): hold the answer until the task ends or N s pass`,
		schema: z.string().regex(/wait=\d+(\.\d+)?/),
	},
};
const TASK_HEADERS = { "Preference-Applied": "Echoes `wait=N` when Prefer: wait was honoured" };
const error = (description: string) => ({ description, schema: ErrorBody });
const RATE_LIMITED = error("Too many submissions or waiting requests (`rate_limited`, `too_many_waiting`); retry after `Retry-After` s");

/**
 * Submit a task: JSON, or multipart/form-data with a `json` part and file parts (see
 * submitFiles.ts). `Prefer: wait=N` answers 200 once it ends within N s, else 202.
 */
taskRoutes.post(
	"/v1/tasks",
	describe({
		summary: "Submit a task",
		description:
			"Validated before anything is stored or enqueued. The same `id` with the same body returns the stored task; with another body, 409. " +
			'The `input` of each type is under components `TaskInput.<type>`. Files: send `multipart/form-data` with a `json` part (this body) and file parts, each referenced from the input as `{"$file": "<part name>"}`.',
		tags: ["tasks"],
		access: "key",
		body: SubmitBody,
		headers: PREFER_WAIT,
		responses: {
			200: {
				description: "Prefer: wait was given and the task ended in time",
				schema: TaskView,
				headers: { ...TASK_HEADERS, Location: "/v1/tasks/{id}" },
			},
			202: { description: "Accepted: the task as it stands", schema: TaskView, headers: { ...TASK_HEADERS, Location: "/v1/tasks/{id}" } },
			400: error("Invalid JSON, schema violations (`details`: [{path, message}]), bad Prefer: wait, JSON nested too deep"),
			409: error("The id exists with a different body (`id_conflict`; the stored task in `details.task`)"),
			413: error("Body over MAX_BODY_BYTES"),
			415: error("Body not declared as JSON"),
			422: error("No processor for this task type (`unknown_type`)"),
			429: { ...RATE_LIMITED, headers: { "Retry-After": "Seconds to wait" } },
			503: { ...error("The task's object is briefly unavailable"), headers: { "Retry-After": "Seconds to wait" } },
		},
	}),
	async (c) => {
		const wait = preferredWait(c);
		await admitSubmission(c.env, c.req.raw);
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
	},
);

/** Read a task; `Prefer: wait=N` long-polls until it is terminal or N s pass. */
taskRoutes.get(
	"/v1/tasks/:id",
	describe({
		summary: "Read a task",
		description: "With `Prefer: wait=N`, a long-poll: answered the moment the task ends, or after N s with the task as it stands.",
		tags: ["tasks"],
		access: "key-or-task-token",
		headers: PREFER_WAIT,
		responses: {
			200: { description: "The task", schema: TaskView, headers: TASK_HEADERS },
			400: error("Malformed id or Prefer: wait"),
			404: error("No such task (never submitted, or expired after its TTL)"),
			429: { ...RATE_LIMITED, headers: { "Retry-After": "Seconds to wait" } },
			503: { ...error("The task's object is briefly unavailable"), headers: { "Retry-After": "Seconds to wait" } },
		},
	}),
	async (c) => {
		const id = taskIdParam(c);
		const wait = preferredWait(c);
		const task = wait ? await withWaitingSlot(c.env, wait, () => waitForTask(c.env, id, wait)) : await waitForTask(c.env, id, 0);
		if (wait !== null) c.header("Preference-Applied", `wait=${wait}`);
		return c.json(await withUrls(c, task), 200);
	},
);

/** Cancel a task: a queued one never starts, a running one is aborted. 409 once it has ended otherwise. */
taskRoutes.post(
	"/v1/tasks/:id/cancel",
	describe({
		summary: "Cancel a task",
		description: "A queued task never starts; a running one has its signal aborted and ends `canceled` at once. Idempotent.",
		tags: ["tasks"],
		access: "key-or-task-token",
		responses: {
			200: { description: "The canceled task", schema: TaskView },
			404: error("No such task"),
			409: error("The task already ended otherwise (`task_finished`; the task in `details.task`)"),
		},
	}),
	async (c) => {
		const id = taskIdParam(c);
		const { outcome, task } = await c.env.TASKS.getByName(id).cancel();
		if (outcome === "unknown" || !task) throw new ApiError(404, "task_not_found", `No task with id ${id}`);
		if (outcome === "already_finished") {
			throw new ApiError(409, "task_finished", `Task ${id} already ended ${task.status}`, { task });
		}
		return c.json(await withUrls(c, task), 200);
	},
);
