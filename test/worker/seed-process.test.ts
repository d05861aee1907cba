import { describe, expect, it } from "vitest";
import { PROCESS_WAIT_S, taskEnvelope, type SeedEnvelope } from "../../src/api/seed";
import { call, cancelTask, type EnvOverrides, getTask, settled, submitTask, type TaskView } from "./support/api";
import { newId } from "./support/ids";

/** POST /process with a JSON body, as the seed template's clients send it (`env`: vars for this request). */
function processCall(body: unknown, env?: EnvOverrides) {
	return call<SeedEnvelope>(
		"/process",
		{
			method: "POST",
			headers: { "content-type": "application/json" },
			body: typeof body === "string" ? body : JSON.stringify(body),
		},
		env,
	);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("POST /process (seed compatibility)", () => {
	it("answers 200 with the seed's success envelope and the body's uuid", async () => {
		const uuid = newId();
		const { res, body } = await processCall({ uuid, ms: 50, prompt: "a cat" });

		expect(res.status).toBe(200);
		expect(body).toEqual({ success: true, code: 0, msg: "ok", data: { uuid, result: { slept_ms: 50 } } });
	});

	it("generates a uuid when the body has none", async () => {
		const { res, body } = await processCall({ ms: 20 });

		expect(res.status).toBe(200);
		expect(body.success).toBe(true);
		expect(body.data.uuid).toMatch(UUID);
		expect(body.data.result).toEqual({ slept_ms: 20 });
	});

	it("accepts a numeric uuid, as the seed did", async () => {
		const uuid = Math.floor(Math.random() * 1e12);
		const { res, body } = await processCall({ uuid, ms: 10 });

		expect(res.status).toBe(200);
		expect(body.data.uuid).toBe(String(uuid));
		expect((await settled(String(uuid), 0)).status).toBe("succeeded");
	});

	it("keeps the task readable through GET /v1/tasks/{uuid}", async () => {
		const uuid = newId();
		const { body } = await processCall({ uuid, ms: 30, note: "kept" });
		expect(body.success).toBe(true);

		const task = await settled(uuid, 0);
		expect(task).toMatchObject({
			id: uuid,
			type: "sleep",
			status: "succeeded",
			input: { uuid, ms: 30, note: "kept" },
			output: { slept_ms: 30 },
			attempts: 1,
		});
	});

	it("answers 400 with success:false and code 1 when the body is not an object", async () => {
		for (const bad of ["[1,2]", "null", '"text"', "7"]) {
			const { res, body } = await processCall(bad);
			expect(res.status, bad).toBe(400);
			expect(body).toMatchObject({ success: false, code: 1 });
			expect(body.msg.length).toBeGreaterThan(0);
			expect(body.data).toHaveProperty("uuid");
		}
	});

	it("answers 400 in the envelope for an invalid uuid or input, and creates nothing", async () => {
		const bad = await processCall({ uuid: "not a valid id!", ms: 10 });
		expect(bad.res.status).toBe(400);
		expect(bad.body).toMatchObject({ success: false, code: 1, data: { uuid: "not a valid id!" } });
		expect(bad.body.msg).toMatch(/uuid/);

		const uuid = newId();
		const badInput = await processCall({ uuid, ms: "soon" });
		expect(badInput.res.status).toBe(400);
		expect(badInput.body).toMatchObject({ success: false, code: 1, data: { uuid } });
		expect(badInput.body.msg).toContain("ms");
		expect((await getTask(uuid)).res.status).toBe(404);
	});

	it("answers a body that is not JSON in the envelope too", async () => {
		const { res, body } = await processCall("{oops");
		expect(res.status).toBe(400);
		expect(body).toMatchObject({ success: false, code: 1 });
	});

	it("a task longer than the 60 s wait: after 60 s the timeout envelope, and the task goes on", { timeout: 120_000 }, async () => {
		const uuid = newId();
		const { res, body, elapsed } = await processCall({ uuid, ms: 75_000 });
		expect(res.status).toBe(200);
		expect(body).toEqual({
			success: false,
			code: 1,
			msg: `Request timeout (${PROCESS_WAIT_S}s); the task is still running: GET /v1/tasks/${uuid} has it`,
			data: { uuid, result: "" },
		});
		expect(elapsed).toBeGreaterThanOrEqual(PROCESS_WAIT_S * 1000);
		expect(elapsed).toBeLessThan(PROCESS_WAIT_S * 1000 + 5000);
		// Unlike the seed, nothing is lost: the task runs on and is readable.
		const task = await getTask(uuid);
		expect(task.body).toMatchObject({ id: uuid, status: "running", input: { uuid, ms: 75_000 } });
		expect((await cancelTask(uuid)).res.status).toBe(200);
	});

	it("a misconfigured PROCESS_TASK_TYPE is the server's fault: 500 in the envelope, nothing created", async () => {
		const uuid = newId();
		const { res, body } = await processCall({ uuid, ms: 10 }, { PROCESS_TASK_TYPE: "no-such-type" });
		expect(res.status).toBe(500);
		expect(body).toMatchObject({ success: false, code: 1, data: { uuid, result: "" } });
		expect(body.msg).toContain('"no-such-type"');
		expect((await getTask(uuid)).res.status).toBe(404);
		// The same request with the type configured runs.
		expect((await processCall({ uuid, ms: 10 })).body).toMatchObject({ success: true, data: { uuid, result: { slept_ms: 10 } } });
	});

	it("answers 409 in the envelope when the uuid exists with another body", async () => {
		const uuid = newId();
		await processCall({ uuid, ms: 10 });
		const again = await processCall({ uuid, ms: 11 });
		expect(again.res.status).toBe(409);
		expect(again.body).toMatchObject({ success: false, code: 1, data: { uuid } });
	});
});

describe("taskEnvelope", () => {
	it("tells a caller whose wait ran out that the task goes on, and where to find it", async () => {
		const uuid = newId();
		const { body: task } = await submitTask({ id: uuid, type: "sleep", input: { ms: 1500, uuid } });
		const running: TaskView = { ...task, status: "running" };

		for (const t of [task, running]) {
			const envelope = taskEnvelope(t);
			expect(envelope).toMatchObject({ success: false, code: 1, data: { uuid, result: "" } });
			expect(envelope.msg.toLowerCase()).toContain("timeout");
			expect(envelope.msg).toContain(`${PROCESS_WAIT_S}`);
			expect(envelope.msg).toContain(`GET /v1/tasks/${uuid}`);
			expect(envelope.msg).toContain(t.status);
		}
		expect((await settled(uuid)).status).toBe("succeeded");
	});

	it("passes a failed task's error message through", async () => {
		const { body: failed } = await submitTask({ type: "fail", input: { message: "model refused", permanent: true } }, { wait: 10 });
		expect(failed.status).toBe("failed");
		expect(taskEnvelope(failed)).toEqual({ success: false, code: 1, msg: "model refused", data: { uuid: failed.id, result: "" } });
	});
});
