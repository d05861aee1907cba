/**
 * Webhooks owed are never dropped silently, delivered to the real receiver of test/setup
 * (node:http on 127.0.0.1, checking signatures on its own): signing with a plain-string secret,
 * a retry that still finds its progress event after later progress replaced it, deliveries that
 * keep a task past its TTL until each is made or given up (the give-up recorded), and retries
 * that fall due during a run made on time, but never by the alarm invocation that holds the run.
 */
import { runInDurableObject } from "cloudflare:test";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { ALARM_WALL_LIMIT_S, MAX_TIMEOUT_S, RUN_HEADROOM_S } from "../../src/task/model";
import { eventually, sleep } from "../shared/waits";
import { call, errorOf, getTask, settled, submitTask, warmUp, type TaskView } from "./support/api";
import { newId } from "./support/ids";
import { createWithoutMessage, dispatch, runInObject, taskStub } from "./support/objects";
import { payloadOf, received, receiverUrl } from "./support/webhooks";

const receiver = receiverUrl();

type Alarm = (this: any, ...args: unknown[]) => Promise<void>;
let classAlarm: { proto: { alarm: Alarm }; original: Alarm } | null = null;
afterAll(() => {
	if (classAlarm) classAlarm.proto.alarm = classAlarm.original;
});

/** From now on, when each alarm invocation of task `id`'s object starts and ends (epoch ms). */
async function recordAlarmInvocations(id: string): Promise<{ start: number; end: number }[]> {
	const invocations: { start: number; end: number }[] = [];
	await runInObject(taskStub(id), (instance) => {
		const proto = Object.getPrototypeOf(instance) as { alarm: Alarm };
		classAlarm ??= { proto, original: proto.alarm };
		const { original } = classAlarm;
		proto.alarm = async function (this: any, ...args: unknown[]) {
			if (this.record?.id !== id) return original.apply(this, args);
			const start = Date.now();
			try {
				await original.apply(this, args);
			} finally {
				invocations.push({ start, end: Date.now() });
			}
		};
	});
	return invocations;
}

beforeAll(warmUp);
afterEach(() => vi.restoreAllMocks());

