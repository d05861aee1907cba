/**
 * Signed webhooks end to end: `wrangler dev` with a WEBHOOK_SECRET delivers to a node:http
 * receiver on 127.0.0.1. Signatures are checked here independently with node:crypto (Standard
 * Webhooks: HMAC-SHA256 over `${webhook-id}.${webhook-timestamp}.${body}`, key = the base64 after
 * `whsec_`). Retries, the attempt log on the task, event filters, and a receiver that is slow or
 * down never delaying the task. Timing checks are orderings or lower bounds: the machine is shared.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/devServer";
import { signatureValid as signedWith, startWebhookReceiver, type ReceivedDelivery, type WebhookReceiver } from "../setup/webhookReceiver";
import { getTask, request, sleep, startDevServer, submit, submitSleep, tail, uniqueId, type DevServer, type TaskJson } from "./helpers";

const WEBHOOK_SECRET = `whsec_${randomBytes(32).toString("base64")}`;

/** A delivery with its body parsed (the receiver keeps it raw). */
interface Delivery extends ReceivedDelivery {
	body: {
		type: string;
		timestamp: string;
		data: { task_id: string; seq: number; type: string; at: string; data: Record<string, unknown> };
	};
}

type WebhookLog = { seq: number; event: string; attempt: number; at: string; ok: boolean; status: number | null; error: string | null };
type WebhookGiveUp = { seq: number; event: string; attempts: number; at: string; reason: string };
type TaskWithWebhook = TaskJson & {
	webhook: { url: string; events: string[]; pending: number; deliveries: WebhookLog[]; given_up: WebhookGiveUp[] } | null;
};

/**
 * The shared receiver (test/setup/webhookReceiver.ts). Paths used here: `/ok/…` answers 200;
 * `/slow-first-2000/flaky-2/…` answers 500 to the first two deliveries of each webhook-id (the
 * first only after 2 s), then 200; `/flaky-2/…` the same without the delay.
 */
let receiver: WebhookReceiver;
let receiverUrl: string;

/** Independent Standard Webhooks check of one delivery, with this file's secret or another. */
function signatureValid(d: Delivery, secret = WEBHOOK_SECRET): boolean {
	return signedWith(d.headers, d.raw, secret);
}

function deliveriesTo(path: string): Delivery[] {
	return receiver.deliveries.filter((d) => d.path === path).map((d) => ({ ...d, body: JSON.parse(d.raw) as Delivery["body"] }));
}

/** Polls until `probe` returns a value (bounded). */
async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs: number): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value !== undefined) return value;
		if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${tail(server.output(), 3000)}`);
		await sleep(100);
	}
}

/** GET the task until its webhook outbox is empty; returns it. */
function webhookSettled(id: string, timeoutMs: number): Promise<TaskWithWebhook> {
	return until(
		async () => {
			const { status, body } = await getTask(server.url, id);
			const task = body as TaskWithWebhook;
			return status === 200 && task.webhook && task.webhook.pending === 0 && task.webhook.deliveries.length > 0 ? task : undefined;
		},
		`task ${id}'s webhooks to settle`,
		timeoutMs,
	);
}

let server: DevServer;

beforeAll(async () => {
	receiver = await startWebhookReceiver(WEBHOOK_SECRET);
	receiverUrl = receiver.url;
	server = await startDevServer({
		vars: { WEBHOOK_SECRET, WEBHOOK_RETRY_BASE_S: "0.5", ENABLE_FAULT_PROCESSORS: "true" },
	});
	const warm = await submit(server.url, "echo", { warm: true }, { wait: 30 });
	expect(warm.status, JSON.stringify(warm.body)).toBe(200);
});

afterAll(async () => {
	await server?.stop();
	await receiver?.close();
});

