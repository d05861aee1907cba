/**
 * The event model over the per-task WebSocket with `?after=0` (the full stored history, then live
 * events): order and content for each terminal state, seq strictly increasing from 1, and
 * progress coalescing.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { cancelTask, pollTask, settled, submitTask, warmUp } from "./support/api";
import { newId } from "./support/ids";
import { expectIncreasingSeqs, shape, type WireEvent } from "./support/events";
import { drain, taskSocket } from "./support/socket";

beforeAll(warmUp);

/** Submits, then follows the task from its first event until the server closes the socket. */
async function history(body: Record<string, unknown>, during?: (id: string) => Promise<void>) {
	const id = newId();
	const submitted = await submitTask({ id, ...body });
	expect([200, 202], JSON.stringify(submitted.body)).toContain(submitted.res.status);
	const socket = await taskSocket(id, 0);
	await during?.(id);
	const { events, close } = await drain(socket, 20_000);
	return { id, events, close };
}

function expectCommon(id: string, events: WireEvent[]) {
	expect(events.length).toBeGreaterThanOrEqual(3);
	for (const e of events) {
		expect(e.task_id).toBe(id);
		expect(Number.isNaN(Date.parse(e.at))).toBe(false);
		expect(e.type).not.toBe("snapshot");
	}
	expect(events[0]!.seq).toBe(1);
	expectIncreasingSeqs(events);
	// Event times never go backwards.
	for (let i = 1; i < events.length; i++) expect(Date.parse(events[i]!.at)).toBeGreaterThanOrEqual(Date.parse(events[i - 1]!.at));
	expect(events[0]).toMatchObject({ type: "queued", data: { status: "queued", priority: "normal" } });
	expect(events[1]).toMatchObject({ type: "running", data: { status: "running", attempts: 1 } });
}

describe("event history over ws ?after=0", () => {
	it("succeeded: queued, running, progress…, succeeded with output and metrics; then close 1000", async () => {
		const { id, events, close } = await history({ type: "sleep", input: { ms: 1500 } });
		expect(close.code).toBe(1000);
		expectCommon(id, events);
		expect(shape(events)).toEqual(["queued", "running", "progress*", "succeeded"]);
		const progress = events.filter((e) => e.type === "progress");
		for (const p of progress) {
			expect(p.data.progress!.percent).toBeGreaterThan(0);
			expect(p.data.progress!.percent).toBeLessThan(100);
		}
		const last = events.at(-1)!;
		expect(last.data).toMatchObject({ status: "succeeded", output: { slept_ms: 1500 }, error: null, progress: { percent: 100 } });
		expect(last.data.metrics!.run_ms).toBeGreaterThanOrEqual(1400);
		expect(last.data.metrics!.total_ms).toBeGreaterThanOrEqual(last.data.metrics!.run_ms!);
		expect(last.data.finished_at).toBe((await settled(id)).finished_at);

		// Replayed later, the stored history is the same, except only the latest progress is kept.
		const replay = await drain(await taskSocket(id, 0));
		expect(replay.close.code).toBe(1000);
		expect(replay.events.map((e) => e.type)).toEqual(["queued", "running", "progress", "succeeded"]);
		expect(replay.events.map((e) => e.seq)).toEqual([1, 2, progress.at(-1)!.seq, last.seq]);
		expect(replay.events[2]).toEqual(progress.at(-1));
		expect(replay.events[3]).toEqual(last);
	});

	it("failed: a permanent failure ends after one attempt with the processor's error", async () => {
		const { id, events, close } = await history({ type: "fail", input: { message: "nope", permanent: true } });
		expect(close.code).toBe(1000);
		expectCommon(id, events);
		expect(events.map((e) => e.type)).toEqual(["queued", "running", "failed"]);
		expect(events[2]!.data).toMatchObject({ status: "failed", output: null, error: { message: "nope" } });
		expect((await settled(id)).attempts).toBe(1);
	});

	it("retrying: a retryable failure emits retrying, then a second running, then the outcome", async () => {
		const { id, events, close } = await history({ type: "flaky", input: { fail_times: 1, ms: 0 } });
		expect(close.code).toBe(1000);
		expectCommon(id, events);
		expect(events.map((e) => e.type)).toEqual(["queued", "running", "retrying", "running", "succeeded"]);
		expect(events[2]!.data).toMatchObject({ status: "queued", attempts: 1, error: { code: "processor_error" } });
		expect(events[3]!.data).toMatchObject({ status: "running", attempts: 2 });
		expect(events[4]!.data).toMatchObject({ status: "succeeded", output: { attempt: 2 }, error: null });
	});

	it("timed_out: a processor that never settles ends at its deadline", async () => {
		const { id, events, close } = await history({ type: "hang", input: {}, timeout_s: 1 });
		expect(close.code).toBe(1000);
		expectCommon(id, events);
		expect(events.map((e) => e.type)).toEqual(["queued", "running", "timed_out"]);
		expect(events[2]!.data).toMatchObject({ status: "timed_out", output: null, error: { code: "timeout" } });
		const runMs = events[2]!.data.metrics!.run_ms!;
		expect(runMs).toBeGreaterThanOrEqual(950);
		expect(runMs).toBeLessThan(5000);
	});

	it("canceled: cancel while running ends with canceled, even for a processor that ignores the signal", async () => {
		const { id, events, close } = await history({ type: "hang", input: {}, timeout_s: 30 }, async (taskId) => {
			await pollTask(taskId, (t) => t.status === "running", "the task to run");
			const { res } = await cancelTask(taskId);
			expect(res.status).toBe(200);
		});
		expect(close.code).toBe(1000);
		expectCommon(id, events);
		expect(events.map((e) => e.type)).toEqual(["queued", "running", "canceled"]);
		expect(events[2]!.data).toMatchObject({ status: "canceled", error: { code: "canceled" } });
	});
});

