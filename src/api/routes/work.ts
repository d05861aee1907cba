import type { Context } from "hono";
import { settings } from "../../config";
import { workerTypes } from "../../workers/config";
import { CompleteBody, FailBody, HeartbeatBody, LeaseBody } from "../../workers/lease";
import type { HeartbeatOutcome, LeaseOutcome } from "../../workers/outcomes";
import { WORK_LANE } from "../../workers/WorkLane";
import { withWaitingSlot } from "../admission";
import { routes, type App } from "../app";
import { ApiError } from "../errors";
import { describe } from "../openapi/describe";
import { ErrorBody, HeartbeatAnswer, LeaseGrant, WorkAnswer } from "../openapi/wire";
import { readJsonBody, taskIdParam } from "../request";
import { issuesOf } from "../schemas";
import type { z } from "zod";

/**
 * The pull-worker API: machines with no public port (GPUs behind NAT) lease tasks of the
 * `WORKER_TYPES` types, heartbeat while they run them, and complete or fail them. A lease's
 * token is its only credential: a call with a token that is no longer the task's current
 * lease (it lapsed, the task was canceled or ended) gets 409 `lease_lost` and changes nothing.
 */
export const workRoutes = routes();

/** Workers hold API keys: a task URL's token opens a task for reading, never for working on it. */
function requireWorkerAccess(c: Context<App>): void {
	const access = c.get("access");
	if (access !== "key" && access !== "open") {
		throw new ApiError(401, "unauthorized", "The worker API needs Authorization: Bearer <API key>", undefined, {
			"WWW-Authenticate": 'Bearer realm="edgetask"',
		});
	}
}

async function body<S extends z.ZodType>(c: Context<App>, schema: S): Promise<z.output<S>> {
	const parsed = schema.safeParse(await readJsonBody(c, settings(c.env).maxBodyBytes));
	if (!parsed.success) throw new ApiError(400, "invalid_request", "The request body does not match the schema", issuesOf(parsed.error));
	return parsed.data;
}

/**
 * An object call that failed (its instance was reset mid-call: a deploy, an eviction, a crash)
 * is a 503 with Retry-After, which workers retry; never a bare 500.
 */
async function reach<T>(what: string, call: () => Promise<T>): Promise<T> {
	try {
		return await call();
	} catch (e) {
		if (e instanceof ApiError) throw e;
		console.error(`${what}: object call failed: ${String(e)}`);
		throw new ApiError(503, "unavailable", `${what} is briefly unavailable; retry`, undefined, { "Retry-After": "1" });
	}
}

const error = (description: string) => ({ description, schema: ErrorBody });
const UNAVAILABLE = {
	...error("The object was briefly unavailable (`unavailable`); retry"),
	headers: { "Retry-After": "Seconds to wait" },
};
const LEASE_ERRORS = {
	400: error("Malformed id or body (`details`: [{path, message}])"),
	404: error("No such task"),
	409: error("The token is not the task's current lease (`lease_lost`: lapsed, canceled or ended); nothing changed"),
	503: UNAVAILABLE,
};

/** 404 for a task that does not exist, 409 `lease_lost` for a token that is not its current lease. */
function refused(id: string, outcome: Exclude<LeaseOutcome, { kind: "ok" }>): never {
	if (outcome.kind === "unknown") throw new ApiError(404, "task_not_found", `No task with id ${id}`);
	throw new ApiError(409, "lease_lost", `This token is not the current lease of task ${id}: ${outcome.reason}`, {
		status: outcome.status,
	});
}

