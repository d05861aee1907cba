/**
 * Webhook fields at submit. Submitted here without WEBHOOK_SECRET (removed from the worker's env
 * for these requests), a valid webhook is refused with 400 webhooks_unavailable (that answer
 * proves the URL itself passed); bad URLs and bad webhook_events are 400 invalid_request with the
 * field's path. Nothing is stored.
 */
import { describe, expect, it } from "vitest";
import { errorOf, getTask, submitTask } from "./support/api";
import { newId } from "./support/ids";

async function expectRefused(body: Record<string, unknown>, code: string, path?: string) {
	const id = newId();
	const { res, body: answer } = await submitTask({ id, type: "echo", input: 1, ...body }, { env: { WEBHOOK_SECRET: undefined } });
	const label = JSON.stringify(body);
	expect(res.status, label).toBe(400);
	const error = errorOf(answer);
	expect(error.code, label).toBe(code);
	if (path)
		expect(
			(error.details as { path: string }[]).map((d) => d.path),
			label,
		).toContain(path);
	// Refused before anything was stored.
	expect((await getTask(id)).res.status, label).toBe(404);
}

describe("webhook validation", () => {
	it.each([
		["ftp://example.com/hook"],
		["http://example.com/hook"],
		["http://10.0.0.1/hook"],
		["not a url"],
		["/relative/path"],
		[""],
		["https://user:secret@example.com/hook"],
		[`https://example.com/${"x".repeat(2100)}`],
	])("refuses webhook %j", async (webhook) => {
		await expectRefused({ webhook }, "invalid_request", "webhook");
	});

	it("refuses a webhook that is not a string", async () => {
		await expectRefused({ webhook: 42 }, "invalid_request", "webhook");
		await expectRefused({ webhook: { url: "https://example.com" } }, "invalid_request", "webhook");
	});

	it("refuses webhook_events without a webhook", async () => {
		await expectRefused({ webhook_events: ["completed"] }, "invalid_request", "webhook_events");
	});

	it.each([[["finish"]], [["completed", "done"]], [[]], [["start", "start"]], ["completed"], [[1]]])(
		"refuses webhook_events %j",
		async (events) => {
			await expectRefused({ webhook: "https://example.com/hook", webhook_events: events }, "invalid_request");
		},
	);

	it.each([
		["https://example.com/hook"],
		["http://localhost:8080/hook"],
		["http://127.0.0.1:9/hook"],
		["http://127.1.2.3/hook"],
		["http://[::1]:9/hook"],
	])("accepts the URL %j but answers webhooks_unavailable without WEBHOOK_SECRET", async (webhook) => {
		await expectRefused({ webhook }, "webhooks_unavailable");
		await expectRefused({ webhook, webhook_events: ["start", "progress", "completed"] }, "webhooks_unavailable");
	});

	it("a task without a webhook reports webhook: null", async () => {
		const { res, body } = await submitTask({ type: "echo", input: 1 }, { wait: 10 });
		expect(res.status).toBe(200);
		expect(body.webhook).toBeNull();
	});
});
