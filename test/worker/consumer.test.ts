import { describe, expect, it } from "vitest";
import type { TaskMessage } from "../../src/task/model";
import { eventually, sleep } from "../shared/waits";
import { getTask, settled } from "./support/api";
import { newId } from "./support/ids";
import { createWithoutMessage, storedState } from "./support/objects";
import { deliverBatch as deliver, queueMessage as message } from "./support/queue";

/** Stores a queued task without sending its message, so only this test's batches reach it. */
async function createQueued(input: unknown, type = "sleep"): Promise<string> {
	return (await createWithoutMessage({ id: newId(), type, input })).id;
}

describe("queue consumer (edgetask-tasks)", () => {
	it("acks a task's message and the task starts, without the batch waiting for the run", async () => {
		const id = await createQueued({ ms: 1500 });
		const t0 = Date.now();
		const sent = message({ id, reason: "submit" } satisfies TaskMessage);
		const result = await deliver("edgetask-tasks", [sent]);
		const batchMs = Date.now() - t0;

		expect(result.outcome).toBe("ok");
		expect(result.explicitAcks).toEqual([sent.id]);
		expect(result.retryMessages).toEqual([]);
		expect(batchMs).toBeLessThan(1000);

		const running = await eventually(
			async () => {
				const { body } = await getTask(id);
				return body.status === "running" ? body : undefined;
			},
			"the task to start",
			3000,
		);
		expect(running.attempts).toBe(1);
		expect((await settled(id)).status).toBe("succeeded");
	});

	it("acks and drops malformed messages without throwing", async () => {
		const bad = [null, "text", 42, {}, { id: 7 }, { id: "not a valid id!" }, { id: "" }, [newId()]].map((b) => message(b));
		const result = await deliver("edgetask-tasks", bad);

		expect(result.outcome).toBe("ok");
		expect([...result.explicitAcks].sort()).toEqual(bad.map((m) => m.id).sort());
		expect(result.retryMessages).toEqual([]);
	});

	it("acks a message for a task that does not exist, and creates nothing", async () => {
		const id = newId();
		const result = await deliver("edgetask-tasks", [message({ id, reason: "submit" })]);

		expect(result.explicitAcks).toHaveLength(1);
		expect((await getTask(id)).res.status).toBe(404);
	});

	it("starts a task once however often its message is delivered", async () => {
		const id = await createQueued({ ms: 800 });
		// Two copies in one batch (handled concurrently), then another while it runs.
		const first = await deliver("edgetask-tasks", [message({ id, reason: "submit" }), message({ id, reason: "recovery" })]);
		expect(first.explicitAcks).toHaveLength(2);
		await eventually(async () => ((await getTask(id)).body.status === "running" ? true : undefined), "the task to start", 3000);
		const again = await deliver("edgetask-tasks", [message({ id, reason: "submit" }, 2)]);
		expect(again.explicitAcks).toHaveLength(1);

		const done = await settled(id);
		expect(done).toMatchObject({ status: "succeeded", attempts: 1 });
		// And once more after it finished: nothing changes.
		await deliver("edgetask-tasks", [message({ id, reason: "submit" }, 3)]);
		expect(await settled(id, 0)).toEqual(done);
	});
});

describe("dead-letter consumer (edgetask-dlq)", () => {
	it("fails a queued task whose message was dead-lettered, and releases its waiters", async () => {
		const id = await createQueued({ ms: 10 });
		const waiter = getTask(id, { wait: 20 });
		await sleep(200); // the waiter is parked in the object before the message is dead-lettered

		const result = await deliver("edgetask-dlq", [message({ id, reason: "submit" }, 11)]);
		expect(result.explicitAcks).toHaveLength(1);

		const { res, body, elapsed } = await waiter;
		expect(res.status).toBe(200);
		expect(body).toMatchObject({ status: "failed", attempts: 0, output: null, error: { code: "dead_lettered" } });
		expect(elapsed).toBeLessThan(5000);
		// Failed for good: the recovery alarm no longer re-sends it.
		const { record, alarm } = await storedState(id);
		expect(alarm).toBe(record?.expiresAt);
	});

	it("leaves a task alone that already ran", async () => {
		const id = await createQueued({ ms: 10 });
		await deliver("edgetask-tasks", [message({ id, reason: "submit" })]);
		const done = await settled(id);
		expect(done.status).toBe("succeeded");

		await deliver("edgetask-dlq", [message({ id, reason: "submit" }, 11)]);
		expect(await settled(id, 0)).toEqual(done);
	});
});
