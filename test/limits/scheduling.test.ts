/**
 * Concurrency limits, priority and queue positions on the real runtime. This project's bindings
 * (vitest.config.ts) limit `sleep` to 2 and `flaky`, `fail`, `hang` to 1 each, with
 * PRIORITY_OFFSET_S = 2. Every task of a limited type shares its lane, so the tests of this
 * file run one after another and each waits for its lanes to empty before the next starts.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { LEASE_CHECK_MS } from "../../src/scheduling/Scheduler";
import { eventually, sleep } from "../shared/waits";
import { cancelTask, getTask, pollTask, settled, submitTask, type TaskView } from "../worker/support/api";
import { newId } from "../worker/support/ids";
import { runInObject, storedState, taskStub } from "../worker/support/objects";
import { drain, taskSocket } from "../worker/support/socket";

const LIMITED = ["sleep", "flaky", "fail", "hang"];

function lane(type: string) {
	return env.SCHEDULER.getByName(`type:${type}`);
}

/** Most intervals [started_at, finished_at) open at any one instant. */
function maxOverlap(tasks: TaskView[]): number {
	const edges: [number, number][] = [];
	for (const t of tasks) {
		edges.push([Date.parse(t.started_at ?? ""), 1], [Date.parse(t.finished_at ?? ""), -1]);
	}
	// At the same instant an end comes before a start: a slot freed and taken at once is no overlap.
	edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
	let open = 0;
	let most = 0;
	for (const [, delta] of edges) {
		open += delta;
		most = Math.max(most, open);
	}
	return most;
}

/** Submits `n` tasks at once and returns their ids in submission order. */
async function submitMany(n: number, body: (i: number) => Record<string, unknown>): Promise<string[]> {
	const ids = Array.from({ length: n }, () => newId());
	const answers = await Promise.all(ids.map((id, i) => submitTask({ id, ...body(i) })));
	for (const a of answers) expect(a.res.status, a.text).toBe(202);
	return ids;
}

/** Waits until every id is running or queued with a position: the lane knows them all. */
async function untilPlaced(ids: string[]): Promise<Map<string, TaskView>> {
	return eventually(
		async () => {
			const tasks = await Promise.all(ids.map(async (id) => (await getTask(id)).body));
			const placed = tasks.every((t) => t.status === "running" || (t.status === "queued" && t.queue_position !== null));
			return placed ? new Map(tasks.map((t) => [t.id, t])) : undefined;
		},
		"every task to hold a slot or a place",
		15_000,
	);
}

/**
 * Waits until GET shows `ids` at positions 0, 1, 2 … in this order (a GET's position is at most
 * 1 s old: one that joined behind a task placed later may show the lower number meanwhile).
 */
async function untilInLine(ids: string[]): Promise<Map<string, TaskView>> {
	return eventually(
		async () => {
			const tasks = await untilPlaced(ids);
			return ids.every((id, i) => tasks.get(id)?.queue_position === i) ? tasks : undefined;
		},
		`positions ${ids.map((_, i) => i).join(", ")} in submission order`,
		10_000,
		200,
	);
}

afterEach(async () => {
	// Leave the lanes empty for the next test: nothing held, nothing waiting.
	await eventually(
		async () => {
			const states = await Promise.all(LIMITED.map((t) => lane(t).describe()));
			return states.every((s) => s.holders.length === 0 && s.waiting.length === 0) ? true : undefined;
		},
		"the lanes to empty",
		30_000,
		100,
	);
});

