import { env } from "cloudflare:workers";
import { listDurableObjectIds } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type Answer, call, errorOf, getTask, submitTask } from "./support/api";
import { newId } from "./support/ids";

const MAX_BODY_BYTES = 131072;

/** The answer must be the JSON error envelope with this status and code. */
function expectError(r: Answer<unknown>, status: number, code: string) {
	expect(r.res.status, JSON.stringify(r.body)).toBe(status);
	expect(r.res.headers.get("content-type")).toMatch(/^application\/json/);
	const error = errorOf(r.body);
	expect(error.code).toBe(code);
	expect(error.message.length).toBeGreaterThan(0);
	return error;
}

/** A rejected submission must leave nothing behind: no stored object, and the id stays unknown. */
async function expectNothingCreated(id: string) {
	const target = env.TASKS.idFromName(id);
	const ids = await listDurableObjectIds(env.TASKS);
	expect(ids.some((stored) => stored.equals(target))).toBe(false);
	const r = await getTask(id);
	expectError(r, 404, "task_not_found");
}

function post(body: BodyInit, headers: Record<string, string> = { "content-type": "application/json" }) {
	return call("/v1/tasks", { method: "POST", headers, body });
}

function pathsOf(details: unknown): string[] {
	expect(Array.isArray(details)).toBe(true);
	return (details as { path: string; message: string }[]).map((d) => d.path);
}