describe("input as submitted is the input the processor sees", () => {
	// Guards a fixed bug (src/tasks.ts toSpec): the submit check validates `body.input` (undefined here), but the
	// task stores `body.input ?? null`, and hang's schema (`z.object({}).optional()`) rejects null at
	// run time: the attempt throws a ZodError, which is retried as a processor error, and the task
	// ends `failed` after 3 attempts instead of `timed_out` after 1.
	it("hang submitted without input times out (it is accepted at submit, so it must run)", async () => {
		const { events } = await history({ type: "hang", timeout_s: 1 });
		expect(events.map((e) => e.type)).toEqual(["queued", "running", "timed_out"]);
	});
});

describe("progress", () => {
	it("a 3 s sleep sends between 2 and ~14 progress events, non-decreasing, and GET shows the latest while running", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 3000 } });
		const socket = await taskSocket(id, 0);
		// While it runs, the task itself carries its latest progress.
		const running = await pollTask(id, (t) => t.status === "running" && (t.progress?.percent ?? 0) > 0, "progress on GET");
		expect(running.progress!.percent).toBeGreaterThan(0);
		expect(running.progress!.percent).toBeLessThan(100);
		const { events, close } = await drain(socket, 20_000);
		expect(close.code).toBe(1000);
		const progress = events.filter((e) => e.type === "progress");
		expect(progress.length).toBeGreaterThanOrEqual(2);
		expect(progress.length).toBeLessThanOrEqual(3 * 4 + 2);
		const percents = progress.map((e) => e.data.progress!.percent);
		for (let i = 1; i < percents.length; i++) expect(percents[i]).toBeGreaterThanOrEqual(percents[i - 1]!);
		// What GET showed mid-run was one of the values the subscribers were sent.
		expect(percents).toContain(running.progress!.percent);
		expect(events.at(-1)!.data.progress).toMatchObject({ percent: 100 });
	});

	it("calls faster than 4/s are coalesced: a 1 s sleep (9 calls, 100 ms apart) sends fewer events, >= 250 ms apart", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 1000 } });
		const { events } = await drain(await taskSocket(id, 0), 20_000);
		const progress = events.filter((e) => e.type === "progress");
		expect(progress.length).toBeGreaterThanOrEqual(1);
		expect(progress.length).toBeLessThanOrEqual(1 * 4 + 2);
		expect(progress.length).toBeLessThan(9);
		// Gaps measured on the server's own clock (the events' `at`): load can only widen them.
		const times = progress.map((e) => Date.parse(e.at));
		for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(245);
		const percents = progress.map((e) => e.data.progress!.percent);
		for (let i = 1; i < percents.length; i++) expect(percents[i]).toBeGreaterThan(percents[i - 1]!);
	});
});
