import { TERMINAL_STATUSES, type Task, type TaskStatus, type WebhookEventFilter } from "./model";

/**
 * One event model, delivered four ways (long-poll, WebSocket, SSE, webhook). A task emits, in
 * order: `queued`, `running` (per attempt), `progress` (0..n), `retrying` (between attempts),
 * and exactly one terminal event. `snapshot` is not emitted by the task: it is what a
 * subscriber gets first when it joins, carrying the whole task as it stands.
 */
export type TaskEventType = "snapshot" | "queued" | "running" | "progress" | "retrying" | "succeeded" | "failed" | "canceled" | "timed_out";

export interface TaskEvent {
	task_id: string;
	/** Per-task sequence number, from 1; a snapshot carries the seq of the last event it includes. */
	seq: number;
	type: TaskEventType;
	/** ISO 8601. */
	at: string;
	/** The task fields this event changed (the whole task, for a snapshot). */
	data: Partial<Task>;
}

/** A terminal event, or a snapshot of a task that has ended: nothing follows it. */
export function isTerminalEvent(event: TaskEvent): boolean {
	const status = event.type === "snapshot" ? event.data.status : event.type;
	return TERMINAL_STATUSES.includes(status as TaskStatus);
}

/** Which webhook filter an event falls under, if any. */
export function webhookFilterFor(event: TaskEvent): WebhookEventFilter | null {
	if (event.type === "running") return "start";
	if (event.type === "progress") return "progress";
	return event.type !== "snapshot" && isTerminalEvent(event) ? "completed" : null;
}

export function snapshotEvent(task: Task, seq: number): TaskEvent {
	return { task_id: task.id, seq, type: "snapshot", at: new Date().toISOString(), data: task };
}

/** Server-Sent Events framing: `event:` is the type, `id:` the sequence (so Last-Event-ID resumes). */
export function sseFrame(event: TaskEvent, json: string = JSON.stringify(event)): string {
	return `id: ${event.seq}\nevent: ${event.type}\ndata: ${json}\n\n`;
}

/** Most progress events a task sends per second: faster calls are coalesced to the latest. */
export const PROGRESS_EVENTS_PER_S = 4;
/** SSE keep-alive comment interval (proxies drop silent streams). */
export const SSE_KEEPALIVE_MS = 15_000;
