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
import { cancelTask, getTask } from "./support/api";
import { storedState, taskStub } from "./support/objects";
import { taskSocket } from "./support/socket";

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
		const socket = await taskSocket(id);
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
		// Subscribers are told: a `retrying` event with the lost attempt's error.
		const retrying = await socket.waitFor((f) => f.type === "retrying", "a retrying event", 5000);
		expect(retrying.data).toMatchObject({ status: "queued", attempts: 1, error: { code: "execution_lost" } });
		// The lapsed lease is over: its late calls change nothing.
		expect(await taskStub(id).heartbeat(grant?.lease.token ?? "", null)).toMatchObject({ kind: "lease_lost" });

		// After its backoff it waits for a worker again; the second lapse uses its last attempt.
		// (its own alarm offers it to the lane when the backoff ends, within 1 s)
		const second = await env.WORK_LANE.getByName(WORK_LANE).lease([type], "test-worker", 5000);
		expect(second?.task).toMatchObject({ id, attempt: 2 });
		expect(second?.lease.token).not.toBe(grant?.lease.token);
		await new Promise((resolve) => setTimeout(resolve, 1100));
		await runDurableObjectAlarm(taskStub(id));
		const failed = await storedState(id);
		expect(failed.record).toMatchObject({ status: "failed", attempts: 2, error: { code: "execution_lost" } });
		const end = await socket.waitFor((f) => f.type === "failed", "the failed event", 5000);
		expect(end.data).toMatchObject({ status: "failed", error: { code: "execution_lost" } });
	});

	it("canceled while leased: its callers get `canceled` at once; the worker is told by its next heartbeat; nothing it sends after counts", async () => {
		const type = `cancel-${crypto.randomUUID().slice(0, 8)}`;
		const id = `${type}-task`;
		await taskStub(id).submit({ ...pullSpec(id, type, 3), pull: { leaseS: 30 } }, 0);
		const grant = await env.WORK_LANE.getByName(WORK_LANE).lease([type], "test-worker", 1000);
		const token = grant?.lease.token ?? "";
		expect(await taskStub(id).heartbeat(token, { percent: 10, message: "working" })).toMatchObject({ kind: "ok", cancelRequested: false });

		// A caller long-polls for up to 20 s; the cancel releases it at once (not at the lease's end).
		const waiting = getTask(id, { wait: 20 });
		await new Promise((resolve) => setTimeout(resolve, 200));
		expect((await cancelTask(id)).res.status).toBe(200);
		const answer = await waiting;
		expect(answer.body).toMatchObject({ status: "canceled", output: null });
		expect(answer.elapsed).toBeLessThan(15_000);

		// The worker's next heartbeat (and any after it) answers cancel_requested, without reviving anything.
		for (let i = 0; i < 2; i++)
			expect(await taskStub(id).heartbeat(token, { percent: 90, message: null })).toMatchObject({ kind: "ok", cancelRequested: true });
		expect(await taskStub(id).completeLease(token, { late: true })).toMatchObject({ kind: "lease_lost", status: "canceled" });
		expect(await taskStub(id).failLease(token, { code: "late", message: "after the cancel" }, true)).toMatchObject({
			kind: "lease_lost",
			status: "canceled",
		});
		const stored = await storedState(id);
		expect(stored.record).toMatchObject({ status: "canceled", output: null, attempts: 1, error: { code: "canceled" } });
		expect((await getTask(id)).body).toMatchObject({ status: "canceled", output: null, progress: { percent: 10 } });
	});
});
