import { metricsOf, type TaskRecord } from "../task/model";

/**
 * The one log line a task writes when it ends, as JSON so Workers Logs indexes every field
 * (filter by `status`, chart `total_ms`, group by `error_code`). It carries what describes the
 * run and nothing a caller sent or got back: never the input, the output, the error message (a
 * processor may echo its input there), the webhook URL, a key or a token.
 */
export interface TaskEndLog {
	event: "task.end";
	id: string;
	type: string;
	status: string;
	attempts: number;
	queue_ms: number | null;
	run_ms: number | null;
	total_ms: number | null;
	error_code: string | null;
}

/** The log line of a task that has just reached a terminal status. */
export function taskEndLog(r: TaskRecord): TaskEndLog {
	const metrics = metricsOf(r);
	return {
		event: "task.end",
		id: r.id,
		type: r.type,
		status: r.status,
		attempts: r.attempts,
		queue_ms: metrics.queue_ms,
		run_ms: metrics.run_ms,
		total_ms: metrics.total_ms,
		error_code: r.error?.code ?? null,
	};
}

/** Writes the task's end line (called once, from the task object's `finish`). */
export function logTaskEnd(r: TaskRecord): void {
	console.log(JSON.stringify(taskEndLog(r)));
}
