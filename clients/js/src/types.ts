/**
 * The wire contract of the edgetask HTTP API, as the client sees it. Kept free of server code
 * so the client runs anywhere; test/worker/client-types.test.ts fails if it drifts from the
 * server's own types (src/task.ts, src/events.ts).
 */

export type TaskStatus = "queued" | "running" | "succeeded" | "failed" | "canceled" | "timed_out";
export const TERMINAL_STATUSES: readonly TaskStatus[] = ["succeeded", "failed", "canceled", "timed_out"];

export type Priority = "high" | "normal" | "low";
export type WebhookEventFilter = "start" | "progress" | "completed";

/** A JSON value, as the server types one. */
export type Json = string | number | boolean | null | object;

export interface TaskError {
	code: string;
	message: string;
	/** More about the failure, when the processor or origin said more (e.g. field problems). */
	details?: Json;
}

export interface TaskProgress {
	percent: number;
	message: string | null;
}

/** Where a task can be read, followed and canceled. With API keys set they carry a capability token. */
export interface TaskUrls {
	get: string;
	ws: string;
	events: string;
	cancel: string;
	/** The task's output as bytes (a file output itself), once it succeeded. */
	output: string;
}

/** A task as `GET /v1/tasks/{id}` returns it; `Output` is the task type's output when known. */
export interface Task<Output = unknown, Input = unknown> {
	id: string;
	type: string;
	status: TaskStatus;
	priority: Priority;
	timeout_s: number;
	ttl_s: number;
	input: Input;
	output: Output | null;
	error: TaskError | null;
	progress: TaskProgress | null;
	/**
	 * While it waits for a slot of its type or origin, or (pull tasks) for a worker: how many
	 * waiting tasks start before it (0 = next). Else null.
	 */
	queue_position: number | null;
	attempts: number;
	created_at: string;
	/** It does not start before this: `created_at` + `delay_s`. */
	run_at: string;
	started_at: string | null;
	finished_at: string | null;
	metrics: { queue_ms: number | null; run_ms: number | null; total_ms: number | null };
	webhook: {
		url: string;
		events: WebhookEventFilter[];
		pending: number;
		deliveries: { seq: number; event: string; attempt: number; at: string; ok: boolean; status: number | null; error: string | null }[];
		/** Deliveries abandoned: after their last attempt, or because they could not be made. */
		given_up: { seq: number; event: string; attempts: number; at: string; reason: string }[];
	} | null;
	urls: TaskUrls;
}

export type TaskEventType = "snapshot" | "queued" | "running" | "progress" | "retrying" | "succeeded" | "failed" | "canceled" | "timed_out";

/**
 * One event of a task. `seq` counts from 1 per task; a `snapshot` (what a subscriber gets first)
 * carries the whole task and the seq of the last event it includes. Events the client made up
 * from a long-poll (no event stream available) are snapshots with `seq` 0.
 */
export interface TaskEvent {
	task_id: string;
	seq: number;
	type: TaskEventType;
	at: string;
	data: Partial<Task>;
}

/** A row of the task listing (`GET /v1/tasks`): the task without its input, output and webhook. */
export type TaskRow = Pick<
	Task,
	| "id"
	| "type"
	| "status"
	| "priority"
	| "progress"
	| "attempts"
	| "created_at"
	| "started_at"
	| "finished_at"
	| "metrics"
	| "error"
	| "urls"
>;

/** A page of the task listing, newest first; pass `next_cursor` back as `cursor` for the next (null: the last page). */
export interface TaskPage {
	tasks: TaskRow[];
	next_cursor: string | null;
}

/** Which page of the listing `list` asks for. */
export interface ListQuery {
	/** Only tasks in these statuses. */
	status?: TaskStatus | readonly TaskStatus[];
	/** Only tasks of this type. */
	type?: string;
	/** Rows per page, 1–500 (the server's default: 50). */
	limit?: number;
	/** The previous page's `next_cursor`. */
	cursor?: string;
}

/** A task type as `GET /v1/types` describes it. */
export interface TaskTypeInfo {
	type: string;
	/** `worker`: runs inside the Worker; `pull`: waits for a pull worker to lease it. */
	runs: "worker" | "pull";
	/** JSON Schema of the input as submitted; null when the type accepts any JSON or its schema cannot be expressed. */
	input_schema: Record<string, unknown> | null;
}

/** The JSON body of every error answer. */
export interface ErrorBody {
	error: { code: string; message: string; details?: unknown };
}

/** A stored file (`POST /v1/files`); use it in a task's input as `{ $file: id }`. */
export interface StoredFile {
	id: string;
	bytes: number;
	content_type: string;
	sha256: string;
}

/** A file in a task's input or output. */
export interface FileRef {
	$file: string;
	bytes?: number;
	content_type?: string;
	sha256?: string;
}

export function isFileRef(value: unknown): value is FileRef {
	return typeof value === "object" && value !== null && typeof (value as { $file?: unknown }).$file === "string";
}

/** `GET /health`: the full report with a key (or auth off), else only `{status}`. */
export interface Health {
	status: "ok";
	queue_size?: number;
	running?: number;
	results_pending?: number;
	by_status?: Record<TaskStatus, number>;
	shards?: number;
}

/** Fields of `POST /v1/tasks` besides `type` and `input`. */
export interface SubmitFields {
	/** Your id for the task: resubmitting the same id and body returns the stored task. Default: a fresh UUID made by the client. */
	id?: string;
	priority?: Priority;
	timeout_s?: number;
	ttl_s?: number;
	webhook?: string;
	webhook_events?: WebhookEventFilter[];
}

/**
 * What the caller knows at compile time about task types: their input and output. The server's
 * own processors provide one (see index.ts); other types are `unknown` in and out.
 */
export type TaskTypeMap = Record<string, { input: unknown; output: unknown }>;

/** A task type name: the known ones (for completion), or any string. */
export type TypeName<M extends TaskTypeMap> = (keyof M & string) | (string & {});
export type InputOf<M extends TaskTypeMap, T extends string> = T extends keyof M ? M[T]["input"] : unknown;
export type OutputOf<M extends TaskTypeMap, T extends string> = T extends keyof M ? M[T]["output"] : unknown;

export function isTerminalStatus(status: unknown): status is "succeeded" | "failed" | "canceled" | "timed_out" {
	return TERMINAL_STATUSES.includes(status as TaskStatus);
}

/** True for the event that ends a task's stream: a terminal event, or a snapshot of a finished task. */
export function isTerminalEvent(event: TaskEvent): boolean {
	return event.type === "snapshot" ? isTerminalStatus(event.data.status) : isTerminalStatus(event.type);
}
