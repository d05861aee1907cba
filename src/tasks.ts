import { settings } from "./config";
import { ApiError } from "./errors";
import { findProcessor } from "./processors";
import { issuesOf, SubmitBody } from "./schemas";
import { fingerprint } from "./request";
import type { Task, TaskMessage, TaskSpec } from "./task";

/**
 * Validates a submission and turns it into a spec, or throws the right ApiError:
 * 400 with field paths for schema problems (the type's own input schema included), 422 for a
 * type this deployment does not run. Nothing is stored or enqueued before this passes.
 */
export async function toSpec(env: Env, body: unknown, makeId: () => string = () => crypto.randomUUID()): Promise<TaskSpec> {
	const parsed = SubmitBody.safeParse(body);
	if (!parsed.success) throw new ApiError(400, "invalid_request", "The request body does not match the schema", issuesOf(parsed.error));
	const b = parsed.data;
	const processor = findProcessor(b.type, env);
	if (!processor) throw new ApiError(422, "unknown_type", `No processor for task type "${b.type}"`);
	const input = processor.input.safeParse(b.input ?? null);
	if (!input.success) throw new ApiError(400, "invalid_input", `Invalid input for type "${b.type}"`, issuesOf(input.error, ["input"]));
	if (b.webhook_events && !b.webhook) {
		throw new ApiError(400, "invalid_request", "The request body does not match the schema", [
			{ path: "webhook_events", message: "needs webhook" },
		]);
	}
	if (b.webhook && !env.WEBHOOK_SECRET) {
		throw new ApiError(400, "webhooks_unavailable", "Webhooks need the WEBHOOK_SECRET secret (wrangler secret put WEBHOOK_SECRET; locally .dev.vars)");
	}
	const { id: _id, ...rest } = b;
	return {
		id: b.id ?? makeId(),
		type: b.type,
		input: b.input ?? null,
		priority: b.priority,
		timeoutS: b.timeout_s ?? processor.defaultTimeoutS,
		ttlS: b.ttl_s ?? settings(env).defaultTtlS,
		maxAttempts: processor.maxAttempts,
		webhook: b.webhook ?? null,
		webhookEvents: b.webhook ? (b.webhook_events ?? ["completed"]) : [],
		fingerprint: await fingerprint(rest),
	};
}

/**
 * Stores the task in its own object and sends its queue message. Submitting the same id with
 * the same body returns the stored task without running it again; a different body is a 409.
 * If the send fails the task is still safe: its object re-sends a message it never received.
 */
export async function submit(env: Env, spec: TaskSpec): Promise<{ created: boolean; task: Task }> {
	const { outcome, task } = await env.TASKS.getByName(spec.id).create(spec);
	if (outcome === "conflict") {
		throw new ApiError(409, "id_conflict", `Task ${spec.id} exists with a different body`, { task });
	}
	if (outcome === "created") {
		const message: TaskMessage = { id: spec.id, reason: "submit" };
		try {
			await env.TASK_QUEUE.send(message);
		} catch (e) {
			console.error(`task ${spec.id}: enqueue failed, the task's object will re-send: ${String(e)}`);
		}
	}
	return { created: outcome === "created", task };
}

/** The task, once terminal or after `waitS` seconds, whichever comes first; 404 if unknown. */
export async function waitForTask(env: Env, id: string, waitS: number): Promise<Task> {
	const task = await env.TASKS.getByName(id).waitFor(Math.round(waitS * 1000));
	if (!task) throw new ApiError(404, "task_not_found", `No task with id ${id}`);
	return task;
}
