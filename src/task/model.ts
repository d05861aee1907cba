/**
 * The task model: what a task is (public JSON), what its object stores, and what travels on
 * the queue. The lifecycle itself lives in TaskCoordinator.ts.
 */

export const PRIORITIES = ["high", "normal", "low"] as const;

/**
 * Deployed, one alarm invocation may run at most 15 minutes; past that it is cut off (and the
 * run it held would be counted as lost and run again). A task's run is held by one invocation.
 */
export const ALARM_WALL_LIMIT_S = 900;
/**
 * Kept free in the invocation that holds a run: storing the outcome and waiting for its health
 * acknowledgement take at most about 2 s; the rest is margin. Webhook deliveries never run there.
 */
export const RUN_HEADROOM_S = 60;
/** Longest `timeout_s` of a task run by the service (840 s): its run fits one alarm invocation with headroom. */
export const MAX_TIMEOUT_S = ALARM_WALL_LIMIT_S - RUN_HEADROOM_S;
export type Priority = (typeof PRIORITIES)[number];

/**
 * A JSON value: what task inputs and outputs are. Deliberately shallow: RPC's type mapping
 * turns `unknown` into `never` and gives up on a recursive JSON type.
 */
export type Json = string | number | boolean | null | object;

/** Every status, in lifecycle order; the last four are terminal. */
export const TASK_STATUSES = ["queued", "running", "succeeded", "failed", "canceled", "timed_out"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const TERMINAL_STATUSES: readonly TaskStatus[] = ["succeeded", "failed", "canceled", "timed_out"];

export function isTerminal(status: TaskStatus): boolean {
	return TERMINAL_STATUSES.includes(status);
}

/** A count per status, all zero: what /health and its shards add up. */
export function zeroCounts(): Record<TaskStatus, number> {
	return Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
}

/** Which events a task's webhook is sent for: its start, its progress, its end. */
export const WEBHOOK_EVENT_FILTERS = ["start", "progress", "completed"] as const;
export type WebhookEventFilter = (typeof WEBHOOK_EVENT_FILTERS)[number];

export interface TaskError {
	code: string;
	message: string;
	/** What the processor or backend said beyond the message (e.g. an origin's status and body). */
	details?: Json;
}

export interface TaskProgress {
	percent: number;
	message: string | null;
}

import type { LeaseState } from "../workers/lease";

/** One webhook delivery attempt, as recorded on the task. */
export interface WebhookAttempt {
	seq: number;
	event: string;
	attempt: number;
	at: string;
	ok: boolean;
	status: number | null;
	error: string | null;
}

/** A webhook delivery abandoned, as recorded on the task: after its last attempt, or because it could not be made. */
export interface WebhookGiveUp {
	seq: number;
	event: string;
	/** Attempts made before giving up. */
	attempts: number;
	at: string;
	reason: string;
}

/** A task's webhook deliveries as clients see them (kept by webhooks/outbox.ts, apart from the record). */
export interface WebhookView {
	/** Deliveries still owed. */
	pending: number;
	/** The latest attempts and their outcomes. */
	deliveries: WebhookAttempt[];
	given_up: WebhookGiveUp[];
}

/** For views of a task that show no webhook deliveries (listing rows, log lines). */
export const NO_DELIVERIES: WebhookView = { pending: 0, deliveries: [], given_up: [] };

/** The task as clients see it (GET /v1/tasks/{id}). Timestamps are ISO 8601. */
export interface Task {
	id: string;
	type: string;
	status: TaskStatus;
	priority: Priority;
	/** Deadline of one attempt, and how long the task is kept once it ends. */
	timeout_s: number;
	ttl_s: number;
	input: Json;
	output: Json;
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
		deliveries: WebhookAttempt[];
		given_up: WebhookGiveUp[];
	} | null;
}

/** A validated submission, as the API hands it to the task's object. */
export interface TaskSpec {
	id: string;
	type: string;
	input: Json;
	priority: Priority;
	timeoutS: number;
	ttlS: number;
	maxAttempts: number;
	webhook: string | null;
	webhookEvents: WebhookEventFilter[];
	/** Seconds after submission before it may start (`delay_s`; absent: 0). */
	delayS?: number;
	/** Hash of the normalised body: the same id with a different body is a conflict. */
	fingerprint: string;
	/** Set for a `WORKER_TYPES` type: the task never runs in the Worker; an external worker leases it. */
	pull?: { leaseS: number };
}