/** Long-polls for the next task of the given types, in the order of the priority rule; 204 if none came within wait_s. */
workRoutes.post(
	"/v1/work/lease",
	describe({
		summary: "Lease the next task of the given pull-worker types",
		description:
			"A long-poll (`wait_s` ≤ 25): answered with a task as soon as one of `types` (WORKER_TYPES) is waiting, in the order of the priority rule; 204 if none came in time.",
		tags: ["workers"],
		access: "key",
		body: LeaseBody,
		responses: {
			200: { description: "A task and its lease", schema: LeaseGrant },
			204: { description: "No task within wait_s" },
			400: error("Invalid body, or a type that is not a pull-worker type here (`unknown_worker_type`)"),
			429: { ...error("Too many requests waiting"), headers: { "Retry-After": "Seconds to wait" } },
			503: UNAVAILABLE,
		},
	}),
	async (c) => {
		requireWorkerAccess(c);
		const b = await body(c, LeaseBody);
		const known = workerTypes(c.env);
		const unknown = b.types.filter((t) => !known.has(t));
		if (unknown.length > 0) {
			throw new ApiError(400, "unknown_worker_type", `Not a pull-worker type of this deployment: ${unknown.join(", ")}`, {
				unknown,
				known: [...known.keys()],
			});
		}
		const lane = c.env.WORK_LANE.getByName(WORK_LANE);
		const lease = () => lane.lease(b.types, b.worker_id, Math.round(b.wait_s * 1000));
		const grant = await reach("the work lane", () => (b.wait_s > 0 ? withWaitingSlot(c.env, b.wait_s, lease) : lease()));
		if (!grant) return c.body(null, 204);
		return c.json(grant, 200);
	},
);

/** Extends the lease and relays progress; `cancel_requested` tells the worker to stop. */
workRoutes.post(
	"/v1/work/:id/heartbeat",
	describe({
		summary: "Extend a lease and report progress",
		tags: ["workers"],
		access: "key",
		body: HeartbeatBody,
		responses: {
			200: { description: "The lease's new expiry; `cancel_requested` tells the worker to stop", schema: HeartbeatAnswer },
			...LEASE_ERRORS,
		},
	}),
	async (c) => {
		requireWorkerAccess(c);
		const id = taskIdParam(c);
		const b = await body(c, HeartbeatBody);
		const outcome = await reach<HeartbeatOutcome>(
			`task ${id}`,
			async () => await c.env.TASKS.getByName(id).heartbeat(b.token, b.progress ?? null),
		);
		if (outcome.kind !== "ok") refused(id, outcome);
		return c.json({ expires_at: new Date(outcome.expiresAt).toISOString(), cancel_requested: outcome.cancelRequested }, 200);
	},
);

/** Ends the task `succeeded` with the worker's output. Repeating the call that succeeded is answered the same. */
workRoutes.post(
	"/v1/work/:id/complete",
	describe({
		summary: "Complete a leased task with its output",
		description: "The task ends `succeeded`. Repeating the call that succeeded is answered the same.",
		tags: ["workers"],
		access: "key",
		body: CompleteBody,
		responses: { 200: { description: "The task's status", schema: WorkAnswer }, ...LEASE_ERRORS },
	}),
	async (c) => {
		requireWorkerAccess(c);
		const id = taskIdParam(c);
		const b = await body(c, CompleteBody);
		const outcome = await reach<LeaseOutcome>(`task ${id}`, async () => await c.env.TASKS.getByName(id).completeLease(b.token, b.output));
		if (outcome.kind !== "ok") refused(id, outcome);
		return c.json({ id, status: outcome.status }, 200);
	},
);

/** Fails the attempt: leased again after a backoff while it is retryable and has attempts left, else `failed`. */
workRoutes.post(
	"/v1/work/:id/fail",
	describe({
		summary: "Fail a leased attempt",
		description: "Leased again after a backoff while `retryable` and attempts are left; else the task ends `failed`.",
		tags: ["workers"],
		access: "key",
		body: FailBody,
		responses: { 200: { description: "The task's status", schema: WorkAnswer }, ...LEASE_ERRORS },
	}),
	async (c) => {
		requireWorkerAccess(c);
		const id = taskIdParam(c);
		const b = await body(c, FailBody);
		const outcome = await reach<LeaseOutcome>(
			`task ${id}`,
			async () => await c.env.TASKS.getByName(id).failLease(b.token, b.error, b.retryable),
		);
		if (outcome.kind !== "ok") refused(id, outcome);
		return c.json({ id, status: outcome.status }, 200);
	},
);