describe("a concurrency limit", () => {
	it("is never exceeded under 50 concurrent submissions of sleep (limit 2), and is used in full", async () => {
		const ids = await submitMany(50, () => ({ type: "sleep", input: { ms: 150 } }));
		const tasks = await Promise.all(ids.map((id) => settled(id, 40)));
		for (const t of tasks) expect(t).toMatchObject({ status: "succeeded", attempts: 1, queue_position: null });
		expect(maxOverlap(tasks)).toBe(2);
	});

	it("holds with DISPATCH=direct too: the object asks the lane for its slot inside the submit; 20 at once never run more than 2", async () => {
		const ids = Array.from({ length: 20 }, () => newId("direct"));
		const answers = await Promise.all(
			ids.map((id) => submitTask({ id, type: "sleep", input: { ms: 150 } }, { env: { DISPATCH: "direct" } })),
		);
		for (const a of answers) expect(a.res.status, a.text).toBe(202);
		// The first to reach the empty lane is started before its answer (with the queue it says queued).
		expect(answers.filter((a) => a.body.status === "running").length).toBeGreaterThanOrEqual(1);
		const tasks = await Promise.all(ids.map((id) => settled(id, 40)));
		for (const t of tasks) expect(t).toMatchObject({ status: "succeeded", attempts: 1, queue_position: null });
		expect(maxOverlap(tasks)).toBe(2);
	});

	it("never touches a lane for a type without a limit", async () => {
		const { body } = await submitTask({ type: "echo", input: 1 }, { wait: 10 });
		expect(body.status).toBe("succeeded");
		const { record } = await storedState(body.id);
		expect(record).toMatchObject({ lane: null, laneState: "out" });
	});
});

/** Polls until every id is running; returns them. */
async function untilRunning(ids: string[]): Promise<TaskView[]> {
	return eventually(
		async () => {
			const tasks = await Promise.all(ids.map(async (id) => (await getTask(id)).body));
			return tasks.every((t) => t.status === "running") ? tasks : undefined;
		},
		`${ids.length} task(s) to run`,
		15_000,
	);
}

/** Submits one task and returns its id (202). */
async function submitOne(body: Record<string, unknown>): Promise<string> {
	const id = newId();
	const a = await submitTask({ id, ...body });
	expect(a.res.status, a.text).toBe(202);
	return id;
}

/** Cancels what a test left behind (ignores tasks that already ended). */
async function cancelAll(ids: string[]): Promise<void> {
	await Promise.all(ids.map((id) => cancelTask(id)));
}

describe("queue positions", () => {
	it("counts the waiting tasks ahead (0 = next), null while running; a subscriber gets queued events; a canceled waiting task never starts", async () => {
		const blockers = [await submitOne({ type: "sleep", input: { ms: 2500 } }), await submitOne({ type: "sleep", input: { ms: 2500 } })];
		await untilRunning(blockers);
		// One after another, so their order is their submission order.
		const line: string[] = [];
		for (let i = 0; i < 3; i++) line.push(await submitOne({ type: "sleep", input: { ms: 50 } }));
		await untilInLine(line);
		for (const id of blockers) expect((await getTask(id)).body.queue_position).toBeNull();

		const socket = await taskSocket(line[2]!);
		const snapshot = await socket.waitFor((f) => f.type === "snapshot", "the snapshot");
		expect(snapshot).toMatchObject({ data: { status: "queued", queue_position: 2 } });

		// Canceling the first waiting task moves the others up at once, and it never runs.
		const canceled = await cancelTask(line[0]!);
		expect(canceled.res.status).toBe(200);
		expect(canceled.body).toMatchObject({ status: "canceled", queue_position: null, started_at: null, attempts: 0 });
		await socket.waitFor((f) => f.type === "queued" && f.data?.queue_position === 1, "a queued event with position 1", 5000);
		await pollTask(line[1]!, (t) => t.queue_position === 0, "position 0 on GET (at most 1 s old)", 5000);

		const { events, close } = await drain(socket, 20_000);
		expect(close.code).toBe(1000);
		const positions = events.filter((e) => e.type === "queued").map((e) => e.data.queue_position);
		expect(positions[0]).toBe(1);
		for (let i = 1; i < positions.length; i++) expect(positions[i]).toBeLessThan(positions[i - 1] as number);
		const running = events.find((e) => e.type === "running");
		expect(running?.data).toMatchObject({ status: "running", queue_position: null });
		expect(events.at(-1)?.type).toBe("succeeded");

		const never = await settled(line[0]!);
		expect(never).toMatchObject({ status: "canceled", attempts: 0, started_at: null });
		const later = await Promise.all(line.slice(1).map((id) => settled(id, 20)));
		for (const t of later) expect(t.status).toBe("succeeded");
		// A place is a place: nothing waiting started before a blocker ended.
		const firstBlockerEnd = Math.min(...(await Promise.all(blockers.map((id) => settled(id)))).map((t) => Date.parse(t.finished_at ?? "")));
		for (const t of later) expect(Date.parse(t.started_at ?? "")).toBeGreaterThanOrEqual(firstBlockerEnd);
	});

	it("coalesces position pushes like progress: a subscriber's queued events are at least 250 ms apart", async () => {
		const blockers = [await submitOne({ type: "sleep", input: { ms: 1500 } }), await submitOne({ type: "sleep", input: { ms: 1500 } })];
		await untilRunning(blockers);
		const ahead = await submitMany(16, () => ({ type: "sleep", input: { ms: 0 } }));
		await untilPlaced(ahead);
		const watched = await submitOne({ type: "sleep", input: { ms: 0 } });
		await untilPlaced([watched]);
		const { events } = await drain(await taskSocket(watched), 30_000);
		const queued = events.filter((e) => e.type === "queued");
		// 16 tasks ahead start within a short span: 16 position changes, far fewer events.
		expect(queued.length).toBeGreaterThanOrEqual(1);
		expect(queued.length).toBeLessThan(16);
		const times = queued.map((e) => Date.parse(e.at));
		for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(245);
	});
});

