import type { ErrorBody, Task } from "./types";

/** Base class of every error the client throws on purpose (network errors and aborts pass through as they are). */
export class EdgetaskError extends Error {
	constructor(message: string) {
		super(message);
		this.name = new.target.name;
	}
}

/** The server answered with an error status; `body` is its JSON error envelope. */
export class HttpError extends EdgetaskError {
	readonly code: string;
	readonly details: unknown;

	constructor(
		readonly status: number,
		readonly body: ErrorBody,
		readonly headers: Headers,
	) {
		super(`HTTP ${status} ${body.error.code}: ${body.error.message}`);
		this.code = body.error.code;
		this.details = body.error.details;
	}
}

/** 429 (or 503 with Retry-After) after the client's retries ran out; `retryAfter` is in seconds. */
export class RateLimitedError extends HttpError {
	constructor(
		status: number,
		body: ErrorBody,
		headers: Headers,
		readonly retryAfter: number,
	) {
		super(status, body, headers);
	}
}

/** The task ended without succeeding (`failed` or `timed_out` on the server); `task` is its final state. */
export class TaskFailedError extends EdgetaskError {
	constructor(readonly task: Task) {
		super(`Task ${task.id} ${task.status}${task.error ? `: ${task.error.code}: ${task.error.message}` : ""}`);
	}
}

/** The task was canceled (by anyone: this client, another one, or an AbortSignal of `run`). */
export class TaskCanceledError extends TaskFailedError {}

/**
 * The caller's own wait (`timeoutMs`) ran out before the task ended. The task goes on running;
 * `task` is the last state seen (null if none was seen yet).
 */
export class TaskTimeoutError extends EdgetaskError {
	constructor(
		readonly taskId: string,
		readonly timeoutMs: number,
		readonly task: Task | null,
	) {
		super(`Task ${taskId} did not end within ${timeoutMs} ms`);
	}
}

/** The error a finished, unsuccessful task is reported with. */
export function taskEndError(task: Task): TaskFailedError {
	return task.status === "canceled" ? new TaskCanceledError(task) : new TaskFailedError(task);
}
