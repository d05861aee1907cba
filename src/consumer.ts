import { TASK_ID } from "./api/schemas";
import { backoffMs } from "./lib/backoff";
import type { TaskMessage } from "./task/model";

/** Backoff for a message whose hand-over failed: 1 s, 2 s, 4 s … capped at 60 s. */
function retryDelayS(attempts: number): number {
	return backoffMs(attempts, { baseMs: 1000, capMs: 60_000 }) / 1000;
}

function isTaskMessage(body: unknown): body is TaskMessage {
	return (
		typeof body === "object" && body !== null && typeof (body as TaskMessage).id === "string" && TASK_ID.test((body as TaskMessage).id)
	);
}

/**
 * The queue handler. It never runs a task: it hands each message to its task's object, which
 * starts the run in its own alarm, and acks. A batch therefore takes milliseconds however long
 * its tasks run, and no task waits behind another (running tasks inside the batch brought the
 * seed's head-of-line blocking straight back: the local broker sends the next batch only after
 * this handler returns).
 *
 * Queues deliver at least once: a repeated message reaches `dispatch` again, which ignores it.
 * Messages from the dead-letter queue fail their task, so no waiter is left until its timeout.
 */
export async function queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
	const deadLetters = batch.queue.endsWith("-dlq");
	await Promise.all(
		batch.messages.map(async (message) => {
			if (!isTaskMessage(message.body)) {
				console.error(`queue ${batch.queue}: dropping malformed message ${message.id}`);
				message.ack();
				return;
			}
			const task = env.TASKS.getByName(message.body.id);
			try {
				if (deadLetters) await task.deadLettered();
				else await task.dispatch();
				message.ack();
			} catch (e) {
				console.error(`queue ${batch.queue}: task ${message.body.id} not handed over (try ${message.attempts}): ${String(e)}`);
				message.retry({ delaySeconds: retryDelayS(message.attempts) });
			}
		}),
	);
}
