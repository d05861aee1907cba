/**
 * Reliability under faults, with the fault processors (fail, hang, flaky): retries and what
 * subscribers and waiters see meanwhile, exhausted attempts, dead letters, timeouts, duplicate
 * delivery, attempts lost with their instance, lost queue messages, and load shedding.
 *
 * Tests in a file run one after another; this matters for the two that abort every object of the
 * file's runtime and for the one that counts waiting slots (per isolate, shared by the file).
 * Client disconnects have their own file (reliability-disconnect.test.ts).
 */
import { env } from "cloudflare:workers";
import { abortAllDurableObjects, runDurableObjectAlarm } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { TaskMessage } from "../../src/task/model";
import { eventually, sleep } from "../shared/waits";
import { call, errorOf, getTask, pollTask, settled, submitTask } from "./support/api";
import { newId } from "./support/ids";
import { awayFromWindowEnd, TIGHT_LIMIT, tightLimiter } from "./support/limits";
import { SUBMIT_WINDOW_S } from "../../src/api/admission";
import { createWithoutMessage, runInObject, storedState } from "./support/objects";
import { expectIncreasingSeqs, type WireEvent } from "./support/events";
import { deliverBatch as deliver, queueMessage } from "./support/queue";
import { drain, openSocket, type RecordingSocket } from "./support/socket";

beforeAll(async () => {
	// The first task of a run pays for starting the worker, the queue and the objects.
	const { body } = await submitTask({ type: "echo", input: "warm-up" }, { wait: 20 });
	expect(body.status).toBe("succeeded");
});

/** Stores a task as POST /v1/tasks would, but sends no queue message; its id. */
async function createOnly(body: Record<string, unknown>): Promise<string> {
	return (await createWithoutMessage(body)).id;
}

/** The full event history of a task (ws ?after=0) until the server closes the socket. */
const history = (socket: RecordingSocket) => drain(socket, 25_000);

function types(events: WireEvent[]): string[] {
	return events.filter((e) => e.type !== "progress").map((e) => e.type);
}

describe("retryable and non-retryable errors", () => {
	it("retries a retryable error until it succeeds: subscribers see `retrying` with the error, waiters stay parked until success", async () => {
		const id = newId("rel");
		// The submitter itself long-polls (Prefer: wait=20) from before the first attempt.
		const submitter = submitTask({ id, type: "flaky", input: { fail_times: 2, ms: 200 } }, { wait: 20 });
		await pollTask(id, () => true, "the task to exist", 5000);
		const socket = await openSocket(`/v1/tasks/${id}/ws?after=0`);

		// A second waiter joins after the first failure, while the task backs off.
		await socket.waitFor((f) => f.type === "retrying", "the first retrying event", 10_000);
		let lateSettled = false;
		const late = getTask(id, { wait: 20 }).then((answer) => {
			lateSettled = true;
			return answer;
		});
		await socket.waitFor((f) => f.type === "retrying" && f.data?.attempts === 2, "the second retrying event", 10_000);
		// A retry is not an end: neither waiter has been released by it.
		expect(lateSettled).toBe(false);

		const { events, close } = await history(socket);
		expect(close.code).toBe(1000);
		expectIncreasingSeqs(events);
		expect(events[0]!.seq).toBe(1);
		expect(types(events)).toEqual(["queued", "running", "retrying", "running", "retrying", "running", "succeeded"]);
		const retrying = events.filter((e) => e.type === "retrying");
		expect(retrying.map((e) => e.data)).toEqual([
			{ status: "queued", attempts: 1, error: { code: "processor_error", message: "flaky failure on attempt 1" }, progress: null },
			{ status: "queued", attempts: 2, error: { code: "processor_error", message: "flaky failure on attempt 2" }, progress: null },
		]);
		expect(events.filter((e) => e.type === "running").map((e) => e.data.attempts)).toEqual([1, 2, 3]);
		expect(events.at(-1)!.data).toMatchObject({ status: "succeeded", output: { attempt: 3 }, error: null });

		for (const waiter of [await submitter, await late]) {
			expect(waiter.res.status).toBe(200);
			expect(waiter.body).toMatchObject({ id, status: "succeeded", attempts: 3, output: { attempt: 3 }, error: null });
		}
	});

	it("fails a PermanentError at once though its type allows 3 attempts: attempts 1, its own code, no retrying", async () => {
		// flaky allows 3 attempts and would succeed on the third: only PermanentError stops it at the first.
		const id = newId("rel");
		const input = { fail_times: 2, permanent: true, code: "refused_by_backend" };
		const { res, body } = await submitTask({ id, type: "flaky", input }, { wait: 20 });
		expect(res.status).toBe(200);
		expect(body).toMatchObject({
			id,
			status: "failed",
			attempts: 1,
			output: null,
			error: { code: "refused_by_backend", message: "flaky failure on attempt 1" },
		});

		const { events } = await history(await openSocket(`/v1/tasks/${id}/ws?after=0`));
		expect(types(events)).toEqual(["queued", "running", "failed"]);
		// And it stays that way: nothing retries it later.
		await sleep(1500);
		expect((await getTask(id)).body).toMatchObject({ status: "failed", attempts: 1 });

		// The same failures thrown as plain errors are retried, and the third attempt succeeds.
		const retried = await submitTask({ type: "flaky", input: { fail_times: 2 } }, { wait: 20 });
		expect(retried.body).toMatchObject({ status: "succeeded", attempts: 3, output: { attempt: 3 } });
	});
});

