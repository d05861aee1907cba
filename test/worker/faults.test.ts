import { beforeAll, describe, expect, it } from "vitest";
import { settled, submitTask, warmUp } from "./support/api";
import { newId } from "./support/ids";

beforeAll(warmUp);

describe("failure paths (fault processors)", () => {
	it("fails a task at once on a permanent error, with the processor's message", async () => {
		const id = newId();
		const { res, body, elapsed } = await submitTask({ id, type: "fail", input: { message: "bad prompt", permanent: true } }, { wait: 10 });

		expect(res.status).toBe(200);
		expect(body).toMatchObject({
			id,
			status: "failed",
			attempts: 1,
			output: null,
			error: { code: "processor_error", message: "bad prompt" },
		});
		expect(body.finished_at).not.toBeNull();
		expect(elapsed).toBeLessThan(2000);
	});

	it("times out a task that never settles at its timeout_s, and releases the waiter then", async () => {
		const id = newId();
		const { res, body, elapsed } = await submitTask({ id, type: "hang", input: {}, timeout_s: 1 }, { wait: 20 });

		expect(res.status).toBe(200);
		expect(body).toMatchObject({ id, status: "timed_out", attempts: 1, output: null, error: { code: "timeout" } });
		expect(body.error?.message).toContain("timeout_s=1");
		expect(body.metrics.run_ms).toBeGreaterThanOrEqual(1000);
		expect(body.metrics.run_ms).toBeLessThan(1000 + 500);
		// Released at the deadline, not at the 20 s wait cap.
		expect(elapsed).toBeGreaterThanOrEqual(1000);
		expect(elapsed).toBeLessThan(2000);
	});

	it("retries a transient failure and succeeds on the next attempt", async () => {
		const id = newId();
		const { body } = await submitTask({ id, type: "flaky", input: { fail_times: 1, ms: 50 } }, { wait: 15 });

		expect(body).toMatchObject({ id, status: "succeeded", attempts: 2, output: { attempt: 2 }, error: null });
		// run_ms is the successful attempt's own, not the failed one's plus the backoff.
		expect(body.metrics.run_ms).toBeGreaterThanOrEqual(50);
		expect(body.metrics.run_ms).toBeLessThan(50 + 500);
	});

	it("fails after the type's last attempt, with the last error", async () => {
		const id = newId();
		const { body } = await submitTask({ id, type: "flaky", input: { fail_times: 5 } }, { wait: 20 });

		expect(body).toMatchObject({
			id,
			status: "failed",
			attempts: 3,
			error: { code: "processor_error", message: "flaky failure on attempt 3" },
		});
	});

	it("does not retry a type allowed one attempt", async () => {
		const id = newId();
		const { body } = await submitTask({ id, type: "fail", input: { message: "transient" } }, { wait: 10 });

		expect(body).toMatchObject({ status: "failed", attempts: 1, error: { message: "transient" } });
		expect((await settled(id, 0)).attempts).toBe(1);
	});

	// hang's input is optional, and the submission is accepted without one; the run must then
	// get the same (absent) input that passed validation, not a null that fails it.
	it("runs a task whose optional input was omitted: hang without input times out, it does not fail", async () => {
		const id = newId();
		const { res, body } = await submitTask({ id, type: "hang", timeout_s: 1 }, { wait: 20 });

		expect(res.status).toBe(200);
		expect(body).toMatchObject({ id, status: "timed_out", attempts: 1, error: { code: "timeout" } });
	});
});
