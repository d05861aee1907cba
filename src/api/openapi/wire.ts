import { z } from "zod";
import { PRIORITIES, TASK_STATUSES, WEBHOOK_EVENT_FILTERS, type Json } from "../../task/model";

/**
 * Schemas of what the API answers, for its OpenAPI document. Requests are described by the
 * schemas that validate them (api/schemas.ts); answers are built from TypeScript types, so
 * these mirror them, and test/worker/openapi.test.ts checks at compile time that each one
 * matches its type (`Task`, `TaskEvent`, `ErrorBody`, …): a field added to a type without its
 * schema fails `npm run check`.
 */

const isoTime = z.string().describe("ISO 8601 time");
/** Any JSON value, typed as the server types task data (`Json`). */
const JsonValue: z.ZodType<Json> = z.json();

export const TaskError = z.object({ code: z.string(), message: z.string(), details: JsonValue.optional() });
export const TaskProgress = z.object({ percent: z.number().min(0).max(100), message: z.string().nullable() });

export const WebhookAttempt = z.object({
	seq: z.number().int(),
	event: z.string(),
	attempt: z.number().int(),
	at: isoTime,
	ok: z.boolean(),
	status: z.number().int().nullable(),
	error: z.string().nullable(),
});

export const WebhookGiveUp = z
	.object({ seq: z.number().int(), event: z.string(), attempts: z.number().int(), at: isoTime, reason: z.string() })
	.describe("A delivery abandoned: after its last attempt, or because it could not be made (no secret)");

export const TaskUrls = z
	.object({ get: z.string(), ws: z.string(), events: z.string(), cancel: z.string(), output: z.string() })
	.describe("Where to read, follow and cancel the task. With API keys set, each carries `?token=`: a capability for this task alone.");

/** A task as `GET /v1/tasks/{id}` returns it (the stored task plus its URLs). */
export const TaskView = z.object({
	id: z.string(),
	type: z.string(),
	status: z.enum(TASK_STATUSES),
	priority: z.enum(PRIORITIES),
	timeout_s: z.number().describe("Deadline of one attempt, in seconds"),
	ttl_s: z.number().describe("How long the task is kept once it ends, in seconds"),
	input: z.json(),
	output: z.json().describe("The processor's result once succeeded, else null"),
	error: TaskError.nullable(),
	progress: TaskProgress.nullable(),
	queue_position: z
		.number()
		.int()
		.nullable()
		.describe(
			"While it waits for a slot of its type or origin, or (pull tasks) for a worker: how many waiting tasks start before it (0 = next); else null",
		),
	attempts: z.number().int(),
	created_at: isoTime,
	run_at: isoTime.describe("It does not start before this: created_at + delay_s"),
	started_at: isoTime.nullable(),
	finished_at: isoTime.nullable(),
	metrics: z.object({ queue_ms: z.number().nullable(), run_ms: z.number().nullable(), total_ms: z.number().nullable() }),
	webhook: z
		.object({
			url: z.string(),
			events: z.array(z.enum(WEBHOOK_EVENT_FILTERS)),
			pending: z.number().int(),
			deliveries: z.array(WebhookAttempt),
			given_up: z.array(WebhookGiveUp),
		})
		.nullable(),
	urls: TaskUrls,
});

export const TaskEventType = z.enum([
	"snapshot",
	"queued",
	"running",
	"progress",
	"retrying",
	"succeeded",
	"failed",
	"canceled",
	"timed_out",
]);

/** One event, as WebSocket frames, SSE `data:` and webhook bodies carry it. */
export const TaskEvent = z.object({
	task_id: z.string(),
	seq: z.number().int().describe("Per task, from 1; a snapshot carries the seq of the last event it includes"),
	type: TaskEventType,
	at: isoTime,
	data: TaskView.omit({ urls: true }).partial().describe("The task fields this event changed (the whole task for a snapshot)"),
});

/** The one error body: `{ error: { code, message, details? } }`. */
export const ErrorBody = z.object({
	error: z.object({
		code: z.string().describe("Stable, machine-readable: invalid_request, task_not_found, rate_limited, …"),
		message: z.string(),
		details: z.unknown().optional().describe("Field problems for 400 ([{path, message}]), the task for 409"),
	}),
});

const StatusCounts = z.object(
	Object.fromEntries(TASK_STATUSES.map((s) => [s, z.number().int()])) as Record<(typeof TASK_STATUSES)[number], z.ZodNumber>,
);

export const Health = z.union([
	z.object({
		status: z.literal("ok"),
		queue_size: z.number().int(),
		running: z.number().int(),
		results_pending: z.number().int(),
		by_status: StatusCounts,
		shards: z.number().int(),
	}),
	z.object({ status: z.literal("ok") }).describe("Without credentials while auth is on"),
]);

/** `POST /v1/files`: the stored upload, referenced from task inputs as `{"$file": id}`. */
export const StoredFile = z.object({
	id: z.string().describe('"file_" and 32 hex digits'),
	bytes: z.number().int(),
	content_type: z.string(),
	sha256: z.string(),
});

/** `POST /v1/work/lease`: a task leased to a pull worker. */
export const LeaseGrant = z.object({
	task: z.object({ id: z.string(), type: z.string(), input: z.json(), attempt: z.number().int(), priority: z.enum(PRIORITIES) }),
	lease: z.object({
		token: z.string().describe("The lease's only credential: send it with every heartbeat, complete and fail"),
		expires_at: isoTime,
		heartbeat_s: z.number().describe("Send a heartbeat at least this often"),
	}),
});

export const HeartbeatAnswer = z.object({ expires_at: isoTime, cancel_requested: z.boolean().describe("Stop: the task was canceled") });
export const WorkAnswer = z.object({ id: z.string(), status: z.enum(TASK_STATUSES) });

/** `POST /process`: the seed template's envelope. */
export const SeedEnvelope = z.object({
	success: z.boolean(),
	code: z.union([z.literal(0), z.literal(1)]),
	msg: z.string(),
	data: z.object({ uuid: z.string(), result: z.unknown() }),
});

/** `POST /process` body: any JSON object; it becomes the input of PROCESS_TASK_TYPE. */
export const SeedBody = z.looseObject({ uuid: z.union([z.string(), z.number()]).optional() });
