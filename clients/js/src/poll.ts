import { HttpError, RateLimitedError } from "./errors";
import { abortReason, delay, type Http, type TaskLocation } from "./http";
import { isTerminalStatus, type Task } from "./types";

/** Long-poll length when nobody watches progress: one request per 25 s, well under proxy idle limits. */
const QUIET_WAIT_S = 25;
/** Long-poll length while progress is wanted: progress reaches the caller at least once a second. */
const PROGRESS_WAIT_S = 1;
const MAX_NETWORK_RETRIES = 5;

/**
 * Waits for a task by long-polling `GET /v1/tasks/{id}` with `Prefer: wait=N`: the server answers
 * the moment the task ends, or after N s with the task as it stands, which is passed to
 * `onTask`. For platforms without WebSockets (Node 20). Network errors are retried with backoff.
 */
export async function pollUntilEnd(
	http: Http,
	at: TaskLocation,
	signal: AbortSignal,
	wantProgress: boolean,
	onTask: (task: Task) => void,
): Promise<Task> {
	let failures = 0;
	for (;;) {
		const started = Date.now();
		let task: Task;
		try {
			const wait = wantProgress ? PROGRESS_WAIT_S : QUIET_WAIT_S;
			({ body: task } = await http.request<Task>(http.taskUrl(at, ""), { headers: { prefer: `wait=${wait}` }, signal }));
			failures = 0;
		} catch (e) {
			if (signal.aborted) throw abortReason(signal);
			if (e instanceof HttpError && !(e instanceof RateLimitedError)) throw e;
			if (++failures > MAX_NETWORK_RETRIES) throw e;
			await delay(Math.min(5_000, 250 * 2 ** failures), signal);
			continue;
		}
		onTask(task);
		if (isTerminalStatus(task.status)) return task;
		// A server (or proxy) that ignores Prefer: wait answers at once; do not spin on it.
		if (Date.now() - started < 200) await delay(500, signal);
	}
}
