import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

it("runs a task end to end through the real queue", async () => {
	const res = await exports.default.fetch("http://x/v1/tasks", {
		method: "POST",
		headers: { "content-type": "application/json", prefer: "wait=10" },
		body: JSON.stringify({ type: "sleep", input: { ms: 50 } }),
	});
	expect(res.status).toBe(200);
	const task = await res.json<{ status: string; output: unknown }>();
	expect(task.status).toBe("succeeded");
	expect(task.output).toEqual({ slept_ms: 50 });
});

it("second task timing", async () => {
	const t0 = Date.now();
	const res = await exports.default.fetch("http://x/v1/tasks", {
		method: "POST",
		headers: { "content-type": "application/json", prefer: "wait=10" },
		body: JSON.stringify({ type: "sleep", input: { ms: 50 } }),
	});
	const task = await res.json<{ status: string; metrics: unknown }>();
	console.log(Date.now() - t0, task.metrics);
});
