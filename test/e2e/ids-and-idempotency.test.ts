/**
 * Client-chosen ids over real HTTP: submitting the same id with the same body returns the one
 * stored task without running it again; the same id with a different body is a 409.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	getTask,
	request,
	sleep,
	startDevServer,
	submit,
	submitSleep,
	uniqueId,
	waitTerminal,
	type DevServer,
	type ErrorJson,
	type TaskJson,
} from "./helpers";

let server: DevServer;
let base: string;

beforeAll(async () => {
	server = await startDevServer();
	base = server.url;
});

afterAll(async () => {
	await server?.stop();
});

/** The fields that show whether a task was run again. */
function runIdentity(t: TaskJson) {
	return {
		id: t.id,
		attempts: t.attempts,
		created_at: t.created_at,
		started_at: t.started_at,
		finished_at: t.finished_at,
		output: t.output,
	};
}

describe("same id, same body", () => {
	it("after the task finished: the same task, not run again", async () => {
		const id = uniqueId("idem-done");
		const first = await submitSleep(base, 200, { id, wait: 10 });
		expect(first.status, JSON.stringify(first.body)).toBe(200);
		expect(first.body.id).toBe(id);
		expect(first.body.status).toBe("succeeded");
		expect(first.body.attempts).toBe(1);

		// Without Prefer: a finished task is answered 200 at once.
		const second = await submitSleep(base, 200, { id });
		expect(second.status, JSON.stringify(second.body)).toBe(200);
		expect(second.headers.get("location")).toBe(`/v1/tasks/${id}`);
		expect(runIdentity(second.body)).toEqual(runIdentity(first.body));

		// With Prefer: likewise, and no new run appears later either.
		const third = await submitSleep(base, 200, { id, wait: 5 });
		expect(third.status).toBe(200);
		expect(third.elapsedMs).toBeLessThan(2000);
		expect(runIdentity(third.body)).toEqual(runIdentity(first.body));
		await sleep(500);
		const read = await getTask(base, id);
		expect(runIdentity(read.body)).toEqual(runIdentity(first.body));
	});

	it("while the task is still running: the same task, run once", async () => {
		const id = uniqueId("idem-running");
		const first = await submitSleep(base, 1500, { id });
		expect(first.status).toBe(202);
		const again = await submitSleep(base, 1500, { id });
		expect(again.status).toBe(202);
		expect(again.body.id).toBe(id);
		expect(again.body.created_at).toBe(first.body.created_at);
		expect(["queued", "running"]).toContain(again.body.status);

		const done = await waitTerminal(base, id, 20_000);
		expect(done.body.status).toBe("succeeded");
		expect(done.body.attempts).toBe(1);
		const late = await submitSleep(base, 1500, { id, wait: 5 });
		expect(late.status).toBe(200);
		expect(runIdentity(late.body)).toEqual(runIdentity(done.body));
	});

	it("concurrent submissions of one id create a single task", async () => {
		const id = uniqueId("idem-race");
		const answers = await Promise.all(Array.from({ length: 8 }, () => submitSleep(base, 300, { id, wait: 10 })));
		for (const a of answers) {
			expect(a.status, JSON.stringify(a.body)).toBe(200);
			expect(a.body.status).toBe("succeeded");
		}
		const identities = answers.map((a) => runIdentity(a.body));
		for (const i of identities) expect(i).toEqual(identities[0]);
		expect(identities[0]!.attempts).toBe(1);
	});

	it("key order and whitespace do not make a body different", async () => {
		const id = uniqueId("idem-order");
		const first = await request<TaskJson>(`${base}/v1/tasks`, {
			method: "POST",
			headers: { "content-type": "application/json", prefer: "wait=10" },
			body: JSON.stringify({ id, type: "echo", input: { a: 1, b: [1, 2], c: { x: true, y: null } } }),
		});
		expect(first.status, JSON.stringify(first.body)).toBe(200);
		const second = await request<TaskJson>(`${base}/v1/tasks`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: `{ "input": { "c": { "y": null, "x": true }, "b": [1, 2], "a": 1 },\n  "type": "echo", "id": ${JSON.stringify(id)} }`,
		});
		expect(second.status, JSON.stringify(second.body)).toBe(200);
		expect(runIdentity(second.body)).toEqual(runIdentity(first.body));
		expect(second.body.output).toEqual({ a: 1, b: [1, 2], c: { x: true, y: null } });
	});
});