describe("bad request bodies", () => {
	it("400 for a body that is not JSON", async () => {
		const id = newId();
		expectError(await post(`{"id":"${id}","type":"sleep",`), 400, "invalid_json");
		expectError(await post(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 400, "invalid_json");
		await expectNothingCreated(id);
	});

	it("415 unless the body is declared JSON", async () => {
		const id = newId();
		const body = JSON.stringify({ id, type: "sleep", input: { ms: 10 } });
		expectError(await post(body, { "content-type": "text/plain" }), 415, "unsupported_media_type");
		expectError(await post(body, { "content-type": "application/x-www-form-urlencoded" }), 415, "unsupported_media_type");
		expectError(await post(body, { "content-type": "application/jsonp" }), 415, "unsupported_media_type");
		expectError(await call("/v1/tasks", { method: "POST", body: new TextEncoder().encode(body) }), 415, "unsupported_media_type");
		await expectNothingCreated(id);
	});

	it("400 with field paths for schema violations", async () => {
		const id = newId();
		const cases: [unknown, string, string][] = [
			[{ id, input: { ms: 10 } }, "invalid_request", "type"],
			[{ id, type: "" }, "invalid_request", "type"],
			[{ id, type: "sleep", input: { ms: "10" } }, "invalid_input", "input.ms"],
			[{ id, type: "sleep", input: { ms: 1.5 } }, "invalid_input", "input.ms"],
			[{ id, type: "sleep", input: { ms: -1 } }, "invalid_input", "input.ms"],
			[{ id, type: "flaky", input: {} }, "invalid_input", "input.fail_times"],
			[{ id, type: "sleep", input: { ms: 10 }, timeout_s: 0 }, "invalid_request", "timeout_s"],
			[{ id, type: "sleep", input: { ms: 10 }, timeout_s: 841 }, "invalid_request", "timeout_s"],
			[{ id, type: "sleep", input: { ms: 10 }, ttl_s: "1" }, "invalid_request", "ttl_s"],
			[{ id, type: "sleep", input: { ms: 10 }, priority: "urgent" }, "invalid_request", "priority"],
			[{ id: 42, type: "sleep", input: { ms: 10 } }, "invalid_request", "id"],
		];
		for (const [body, code, path] of cases) {
			const r = await post(JSON.stringify(body));
			expect(errorOf(r.body).code, JSON.stringify(body)).toBe(code);
			const error = expectError(r, 400, code);
			expect(pathsOf(error.details), JSON.stringify(body)).toContain(path);
		}
		await expectNothingCreated(id);
	});

	it("400 for a body that is not an object, or has unknown fields", async () => {
		const id = newId();
		for (const body of ["null", "[]", '"sleep"', "42"]) {
			expectError(await post(body), 400, "invalid_request");
		}
		const error = expectError(await post(JSON.stringify({ id, type: "sleep", input: { ms: 10 }, tiemout_s: 5 })), 400, "invalid_request");
		expect(JSON.stringify(error.details)).toContain("tiemout_s");
		await expectNothingCreated(id);
	});

	it("422 for a task type this deployment does not run", async () => {
		const id = newId();
		const error = expectError(await submitTask({ id, type: "transcode", input: {} }), 422, "unknown_type");
		expect(error.message).toContain("transcode");
		await expectNothingCreated(id);
	});

	it("400 for an invalid id in the body", async () => {
		for (const id of ["has space", "slash/inside", "é", "", "a".repeat(129)]) {
			const error = expectError(await submitTask({ id, type: "sleep", input: { ms: 10 } }), 400, "invalid_request");
			expect(pathsOf(error.details)).toContain("id");
		}
	});

	it("413 for a body over MAX_BODY_BYTES, declared or not", async () => {
		const id = newId();
		const big = JSON.stringify({ id, type: "echo", input: "x".repeat(MAX_BODY_BYTES) });
		const declared = expectError(await post(big), 413, "payload_too_large");
		expect(declared.details).toEqual({ max_bytes: MAX_BODY_BYTES });

		// Streamed without Content-Length: the limit holds on the bytes actually read.
		const bytes = new TextEncoder().encode(big);
		const stream = new ReadableStream<Uint8Array>({
			start(controller) {
				for (let i = 0; i < bytes.length; i += 16_384) controller.enqueue(bytes.slice(i, i + 16_384));
				controller.close();
			},
		});
		const streamed = await call("/v1/tasks", { method: "POST", headers: { "content-type": "application/json" }, body: stream });
		expectError(streamed, 413, "payload_too_large");
		await expectNothingCreated(id);
	});

	it("accepts a body just under the limit", async () => {
		const id = newId();
		const shell = JSON.stringify({ id, type: "echo", input: "" });
		const input = "x".repeat(MAX_BODY_BYTES - shell.length);
		const { res, body } = await submitTask({ id, type: "echo", input }, { wait: 10 });
		expect(res.status).toBe(200);
		expect(body.status).toBe("succeeded");
	});
});

describe("bad Prefer: wait", () => {
	for (const prefer of ["wait=61", "wait=-1", "wait=abc", "wait=", "wait", "wait=4=x"]) {
		it(`400 for Prefer: ${prefer} on POST and GET`, async () => {
			const id = newId();
			const posted = await submitTask({ id, type: "sleep", input: { ms: 10 } }, { headers: { prefer } });
			expectError(posted, 400, "invalid_prefer_wait");
			await expectNothingCreated(id);

			const got = await call(`/v1/tasks/${id}`, { headers: { prefer } });
			expectError(got, 400, "invalid_prefer_wait");
		});
	}
});

describe("bad paths and methods", () => {
	it("400 for an invalid id in the path", async () => {
		for (const path of ["has%20space", "%C3%A9", "a".repeat(129), "a%2Fb"]) {
			expectError(await call(`/v1/tasks/${path}`), 400, "invalid_id");
		}
	});

	it("404 for an unknown route", async () => {
		// (`/` is the dashboard: test/worker/dashboard.test.ts)
		for (const path of ["/v1", "/v1/", "/v2/tasks", "/v1/tasks/a/b", "/healthz"]) {
			expectError(await call(path), 404, "not_found");
		}
	});

	it("405 with Allow for a known path and the wrong method", async () => {
		const cases: [string, string, string][] = [
			["PUT", "/v1/tasks", "POST, GET"],
			["DELETE", "/v1/tasks", "POST, GET"],
			["DELETE", "/v1/tasks/abc", "GET"],
			["POST", "/v1/tasks/abc", "GET"],
			["GET", "/process", "POST"],
			["POST", "/health", "GET"],
		];
		for (const [method, path, allow] of cases) {
			const r = await call(path, { method });
			expectError(r, 405, "method_not_allowed");
			expect(r.res.headers.get("allow"), `${method} ${path}`).toBe(allow);
		}
	});
});
