/**
 * Where a pull task waits for a worker: the work lane keeps it in the same kind of line as a
 * Scheduler lane (scheduling/waitingList.ts, one group per type), and pushes its position to
 * subscribers the same way (scheduling/positionPushes.ts), as `queued` events of the same shape
 * a slot task gets. Real task objects and the real work lane; leases taken as a worker's request
 * would take them.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Priority, TaskRecord, TaskSpec } from "../../src/task/model";
import { WORK_LANE, WorkLane } from "../../src/workers/WorkLane";
import { cancelTask, getTask } from "./support/api";
import { taskStub } from "./support/objects";
import { drain, taskSocket } from "./support/socket";

function uniqueType(prefix: string): string {
	return `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
}

/** Submits a pull task of `type` straight to its object, as POST /v1/tasks does for a WORKER_TYPES type. */
async function submitPull(type: string, n: number, priority: Priority = "normal"): Promise<string> {
	const id = `${type}-${n}`;
	const spec: TaskSpec = {
		id,
		type,
		input: { n },
		priority,
		timeoutS: 900,
		ttlS: 3600,
		maxAttempts: 1,
		webhook: null,
		webhookEvents: [],
		fingerprint: id,
		pull: { leaseS: 30 },
	};
	const { outcome } = await taskStub(id).submit(spec, 0);
	expect(outcome).toBe("created");
	return id;
}

function lane() {
	return env.WORK_LANE.getByName(WORK_LANE);
}

/**
 * Puts off the task's own periodic check with the lane (every QUEUED_RECOVERY_S = 2 s here at
 * first), which re-offers it and learns its position too: what the test then sees was pushed.
 */
async function putOffRecheck(id: string): Promise<void> {
	await runInDurableObject(taskStub(id), async (instance) => {
		const coordinator = instance as unknown as { record: TaskRecord; schedule(): Promise<void> };
		coordinator.record.recoverAt = Date.now() + 3_600_000;
		await coordinator.schedule();
	});
}

async function leaseNext(types: string[]): Promise<string | undefined> {
	return (await lane().lease(types, "test-worker", 2000))?.task.id;
}

describe("a pull task waiting for a worker", () => {
	it("shows its place on GET and in a subscriber's snapshot; `queued` events as the line moves; `running` clears it", async () => {
		const type = uniqueType("line");
		const ids: string[] = [];
		for (let n = 0; n < 4; n++) ids.push(await submitPull(type, n));
		for (const id of ids) await putOffRecheck(id);
		for (const [position, id] of ids.entries()) expect((await getTask(id)).body.queue_position).toBe(position);

		const last = ids[3] ?? "";
		const socket = await taskSocket(last);
		const snapshot = await socket.waitFor((f) => f.type === "snapshot", "the snapshot");
		expect(snapshot).toMatchObject({ data: { status: "queued", queue_position: 3 } });

		// A worker takes the head: the subscriber is told at once (pushed, not polled).
		expect(await leaseNext([type])).toBe(ids[0]);
		await socket.waitFor((f) => f.type === "queued" && f.data?.queue_position === 2, "a queued event with position 2", 5000);
		// A waiting task canceled ahead of it moves it up too, and is never leased.
		expect((await cancelTask(ids[1] ?? "")).res.status).toBe(200);
		await socket.waitFor((f) => f.type === "queued" && f.data?.queue_position === 1, "a queued event with position 1", 5000);
		expect(await leaseNext([type])).toBe(ids[2]);
		await socket.waitFor((f) => f.type === "queued" && f.data?.queue_position === 0, "a queued event with position 0", 5000);
		expect((await getTask(last)).body.queue_position).toBe(0);

		expect(await leaseNext([type])).toBe(last);
		const running = await socket.waitFor((f) => f.type === "running", "the running event", 5000);
		expect(running.data).toMatchObject({ status: "running", attempts: 1, queue_position: null });
		expect((await getTask(last)).body).toMatchObject({ status: "running", queue_position: null });
		expect(await cancelTask(last)).toMatchObject({ res: { status: 200 } });

		const { events } = await drain(socket, 10_000);
		const positions = events.filter((e) => e.type === "queued").map((e) => e.data.queue_position);
		expect(positions).toEqual([2, 1, 0]);
		// The same event shape as a slot task's position: `data` holds the position alone.
		for (const e of events.filter((x) => x.type === "queued")) expect(Object.keys(e.data)).toEqual(["queue_position"]);
	});

	it("counts only tasks of its own type; a worker taking several types gets the first of all by the priority rule", async () => {
		const gpu = uniqueType("gpu");
		const cpu = uniqueType("cpu");
		const gpu0 = await submitPull(gpu, 0);
		const cpuHigh = await submitPull(cpu, 0, "high");
		const gpu1 = await submitPull(gpu, 1);
		const cpuLow = await submitPull(cpu, 1, "low");
		expect((await getTask(gpu1)).body.queue_position).toBe(1);
		expect((await getTask(cpuHigh)).body.queue_position).toBe(0);
		expect((await getTask(cpuLow)).body.queue_position).toBe(1);
		// high goes PRIORITY_OFFSET_S (300 s) ahead, low as far behind: across both types too.
		const order: (string | undefined)[] = [];
		for (let i = 0; i < 4; i++) order.push(await leaseNext([gpu, cpu]));
		expect(order).toEqual([cpuHigh, gpu0, gpu1, cpuLow]);
		for (const id of order) await cancelTask(id ?? "");
	});

	it("a work lane stored before the shared line moves its waiting tasks over, in order, once", async () => {
		const name = uniqueType("old-lane");
		await runInDurableObject(env.WORK_LANE.getByName(name), async (_instance, state) => {
			const sql = state.storage.sql;
			// The table the work lane kept until the line was shared (as released on main).
			sql.exec(`CREATE TABLE waiting (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, rank INTEGER NOT NULL);
				CREATE INDEX waiting_order ON waiting (type, rank, seq);`);
			sql.exec("INSERT INTO waiting (id, type, rank) VALUES ('a1', 'a', 100), ('b1', 'b', 50), ('a2', 'a', 100), ('a0', 'a', 90)");
			const adopted = new WorkLane(state, env);
			expect(await adopted.position("a0")).toBe(0);
			expect(await adopted.position("a1")).toBe(1);
			// Same rank: arrival decides, as it did.
			expect(await adopted.position("a2")).toBe(2);
			expect(await adopted.position("b1")).toBe(0);
			expect(sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'waiting'").toArray()).toHaveLength(0);
			// Once: a later start finds nothing to move and keeps the line as it is.
			const again = new WorkLane(state, env);
			expect(await again.position("a2")).toBe(2);
		});
	});
});
