import { describe, expect, it } from "vitest";
import { errorOf, getTask, settled, submitTask } from "./support/api";
import { newId } from "./support/ids";

describe("submitting the same id twice", () => {
	it("returns the finished task with the same body, without running it again", async () => {
		const id = newId();
		const body = { id, type: "flaky", input: { fail_times: 0, ms: 100 } };
		const first = await submitTask(body, { wait: 10 });
		expect(first.res.status).toBe(200);
		expect(first.body).toMatchObject({ status: "succeeded", attempts: 1, output: { attempt: 1 } });

		const second = await submitTask(body, { wait: 10 });
		expect(second.res.status).toBe(200);
		expect(second.res.headers.get("location")).toBe(`/v1/tasks/${id}`);
		// The very same task: same creation, same run, same result.
		expect(second.body).toEqual(first.body);
		expect((await settled(id, 0)).attempts).toBe(1);
	});

	it("does not start a second run when the repeat arrives while the first runs", async () => {
		const id = newId();
		const body = { id, type: "sleep", input: { ms: 800 } };
		const first = await submitTask(body);
		const second = await submitTask(body);

		expect(second.res.status).toBe(202);
		expect(second.body.created_at).toBe(first.body.created_at);
		const done = await settled(id);
		expect(done).toMatchObject({ status: "succeeded", attempts: 1 });

		const third = await submitTask(body, { wait: 5 });
		expect(third.res.status).toBe(200);
		expect(third.body.started_at).toBe(done.started_at);
		expect(third.body.attempts).toBe(1);
	});

	it("treats key order and an explicit default as the same body", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 10, note: "a" } }, { wait: 10 });
		const reordered = await submitTask({ input: { note: "a", ms: 10 }, priority: "normal", type: "sleep", id }, { wait: 10 });

		expect(reordered.res.status).toBe(200);
		expect(reordered.body).toMatchObject({ id, status: "succeeded", attempts: 1 });
	});

	it("answers 409 with the error envelope for a different body, and keeps the stored task", async () => {
		const id = newId();
		const original = await submitTask({ id, type: "sleep", input: { ms: 50 } }, { wait: 10 });
		expect(original.body.status).toBe("succeeded");

		for (const changed of [
			{ id, type: "sleep", input: { ms: 51 } },
			{ id, type: "echo", input: { ms: 50 } },
			{ id, type: "sleep", input: { ms: 50 }, priority: "high" },
		]) {
			const { res, body } = await submitTask(changed, { wait: 5 });
			expect(res.status).toBe(409);
			expect(res.headers.get("content-type")).toMatch(/^application\/json/);
			const error = errorOf(body);
			expect(error.code).toBe("id_conflict");
			expect(error.message).toContain(id);
			expect(error.details).toMatchObject({ task: { id, status: "succeeded" } });
		}

		const stored = await getTask(id);
		expect(stored.body).toMatchObject({ id, type: "sleep", input: { ms: 50 }, attempts: 1, started_at: original.body.started_at });
	});
});
