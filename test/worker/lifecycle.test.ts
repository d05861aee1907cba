import { env } from "cloudflare:workers";
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { toSpec } from "../../src/api/tasks";
import { eventually, sleep } from "../shared/waits";
import { getTask, settled, submitTask } from "./support/api";
import { newId } from "./support/ids";
import { storedState, taskStub } from "./support/objects";

/** QUEUED_RECOVERY_S as vitest.config.ts sets it for the tests. */
const RECOVERY_MS = 2000;

/** Sleeps until `at` (epoch ms) has passed by `marginMs`. */
async function sleepPast(at: number, marginMs = 100): Promise<void> {
	const ms = at + marginMs - Date.now();
	if (ms > 0) await sleep(ms);
}

describe("TTL", () => {
	it("deletes the finished task and everything it stored when its alarm finds the TTL passed", async () => {
		const id = newId();
		const { body: task } = await submitTask({ id, type: "sleep", input: { ms: 10 }, ttl_s: 1 }, { wait: 10 });
		expect(task.status).toBe("succeeded");
		if (task.finished_at === null) throw new Error("finished task without finished_at");

		// The alarm points at the expiry, finished_at + ttl_s, once the health shard has the
		// final status (until then it stays early, to retry that report).
		const expiresAt = Date.parse(task.finished_at) + 1000;
		const before = await eventually(
			async () => {
				const state = await storedState(id);
				return state.alarm === expiresAt ? state : undefined;
			},
			"the alarm to point at the expiry",
			900,
		);
		expect(before.record?.expiresAt).toBe(expiresAt);

		// An alarm that runs early deletes nothing and re-arms itself for the expiry.
		await runDurableObjectAlarm(taskStub(id));
		expect((await getTask(id)).res.status).toBe(200);
		expect((await storedState(id)).alarm).toBe(expiresAt);

		await sleepPast(expiresAt);
		await runDurableObjectAlarm(taskStub(id)); // false if the runtime already ran it: either way it has run

		const gone = await getTask(id, { wait: 5 });
		expect(gone.res.status).toBe(404);
		expect(gone.body).toMatchObject({ error: { code: "task_not_found" } });
		const after = await storedState(id);
		expect(after.record).toBeNull();
		expect(after.tables).toEqual([]);
		// Not even the runtime's own metadata table is left behind.
		expect(after.allTables).toEqual([]);
		expect(after.alarm).toBeNull();
	});

	it("keeps a finished task readable before its TTL", async () => {
		const id = newId();
		const { body } = await submitTask({ id, type: "echo", input: 1, ttl_s: 60 }, { wait: 10 });
		expect(body.status).toBe("succeeded");
		const expiresAt = Date.parse(body.finished_at ?? "") + 60_000;
		const { record } = await eventually(async () => {
			const state = await storedState(id);
			return state.alarm === expiresAt ? state : undefined;
		}, "the alarm to point at the expiry");
		expect(record?.expiresAt).toBe(expiresAt);
		expect((await getTask(id)).body).toMatchObject({ id, output: 1 });
	});
});

describe("recovery of a lost queue message", () => {
	it("re-sends the message of a task left queued past QUEUED_RECOVERY_S, and the task completes", async () => {
		const id = newId();
		const spec = await toSpec(env, { id, type: "sleep", input: { ms: 50 } });
		// Stored, but its message is never sent: as if the send after `create` had been lost.
		const { outcome, task } = await taskStub(id).create(spec);
		expect(outcome).toBe("created");
		expect(task.status).toBe("queued");

		const created = await storedState(id);
		const recoverAt = Date.parse(task.created_at) + RECOVERY_MS;
		expect(created.record).toMatchObject({ dispatched: false, recoveries: 0, recoverAt });
		expect(created.alarm).toBe(recoverAt);

		// Before the deadline the alarm does nothing but re-arm: the message is not presumed lost yet.
		await runDurableObjectAlarm(taskStub(id));
		const early = await storedState(id);
		expect(early.record).toMatchObject({ status: "queued", dispatched: false, recoveries: 0 });
		expect(early.alarm).toBe(recoverAt);
		expect((await getTask(id, { wait: 1 })).body.status).toBe("queued");

		await sleepPast(recoverAt);
		await runDurableObjectAlarm(taskStub(id)); // false if the runtime ran it first

		const done = await settled(id, 10);
		expect(done).toMatchObject({ id, status: "succeeded", output: { slept_ms: 50 }, attempts: 1 });
		expect(done.metrics.queue_ms).toBeGreaterThanOrEqual(RECOVERY_MS);
		const after = await storedState(id);
		expect(after.record).toMatchObject({ dispatched: true, recoveries: 1 });
	});

	it("recovers on its own, without a test driving the alarm", async () => {
		const id = newId();
		await taskStub(id).create(await toSpec(env, { id, type: "echo", input: "found" }));

		const done = await settled(id, 10);
		expect(done).toMatchObject({ status: "succeeded", output: "found", attempts: 1 });
		expect(done.metrics.queue_ms).toBeGreaterThanOrEqual(RECOVERY_MS);
	});
});