describe("attempts exhausted and dead letters", () => {
	it("fails with the last error once the type's 3 attempts are used, and releases the waiter at once", async () => {
		const id = newId("rel");
		await submitTask({ id, type: "flaky", input: { fail_times: 5 } });
		const waiter = await getTask(id, { wait: 20 });
		const releasedAt = Date.now();

		expect(waiter.res.status).toBe(200);
		expect(waiter.body).toMatchObject({
			id,
			status: "failed",
			attempts: 3,
			output: null,
			error: { code: "processor_error", message: "flaky failure on attempt 3" },
		});
		// Released by the failure (backoffs total at most 3 s), not by the 20 s cap.
		expect(waiter.elapsed).toBeLessThan(15_000);
		expect(releasedAt - Date.parse(waiter.body.finished_at!)).toBeLessThan(5000);

		const { events } = await history(await openSocket(`/v1/tasks/${id}/ws?after=0`));
		expect(types(events)).toEqual(["queued", "running", "retrying", "running", "retrying", "running", "failed"]);
	});

	it("a dead-lettered message fails its queued task with dead_lettered and releases its waiter; a late message does not revive it", async () => {
		const id = await createOnly({ id: newId("rel"), type: "sleep", input: { ms: 10 } });
		const waiter = getTask(id, { wait: 20 });
		await sleep(300); // let the long-poll park in the object first (well before the 2 s recovery alarm)

		const dead = queueMessage({ id, reason: "submit" } satisfies TaskMessage, 1);
		const result = await deliver("edgetask-dlq", [dead]);
		expect(result.outcome).toBe("ok");
		expect(result.explicitAcks).toEqual([dead.id]);
		expect(result.retryMessages).toEqual([]);

		const { res, body, elapsed } = await waiter;
		expect(res.status).toBe(200);
		expect(body).toMatchObject({ id, status: "failed", attempts: 0, output: null, error: { code: "dead_lettered" } });
		expect(elapsed).toBeLessThan(10_000);

		// The message turning up after all (or a recovery re-send) changes nothing.
		expect(await env.TASKS.getByName(id).dispatch()).toBe("already_finished");
		await deliver("edgetask-tasks", [queueMessage({ id, reason: "recovery" })]);
		await sleep(2500); // past QUEUED_RECOVERY_S: no recovery alarm fires for a failed task
		expect((await getTask(id)).body).toMatchObject({ status: "failed", attempts: 0, error: { code: "dead_lettered" }, started_at: null });
	});

	it("a dead letter for a task that is already running, or unknown, changes nothing", async () => {
		const running = newId("rel");
		await submitTask({ id: running, type: "sleep", input: { ms: 1000 } });
		await pollTask(running, (t) => t.status === "running", "the task to start");
		const unknown = newId("rel");

		const result = await deliver("edgetask-dlq", [
			queueMessage({ id: running, reason: "submit" }, 1),
			queueMessage({ id: unknown, reason: "submit" }, 1),
		]);
		expect(result.explicitAcks).toHaveLength(2);

		expect(await settled(running, 20)).toMatchObject({ status: "succeeded", attempts: 1, output: { slept_ms: 1000 } });
		expect((await getTask(unknown)).res.status).toBe(404);
	});
});

