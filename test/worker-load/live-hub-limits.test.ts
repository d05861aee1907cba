/**
 * The limits of the multi-task socket, held for real: 1,000 subscriptions to tasks that exist and
 * run on one socket (the 1,001st refused with too_many_subscriptions), and 1,000 hubs following
 * one task (the 1,001st refused with too_many_followers). Each then receives every task's end.
 * And subscriptions still being answered count toward the limit (1,001 unknown ids, two frames).
 * In the worker-load project: it runs after the others, so its load does not slow them.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_SUBSCRIPTIONS_PER_SOCKET } from "../../src/hub/SubscriptionHub";
import { MAX_FOLLOWERS } from "../../src/task/fanout";
import { cancelTask, pollTask, submitTask, warmUp } from "../worker/support/api";
import { expectSubscriberOrder, type Frame, isEvent, isTerminalEvent } from "../worker/support/events";
import { newId } from "../worker/support/ids";
import { followersOf } from "../worker/support/objects";
import { openSocket, type RecordingSocket } from "../worker/support/socket";

beforeAll(warmUp);

/** Runs `work` over `items`, `width` at a time (a 2-core machine shared with others). */
async function inBatches<T>(items: T[], width: number, work: (item: T) => Promise<unknown>): Promise<void> {
	for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(work));
}

function errorCode(frame: Frame): string | undefined {
	return frame.type === "error" ? (frame as { error: { code: string } }).error.code : undefined;
}

describe("limits of /v1/ws, held for real", () => {
	it(
		`${MAX_SUBSCRIPTIONS_PER_SOCKET} live subscriptions on one socket; the next is refused; all ${MAX_SUBSCRIPTIONS_PER_SOCKET} see their task end`,
		{ timeout: 300_000 },
		async () => {
			expect(MAX_SUBSCRIPTIONS_PER_SOCKET).toBe(1000);
			const ids = Array.from({ length: MAX_SUBSCRIPTIONS_PER_SOCKET + 1 }, () => newId("limit"));
			await inBatches(ids, 50, (id) => submitTask({ id, type: "hang", input: {}, timeout_s: 240 }));
			const socket = await openSocket("/v1/ws");
			const held = ids.slice(0, MAX_SUBSCRIPTIONS_PER_SOCKET);
			for (let i = 0; i < held.length; i += 250) socket.send({ type: "subscribe", ids: held.slice(i, i + 250) });
			await socket.waitFor(() => socket.events().length >= held.length, `${held.length} snapshots`, 120_000);
			expect(new Set(socket.events().map((e) => e.task_id))).toEqual(new Set(held));
			expect(socket.events().every((e) => e.type === "snapshot" && (e.data.status === "running" || e.data.status === "queued"))).toBe(true);

			const extra = ids[MAX_SUBSCRIPTIONS_PER_SOCKET]!;
			const from = socket.frames.length;
			socket.send({ type: "subscribe", ids: [extra] });
			const refused = await socket.waitFor((f) => f.type === "error", "the refusal", 15_000, from);
			expect(errorCode(refused)).toBe("too_many_subscriptions");
			expect(socket.events(extra)).toEqual([]);

			await inBatches(ids, 50, (id) => cancelTask(id));
			await socket.waitFor(() => held.every((id) => socket.events(id).some(isTerminalEvent)), "every task's end", 120_000);
			for (const id of held) {
				expectSubscriberOrder(socket.events(id), id);
				expect(socket.events(id).at(-1)!.type).toBe("canceled");
			}
			expect(socket.events(extra)).toEqual([]);
			expect(socket.close).toBeNull();
			await socket.ping();
			socket.shut();
		},
	);

	it(
		`${MAX_FOLLOWERS} hubs follow one task; the next is refused with too_many_followers; all ${MAX_FOLLOWERS} see it end`,
		{ timeout: 300_000 },
		async () => {
			expect(MAX_FOLLOWERS).toBe(1000);
			const id = newId("limit");
			await submitTask({ id, type: "hang", input: {}, timeout_s: 240 });
			await pollTask(id, (t) => t.status === "running", "the task to run");

			const sockets: RecordingSocket[] = [];
			await inBatches(
				Array.from({ length: MAX_FOLLOWERS }, (_, i) => i),
				50,
				async () => {
					const socket = await openSocket("/v1/ws");
					sockets.push(socket);
					socket.send({ type: "subscribe", ids: [id] });
					await socket.waitFor(isEvent, "the snapshot", 60_000);
				},
			);
			expect((await followersOf(id)).length).toBe(MAX_FOLLOWERS);

			const extra = await openSocket("/v1/ws");
			extra.send({ type: "subscribe", ids: [id] });
			const refused = await extra.waitFor((f) => f.type === "error" || isEvent(f), "an answer", 15_000);
			expect(refused).toMatchObject({ type: "error", error: { code: "too_many_followers", id } });
			await extra.ping();
			expect(extra.events()).toEqual([]);

			expect((await cancelTask(id)).res.status).toBe(200);
			for (const socket of sockets) {
				await socket.waitFor((f) => isEvent(f) && f.type === "canceled", "the end", 60_000);
				expect(socket.events(id).map((e) => e.type)).toEqual(["snapshot", "canceled"]);
			}
			expect(extra.events()).toEqual([]);
			// A finished task keeps no followers.
			expect(await followersOf(id)).toEqual([]);
			for (const socket of [...sockets, extra]) socket.shut();
		},
	);

	// 1,001 follow() calls to objects that do not exist yet.
	it("past 1000 subscriptions on one socket, pending ones counted: too_many_subscriptions", { timeout: 120_000 }, async () => {
		// Fill the socket with 1000 subscriptions: a frame's ids are recorded before the tasks answer,
		// so a second frame sent right behind the first finds them there. Unknown ids: nothing runs.
		const socket = await openSocket("/v1/ws");
		socket.send({ type: "subscribe", ids: Array.from({ length: 1000 }, () => newId()) });
		socket.send({ type: "subscribe", ids: [newId()] });
		const isTooMany = (f: Frame) => f.type === "error" && (f as { error: { code: string } }).error.code === "too_many_subscriptions";
		await socket.waitFor(isTooMany, "too_many_subscriptions", 60_000);
		await socket.ping();
		socket.shut();
	});
});