describe("signing", () => {
	it("signs with a plain-string WEBHOOK_SECRET: the receiver verifies the signature with the secret's own bytes", async () => {
		const id = newId("owed");
		const path = `/ok/${id}`;
		const done = await submitTask({ id, type: "echo", input: { hello: 1 }, webhook: `${receiver}${path}` }, { wait: 10 });
		expect(done.body.status).toBe("succeeded");
		const [delivery] = await eventually(async () => ((await received(path)).length > 0 ? received(path) : undefined), "the delivery");
		expect(delivery!.signatureValid).toBe(true);
		expect(delivery!.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
		const body = payloadOf(delivery!);
		expect(delivery!.headers["webhook-id"]).toBe(`${id}:${body.data.seq}`);
		expect(body).toMatchObject({ type: "task.succeeded", data: { task_id: id, type: "succeeded" } });
		const task = await eventually(async () => {
			const { body: t } = await getTask(id);
			return t.webhook?.pending === 0 ? t : undefined;
		}, "the delivery recorded on the task");
		expect(task.webhook).toMatchObject({
			pending: 0,
			given_up: [],
			deliveries: [{ seq: body.data.seq, ok: true, status: 200, attempt: 1 }],
		});
	});
});

describe("retries find their event", () => {
	it("every progress webhook is delivered though later progress replaced its event; replay keeps only the latest", async () => {
		const id = newId("owed");
		const path = `/flaky-1/${id}`;
		// 1.5 s of sleep reports 9 steps, coalesced to at most 4 events a second; each first delivery fails.
		await submitTask({ id, type: "sleep", input: { ms: 1500 }, webhook: `${receiver}${path}`, webhook_events: ["progress"] });
		const task = await eventually(
			async () => {
				const { body: t } = await getTask(id);
				return t.status === "succeeded" && t.webhook?.pending === 0 ? t : undefined;
			},
			"every progress webhook to be settled",
			20_000,
		);
		const got = await received(path);
		const ids = [...new Set(got.map((d) => String(d.headers["webhook-id"])))];
		expect(ids.length, "more than one progress event was owed at once").toBeGreaterThanOrEqual(3);
		for (const webhookId of ids) {
			const attempts = got.filter((d) => d.headers["webhook-id"] === webhookId);
			expect(
				attempts.map((d) => d.status),
				`deliveries of ${webhookId}`,
			).toEqual([500, 200]);
			expect(attempts.every((d) => d.signatureValid)).toBe(true);
			expect(payloadOf(attempts[1]!).data.type).toBe("progress");
		}
		expect(task.webhook?.given_up).toEqual([]);
		expect(task.webhook?.deliveries.filter((w) => w.ok)).toHaveLength(ids.length);
		// Once delivered, the progress events that later progress replaced are gone again.
		const progressRows = await runInDurableObject(
			taskStub(id),
			(_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM events WHERE type = 'progress'").one().n,
		);
		expect(progressRows).toBe(1);
	});
});

describe("give-ups", () => {
	it("owed deliveries keep a task past its TTL until the last attempt fails; then it expires", { timeout: 60_000 }, async () => {
		const errors = vi.spyOn(console, "error");
		const id = newId("owed");
		const path = `/fail/${id}`;
		const done = await submitTask({ id, type: "echo", input: 1, ttl_s: 1, webhook: `${receiver}${path}` }, { wait: 10 });
		expect(done.body.status).toBe("succeeded");
		const expiresAt = Date.parse(done.body.finished_at ?? "") + 1000;

		// Past the TTL, while attempts remain: still there, the delivery still owed.
		await sleep(expiresAt + 1500 - Date.now());
		const kept = await getTask(id);
		expect(kept.res.status, "deleted at its TTL with a delivery owed").toBe(200);
		expect(kept.body.webhook?.pending).toBe(1);
		expect(kept.body.webhook?.deliveries.length).toBeGreaterThanOrEqual(2);

		// Six attempts (0.3 s base: 0.3 + 0.6 + 1.2 + 2.4 + 4.8 s of backoff), then the give-up and the expiry.
		await eventually(async () => ((await getTask(id)).res.status === 404 ? true : undefined), "the expiry after the give-up", 30_000);
		const got = await received(path);
		expect(got.map((d) => d.status)).toEqual([500, 500, 500, 500, 500, 500]);
		expect(
			errors.mock.calls.some(([line]) => String(line).includes(`task ${id}: webhook for event`) && String(line).includes("given up")),
		).toBe(true);
	});

	it("a give-up is recorded on the task (webhook.given_up) and kept there until the task's TTL", { timeout: 60_000 }, async () => {
		const id = newId("owed");
		const path = `/fail/${id}`;
		const done = await submitTask({ id, type: "echo", input: 1, ttl_s: 40, webhook: `${receiver}${path}` }, { wait: 10 });
		const task = await eventually(
			async () => {
				const { body } = await getTask(id);
				return body.webhook?.given_up.length ? body : undefined;
			},
			"the give-up",
			30_000,
		);
		const seq = task.webhook!.deliveries[0]!.seq;
		expect(task.webhook).toMatchObject({ pending: 0, given_up: [{ seq, event: "succeeded", attempts: 6 }] });
		expect(task.webhook!.given_up[0]!.reason).toMatch(/6 attempts failed; the last: HTTP 500/);
		expect(task.webhook!.deliveries.map((w) => [w.attempt, w.ok, w.status])).toEqual([1, 2, 3, 4, 5, 6].map((n) => [n, false, 500]));
		expect(task.finished_at).toBe(done.body.finished_at);
		// Nothing is tried again.
		await sleep(1000);
		expect(await received(path)).toHaveLength(6);
	});
});

describe("the alarm's wall-clock limit", () => {
	it("a retry due mid-run is made mid-run by an invocation of its own: the one holding the run ends with the run", async () => {
		const id = newId("owed");
		// The first delivery fails at once; its retry (due 0.3 s later, mid-run) is answered only after 4 s.
		const path = `/flaky-1/slow-ok-4000/${id}`;
		await createWithoutMessage({ id, type: "sleep", input: { ms: 2000 }, webhook: `${receiver}${path}`, webhook_events: ["start"] });
		const invocations = await recordAlarmInvocations(id);
		expect(await dispatch(id)).toBe("started");
		const done: TaskView = await settled(id, 20);
		expect(done.status).toBe("succeeded");
		const finishedAt = Date.parse(done.finished_at ?? "");
		const got = await eventually(
			async () => {
				const all = await received(path);
				return all.length === 2 && all[1]!.respondedAt !== null ? all : undefined;
			},
			"the retry to be answered",
			15_000,
		);
		expect(got.map((d) => d.status)).toEqual([500, 200]);
		// Made on time, while the task ran…
		expect(got[1]!.receivedAt).toBeLessThan(finishedAt);
		// …and not by the alarm invocation that held the run: it ended with the run (and its health
		// report), long before the delivery it would otherwise have waited for was answered.
		const holding = invocations.find((i) => i.start <= finishedAt && i.end >= finishedAt);
		expect(holding, JSON.stringify({ invocations, finishedAt })).toBeDefined();
		expect(holding!.end - finishedAt).toBeLessThan(2500);
		expect(holding!.end).toBeLessThan(got[1]!.respondedAt! - 1000);
	});

	it(`timeout_s is at most ${MAX_TIMEOUT_S}: a run and its outcome fit one ${ALARM_WALL_LIMIT_S} s alarm invocation with ${RUN_HEADROOM_S} s to spare`, async () => {
		expect(MAX_TIMEOUT_S + RUN_HEADROOM_S).toBe(ALARM_WALL_LIMIT_S);
		expect(ALARM_WALL_LIMIT_S).toBe(15 * 60);
		const refused = await submitTask({ type: "hang", input: {}, timeout_s: MAX_TIMEOUT_S + 1 });
		expect(refused.res.status).toBe(400);
		expect(errorOf(refused.body).details).toEqual([{ path: "timeout_s", message: expect.stringContaining(String(MAX_TIMEOUT_S)) }]);
		const id = newId("owed");
		const accepted = await submitTask({ id, type: "hang", input: {}, timeout_s: MAX_TIMEOUT_S });
		expect(accepted.res.status).toBe(202);
		expect(accepted.body.timeout_s).toBe(MAX_TIMEOUT_S);
		// A type's default is the longest too.
		const plain = await submitTask({ type: "sleep", input: { ms: 1 } });
		expect(plain.body.timeout_s).toBe(MAX_TIMEOUT_S);
		await call(`/v1/tasks/${id}/cancel`, { method: "POST" });
	});
});