describe("dead letters for tasks already delivered", () => {
	/**
	 * Guards a fixed bug (src/TaskCoordinator.ts deadLettered): it spares only `running` and terminal tasks. A task
	 * whose message was delivered (`dispatched`) and that is `queued` only while it backs off
	 * before a retry is failed as dead_lettered, though its message did arrive (another copy, or
	 * the recovery re-send) and it would have run again. Happens when one copy of the message keeps
	 * failing its hand-over while another got through. Fix: also return when `r.dispatched`.
	 */
	it("a dead letter arriving while a delivered task backs off before its retry leaves it alone: it retries and succeeds", async () => {
		// Hold the retry back 3 s, as a longer backoff would (they reach 60 s), so the dead letter
		// surely lands while the task is queued-and-delivered. Attempt 1's own backoff is 0-1 s
		// (random): when the retry starts before the test can hold it, a fresh task tries again.
		let id = "";
		let held = "";
		for (let round = 0; round < 5 && held !== "held"; round++) {
			id = await createOnly({ id: newId("rel"), type: "flaky", input: { fail_times: 1 } });
			expect(await env.TASKS.getByName(id).dispatch()).toBe("started");
			await eventually(async () => ((await storedState(id)).record?.attempts === 1 ? true : undefined), "attempt 1", 5000, 5);
			held = await runInObject(env.TASKS.getByName(id), async (instance) => {
				const r = instance.record;
				if (r.status !== "queued" || !r.dispatched || r.attempts !== 1) return `not backing off: ${r.status}, attempts ${r.attempts}`;
				r.runAfter = Date.now() + 3000;
				await instance.save();
				return "held";
			});
		}
		if (held !== "held") throw new Error(`the retry started before the test could hold it, 5 times (${held})`);
		expect((await getTask(id)).body).toMatchObject({ status: "queued", attempts: 1, error: { code: "processor_error" } });
		const result = await deliver("edgetask-dlq", [queueMessage({ id, reason: "submit" } satisfies TaskMessage, 11)]);
		expect(result.explicitAcks).toHaveLength(1);

		const done = await settled(id, 20);
		expect(done.error?.code, "a delivered task was failed as dead-lettered").not.toBe("dead_lettered");
		expect(done).toMatchObject({ id, status: "succeeded", attempts: 2, output: { attempt: 2 } });
	});
});

describe("timeouts", () => {
	it("a hang with timeout_s 1 ends timed_out with code timeout, releases its waiter, and is not retried", async () => {
		const id = newId("rel");
		await submitTask({ id, type: "hang", input: {}, timeout_s: 1 });
		const socket = await openSocket(`/v1/tasks/${id}/ws?after=0`);
		const waiter = await getTask(id, { wait: 20 });
		const releasedAt = Date.now();

		expect(waiter.res.status).toBe(200);
		expect(waiter.body).toMatchObject({ id, status: "timed_out", attempts: 1, output: null, error: { code: "timeout" } });
		// A 1 s deadline ends the attempt within 2 s of its start, and the waiter is told at once.
		expect(waiter.body.metrics.run_ms).toBeGreaterThanOrEqual(1000);
		expect(waiter.body.metrics.run_ms).toBeLessThan(2000);
		expect(releasedAt - Date.parse(waiter.body.finished_at ?? "")).toBeLessThan(1000);

		const { events, close } = await history(socket);
		expect(close.code).toBe(1000);
		expect(types(events)).toEqual(["queued", "running", "timed_out"]);
		expect(events.at(-1)!.data).toMatchObject({ status: "timed_out", error: { code: "timeout" } });

		await sleep(1500);
		expect((await getTask(id)).body).toMatchObject({ status: "timed_out", attempts: 1 });
	});
});

