/**
 * Clients that hang up while long-polling. Its own file: the waiting-slot count is per isolate,
 * and a slot lost here must not be blamed on (or hidden by) other suites' waits.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../shared/waits";
import { call, errorOf, getTask, pollTask, settled, submitTask } from "./support/api";
import { newId } from "./support/ids";

beforeAll(async () => {
	const { body } = await submitTask({ type: "echo", input: "warm-up" }, { wait: 20 });
	expect(body.status).toBe("succeeded");
});

/** Starts a request with `Prefer: wait=10` and aborts it (the client disconnects) after `afterMs`. */
async function abandon(path: string, init: RequestInit, afterMs = 200): Promise<string> {
	const controller = new AbortController();
	const answer = call(path, {
		...init,
		headers: { ...(init.headers as Record<string, string>), prefer: "wait=10" },
		signal: controller.signal,
	}).then(
		(a) => `answered ${a.res.status}`,
		(e: unknown) => `aborted: ${String(e)}`,
	);
	await sleep(afterMs);
	controller.abort();
	return answer;
}

describe("client disconnects mid-wait", () => {
	it("a GET long-poll aborted after 200 ms does not stop the task: it completes and GET returns its result", async () => {
		const id = newId("rel");
		await submitTask({ id, type: "sleep", input: { ms: 1500 } });
		const outcome = await abandon(`/v1/tasks/${id}`, {});
		expect(outcome).toMatch(/^aborted/);

		const done = await settled(id, 20);
		expect(done).toMatchObject({ id, status: "succeeded", attempts: 1, output: { slept_ms: 1500 } });
	});

	it("a POST with Prefer: wait aborted after 200 ms still leaves the task submitted, and it completes", async () => {
		const id = newId("rel");
		const outcome = await abandon("/v1/tasks", {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ id, type: "sleep", input: { ms: 1000 } }),
		});
		expect(outcome).toMatch(/^aborted/);

		await pollTask(id, () => true, "the task to exist", 5000);
		const done = await settled(id, 20);
		expect(done).toMatchObject({ id, status: "succeeded", attempts: 1, output: { slept_ms: 1000 } });
	});

	/**
	 * Guards a fixed bug (src/admission.ts withWaitingSlot): the slot is given back in a `finally` after the
	 * wait; when the client disconnects the runtime cancels the request and that `finally` never
	 * runs, so the isolate's `waiting` count only grows. After MAX_WAITING_REQUESTS disconnects
	 * every long-poll and POST /process in the isolate gets 429 for good.
	 */
	it("a disconnected long-poll gives its waiting slot back (once the wait it asked for is over)", async () => {
		const id = newId("rel");
		await submitTask({ id, type: "sleep", input: { ms: 800 } });
		// Three clients hang up mid-wait (two of them after the earlier tests' two).
		const outcomes = await Promise.all([0, 1, 2].map(() => abandon(`/v1/tasks/${id}`, {})));
		for (const o of outcomes) expect(o).toMatch(/^aborted/);
		await settled(id, 20);
		// Past every abandoned wait's own 10 s, so no request could still legitimately hold a slot.
		await sleep(10_500);

		// 5 slots, none held by anyone still connected: 3 concurrent long-polls must all be served.
		const limits = { MAX_WAITING_REQUESTS: "5" };
		const answers = await Promise.all([0, 1, 2].map(() => getTask(id, { wait: 5, env: limits })));
		const statuses = answers.map((a) => a.res.status);
		const refused = answers.find((a) => a.res.status === 429);
		expect(statuses, refused ? `refused: ${JSON.stringify(errorOf(refused.body))}` : "").toEqual([200, 200, 200]);
	}, 30_000);
});
