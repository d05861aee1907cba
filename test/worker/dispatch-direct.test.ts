/**
 * DISPATCH=direct: the task's object starts a submitted task itself, with no queue message (the
 * cost project counts what that saves: test/cost/budgets.test.ts). Each request here runs the
 * worker with DISPATCH set to "direct" for that request; the API passes the mode to the task's
 * object with the submit, so the object behaves as deployed with the var. A start lost between
 * storing the task and starting it leaves the same state as a lost queue message, and the same
 * recovery alarm finds it (test/worker/lifecycle.test.ts "recovery of a lost queue message").
 */
import { beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../shared/waits";
import { cancelTask, getTask, settled, submitTask, warmUp, type EnvOverrides } from "./support/api";
import { newId } from "./support/ids";
import { storedState } from "./support/objects";
import { deliverBatch, queueMessage } from "./support/queue";

const DIRECT: EnvOverrides = { DISPATCH: "direct" };

beforeAll(warmUp);

describe("DISPATCH=direct", () => {
	it("starts the task inside the submit: it is already running when the 202 answers, and its result is the one stored", async () => {
		const id = newId("direct");
		const submitted = await submitTask({ id, type: "sleep", input: { ms: 1500 } }, { env: DIRECT });
		expect(submitted.res.status, submitted.text).toBe(202);
		// With the queue the answer says `queued`: the consumer hands the task over only later.
		expect(submitted.body).toMatchObject({ id, status: "running", attempts: 1 });
		expect(submitted.body.started_at).not.toBeNull();
		const { record } = await storedState(id);
		expect(record).toMatchObject({ status: "running", dispatched: true, recoveries: 0 });

		const done = await settled(id);
		expect(done).toMatchObject({ status: "succeeded", attempts: 1, output: { slept_ms: 1500 } });
	});

	it("takes any other value as the queue: a misspelled DISPATCH still answers queued, not running", async () => {
		const id = newId("misspelled");
		const submitted = await submitTask({ id, type: "sleep", input: { ms: 10 } }, { env: { DISPATCH: "Direct " } });
		expect(submitted.res.status, submitted.text).toBe(202);
		expect(submitted.body).toMatchObject({ id, status: "queued", attempts: 0 });
		expect(await settled(id)).toMatchObject({ status: "succeeded", attempts: 1 });
	});

	it("answers a no-op task's result in the submit itself with Prefer: wait", async () => {
		const { res, body } = await submitTask({ type: "echo", input: { a: 1 } }, { wait: 10, env: DIRECT });
		expect(res.status).toBe(200);
		expect(body).toMatchObject({ status: "succeeded", attempts: 1, output: { a: 1 } });
	});

	it("starts a task once: a repeated submit, and a queue message that turns up anyway (a recovery re-send), run nothing again", async () => {
		const id = newId("direct");
		const body = { id, type: "sleep", input: { ms: 800 } };
		expect((await submitTask(body, { env: DIRECT })).body.status).toBe("running");
		const again = await submitTask(body, { env: DIRECT });
		expect(again.res.status).toBe(202);
		expect(again.body).toMatchObject({ id, status: "running", attempts: 1 });
		const conflict = await submitTask({ ...body, input: { ms: 5 } }, { env: DIRECT });
		expect(conflict.res.status).toBe(409);

		const delivered = await deliverBatch("edgetask-tasks", [queueMessage({ id, reason: "recovery" })]);
		expect(delivered.explicitAcks).toHaveLength(1);
		const done = await settled(id);
		expect(done).toMatchObject({ status: "succeeded", attempts: 1, output: { slept_ms: 800 } });
	});

	it("holds a delayed task until its run_at, then starts it from its alarm", async () => {
		const id = newId("direct");
		const submitted = await submitTask({ id, type: "sleep", input: { ms: 10 }, delay_s: 1 }, { env: DIRECT });
		expect(submitted.res.status).toBe(202);
		expect(submitted.body).toMatchObject({ status: "queued", started_at: null });
		// Dispatched (no queue message will come), waiting for its time.
		expect((await storedState(id)).record).toMatchObject({ status: "queued", dispatched: true });
		const done = await settled(id, 15);
		expect(done.status).toBe("succeeded");
		expect(Date.parse(done.started_at ?? "")).toBeGreaterThanOrEqual(Date.parse(done.run_at));
	});

	it("retries a failed attempt from the task's own alarm (no queue retry involved)", async () => {
		const { body } = await submitTask({ type: "flaky", input: { fail_times: 1, ms: 10 } }, { wait: 15, env: DIRECT });
		expect(body).toMatchObject({ status: "succeeded", attempts: 2 });
	});

	it("cancels a task it started: the run stops and the task ends canceled", async () => {
		const id = newId("direct");
		expect((await submitTask({ id, type: "hang", input: {} }, { env: DIRECT })).body.status).toBe("running");
		await sleep(100);
		const canceled = await cancelTask(id);
		expect(canceled.res.status).toBe(200);
		expect((await getTask(id)).body).toMatchObject({ status: "canceled", attempts: 1, error: { code: "canceled" } });
	});
});