/** What the task's object persists: the spec plus lifecycle state. Times are epoch ms. */
export interface TaskRecord extends TaskSpec {
	status: TaskStatus;
	output: Json;
	error: TaskError | null;
	progress: TaskProgress | null;
	attempts: number;
	createdAt: number;
	startedAt: number | null;
	finishedAt: number | null;
	/** This task's own processing time in its last attempt, never anyone else's. */
	runMs: number | null;
	/** True once a queue message for the task reached its object: it may start. */
	dispatched: boolean;
	/** When a queued, undispatched task is presumed to have lost its message. */
	recoverAt: number;
	/** How many times the object re-sent a lost message. */
	recoveries: number;
	/**
	 * A delivered task starts no earlier than this: its `run_at`, the end of a retry's backoff,
	 * or, while it waits in its lane's line, when it asks the lane again if it heard nothing.
	 */
	runAfter: number;
	/** When it may start at the earliest (`run_at`); its place in a lane's line counts from here. */
	runAt: number;
	/** The lane (scheduling/lanes.ts) it last asked for a slot, or null: its type has no limit. */
	lane: string | null;
	/** Where it stands with that lane: not in it, in line (or maybe: an answer was lost), holding a slot. */
	laneState: "out" | "waiting" | "holding";
	/** The last position its lane told it, while in line. */
	queuePosition: number | null;
	/** When everything the task stored is deleted. Set once it is terminal. */
	expiresAt: number | null;
	/** Bumped on every change; orders the health reports. */
	version: number;
	/** The health shard this task reports to (absent on tasks stored before it was recorded). */
	healthShard?: number;
	/**
	 * Sequence number of the last event emitted. The stored record may lag behind its events:
	 * progress is stored in its event alone, without rewriting the record (loading catches up).
	 */
	eventSeq: number;
	/** Pull tasks: the latest lease granted (kept once it ends, to answer its late calls). */
	lease?: LeaseState | null;
	/** Pull tasks: the running attempt ends `timed_out` at this time. */
	attemptDeadline?: number | null;
	/** Pull tasks: it waits in the work lane for a worker. */
	offered?: boolean;
}

/** The queue message: only the id travels; the input stays in the task's object. */
export interface TaskMessage {
	id: string;
	/** Why the message was sent, for logs: first submit or a recovery re-send. */
	reason: "submit" | "recovery";
}

/** True while the task waits in a lane's line with a place: for a slot of its type or origin, or (pull tasks) for a worker. */
export function inLine(r: TaskRecord): boolean {
	return r.status === "queued" && (r.pull ? r.offered === true : r.laneState === "waiting");
}

/** A record stored before scheduling existed: no delay, never in a lane. */
export function withSchedulingDefaults(stored: TaskRecord): TaskRecord {
	const r: Partial<TaskRecord> = stored;
	return {
		...stored,
		delayS: r.delayS ?? 0,
		runAt: r.runAt ?? stored.createdAt,
		lane: r.lane ?? null,
		laneState: r.laneState ?? "out",
		queuePosition: r.queuePosition ?? null,
	};
}

export function iso(ms: number | null): string | null {
	return ms === null ? null : new Date(ms).toISOString();
}

/** A task's `metrics` (queue, run and total time in ms) as its record stands. */
export function metricsOf(r: TaskRecord): Task["metrics"] {
	return {
		queue_ms: r.startedAt === null ? null : r.startedAt - r.createdAt,
		run_ms: r.runMs,
		total_ms: r.finishedAt === null ? null : r.finishedAt - r.createdAt,
	};
}

/** The public view of a stored task; `webhook` is its outbox's view (unused when the task has no webhook). */
export function toTask(r: TaskRecord, webhook: WebhookView): Task {
	return {
		id: r.id,
		type: r.type,
		status: r.status,
		priority: r.priority,
		timeout_s: r.timeoutS,
		ttl_s: r.ttlS,
		input: r.input,
		output: r.output ?? null,
		error: r.error,
		progress: r.progress,
		queue_position: inLine(r) ? r.queuePosition : null,
		attempts: r.attempts,
		created_at: new Date(r.createdAt).toISOString(),
		run_at: new Date(r.runAt).toISOString(),
		started_at: iso(r.startedAt),
		finished_at: iso(r.finishedAt),
		metrics: metricsOf(r),
		webhook: r.webhook === null ? null : { url: r.webhook, events: r.webhookEvents, ...webhook },
	};
}