describe("priority", () => {
	it("is a bounded head start: high overtakes normal and low submitted shortly before it, but not a low submitted more than 2 × PRIORITY_OFFSET_S earlier", async () => {
		const blockers = [await submitOne({ type: "sleep", input: { ms: 20_000 } }), await submitOne({ type: "sleep", input: { ms: 20_000 } })];
		await untilRunning(blockers);
		const old = await submitOne({ type: "sleep", priority: "low", input: { ms: 200 } });
		await sleep(4500); // > 2 × PRIORITY_OFFSET_S (2 s)
		// Back to back, well within one PRIORITY_OFFSET_S of each other.
		const group: { id: string; priority: string }[] = [];
		for (const priority of ["normal", "low", "high", "normal", "high", "low"]) {
			group.push({ id: await submitOne({ type: "sleep", priority, input: { ms: 200 } }), priority });
		}
		const byPriority = (p: string) => group.filter((g) => g.priority === p).map((g) => g.id);
		// The old low task first (its head start: more than 4 s), then high, normal, low, each first come first served.
		const expected = [old, ...byPriority("high"), ...byPriority("normal"), ...byPriority("low")];
		const placed = await untilInLine(expected);
		const createdAt = (id: string) => Date.parse(placed.get(id)?.created_at ?? "");
		const spread = createdAt(group.at(-1)!.id) - createdAt(group[0]!.id);
		expect(spread, "the group must be submitted within PRIORITY_OFFSET_S for this test to mean anything").toBeLessThan(2000);
		expect(createdAt(group[0]!.id) - createdAt(old)).toBeGreaterThan(4000);

		// And they start in that order: with 2 slots, the task at position p starts no later than the one at p + 2.
		await cancelAll(blockers);
		const done = await Promise.all(expected.map((id) => settled(id, 30)));
		for (const t of done) expect(t.status).toBe("succeeded");
		for (let p = 0; p + 2 < done.length; p++) {
			expect(Date.parse(done[p]!.started_at ?? ""), `position ${p} vs ${p + 2}`).toBeLessThanOrEqual(
				Date.parse(done[p + 2]!.started_at ?? ""),
			);
		}
	});
});

describe("delay_s", () => {
	it("does not start a task before run_at; meanwhile it is queued without a position", async () => {
		const id = await submitOne({ type: "sleep", input: { ms: 10 }, delay_s: 1.5 });
		const early = (await getTask(id)).body;
		expect(Date.parse(early.run_at) - Date.parse(early.created_at)).toBe(1500);
		expect(early).toMatchObject({ status: "queued", queue_position: null, started_at: null });
		const done = await settled(id, 15);
		expect(done.status).toBe("succeeded");
		expect(Date.parse(done.started_at ?? "")).toBeGreaterThanOrEqual(Date.parse(done.run_at));
	});
});

