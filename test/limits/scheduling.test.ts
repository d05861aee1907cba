/**
 * Concurrency limits, priority and queue positions on the real runtime. This project's bindings
 * (vitest.config.ts) limit `sleep` to 2 and `flaky`, `fail`, `hang` to 1 each, with
 * PRIORITY_OFFSET_S = 2. Every task of a limited type shares its lane, so the tests of this
 * file run one after another and each waits for its lanes to empty before the next starts.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, sleep } from "../shared/waits";
import { cancelTask, getTask, settled, submitTask, type TaskView } from "../worker/support/api";
import { newId } from "../worker/support/ids";
import { storedState } from "../worker/support/objects";

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

	it("never touches a lane for a type without a limit", async () => {
		const { body } = await submitTask({ type: "echo", input: 1 }, { wait: 10 });
		expect(body.status).toBe("succeeded");
		const { record } = await storedState(body.id);
		expect(record).toMatchObject({ lane: null, laneState: "out" });
	});
});