describe("same id, different body", () => {
	it.each([
		["a different input", { type: "sleep", input: { ms: 51 } }],
		["a different type", { type: "echo", input: { ms: 50 } }],
		["a different priority", { type: "sleep", input: { ms: 50 }, priority: "high" }],
		["a different ttl", { type: "sleep", input: { ms: 50 }, ttl_s: 60 }],
		["an explicit timeout", { type: "sleep", input: { ms: 50 }, timeout_s: 30 }],
	])("%s → 409 id_conflict, the stored task untouched", async (_what, body) => {
		const id = uniqueId("conflict");
		const first = await submit(base, "sleep", { ms: 50 }, { id, wait: 10 });
		expect(first.status, JSON.stringify(first.body)).toBe(200);

		const clash = await request<ErrorJson>(`${base}/v1/tasks`, {
			method: "POST",
			headers: { "content-type": "application/json", prefer: "wait=5" },
			body: JSON.stringify({ ...body, id }),
		});
		expect(clash.status, JSON.stringify(clash.body)).toBe(409);
		expect(clash.headers.get("content-type")).toMatch(/application\/json/);
		expect(clash.body.error.code).toBe("id_conflict");
		expect(clash.body.error.message).toContain(id);
		// The existing task comes with the conflict, so the client can see what holds the id.
		expect((clash.body.error.details as { task: TaskJson }).task).toMatchObject({ id, type: "sleep", input: { ms: 50 } });

		const read = await getTask(base, id);
		expect(read.body.input).toEqual({ ms: 50 });
		expect(runIdentity(read.body)).toEqual(runIdentity(first.body));
	});

	it("409 also while the first task is still running, and it still finishes once", async () => {
		const id = uniqueId("conflict-running");
		const first = await submitSleep(base, 1000, { id });
		expect(first.status).toBe(202);
		const clash = await submitSleep(base, 999, { id });
		expect(clash.status).toBe(409);
		const done = await waitTerminal(base, id, 20_000);
		expect(done.body.status).toBe("succeeded");
		expect(done.body.output).toEqual({ slept_ms: 1000 });
		expect(done.body.attempts).toBe(1);
	});
});

describe("ids", () => {
	it("a client id is used as given, in the body, Location and urls", async () => {
		const id = `Client.ID:${Date.now()}_x-1`;
		const res = await submit(base, "echo", "hi", { id, wait: 10 });
		expect(res.status).toBe(200);
		expect(res.body.id).toBe(id);
		expect(res.headers.get("location")).toBe(`/v1/tasks/${encodeURIComponent(id)}`);
		const read = await request<TaskJson>(`${base}${res.headers.get("location")}`);
		expect(read.status).toBe(200);
		expect(read.body.id).toBe(id);
		expect(read.body.output).toBe("hi");
	});

	it("server-generated ids are distinct for identical bodies", async () => {
		const [a, b] = await Promise.all([submit(base, "echo", { same: 1 }, { wait: 10 }), submit(base, "echo", { same: 1 }, { wait: 10 })]);
		expect(a.status).toBe(200);
		expect(b.status).toBe(200);
		expect(a.body.id).not.toBe(b.body.id);
	});

	it.each([
		["a space", "has space"],
		["a slash", "a/b"],
		["129 characters", "x".repeat(129)],
		["an empty id", ""],
	])("an id with %s is refused with 400", async (_what, id) => {
		const res = await request<ErrorJson>(`${base}/v1/tasks`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ type: "echo", id }),
		});
		expect(res.status, JSON.stringify(res.body)).toBe(400);
		expect(res.body.error.code).toBe("invalid_request");
		expect(res.body.error.details).toEqual([expect.objectContaining({ path: "id" })]);
	});

	it("an unknown id is 404, with or without a wait", async () => {
		const id = uniqueId("never-submitted");
		const plain = await request<ErrorJson>(`${base}/v1/tasks/${id}`);
		expect(plain.status).toBe(404);
		expect(plain.body.error.code).toBe("task_not_found");
		const waited = await request<ErrorJson>(`${base}/v1/tasks/${id}`, { headers: { prefer: "wait=5" } });
		expect(waited.status).toBe(404);
		expect(waited.elapsedMs).toBeLessThan(2000);
	});
});

describe("POST /process with a uuid", () => {
	const post = (body: unknown) =>
		request<{ success: boolean; code: number; msg: string; data: { uuid: string; result: unknown } }>(`${base}/process`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify(body),
		});

	it("the same uuid twice returns the stored result without running again", async () => {
		const uuid = uniqueId("seed-idem");
		const first = await post({ uuid, ms: 200 });
		expect(first.status).toBe(200);
		expect(first.body.success).toBe(true);
		const before = await getTask(base, uuid);
		const second = await post({ uuid, ms: 200 });
		expect(second.status).toBe(200);
		expect(second.body).toEqual(first.body);
		const after = await getTask(base, uuid);
		expect(after.body.attempts).toBe(1);
		expect(runIdentity(after.body)).toEqual(runIdentity(before.body));
	});

	it("the same uuid with a different body is a 409 failure envelope", async () => {
		const uuid = uniqueId("seed-conflict");
		expect((await post({ uuid, ms: 10 })).status).toBe(200);
		const clash = await post({ uuid, ms: 20 });
		expect(clash.status).toBe(409);
		expect(clash.body.success).toBe(false);
		expect(clash.body.code).toBe(1);
		expect(clash.body.data.uuid).toBe(uuid);
	});

	it("a numeric uuid is the same task as its string form", async () => {
		const n = Date.now();
		const first = await post({ uuid: n, ms: 10 });
		expect(first.status, JSON.stringify(first.body)).toBe(200);
		expect(first.body.data.uuid).toBe(String(n));
		const second = await post({ uuid: String(n), ms: 10 });
		expect(second.status, JSON.stringify(second.body)).toBe(200);
		expect(second.body).toEqual(first.body);
	});
});
