import { runInDurableObject } from "cloudflare:test";
import { expect, it } from "vitest";
import { eventually } from "../shared/waits";
import { getTask, settled, submitTask } from "./support/api";
import { newId } from "./support/ids";
import { storedState, taskStub } from "./support/objects";

/**
 * A task's run is held by its object's alarm. If the instance dies mid-run (crash, deploy,
 * restart) the runtime retries the alarm on a fresh instance, which finds the task `running`
 * with no attempt of its own and runs it again. `state.abort()` kills just this one object's
 * instance, as a crash would (the runtime logs the abort as an uncaught exception).
 */
it("runs a task again when its instance dies mid-run", async () => {
	const id = newId();
	await submitTask({ id, type: "sleep", input: { ms: 1500 } });
	await eventually(async () => ((await getTask(id)).body.status === "running" ? true : undefined), "the task to start", 5000);

	await expect(
		runInDurableObject(taskStub(id), (_instance, state) => {
			state.abort("simulated crash");
		}),
	).rejects.toThrow("simulated crash");
	const dead = await storedState(id);
	expect(dead.record).toMatchObject({ status: "running", attempts: 1 });

	const done = await settled(id, 25);
	expect(done).toMatchObject({ status: "succeeded", output: { slept_ms: 1500 }, attempts: 2 });
	// The new attempt ran in full, and run_ms is its own.
	expect(done.metrics.run_ms).toBeGreaterThanOrEqual(1500);
	expect(done.metrics.run_ms).toBeLessThan(1500 + 500);
}, 40_000);