describe("duplicate delivery", () => {
	it("concurrent and late dispatches run the task once and never overwrite its result", async () => {
		const id = await createOnly({ id: newId("rel"), type: "sleep", input: { ms: 300 } });
		const stub = env.TASKS.getByName(id);

		const outcomes = await Promise.all([stub.dispatch(), stub.dispatch(), stub.dispatch()]);
		expect(outcomes.filter((o) => o === "started")).toHaveLength(1);
		for (const o of outcomes.filter((o) => o !== "started")) expect(["already_dispatched", "already_running"]).toContain(o);
		// More copies through the consumer while it runs.
		const mid = await deliver("edgetask-tasks", [queueMessage({ id, reason: "submit" }), queueMessage({ id, reason: "recovery" })]);
		expect(mid.explicitAcks).toHaveLength(2);

		const done = await settled(id, 20);
		expect(done).toMatchObject({ status: "succeeded", attempts: 1, output: { slept_ms: 300 } });
		const before = await storedState(id);

		expect(await Promise.all([stub.dispatch(), stub.dispatch()])).toEqual(["already_finished", "already_finished"]);
		await deliver("edgetask-tasks", [queueMessage({ id, reason: "submit" }, 3)]);
		await sleep(500);

		const after = await getTask(id);
		expect(after.body.attempts).toBe(1);
		expect(after.body.output).toEqual(done.output);
		expect(after.body.finished_at).toBe(done.finished_at);
		expect(after.body.started_at).toBe(done.started_at);
		// Nothing was written at all: same record version, same event count.
		const now = await storedState(id);
		expect(now.record?.version).toBe(before.record?.version);
		expect(now.record?.eventSeq).toBe(before.record?.eventSeq);
	});
});

/**
 * The attempt runs inside the object's alarm. abortAllDurableObjects() kills every instance of
 * this file's runtime mid-run (the closest local stand-in for a crash or restart; evicting
 * gracefully instead waits for the alarm, so the attempt finishes and nothing is lost). The
 * runtime then retries the alarm on a fresh instance, which finds the task `running` with no
 * attempt of its own. runDurableObjectAlarm only hurries that along.
 */
describe("execution lost with the instance", () => {
	it("runs a killed attempt again: attempts 2, succeeded, the loss recorded as a retrying event", async () => {
		const id = newId("rel");
		await submitTask({ id, type: "flaky", input: { fail_times: 0, ms: 3000 } });
		await pollTask(id, (t) => t.status === "running", "the task to start");

		await abortAllDurableObjects();
		expect((await storedState(id)).record).toMatchObject({ status: "running", attempts: 1 });
		await runDurableObjectAlarm(env.TASKS.getByName(id));

		const done = await settled(id, 25);
		expect(done).toMatchObject({ status: "succeeded", attempts: 2, output: { attempt: 2 }, error: null });
		expect(done.metrics.run_ms).toBeGreaterThanOrEqual(3000);

		const { events } = await history(await openSocket(`/v1/tasks/${id}/ws?after=0`));
		const lost = events.find((e) => e.type === "retrying");
		expect(lost?.data).toMatchObject({ attempts: 1, error: { code: "execution_lost" } });
		expect(types(events)).toEqual(["queued", "running", "retrying", "running", "succeeded"]);
	}, 40_000);

	it("fails with execution_lost when the killed attempt was the last one allowed", async () => {
		const id = newId("rel");
		// Attempts 1 and 2 fail at once; attempt 3 sleeps long enough to be killed.
		await submitTask({ id, type: "flaky", input: { fail_times: 2, ms: 5000 } });
		await pollTask(id, (t) => t.status === "running" && t.attempts === 3, "the third attempt to start", 15_000);

		await abortAllDurableObjects();
		await runDurableObjectAlarm(env.TASKS.getByName(id));

		const done = await settled(id, 25);
		expect(done).toMatchObject({ status: "failed", attempts: 3, output: null, error: { code: "execution_lost" } });
		// It was failed for the loss, not left to run on: no output ever appears.
		await sleep(1000);
		expect((await getTask(id)).body).toMatchObject({ status: "failed", attempts: 3, output: null });
	}, 40_000);
});

