import { NO_DELIVERIES, toTask, type Task, type TaskRecord } from "../task/model";

/** Longest error message a listing row carries (the task itself has the whole message). */
const MAX_ROW_ERROR_MESSAGE = 256;

/**
 * A task as `GET /v1/tasks` lists it: what it is and how it went, never its input or output
 * (those can be large and belong to `GET /v1/tasks/{id}`).
 */
export type TaskRow = Pick<
	Task,
	"id" | "type" | "status" | "priority" | "progress" | "attempts" | "created_at" | "started_at" | "finished_at" | "metrics" | "error"
>;

/** What a task's health report carries for the listing (see health/StatsShard.ts). */
export interface ListingEntry {
	type: string;
	/** Epoch ms after which the task is gone (null while it runs): a listing never shows it past then. */
	expiresAt: number | null;
	/** The TaskRow as JSON, stored and returned as is. */
	row: string;
}

/** The listing row of a task as stored now. */
export function taskRow(r: TaskRecord): TaskRow {
	const t = toTask(r, NO_DELIVERIES);
	return {
		id: t.id,
		type: t.type,
		status: t.status,
		priority: t.priority,
		progress: t.progress,
		attempts: t.attempts,
		created_at: t.created_at,
		started_at: t.started_at,
		finished_at: t.finished_at,
		metrics: t.metrics,
		error: t.error && { code: t.error.code, message: t.error.message.slice(0, MAX_ROW_ERROR_MESSAGE) },
	};
}

/** The listing entry a report carries for this task. */
export function listingEntry(r: TaskRecord): ListingEntry {
	return { type: r.type, expiresAt: r.expiresAt, row: JSON.stringify(taskRow(r)) };
}
