import { settings } from "../config";
import { ApiError } from "./errors";
import { findProcessor } from "../processors";
import { laneOf } from "../scheduling/lanes";
import { issuesOf, SubmitBody } from "./schemas";
import { fingerprint } from "./request";
import { MAX_TIMEOUT_S, type Task, type TaskSpec } from "../task/model";
import type { TaskCoordinator } from "../TaskCoordinator";
import { workerType } from "../workers/config";

/**
 * Validates a submission and turns it into a spec, or throws the right ApiError:
 * 400 with field paths for schema problems (the type's own input schema and check included), 422
 * for a type this deployment does not run; a `ConfigError` when a var the type needs is bad.
 * Nothing is stored or enqueued before this passes.
 */
export async function toSpec(env: Env, body: unknown, makeId: () => string = () => crypto.randomUUID()): Promise<TaskSpec> {
	const parsed = SubmitBody.safeParse(body);
	if (!parsed.success) throw new ApiError(400, "invalid_request", "The request body does not match the schema", issuesOf(parsed.error));
	const b = parsed.data;
	// WORKER_TYPES first: it names the types this deployment hands to external workers.
	const pull = workerType(env, b.type);
	const processor = pull ? undefined : findProcessor(b.type, env);
	if (!pull && !processor) throw new ApiError(422, "unknown_type", `No processor for task type "${b.type}"`);
	const input = (pull ? pull.input : processor?.input)?.safeParse(b.input ?? null);
	if (input && !input.success)
		throw new ApiError(400, "invalid_input", `Invalid input for type "${b.type}"`, issuesOf(input.error, ["input"]));
	// Input that is well-formed but cannot run here (an http task naming an unknown origin).
	const problem = input && processor?.check?.(input.data, env);
	if (problem) throw new ApiError(400, problem.code, problem.message, [{ path: problem.path, message: problem.message }]);
	if (b.webhook_events && !b.webhook) {
		throw new ApiError(400, "invalid_request", "The request body does not match the schema", [
			{ path: "webhook_events", message: "needs webhook" },
		]);
	}
	if (b.webhook && !env.WEBHOOK_SECRET) {
		throw new ApiError(
			400,
			"webhooks_unavailable",
			"Webhooks need the WEBHOOK_SECRET secret (wrangler secret put WEBHOOK_SECRET; locally .dev.vars)",
		);
	}
	// Reads the concurrency limits: a bad CONCURRENCY is a clear error here, before anything is stored.
	laneOf(env, b.type, b.input ?? null);
	const { id: _id, ...rest } = b;
	return {
		id: b.id ?? makeId(),
		type: b.type,
		input: b.input ?? null,
		priority: b.priority,
		timeoutS: b.timeout_s ?? pull?.timeoutS ?? processor?.defaultTimeoutS ?? MAX_TIMEOUT_S,
		ttlS: b.ttl_s ?? settings(env).defaultTtlS,
		maxAttempts: pull?.maxAttempts ?? processor?.maxAttempts ?? 3,
		webhook: b.webhook ?? null,
		webhookEvents: b.webhook ? (b.webhook_events ?? ["completed"]) : [],
		delayS: b.delay_s ?? 0,
		fingerprint: await fingerprint(rest),
		...(pull ? { pull: { leaseS: pull.leaseS } } : {}),
	};
}

/**
 * Calls a task's object. If the instance dies mid-call (it is reset by a crash, a deploy or an
 * eviction), the call is made once more on a fresh stub with what is left of the wait; the
 * calls are idempotent. A second failure is a 503 with Retry-After, never a bare 500.
 */
async function callTask<T>(
	env: Env,
	id: string,
	waitMs: number,
	call: (stub: DurableObjectStub<TaskCoordinator>, waitMs: number) => Promise<T>,
): Promise<T> {
	const deadline = Date.now() + waitMs;
	try {
		return await call(env.TASKS.getByName(id), waitMs);
	} catch (first) {
		if (first instanceof ApiError) throw first;
		console.error(`task ${id}: object call failed, trying once more: ${String(first)}`);
		try {
			return await call(env.TASKS.getByName(id), Math.max(0, deadline - Date.now()));
		} catch (second) {
			console.error(`task ${id}: object call failed again: ${String(second)}`);
			throw new ApiError(503, "task_unavailable", `Task ${id} is briefly unavailable; retry`, undefined, { "Retry-After": "1" });
		}
	}
}

/**
 * Stores the task in its own object, which sends its queue message, and waits up to `waitS`
 * for it to end. Submitting the same id with the same body returns the stored task without
 * running it again; a different body is a 409.
 */
export async function submit(env: Env, spec: TaskSpec, waitS = 0): Promise<{ created: boolean; task: Task }> {
	const { outcome, task } = await callTask(env, spec.id, Math.round(waitS * 1000), (stub, ms) =>
		stub.submit(spec, ms, settings(env).dispatch),
	);
	if (outcome === "conflict") {
		throw new ApiError(409, "id_conflict", `Task ${spec.id} exists with a different body`, { task });
	}
	return { created: outcome === "created", task };
}

/** The task, once terminal or after `waitS` seconds, whichever comes first; 404 if unknown. */
export async function waitForTask(env: Env, id: string, waitS: number): Promise<Task> {
	const task = await callTask(env, id, Math.round(waitS * 1000), (stub, ms) => stub.waitFor(ms));
	if (!task) throw new ApiError(404, "task_not_found", `No task with id ${id}`);
	return task;
}