describe("slots are leases", () => {
	it("a slot held by a task that no longer exists is freed within one lease check once another task waits, and that task starts", async () => {
		// A ghost holder: the lane grants a slot to an id with no task behind it (as if its object had died).
		const ghost = newId("ghost");
		const answer = await lane("sleep").acquire({ lane: "type:sleep", taskId: ghost, rank: 0, limit: 2, watched: false });
		expect(answer).toEqual({ granted: true });
		const granted = Date.now();
		const holder = await submitOne({ type: "sleep", input: { ms: 60_000 } });
		await untilRunning([holder]);
		const next = await submitOne({ type: "sleep", input: { ms: 10 } });
		expect((await untilPlaced([next])).get(next)?.queue_position).toBe(0);

		const done = await settled(next, 40);
		expect(done.status).toBe("succeeded");
		const freedAfter = Date.parse(done.started_at ?? "") - granted;
		// Checked once its lease is past half (each alarm checks those), and never later than the lease.
		expect(freedAfter).toBeGreaterThanOrEqual(LEASE_CHECK_MS / 2 - 100);
		expect(freedAfter).toBeLessThan(LEASE_CHECK_MS + 5000);
		expect((await lane("sleep").describe()).holders).not.toContain(ghost);
		await cancelAll([holder]);
	});

	it("a holder whose instance dies loses its slot; the next task starts, and the lost attempt runs again", async () => {
		const victim = await submitOne({ type: "sleep", input: { ms: 3000 } });
		const other = await submitOne({ type: "sleep", input: { ms: 3000 } });
		await untilRunning([victim, other]);
		const next = await submitOne({ type: "sleep", input: { ms: 10 } });
		await untilPlaced([next]);
		await expect(runInDurableObject(env.TASKS.getByName(victim), (_instance, state) => state.abort("simulated crash"))).rejects.toThrow(
			"simulated crash",
		);
		const killedAt = Date.now();
		const started = await settled(next, 25);
		expect(started.status).toBe("succeeded");
		expect(Date.parse(started.started_at ?? "") - killedAt).toBeLessThan(LEASE_CHECK_MS + 5000);
		// The other holder was never disturbed: the new task took the dead one's slot.
		const done = await settled(victim, 30);
		expect(done).toMatchObject({ status: "succeeded", attempts: 2 });
		expect((await settled(other, 10)).attempts).toBe(1);
	});

	it("a timed-out or canceled holder frees its slot at once", async () => {
		// hang is limited to 1 and never settles: only its deadline (timeout_s) or a cancel ends it.
		const first = await submitOne({ type: "hang", timeout_s: 1 });
		await untilRunning([first]);
		const second = await submitOne({ type: "hang", timeout_s: 1 });
		const third = await submitOne({ type: "hang", timeout_s: 30 });
		await untilPlaced([second, third]);
		const a = await settled(first, 10);
		const b = await settled(second, 10);
		expect(a.status).toBe("timed_out");
		expect(b.status).toBe("timed_out");
		// The slot went straight to the next task: well under the lease check, without polling.
		expect(Date.parse(b.started_at ?? "") - Date.parse(a.finished_at ?? "")).toBeLessThan(1000);
		expect(Date.parse(b.started_at ?? "")).toBeGreaterThanOrEqual(Date.parse(a.finished_at ?? ""));
		await untilRunning([third]);
		const fourth = await submitOne({ type: "hang", timeout_s: 1 });
		await untilPlaced([fourth]);
		const canceled = await cancelTask(third);
		expect(canceled.body.status).toBe("canceled");
		const d = await settled(fourth, 10);
		expect(d.status).toBe("timed_out");
		expect(Date.parse(d.started_at ?? "") - Date.parse(canceled.body.finished_at ?? "")).toBeLessThan(1000);
	});
});

/**
 * Makes one RPC method of a class fail for one task (a call lost on the way: a dropped connection,
 * an overloaded or restarting object), at most `times` times. RPC finds methods on the class, so
 * the class's method is wrapped, in the instance `stub` reaches; `restore` puts it back.
 */
