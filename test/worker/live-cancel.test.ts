/**
 * POST /v1/tasks/{id}/cancel: a queued task never starts, a running one ends canceled at once
 * (even if its processor ignores the signal) and releases its waiters; repeat cancels are
 * idempotent; a task that ended otherwise answers 409; unknown ids 404.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../shared/waits";
import { call, cancelTask, errorOf, getTask, pollTask, settled, submitTask, warmUp } from "./support/api";
import { newId } from "./support/ids";
import { createWithoutMessage, dispatch } from "./support/objects";
import { drain, taskSocket } from "./support/socket";

beforeAll(warmUp);

describe("cancel", () => {
	it("a queued task is canceled and never runs, even when its message arrives afterwards", async () => {
		const id = newId();
		await createWithoutMessage({ id, type: "sleep", input: { ms: 100 } });
		const { res, body } = await cancelTask(id);
		expect(res.status).toBe(200);
		expect(body).toMatchObject({ id, status: "canceled", attempts: 0, started_at: null, error: { code: "canceled" } });
		expect(body.urls.cancel).toMatch(new RegExp(`/v1/tasks/${id}/cancel$`));

		expect(await dispatch(id)).toBe("already_finished");
		// Past the queued-recovery delay (2 s in the test bindings), nothing re-sends or starts it.
		await sleep(2500);
		const later = await settled(id);
		expect(later).toMatchObject({ status: "canceled", attempts: 0, started_at: null, output: null });
		const { events, close } = await drain(await taskSocket(id, 0));
		expect(close.code).toBe(1000);
		expect(events.map((e) => e.type)).toEqual(["queued", "canceled"]);
	});

	it("a running task whose processor ignores the signal ends canceled at once and releases a long-poll", async () => {
		const id = newId();
		await submitTask({ id, type: "hang", input: {}, timeout_s: 30 });
		await pollTask(id, (t) => t.status === "running", "the task to run");
		const waiter = getTask(id, { wait: 10 });
		await sleep(200); // let the long-poll reach the task's object
		const t0 = Date.now();
		const { res, body, elapsed } = await cancelTask(id);
		expect(res.status).toBe(200);
		expect(body).toMatchObject({ id, status: "canceled", attempts: 1, error: { code: "canceled" } });
		// "At once": the cancel's own answer within 1 s, though the processor never stops.
		expect(elapsed).toBeLessThan(1000);

		const released = await waiter;
		expect(released.res.status).toBe(200);
		expect(released.body.status).toBe("canceled");
		// Released by the cancel within 1 s, nowhere near its 10 s wait.
		expect(Date.now() - t0).toBeLessThan(1000);
		expect(released.body.finished_at).toBe(body.finished_at);
	});

	it("a canceled attempt cannot end the task later (no timed_out after its deadline)", async () => {
		const id = newId();
		await submitTask({ id, type: "hang", input: {}, timeout_s: 1 });
		await pollTask(id, (t) => t.status === "running", "the task to run");
		expect((await cancelTask(id)).res.status).toBe(200);
		await sleep(1800);
		const task = await settled(id);
		expect(task).toMatchObject({ status: "canceled", attempts: 1 });
		const { events } = await drain(await taskSocket(id, 0));
		expect(events.map((e) => e.type)).toEqual(["queued", "running", "canceled"]);
	});

	it("a running task that honours its signal is canceled too, and keeps the progress it had", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 5000 } });
		await pollTask(id, (t) => (t.progress?.percent ?? 0) > 0, "some progress");
		const { res, body } = await cancelTask(id);
		expect(res.status).toBe(200);
		expect(body.status).toBe("canceled");
		expect(body.output).toBeNull();
		expect(body.progress.percent).toBeGreaterThan(0);
		expect(body.progress.percent).toBeLessThan(100);
	});

	it("is idempotent: cancel again answers 200 canceled with the same task", async () => {
		const id = newId();
		await submitTask({ id, type: "hang", input: {}, timeout_s: 30 });
		const first = await cancelTask(id);
		expect(first.res.status).toBe(200);
		const second = await cancelTask(id);
		const third = await cancelTask(id);
		for (const again of [second, third]) {
			expect(again.res.status).toBe(200);
			expect(again.body).toEqual(first.body);
		}
		const { events } = await drain(await taskSocket(id, 0));
		expect(events.filter((e) => e.type === "canceled")).toHaveLength(1);
	});

	it("answers 409 task_finished with the task for one that ended otherwise", async () => {
		for (const body of [
			{ type: "echo", input: 1 },
			{ type: "fail", input: { permanent: true } },
			{ type: "hang", input: {}, timeout_s: 1 },
		]) {
			const id = newId();
			await submitTask({ id, ...body });
			const ended = await settled(id);
			expect(ended.status).not.toBe("canceled");
			const { res, body: answer } = await cancelTask(id);
			expect(res.status, body.type).toBe(409);
			const error = errorOf(answer);
			expect(error.code).toBe("task_finished");
			expect(error.details).toMatchObject({ task: { id, status: ended.status, finished_at: ended.finished_at } });
			expect((await settled(id)).status).toBe(ended.status);
		}
	});

	it("answers 404 for an unknown id, 400 for an invalid one, 405 for GET", async () => {
		const unknown = await cancelTask(newId());
		expect(unknown.res.status).toBe(404);
		expect(errorOf(unknown.body).code).toBe("task_not_found");

		const invalid = await cancelTask("bad id!");
		expect(invalid.res.status).toBe(400);
		expect(errorOf(invalid.body).code).toBe("invalid_id");

		const { res } = await call(`/v1/tasks/${newId()}/cancel`);
		expect(res.status).toBe(405);
		expect(res.headers.get("allow")).toBe("POST");
	});

	it("cancel during a retry backoff ends the task; the retry never runs", async () => {
		const id = newId();
		// flaky fails its first attempt, then backs off up to 1 s before attempt 2.
		await createWithoutMessage({ id, type: "flaky", input: { fail_times: 1, ms: 0 } });
		const socket = await taskSocket(id, 0);
		await dispatch(id);
		await socket.waitFor((f) => f.type === "retrying", "retrying");
		const { res, body } = await cancelTask(id);
		// The backoff is random (0..1 s): the retry may already have succeeded.
		if (res.status === 409) {
			expect(errorOf(body).details).toMatchObject({ task: { status: "succeeded", attempts: 2 } });
			return;
		}
		expect(res.status).toBe(200);
		expect(body).toMatchObject({ status: "canceled", attempts: 1 });
		await sleep(1500);
		expect(await settled(id)).toMatchObject({ status: "canceled", attempts: 1 });
		const { events } = await drain(socket);
		expect(events.map((e) => e.type)).toEqual(["queued", "running", "retrying", "canceled"]);
	});
});
