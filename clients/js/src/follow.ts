import { HttpError, RateLimitedError } from "./errors";
import { abortReason, delay, type Http, type TaskLocation } from "./http";
import { socketEvents, type ConnectSocket } from "./socket";
import { sseEvents } from "./sse";
import { isTerminalEvent, isTerminalStatus, type Task, type TaskEvent } from "./types";

/** How events reach the client: a WebSocket (`connect`) or, without one, Server-Sent Events over fetch. */
export interface EventSource {
	http: Http;
	connect: ConnectSocket | null;
	/** Reads the task (resolving its capability token when an API key alone cannot open a socket). */
	getTask(at: TaskLocation, signal: AbortSignal): Promise<Task>;
}

/** Longest pause between reconnection attempts. */
const MAX_BACKOFF_MS = 5_000;

/**
 * Every event of a task after `after` (from a snapshot when `after` is null), each exactly once
 * and in order, until the terminal event. A connection that closes or drops before the end is
 * resumed with `after=<last seq seen>`, so nothing is lost and nothing repeats; events already
 * seen are skipped should a server send them again. Ends quietly if the task had already ended
 * at or before `after`.
 */
export async function* followEvents(
	source: EventSource,
	at: TaskLocation,
	after: number | null,
	signal: AbortSignal,
): AsyncGenerator<TaskEvent> {
	let last = after;
	let quiet = 0;
	for (;;) {
		let received = 0;
		try {
			for await (const event of connection(source, at, last, signal)) {
				if (last !== null && event.seq <= last && event.type !== "snapshot") continue;
				if (last !== null && event.type === "snapshot") continue;
				received++;
				last = event.seq;
				yield event;
				if (isTerminalEvent(event)) return;
			}
		} catch (e) {
			if (signal.aborted) throw abortReason(signal);
			if (e instanceof RateLimitedError) await delay(e.retryAfter * 1000, signal);
			else if (e instanceof HttpError) throw e;
			// Anything else (a socket that failed to open, a reset connection) is worth another try.
		}
		if (signal.aborted) throw abortReason(signal);
		if (received > 0) {
			quiet = 0;
			continue;
		}
		// Nothing new on this connection: the task may have ended at or before `last`, or the
		// server may be unreachable. Ask over HTTP; a 404 or 401 ends the iteration with its error.
		quiet++;
		const task = await readTask(source, at, signal);
		if (task && isTerminalStatus(task.status)) {
			if (last === null) yield { task_id: task.id, seq: 0, type: "snapshot", at: new Date().toISOString(), data: task };
			return;
		}
		await delay(Math.min(MAX_BACKOFF_MS, 250 * 2 ** (quiet - 1)), signal);
	}
}

/** The task, or null when the server could not be asked (it is retried with the stream). */
async function readTask(source: EventSource, at: TaskLocation, signal: AbortSignal): Promise<Task | null> {
	try {
		return await source.getTask(at, signal);
	} catch (e) {
		if (signal.aborted) throw abortReason(signal);
		if (e instanceof HttpError && !(e instanceof RateLimitedError)) throw e;
		return null;
	}
}

function connection(source: EventSource, at: TaskLocation, after: number | null, signal: AbortSignal): AsyncGenerator<TaskEvent> {
	const query: Record<string, string> = after === null ? {} : { after: String(after) };
	if (source.connect) return socketEvents(source.connect, source.http.taskUrl(at, "/ws", query), signal);
	return sseEvents(source.http, source.http.taskUrl(at, "/events", query), signal);
}