async function failCalls(stub: unknown, method: string, taskId: string, times: number) {
	type Method = (this: unknown, ...args: unknown[]) => Promise<unknown>;
	let failed = 0;
	let restore = () => {};
	await runInObject(stub, (instance) => {
		const proto = Object.getPrototypeOf(instance) as Record<string, Method>;
		const original = proto[method]!;
		restore = () => void (proto[method] = original);
		proto[method] = async function (this: unknown, ...args: unknown[]) {
			const id = args.find((a) => a === taskId) ?? (this as { record?: { id?: string } }).record?.id;
			if (id === taskId && failed < times) {
				failed += 1;
				throw new Error(`injected: ${method} lost on the way`);
			}
			return original.apply(this, args);
		};
	});
	return { restore, failed: () => failed };
}

describe("calls lost on the way", () => {
	it("a release that fails is sent again: the next task gets the slot at once, not at the lease check", async () => {
		// flaky is limited to 1: the freed slot is the whole lane.
		const holder = await submitOne({ type: "flaky", input: { fail_times: 0, ms: 1000 } });
		await untilRunning([holder]);
		const next = await submitOne({ type: "flaky", input: { fail_times: 0, ms: 10 } });
		await untilPlaced([next]);
		const lost = await failCalls(lane("flaky"), "release", holder, 1);
		try {
			const [a, b] = await Promise.all([settled(holder, 30), settled(next, 40)]);
			expect(a.status).toBe("succeeded");
			expect(b.status).toBe("succeeded");
			expect(lost.failed()).toBe(1);
			// Left to the lease check, the slot would stay with the finished holder for LEASE_CHECK_MS / 2 or more.
			expect(Date.parse(b.started_at ?? "") - Date.parse(a.finished_at ?? "")).toBeLessThan(LEASE_CHECK_MS / 4);
		} finally {
			lost.restore();
		}
	});

	it("a grant whose call fails is offered again soon, and the task starts", async () => {
		const holder = await submitOne({ type: "flaky", input: { fail_times: 0, ms: 500 } });
		await untilRunning([holder]);
		const next = await submitOne({ type: "flaky", input: { fail_times: 0, ms: 10 } });
		await untilPlaced([next]);
		const lost = await failCalls(taskStub(next), "slotOffered", next, 1);
		try {
			const [a, b] = await Promise.all([settled(holder, 30), settled(next, 40)]);
			expect(b).toMatchObject({ status: "succeeded", attempts: 1 });
			expect(lost.failed()).toBe(1);
			expect(Date.parse(b.started_at ?? "") - Date.parse(a.finished_at ?? "")).toBeLessThan(LEASE_CHECK_MS / 4);
		} finally {
			lost.restore();
		}
	});
});

describe("retries", () => {
	it("give the slot back while backing off, then keep their place in line", async () => {
		// flaky is limited to 1. A fails once; B and C wait behind it; all three wait behind a blocker
		// that is canceled once they are in line.
		const blocker = await submitOne({ type: "flaky", input: { fail_times: 0, ms: 30_000 } });
		await untilRunning([blocker]);
		const a = await submitOne({ type: "flaky", input: { fail_times: 1, ms: 300 } });
		// B runs longer than A's backoff (at most 1 s), so A is back in line before B ends.
		const b = await submitOne({ type: "flaky", input: { fail_times: 0, ms: 3000 } });
		const c = await submitOne({ type: "flaky", input: { fail_times: 0, ms: 300 } });
		await untilInLine([a, b, c]);
		await cancelAll([blocker]);
		const [ta, tb, tc] = await Promise.all([settled(a, 30), settled(b, 30), settled(c, 30)]);
		expect(ta).toMatchObject({ status: "succeeded", attempts: 2 });
		expect(tb).toMatchObject({ status: "succeeded", attempts: 1 });
		expect(tc).toMatchObject({ status: "succeeded", attempts: 1 });
		// While A backed off, B used the slot; A's retry then went before C, which came after it.
		expect(Date.parse(tb.started_at ?? "")).toBeLessThan(Date.parse(ta.started_at ?? ""));
		expect(Date.parse(ta.started_at ?? "")).toBeGreaterThanOrEqual(Date.parse(tb.finished_at ?? ""));
		expect(Date.parse(ta.finished_at ?? "")).toBeLessThanOrEqual(Date.parse(tc.started_at ?? ""));
	});
});