describe("webhooks", () => {
	it(
		"retries a failing receiver (2 × 500, then 200) with signed, identical deliveries; the task is not held up",
		{ timeout: 60_000 },
		async () => {
			const id = uniqueId("wh-retry");
			const path = `/slow-first-2000/flaky-2/${id}`;
			const t0 = Date.now();
			const submitted = await submitSleep(server.url, 1000, { id, wait: 20, extra: { webhook: `${receiverUrl}${path}` } });
			const answeredAt = Date.now();
			expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
			const done = submitted.body as TaskWithWebhook;
			expect(done.status).toBe("succeeded");
			expect(done.webhook).toMatchObject({ url: `${receiverUrl}${path}`, events: ["completed"] });
			// Answered at the end of the task, not after the receiver (which holds its first answer 2 s).
			expect(answeredAt - t0).toBeGreaterThanOrEqual(1000);
			expect(answeredAt - t0).toBeLessThan(1000 + 4000);

			const task = await webhookSettled(id, 30_000);
			const got = deliveriesTo(path);
			expect(got).toHaveLength(3);
			const first = got[0]!;
			expect(
				first.respondedAt === null || first.respondedAt >= answeredAt,
				"the waiter was answered before the receiver's first reply",
			).toBe(true);

			// One event, delivered three times: same id, same body type and event, each validly signed.
			const terminalSeq = first.body.data.seq;
			for (const d of got) {
				expect(d.headers["webhook-id"]).toBe(`${id}:${terminalSeq}`);
				expect(d.headers["content-type"]).toMatch(/application\/json/);
				expect(signatureValid(d), `signature of ${d.raw.slice(0, 200)}`).toBe(true);
				expect(signatureValid(d, `whsec_${randomBytes(32).toString("base64")}`)).toBe(false);
				const ts = Number(d.headers["webhook-timestamp"]);
				expect(Number.isInteger(ts)).toBe(true);
				expect(Math.abs(ts - d.receivedAt / 1000)).toBeLessThan(60);
				expect(d.body.type).toBe("task.succeeded");
				expect(d.body.timestamp).toBe(d.body.data.at);
				expect(d.body.data).toMatchObject({ task_id: id, type: "succeeded", data: { status: "succeeded", output: { slept_ms: 1000 } } });
				expect(d.body.data).toEqual(first.body.data);
			}
			expect(got.map((d) => d.status)).toEqual([500, 500, 200]);
			// Backoff: 0.5 s after the first failure, 1 s after the second (lower bounds only).
			expect(got[1]!.receivedAt - got[0]!.respondedAt!).toBeGreaterThanOrEqual(400);
			expect(got[2]!.receivedAt - got[1]!.respondedAt!).toBeGreaterThanOrEqual(900);
			expect(Date.parse(task.finished_at!)).toBeLessThanOrEqual(got[0]!.receivedAt + 1000);

			// The attempt log on the task.
			expect(task.webhook!.pending).toBe(0);
			expect(task.webhook!.deliveries).toHaveLength(3);
			expect(task.webhook!.deliveries.map((w) => [w.seq, w.event, w.attempt, w.ok, w.status])).toEqual([
				[terminalSeq, "succeeded", 1, false, 500],
				[terminalSeq, "succeeded", 2, false, 500],
				[terminalSeq, "succeeded", 3, true, 200],
			]);
			expect(task.webhook!.deliveries[0]!.error).toMatch(/500/);
			expect(task.webhook!.deliveries[2]!.error).toBeNull();
			// The task itself is exactly as it was when it ended.
			expect(task.finished_at).toBe(done.finished_at);
			expect(task.status).toBe("succeeded");
		},
	);

	it(
		"webhook_events start, progress, completed on a 1.5 s sleep: task.running, task.progress…, task.succeeded",
		{ timeout: 60_000 },
		async () => {
			const id = uniqueId("wh-all");
			const path = `/ok/${id}`;
			const submitted = await submitSleep(server.url, 1500, {
				id,
				wait: 20,
				extra: { webhook: `${receiverUrl}${path}`, webhook_events: ["start", "progress", "completed"] },
			});
			expect(submitted.status, JSON.stringify(submitted.body)).toBe(200);
			const task = await webhookSettled(id, 20_000);
			await until(() => (deliveriesTo(path).some((d) => d.body.type === "task.succeeded") ? true : undefined), "task.succeeded", 10_000);
			const got = deliveriesTo(path);
			const types = got.map((d) => d.body.type);
			expect(types).toContain("task.running");
			expect(types).toContain("task.succeeded");
			expect(types.filter((t) => t === "task.progress").length).toBeGreaterThanOrEqual(1);
			expect(
				types.every((t) => ["task.running", "task.progress", "task.succeeded"].includes(t)),
				JSON.stringify(types),
			).toBe(true);
			// No task.queued: it is not one of the filters.
			for (const d of got) {
				expect(signatureValid(d)).toBe(true);
				expect(d.headers["webhook-id"]).toBe(`${id}:${d.body.data.seq}`);
				expect(d.body.type).toBe(`task.${d.body.data.type}`);
			}
			// Each event delivered once (all answered 200); deliveries run concurrently, so compare by seq.
			const ids = got.map((d) => String(d.headers["webhook-id"]));
			expect(new Set(ids).size).toBe(ids.length);
			const seqs = got.map((d) => d.body.data.seq);
			expect(Math.min(...seqs)).toBe(got.find((d) => d.body.type === "task.running")!.body.data.seq);
			expect(Math.max(...seqs)).toBe(got.find((d) => d.body.type === "task.succeeded")!.body.data.seq);
			const percents = got
				.filter((d) => d.body.type === "task.progress")
				.sort((a, b) => a.body.data.seq - b.body.data.seq)
				.map((d) => (d.body.data.data.progress as { percent: number }).percent);
			for (let i = 1; i < percents.length; i++) expect(percents[i]).toBeGreaterThan(percents[i - 1]!);

			expect(task.webhook!.events).toEqual(["start", "progress", "completed"]);
			expect(task.webhook!.deliveries.every((w) => w.ok && w.status === 200 && w.attempt === 1)).toBe(true);
			expect(task.webhook!.deliveries).toHaveLength(got.length);
		},
	);

	/*
	 * Retries of a webhook sent while the task runs (start, progress) are due 0.5 s and 1.5 s after
	 * the first failure. They must not wait for the task to end: the task's alarm handler is busy
	 * awaiting the running attempt, so the object makes them by calling itself (an invocation of
	 * their own, which the one holding the run never awaits).
	 */
	it("a failing task.running webhook is retried while the task is still running", { timeout: 60_000 }, async () => {
		const id = uniqueId("wh-start");
		const path = `/flaky-2/${id}`;
		await submitSleep(server.url, 8000, { id, extra: { webhook: `${receiverUrl}${path}`, webhook_events: ["start"] } });
		await until(() => (deliveriesTo(path).length >= 3 ? true : undefined), "3 deliveries of task.running", 30_000);
		const got = deliveriesTo(path);
		expect(got.map((d) => [d.body.type, d.status])).toEqual([
			["task.running", 500],
			["task.running", 500],
			["task.running", 200],
		]);
		const done = (await getTask(server.url, id, 30)).body as TaskWithWebhook;
		expect(done.status, `${JSON.stringify(done)}\n${tail(server.output(), 2000)}`).toBe("succeeded");
		const startedAt = Date.parse(done.started_at!);
		const finishedAt = Date.parse(done.finished_at!);
		const offsets = got.map((d) => d.receivedAt - startedAt);
		// Due at ~0, ~0.5 and ~1.5 s into an 8 s run: with 4 s of slack they all land before its end.
		expect(got[2]!.receivedAt, `deliveries at +${offsets.join(", +")} ms; the task ran ${finishedAt - startedAt} ms`).toBeLessThan(
			startedAt + 1500 + 4000,
		);
		expect(got[2]!.receivedAt).toBeLessThan(finishedAt);
	});

	it("failed and canceled tasks send task.failed and task.canceled", { timeout: 60_000 }, async () => {
		const failId = uniqueId("wh-fail");
		const failPath = `/ok/${failId}`;
		const failed = await submit(
			server.url,
			"fail",
			{ message: "nope", permanent: true },
			{ id: failId, wait: 20, extra: { webhook: `${receiverUrl}${failPath}` } },
		);
		expect(failed.body.status).toBe("failed");

		const cancelId = uniqueId("wh-cancel");
		const cancelPath = `/ok/${cancelId}`;
		await submitSleep(server.url, 10_000, { id: cancelId, extra: { webhook: `${receiverUrl}${cancelPath}` } });
		const canceled = await request<TaskJson>(`${server.url}/v1/tasks/${cancelId}/cancel`, { method: "POST" });
		expect(canceled.status).toBe(200);

		await until(() => (deliveriesTo(failPath).length && deliveriesTo(cancelPath).length ? true : undefined), "both webhooks", 15_000);
		const [f] = deliveriesTo(failPath);
		const [c] = deliveriesTo(cancelPath);
		expect(f!.body).toMatchObject({ type: "task.failed", data: { task_id: failId, type: "failed", data: { error: { message: "nope" } } } });
		expect(c!.body).toMatchObject({
			type: "task.canceled",
			data: { task_id: cancelId, type: "canceled", data: { error: { code: "canceled" } } },
		});
		expect(signatureValid(f!) && signatureValid(c!)).toBe(true);
	});

	it(
		"a receiver that is down leaves the task unaffected; delivery is retried up to 6 attempts, then given up",
		{ timeout: 60_000 },
		async () => {
			const port = await freePort(); // nothing listens there
			const id = uniqueId("wh-down");
			const t0 = Date.now();
			const submitted = await submitSleep(server.url, 300, { id, wait: 20, extra: { webhook: `http://127.0.0.1:${port}/hook` } });
			const elapsed = Date.now() - t0;
			expect(submitted.status).toBe(200);
			expect(submitted.body).toMatchObject({ id, status: "succeeded", output: { slept_ms: 300 } });
			expect(elapsed).toBeLessThan(300 + 4000);

			// Other work goes on meanwhile.
			const other = await submitSleep(server.url, 100, { wait: 20 });
			expect(other.body.status).toBe("succeeded");

			const first = await until(
				async () => {
					const task = (await getTask(server.url, id)).body as TaskWithWebhook;
					return task.webhook && task.webhook.deliveries.length > 0 ? task : undefined;
				},
				"the first attempt",
				15_000,
			);
			expect(first.webhook!.deliveries[0]).toMatchObject({ attempt: 1, ok: false, status: null, event: "succeeded" });
			expect(first.webhook!.deliveries[0]!.error).toEqual(expect.any(String));

			// 0.5 + 1 + 2 + 4 + 8 s of backoff: all six attempts within ~16 s, then nothing pending.
			const task = await webhookSettled(id, 40_000);
			expect(task.webhook!.deliveries.map((w) => w.attempt)).toEqual([1, 2, 3, 4, 5, 6]);
			expect(task.webhook!.deliveries.every((w) => !w.ok && w.status === null)).toBe(true);
			// The give-up stays on the task too.
			expect(task.webhook!.given_up).toEqual([
				{
					seq: task.webhook!.deliveries[0]!.seq,
					event: "succeeded",
					attempts: 6,
					at: expect.any(String),
					reason: expect.stringContaining("6 attempts failed"),
				},
			]);
			const times = task.webhook!.deliveries.map((w) => Date.parse(w.at));
			for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(0.5 * 1000 * 2 ** (i - 1) - 100);
			expect(task).toMatchObject({ status: "succeeded", finished_at: submitted.body.finished_at });
		},
	);
});
