/**
 * A pull task's object on the real runtime, past the HTTP API: while a worker holds the lease
 * the object keeps nothing in memory that the lease needs — its alarm at the lease's expiry is
 * the durable deadline (so the object can hibernate), and that alarm alone re-queues or fails it.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { TaskSpec } from "../../src/task/model";
import { WORK_LANE } from "../../src/workers/WorkLane";
import { storedState, taskStub } from "./support/objects";

function pullSpec(id: string, type: string, maxAttempts: number): TaskSpec {
	return {
		id,
		type,
		input: { n: 1 },
		priority: "normal",
		timeoutS: 900,
		ttlS: 3600,
		maxAttempts,
		webhook: null,
		webhookEvents: [],
		fingerprint: id,
		pull: { leaseS: 1 },
	};
}

describe("a leased pull task's object", () => {
	it("holds no attempt in memory: the alarm at the lease's expiry re-queues it, then fails it execution_lost", async () => {
		const type = `obj-${crypto.randomUUID().slice(0, 8)}`;
		const id = `${type}-task`;
		await taskStub(id).submit(pullSpec(id, type, 2), 0);
		const grant = await env.WORK_LANE.getByName(WORK_LANE).lease([type], "test-worker", 1000);
		expect(grant?.task).toMatchObject({ id, attempt: 1 });

		const leased = await storedState(id);
		expect(leased.record).toMatchObject({ status: "running", attempts: 1, lease: { workerId: "test-worker" } });
		// The deadline is stored, not a timer: the alarm points at the lease's expiry.
		expect(leased.alarm).toBe(leased.record?.lease?.expiresAt);
		await runInDurableObject(taskStub(id), async (instance) => {
			const held = instance as unknown as { inFlight: unknown; attemptActive: boolean; abortAttempt: unknown };
			expect(held.inFlight).toBeNull();
			expect(held.attemptActive).toBe(false);
			expect(held.abortAttempt).toBeNull();
		});

		// No heartbeat: once the lease has run out, the alarm counts the attempt and re-queues the task.
		await new Promise((resolve) => setTimeout(resolve, 1100));
		expect(await runDurableObjectAlarm(taskStub(id))).toBe(true);
		const requeued = await storedState(id);
		expect(requeued.record).toMatchObject({ status: "queued", attempts: 1, error: { code: "execution_lost" } });

		// After its backoff it waits for a worker again; the second lapse uses its last attempt.
		// (its own alarm offers it to the lane when the backoff ends, within 1 s)
		const second = await env.WORK_LANE.getByName(WORK_LANE).lease([type], "test-worker", 5000);
		expect(second?.task).toMatchObject({ id, attempt: 2 });
		expect(second?.lease.token).not.toBe(grant?.lease.token);
		await new Promise((resolve) => setTimeout(resolve, 1100));
		await runDurableObjectAlarm(taskStub(id));
		const failed = await storedState(id);
		expect(failed.record).toMatchObject({ status: "failed", attempts: 2, error: { code: "execution_lost" } });
	});
});
