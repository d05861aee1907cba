import { beforeAll, describe, expect, it } from "vitest";
import { ORIGIN, settled, submitTask, warmUp } from "./support/api";
import { newId } from "./support/ids";

beforeAll(warmUp);

describe("POST /v1/tasks", () => {
	it("answers 200 with the finished task when it ends within Prefer: wait", async () => {
		const id = newId();
		const { res, body } = await submitTask({ id, type: "sleep", input: { ms: 50 } }, { wait: 10 });

		expect(res.status).toBe(200);
		expect(res.headers.get("preference-applied")).toBe("wait=10");
		expect(res.headers.get("location")).toBe(`/v1/tasks/${id}`);
		expect(body).toMatchObject({
			id,
			type: "sleep",
			status: "succeeded",
			priority: "normal",
			input: { ms: 50 },
			output: { slept_ms: 50 },
			error: null,
			attempts: 1,
			progress: { percent: 100 },
			urls: { get: `${ORIGIN}/v1/tasks/${id}` },
		});
	});

	it("generates a UUID when the body has no id, and the task is readable under it", async () => {
		const { res, body } = await submitTask({ type: "echo", input: { hello: "world" } }, { wait: 10 });

		expect(res.status).toBe(200);
		expect(body.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
		expect(res.headers.get("location")).toBe(`/v1/tasks/${body.id}`);
		const again = await settled(body.id, 0);
		expect(again).toMatchObject({ id: body.id, status: "succeeded", output: { hello: "world" } });
	});

	it("reports the task's own run time, and times that add up", async () => {
		const id = newId();
		const { body: task } = await submitTask({ id, type: "sleep", input: { ms: 300 } }, { wait: 10 });

		expect(task.status).toBe("succeeded");
		const { queue_ms, run_ms, total_ms } = task.metrics;
		if (queue_ms === null || run_ms === null || total_ms === null || task.started_at === null || task.finished_at === null) {
			throw new Error(`metrics missing on a finished task: ${JSON.stringify(task)}`);
		}
		expect(run_ms).toBeGreaterThanOrEqual(300);
		expect(run_ms).toBeLessThan(300 + 150);
		expect(queue_ms).toBeGreaterThanOrEqual(0);
		expect(total_ms).toBeGreaterThanOrEqual(run_ms);
		expect(total_ms).toBeGreaterThanOrEqual(queue_ms + run_ms);

		const created = Date.parse(task.created_at);
		const started = Date.parse(task.started_at);
		const finished = Date.parse(task.finished_at);
		for (const iso of [task.created_at, task.started_at, task.finished_at]) {
			expect(new Date(Date.parse(iso)).toISOString()).toBe(iso);
		}
		expect(created).toBeLessThanOrEqual(started);
		expect(started).toBeLessThanOrEqual(finished);
		expect(started - created).toBe(queue_ms);
		expect(finished - created).toBe(total_ms);
		expect(finished - started).toBeGreaterThanOrEqual(run_ms);
	});

	it("answers 202 at once without Prefer, and the task still runs", async () => {
		const id = newId();
		const { res, body, elapsed } = await submitTask({ id, type: "sleep", input: { ms: 1500 } });

		expect(res.status).toBe(202);
		expect(elapsed).toBeLessThan(1000);
		expect(res.headers.get("location")).toBe(`/v1/tasks/${id}`);
		expect(res.headers.get("preference-applied")).toBeNull();
		expect(body).toMatchObject({ id, status: "queued", attempts: 0, started_at: null, finished_at: null, output: null });
		expect(body.metrics).toEqual({ queue_ms: null, run_ms: null, total_ms: null });

		expect((await settled(id)).status).toBe("succeeded");
	});

	it("treats Prefer: wait=0 as 'do not wait' and says so", async () => {
		const id = newId();
		const { res, body } = await submitTask({ id, type: "sleep", input: { ms: 500 } }, { wait: 0 });

		expect(res.status).toBe(202);
		expect(res.headers.get("preference-applied")).toBe("wait=0");
		expect(body.status).not.toBe("succeeded");
		expect((await settled(id)).status).toBe("succeeded");
	});

	it("reads wait among other preferences (Prefer: respond-async, wait=10)", async () => {
		const { res, body } = await submitTask({ type: "sleep", input: { ms: 50 } }, { headers: { prefer: "respond-async, wait=10" } });

		expect(res.status).toBe(200);
		expect(res.headers.get("preference-applied")).toBe("wait=10");
		expect(body.status).toBe("succeeded");
	});

	// `input` is optional in the body schema and every field of sleep's input has a default
	// (ms = 1000), so `{ "type": "sleep" }` is a complete request.
	it("runs a task whose input is omitted with the type's defaults", async () => {
		const { res, body } = await submitTask({ type: "sleep" }, { wait: 10 });

		expect(res.status, JSON.stringify(body)).toBe(200);
		expect(body).toMatchObject({ status: "succeeded", output: { slept_ms: 1000 } });
	});
});
