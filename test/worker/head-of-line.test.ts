import { beforeAll, expect, it } from "vitest";
import { sleep } from "../shared/waits";
import { type Answer, submitTask, type TaskView, warmUp } from "./support/api";
import { newId } from "./support/ids";

beforeAll(warmUp);

/**
 * The seed's bug: a short task submitted just after a long one waited for the long one and then
 * reported the sum of both run times as its own. Each caller must get its own answer at its own
 * task's pace, timed with its own clock.
 */
it("answers a short task submitted behind a long one first, with its own run time", async () => {
	const longId = newId();
	const shortId = newId();
	const order: string[] = [];
	const t0 = Date.now();
	const track = (name: string) => (r: Answer<TaskView>) => {
		order.push(name);
		return r;
	};

	const long = submitTask({ id: longId, type: "sleep", input: { ms: 1500 } }, { wait: 10 }).then(track("long"));
	await sleep(100);
	const short = submitTask({ id: shortId, type: "sleep", input: { ms: 200 } }, { wait: 10 }).then(track("short"));
	const [l, s] = await Promise.all([long, short]);

	expect(order).toEqual(["short", "long"]);
	expect(l.res.status).toBe(200);
	expect(s.res.status).toBe(200);
	expect(l.body).toMatchObject({ id: longId, status: "succeeded", output: { slept_ms: 1500 } });
	expect(s.body).toMatchObject({ id: shortId, status: "succeeded", output: { slept_ms: 200 } });

	// The short caller waited about its own 200 ms, nowhere near the long task's 1500 ms.
	expect(s.elapsed).toBeLessThan(1000);
	expect(l.elapsed).toBeGreaterThanOrEqual(1500);
	expect(Date.now() - t0).toBeLessThan(1500 + 1500);

	// Each task's run_ms is its own duration, never the sum of both.
	expect(l.body.metrics.run_ms).toBeGreaterThanOrEqual(1500);
	expect(l.body.metrics.run_ms).toBeLessThan(1500 + 150);
	expect(s.body.metrics.run_ms).toBeGreaterThanOrEqual(200);
	expect(s.body.metrics.run_ms).toBeLessThan(200 + 150);
	// The short task did not wait in the queue behind the long one either.
	expect(s.body.metrics.queue_ms).toBeLessThan(1000);
	expect(s.body.finished_at !== null && l.body.finished_at !== null && s.body.finished_at < l.body.finished_at).toBe(true);
});

it("runs several tasks side by side: five 1 s tasks take about 1 s, not 5 s", async () => {
	const ids = Array.from({ length: 5 }, newId);
	const t0 = Date.now();
	const results = await Promise.all(ids.map((id) => submitTask({ id, type: "sleep", input: { ms: 1000 } }, { wait: 15 })));
	const elapsed = Date.now() - t0;

	for (const { res, body } of results) {
		expect(res.status).toBe(200);
		expect(body.status).toBe("succeeded");
		expect(body.metrics.run_ms).toBeGreaterThanOrEqual(1000);
		expect(body.metrics.run_ms).toBeLessThan(1000 + 500);
	}
	// Serial execution would need at least 5 s.
	expect(elapsed).toBeLessThan(3500);
});