describe("waiters when the task's instance dies", () => {
	/**
	 * Guards a fixed bug (src/tasks.ts waitForTask / src/index.ts): a long-poll is parked inside the task's
	 * object; when that instance dies (crash, reset on deploy, abort) the RPC rejects and the
	 * request answers 500 internal_error, although the task is recovered and finishes. Fix: catch
	 * the stub error in waitForTask and retry on a fresh stub for the rest of the wait (Cloudflare
	 * marks such errors `retryable`), or answer 503 with Retry-After; same in POST /process.
	 */
	it("a long-poll parked on a task whose instance is killed is answered without a 5xx", async () => {
		const id = newId("rel");
		await submitTask({ id, type: "flaky", input: { fail_times: 0, ms: 3000 } });
		await pollTask(id, (t) => t.status === "running", "the task to start");
		const waiter = getTask(id, { wait: 20 });
		await sleep(300); // parked in the object

		await abortAllDurableObjects();
		// The API asks a fresh instance for the rest of the wait; the alarm runs the attempt again
		// there, and its end answers the long-poll.
		const answer = await waiter;
		expect(answer.res.status, answer.text.slice(0, 300)).toBe(200);
		expect(answer.body).toMatchObject({ id, status: "succeeded", attempts: 2, output: { attempt: 2 } });
	}, 40_000);

	it("a long-poll whose task object dies under both tries is answered 503 task_unavailable with Retry-After: 1", async () => {
		const id = await createOnly({ id: newId("rel"), type: "hang", input: {}, timeout_s: 30 });
		const waiter = getTask(id, { wait: 20 });
		const parked = () =>
			eventually(
				async () =>
					(await runInObject(env.TASKS.getByName(id), (instance) => instance.fanout.waiters.size as number)) === 1 ? true : undefined,
				"the long-poll to be parked in the task's object",
				5000,
				20,
			);
		const kill = (why: string) => runInObject(env.TASKS.getByName(id), (_instance, state) => state.abort(why)).catch(() => undefined);
		await parked();
		await kill("first try");
		// The API tries once more on a fresh instance, with the rest of the wait…
		await parked();
		await kill("second try");
		// …and answers the second failure as briefly unavailable, never a bare 500.
		const answer = await waiter;
		expect(answer.res.status, answer.text.slice(0, 300)).toBe(503);
		expect(answer.res.headers.get("retry-after")).toBe("1");
		expect(errorOf(answer.body)).toMatchObject({ code: "task_unavailable" });
		expect(answer.elapsed).toBeLessThan(15_000);
		// The task itself is still there.
		expect((await getTask(id)).res.status).toBe(200);
		await call(`/v1/tasks/${id}/cancel`, { method: "POST" });
	}, 40_000);
});

describe("lost queue message", () => {
	it("a task whose message was never sent is re-sent by its alarm after QUEUED_RECOVERY_S and succeeds", async () => {
		const id = await createOnly({ id: newId("rel"), type: "echo", input: { lost: true } });
		expect((await getTask(id)).body).toMatchObject({ status: "queued", attempts: 0 });

		const done = await settled(id, 25);
		expect(done).toMatchObject({ status: "succeeded", attempts: 1, output: { lost: true } });
		// It started only after the recovery delay (2 s in the test bindings), through a re-send.
		expect(done.metrics.queue_ms).toBeGreaterThanOrEqual(1500);
		const { record } = await storedState(id);
		expect(record?.recoveries).toBeGreaterThanOrEqual(1);
		expect(record?.dispatched).toBe(true);
	});
});

