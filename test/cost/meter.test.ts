/**
 * The counter layer itself: it sees every Durable Object class the worker exports, it counts a
 * known operation exactly, and its awake clock tells an object that must stay in memory (a
 * long-poll parked on it) from one that may hibernate (only a hibernating WebSocket open).
 */
import { DurableObject } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { getTask, submitTask, warmUp } from "../worker/support/api";
import { newId } from "../worker/support/ids";
import { createWithoutMessage } from "../worker/support/objects";
import { taskSocket } from "../worker/support/socket";
import * as entry from "./entry";
import { isInstrumented } from "./instrument";
import { meter } from "./meter";
import { unitsOf } from "./prices";
import { quiet, sleep } from "./scenarios";

beforeAll(warmUp);

describe("the counter layer", () => {
	it("counts every Durable Object class the worker exports", () => {
		const classes = Object.entries(entry.uninstrumented).filter(
			([, v]) => typeof v === "function" && (v as { prototype?: unknown }).prototype instanceof DurableObject,
		);
		expect(classes.length).toBeGreaterThanOrEqual(3);
		for (const [name, cls] of classes) {
			expect(isInstrumented(cls), `${name} is not instrumented in test/cost/entry.ts`).toBe(true);
			expect(typeof (entry as Record<string, unknown>)[name], `test/cost/entry.ts does not export ${name}`).toBe("function");
		}
	});

	it("counts a read of a finished task exactly: one invocation, one request, no write", async () => {
		const id = newId("read");
		await submitTask({ id, type: "echo", input: { n: 1 } }, { wait: 10 });
		await quiet();
		meter.reset();
		const { body } = await getTask(id);
		expect(body.status).toBe("succeeded");
		await quiet();
		const usage = meter.snapshot();
		expect(usage.worker).toEqual({ fetch: 1, queue: 0 });
		expect(usage.classes.TaskCoordinator?.rpc).toEqual({ waitFor: 1 });
		const units = unitsOf(usage);
		expect(units.objectRequests).toBe(1);
		expect(units.rowsWritten).toBe(0);
		expect(units.queueOperations).toBe(0);
	});

	it("keeps an object awake while a long-poll waits on it, not while only a hibernating WebSocket is open", async () => {
		// Stored without its queue message, the task stays queued (its recovery alarm is minutes away).
		const task = await createWithoutMessage({ type: "sleep", input: { ms: 0 } });
		await quiet();
		meter.reset();
		const socket = await taskSocket(task.id);
		await socket.waitFor((f) => f.type === "snapshot", "the snapshot");
		await sleep(2000);
		const subscriberOnly = meter.snapshot().classes.TaskCoordinator?.awakeMs ?? 0;
		expect(subscriberOnly, "awake with only a hibernating WebSocket open").toBeLessThan(500);

		await quiet();
		meter.reset();
		const { res } = await getTask(task.id, { wait: 2 });
		expect(res.status).toBe(200);
		const longPolled = meter.snapshot().classes.TaskCoordinator?.awakeMs ?? 0;
		expect(longPolled, "awake while a 2 s long-poll waits").toBeGreaterThanOrEqual(1900);
		socket.shut();
	});
});
