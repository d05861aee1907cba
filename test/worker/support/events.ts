/** Task events as the live channels (WebSocket, SSE) carry them, and checks on their order. */
import { expect } from "vitest";
import type { Task } from "../../../src/task/model";

export type EventType = "snapshot" | "queued" | "running" | "progress" | "retrying" | "succeeded" | "failed" | "canceled" | "timed_out";
export const TERMINAL_TYPES: readonly string[] = ["succeeded", "failed", "canceled", "timed_out"];

/** A task event as the wire carries it. */
export interface WireEvent {
	task_id: string;
	seq: number;
	type: EventType;
	at: string;
	data: Partial<Task> & Record<string, unknown>;
}

export interface ErrorFrame {
	type: "error";
	error: { code: string; message: string; id?: string };
}

/** Fields a frame may carry besides the known ones; tests read them loosely. */
type OtherFields = { [k: string]: any };

/** Anything a socket may send: events, errors, pongs, acks. */
export type Frame = (WireEvent & OtherFields) | (ErrorFrame & OtherFields) | ({ type: string } & OtherFields);

export function isEvent(frame: Frame): frame is WireEvent {
	return typeof (frame as WireEvent).seq === "number" && typeof (frame as WireEvent).task_id === "string";
}

export function isTerminalEvent(frame: Frame): boolean {
	if (!isEvent(frame)) return false;
	return TERMINAL_TYPES.includes(frame.type) || (frame.type === "snapshot" && TERMINAL_TYPES.includes(String(frame.data.status)));
}

/** Seqs strictly increase; returns them. */
export function expectIncreasingSeqs(events: WireEvent[]): number[] {
	const seqs = events.map((e) => e.seq);
	for (let i = 1; i < seqs.length; i++) {
		expect(seqs[i], `seq after ${seqs[i - 1]} in ${JSON.stringify(events.map((e) => [e.seq, e.type]))}`).toBeGreaterThan(seqs[i - 1]!);
	}
	return seqs;
}

/** Event types with consecutive progress events collapsed to one `progress*`, for order checks. */
export function shape(events: WireEvent[]): string[] {
	const out: string[] = [];
	for (const e of events) {
		const t = e.type === "progress" ? "progress*" : e.type;
		if (t === "progress*" && out.at(-1) === "progress*") continue;
		out.push(t);
	}
	return out;
}

/**
 * What a subscriber must see of one task: the snapshot first, seqs that only increase, and
 * nothing after the terminal event (or a terminal snapshot).
 */
export function expectSubscriberOrder(events: WireEvent[], label = ""): void {
	const seen = `${label}: ${JSON.stringify(events.map((e) => `${e.seq}:${e.type}${e.type === "snapshot" ? `(${String(e.data.status)})` : ""}`))}`;
	expect(events[0]?.type, `the snapshot comes first; ${seen}`).toBe("snapshot");
	for (let i = 1; i < events.length; i++)
		expect(events[i]!.seq, `seq goes backwards or repeats; ${seen}`).toBeGreaterThan(events[i - 1]!.seq);
	const end = events.findIndex(isTerminalEvent);
	expect(end === -1 || end === events.length - 1, `nothing follows the end; ${seen}`).toBe(true);
}
