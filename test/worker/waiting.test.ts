import { beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../shared/waits";
import { errorOf, getTask, settled, submitTask, warmUp } from "./support/api";
import { newId } from "./support/ids";

beforeAll(warmUp);

describe("Prefer: wait on POST", () => {
	it("answers 202 with Location once the wait runs out, and GET with a longer wait gets the result", async () => {
		const id = newId();
		const { res, body, elapsed } = await submitTask({ id, type: "sleep", input: { ms: 3000 } }, { wait: 1 });

		expect(res.status).toBe(202);
		expect(res.headers.get("location")).toBe(`/v1/tasks/${id}`);
		expect(res.headers.get("preference-applied")).toBe("wait=1");
		expect(["queued", "running"]).toContain(body.status);
		expect(body.output).toBeNull();
		// It did wait the second it was allowed, and not much longer.
		expect(elapsed).toBeGreaterThanOrEqual(950);
		expect(elapsed).toBeLessThan(2500);

		const later = await getTask(id, { wait: 10 });
		expect(later.res.status).toBe(200);
		expect(later.res.headers.get("preference-applied")).toBe("wait=10");
		expect(later.body).toMatchObject({ id, status: "succeeded", output: { slept_ms: 3000 } });
	});
});

describe("Prefer: wait on GET", () => {
	it("releases a waiter the moment the task ends, not at the wait cap", async () => {
		const id = newId();
		const t0 = Date.now();
		await submitTask({ id, type: "sleep", input: { ms: 1500 } });
		await sleep(300);
		const { res, body, elapsed } = await getTask(id, { wait: 20 });
		const sinceSubmit = Date.now() - t0;

		expect(res.status).toBe(200);
		expect(body.status).toBe("succeeded");
		// Released at the end of the task (~1.2 s after the GET), nowhere near the 20 s cap.
		expect(sinceSubmit).toBeGreaterThanOrEqual(1500);
		expect(elapsed).toBeLessThan(1200 + 1000);
	});

	it("releases every waiter of a task at once", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 800 } });
		const waiters = await Promise.all([0, 1, 2].map(() => getTask(id, { wait: 20 })));

		for (const { res, body, elapsed } of waiters) {
			expect(res.status).toBe(200);
			expect(body.status).toBe("succeeded");
			expect(elapsed).toBeLessThan(800 + 1500);
		}
		const finished = new Set(waiters.map((w) => w.body.finished_at));
		expect(finished.size).toBe(1);
	});

	it("answers a late waiter at once with the stored result", async () => {
		const id = newId();
		const done = await settled((await submitTask({ id, type: "sleep", input: { ms: 100 } })).body.id);
		expect(done.status).toBe("succeeded");

		const { res, body, elapsed } = await getTask(id, { wait: 30 });
		expect(res.status).toBe(200);
		expect(res.headers.get("preference-applied")).toBe("wait=30");
		expect(body).toEqual(done);
		expect(elapsed).toBeLessThan(1000);
	});

	it("returns the task as it stands when the wait runs out", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 3000 } });
		const { res, body, elapsed } = await getTask(id, { wait: 1 });

		expect(res.status).toBe(200);
		expect(["queued", "running"]).toContain(body.status);
		expect(elapsed).toBeGreaterThanOrEqual(950);
		expect(elapsed).toBeLessThan(2500);
		expect((await settled(id)).status).toBe("succeeded");
	});

	it("answers at once without Prefer, and 404 for an unknown id even with a wait", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 1000 } });
		const now = await getTask(id);
		expect(now.res.status).toBe(200);
		expect(now.res.headers.get("preference-applied")).toBeNull();
		expect(now.elapsed).toBeLessThan(900);
		expect(["queued", "running"]).toContain(now.body.status);

		const unknown = await getTask(newId(), { wait: 5 });
		expect(unknown.res.status).toBe(404);
		expect(unknown.elapsed).toBeLessThan(2000);
		expect(errorOf(unknown.body).code).toBe("task_not_found");
		expect((await settled(id)).status).toBe("succeeded");
	});
});
