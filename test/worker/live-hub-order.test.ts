/**
 * Event order on the multi-task socket (GET /v1/ws) when a subscription races the task's end:
 * per task the snapshot comes first, seq never goes backwards, and the terminal event is the last
 * word. The race is forced (the task ends while its `follow()` answer is on its way, so its
 * terminal event reaches the hub first) and then left to chance, many times each.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../shared/waits";
import { pollTask, submitTask, warmUp } from "./support/api";
import { expectSubscriberOrder, isEvent, isTerminalEvent } from "./support/events";
import { newId } from "./support/ids";
import { runInObject, taskStub } from "./support/objects";
import { openSocket, type RecordingSocket } from "./support/socket";

beforeAll(warmUp);

type Follow = (this: any, hub: string) => Promise<unknown>;
let classFollow: { proto: { follow: Follow }; original: Follow } | null = null;
afterAll(() => {
	if (classFollow) classFollow.proto.follow = classFollow.original;
});

/**
 * From now on, task `id`'s object answers follow() with a snapshot of it running, but ends the
 * task (relaying its end to that very hub) before the answer leaves. RPC finds methods on the
 * class, so the class's follow() is wrapped; other tasks are left alone.
 */
async function endWhileAnsweringFollow(id: string): Promise<void> {
	await runInObject(taskStub(id), (instance) => {
		const proto = Object.getPrototypeOf(instance) as { follow: Follow };
		classFollow ??= { proto, original: proto.follow };
		const { original } = classFollow;
		proto.follow = async function (this: any, hub: string) {
			const snapshot = await original.call(this, hub);
			if (this.record?.id === id) {
				await this.cancel();
				await sleep(50);
			}
			return snapshot;
		};
	});
}

/** Waits for the end of `id` on the socket, gives stragglers time to arrive, and checks the order. */
async function expectOrderedEnd(socket: RecordingSocket, id: string, label: string): Promise<void> {
	await socket.waitFor((f) => isEvent(f) && f.task_id === id && isTerminalEvent(f), `the end of ${id}`, 15_000);
	// A stale frame (a snapshot taken before the end) would arrive within the 50 ms hold below.
	await sleep(200);
	const events = socket.events(id);
	expectSubscriberOrder(events, label);
	expect(events.filter(isTerminalEvent)).toHaveLength(1);
}

describe("subscribing while the task ends", () => {
	it(
		"forced: the end is relayed before the follow answer, 25 times; the snapshot still comes first and the end last",
		{ timeout: 120_000 },
		async () => {
			const socket = await openSocket("/v1/ws");
			for (let i = 0; i < 25; i++) {
				const id = newId("order");
				await submitTask({ id, type: "hang", input: {}, timeout_s: 60 });
				await pollTask(id, (t) => t.status === "running", "the task to run");
				await endWhileAnsweringFollow(id);
				socket.send({ type: "subscribe", ids: [id] });
				await expectOrderedEnd(socket, id, `round ${i}`);
				const events = socket.events(id);
				expect(events.map((e) => e.type)).toEqual(["snapshot", "canceled"]);
				expect(events[0]!.data.status).toBe("running");
			}
			expect(socket.frames.filter((f) => f.type === "error")).toEqual([]);
			socket.shut();
		},
	);

	it("by chance: subscribe the moment a task is submitted that ends at once, 40 tasks, each in order", { timeout: 120_000 }, async () => {
		const socket = await openSocket("/v1/ws");
		const ids: string[] = [];
		for (let i = 0; i < 40; i++) {
			const id = newId("order");
			ids.push(id);
			// 0-20 ms tasks: their running and succeeded events race the subscription.
			await submitTask({ id, type: "sleep", input: { ms: i % 21 } });
			socket.send({ type: "subscribe", ids: [id] });
		}
		for (const [i, id] of ids.entries()) await expectOrderedEnd(socket, id, `task ${i}`);
		expect(socket.frames.filter((f) => f.type === "error")).toEqual([]);
		socket.shut();
	});

	it("progress, retries and the end of tasks followed mid-run arrive in order", { timeout: 60_000 }, async () => {
		const socket = await openSocket("/v1/ws");
		const ids = [newId("order"), newId("order"), newId("order")];
		await submitTask({ id: ids[0], type: "sleep", input: { ms: 1500 } });
		await submitTask({ id: ids[1], type: "flaky", input: { fail_times: 1, ms: 300 } });
		await submitTask({ id: ids[2], type: "misbehave", input: { progress: [{ percent: 10 }, { percent: 20 }], hold_ms: 300 } });
		socket.send({ type: "subscribe", ids });
		for (const id of ids) await expectOrderedEnd(socket, id, id);
		socket.shut();
	});
});
