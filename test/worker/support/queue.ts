/** The worker's queue handler, called as the runtime calls it with a batch the test makes (acks and retries read back). */
import { env } from "cloudflare:workers";
import { createExecutionContext, createMessageBatch, getQueueResult, type MessageBatchMessage } from "cloudflare:test";
import worker from "../../../src/index";
import type { TaskMessage } from "../../../src/task/model";

let seq = 0;

/** One queue message with a fresh id; `attempts` as the runtime counts deliveries. */
export function queueMessage(body: unknown, attempts = 1): MessageBatchMessage {
	return { id: `msg-${++seq}`, timestamp: new Date(), attempts, body };
}

/** Runs the worker's queue handler on one batch of `queue` and returns what it acked and retried. */
export async function deliverBatch(queue: string, messages: MessageBatchMessage[]) {
	const handler: ExportedHandler<Env, TaskMessage> = worker;
	if (!handler.queue) throw new Error("the worker exports no queue handler");
	const batch = createMessageBatch<TaskMessage>(queue, messages as MessageBatchMessage<TaskMessage>[]);
	const ctx = createExecutionContext();
	await handler.queue(batch, env, ctx);
	return getQueueResult(batch, ctx);
}
