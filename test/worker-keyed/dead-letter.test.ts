/**
 * The dead-letter route end to end, through the real local queue: a message whose hand-over to
 * its task keeps failing is retried (max_retries 1 in this project), moved to the dead-letter
 * queue, and the dead-letter consumer fails the task, which releases its waiter. Nothing here
 * calls the queue handler: the test sends the message with the real producer.
 */
import { env } from "cloudflare:workers";
import { afterAll, describe, expect, it } from "vitest";
import type { TaskMessage } from "../../src/task/model";
import { getTask } from "../worker/support/api";
import { newId } from "../worker/support/ids";
import { createWithoutMessage, runInObject, taskStub } from "../worker/support/objects";
import { AUTH } from "./keys";

type Dispatch = (this: any) => Promise<unknown>;
let classDispatch: { proto: { dispatch: Dispatch }; original: Dispatch } | null = null;
afterAll(() => {
	if (classDispatch) classDispatch.proto.dispatch = classDispatch.original;
});

describe("dead letters", () => {
	it("a task whose message cannot be handed over is failed dead_lettered after max_retries, and its waiter released", async () => {
		const id = newId("dlq");
		await createWithoutMessage({ id, type: "sleep", input: { ms: 10 } });
		// The task's object refuses every hand-over (RPC finds methods on the class: wrap the class's, for this task only).
		let handOvers = 0;
		await runInObject(taskStub(id), (instance) => {
			const proto = Object.getPrototypeOf(instance) as { dispatch: Dispatch };
			classDispatch ??= { proto, original: proto.dispatch };
			const { original } = classDispatch;
			proto.dispatch = async function (this: any) {
				if (this.record?.id !== id) return original.call(this);
				handOvers += 1;
				throw new Error("injected: the hand-over fails");
			};
		});
		const waiter = getTask(id, { wait: 30, headers: AUTH });
		await env.TASK_QUEUE.send({ id, reason: "submit" } satisfies TaskMessage);

		const { res, body, elapsed } = await waiter;
		expect(res.status).toBe(200);
		expect(body).toMatchObject({ id, status: "failed", attempts: 0, started_at: null, output: null, error: { code: "dead_lettered" } });
		// One delivery and one retry (max_retries 1), then the dead-letter queue.
		expect(handOvers).toBe(2);
		expect(elapsed).toBeLessThan(25_000);
	});
});