describe("load shedding", () => {
	const tight = tightLimiter;

	it("past the limit, a client's next submission gets 429 with Retry-After and creates nothing; other clients are unaffected", async () => {
		await awayFromWindowEnd();
		const ip = `rel-ip-${crypto.randomUUID()}`;
		const headers = { "cf-connecting-ip": ip };
		for (let i = 0; i < TIGHT_LIMIT; i++) {
			const { res, body } = await submitTask({ id: newId("rel"), type: "echo", input: i }, { headers, env: tight });
			expect(res.status, JSON.stringify(body)).toBeLessThan(300);
		}
		const refusedId = newId("rel");
		const refused = await submitTask({ id: refusedId, type: "echo", input: 4 }, { headers, env: tight });
		expect(refused.res.status).toBe(429);
		expect(refused.res.headers.get("content-type")).toMatch(/application\/json/);
		expect(errorOf(refused.body).code).toBe("rate_limited");
		expect(refused.res.headers.get("retry-after")).toBe(String(SUBMIT_WINDOW_S));
		expect((await getTask(refusedId)).res.status).toBe(404);

		// The seed endpoint spends the same budget, and answers in its own envelope.
		const uuid = newId("rel");
		const seed = await call(
			"/process",
			{ method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify({ uuid, ms: 1 }) },
			tight,
		);
		expect(seed.res.status).toBe(429);
		expect(seed.res.headers.get("retry-after")).not.toBeNull();
		expect(seed.body).toMatchObject({ success: false, code: 1, data: { uuid: "" } });
		expect((await getTask(uuid)).res.status).toBe(404);

		// Another address has its own budget.
		const other = await submitTask(
			{ id: newId("rel"), type: "echo", input: 5 },
			{ headers: { "cf-connecting-ip": `${ip}-other` }, env: tight },
		);
		expect(other.res.status).toBeLessThan(300);
	});

	it("one Authorization value is one client, whatever address it comes from", async () => {
		await awayFromWindowEnd();
		const auth = `Bearer rel-${crypto.randomUUID()}`;
		for (let i = 0; i < TIGHT_LIMIT; i++) {
			const { res } = await submitTask(
				{ id: newId("rel"), type: "echo", input: i },
				{ headers: { authorization: auth, "cf-connecting-ip": `rel-ip-${crypto.randomUUID()}` }, env: tight },
			);
			expect(res.status).toBeLessThan(300);
		}
		const refusedId = newId("rel");
		const refused = await submitTask(
			{ id: refusedId, type: "echo" },
			{ headers: { authorization: auth, "cf-connecting-ip": `rel-ip-${crypto.randomUUID()}` }, env: tight },
		);
		expect(refused.res.status).toBe(429);
		expect(refused.res.headers.get("retry-after")).not.toBeNull();
		expect((await getTask(refusedId)).res.status).toBe(404);
	});

	it("with MAX_WAITING_REQUESTS 2, the third concurrent long-poll gets 429 with Retry-After; the other two get the result", async () => {
		const id = newId("rel");
		await submitTask({ id, type: "sleep", input: { ms: 4000 } });
		await pollTask(id, (t) => t.status === "running", "the task to start");

		const limits = { MAX_WAITING_REQUESTS: "2" };
		const answers = await Promise.all([0, 1, 2].map(() => getTask(id, { wait: 20, env: limits })));
		const refused = answers.filter((a) => a.res.status === 429);
		const served = answers.filter((a) => a.res.status === 200);
		expect(refused).toHaveLength(1);
		expect(served).toHaveLength(2);
		expect(refused[0]!.res.headers.get("retry-after")).toBe("1");
		expect(errorOf(refused[0]!.body).code).toBe("too_many_waiting");
		// Refused at once, not after waiting for the task (about 4 s).
		expect(refused[0]!.elapsed).toBeLessThan(2500);
		for (const a of served) expect(a.body).toMatchObject({ id, status: "succeeded" });

		// The slots are free again afterwards.
		const again = await Promise.all([0, 1].map(() => getTask(id, { wait: 5, env: limits })));
		for (const a of again) expect(a.res.status).toBe(200);
		// A GET without Prefer: wait never needs a slot.
		const limitsZero = { MAX_WAITING_REQUESTS: "1" };
		const plain = await Promise.all([0, 1, 2].map(() => getTask(id, { env: limitsZero })));
		for (const a of plain) expect(a.res.status).toBe(200);
	});
});

describe("the queue consumer under bad batches", () => {
	it("acks malformed messages and messages for unknown tasks, without creating anything", async () => {
		const unknown = newId("rel");
		const result = await deliver("edgetask-tasks", [
			queueMessage(null),
			queueMessage("text"),
			queueMessage({ id: 42 }),
			queueMessage({ id: "bad id!" }),
			queueMessage({ id: "x".repeat(129) }),
			queueMessage({ id: unknown, reason: "submit" }),
		]);
		expect(result.outcome).toBe("ok");
		expect(result.explicitAcks).toHaveLength(6);
		expect(result.retryMessages).toEqual([]);
		expect((await getTask(unknown)).res.status).toBe(404);
		await eventually(async () => ((await getTask(unknown)).res.status === 404 ? true : undefined), "still unknown", 1000);
	});
});
