// A pull worker for the task type "resize" in Node: run it on the GPU machine, next to your model.
import { setTimeout as sleep } from "node:timers/promises";
import { createWorker, PermanentError } from "edgetask/client";

const worker = createWorker({
	baseUrl: process.env.EDGETASK_URL ?? "http://127.0.0.1:8787",
	apiKey: process.env.EDGETASK_API_KEY, // needed only when the server has API keys
	concurrency: 1,
});

worker.task("resize", async (input, ctx) => {
	const { width } = input as { width: number };
	if (!(width > 0)) throw new PermanentError("width must be a positive number"); // fails at once, no retry
	for (let step = 1; step <= 3; step++) {
		ctx.progress(step * 25, `pass ${step} of 3`); // reaches WebSocket/SSE subscribers
		// Your model here. ctx.signal aborts when a caller cancels the task (or the lease is lost):
		// this sleep then throws, and nothing the handler returns counts.
		await sleep(200, undefined, { signal: ctx.signal });
	}
	// Delivery is at least once: use ctx.taskId as the idempotency key of any side effect.
	return { width: Math.floor(width / 2), task: ctx.taskId, attempt: ctx.attempt };
});

// SIGTERM / Ctrl-C: lease no more, finish running tasks, then run() resolves and the process exits.
for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void worker.stop());
await worker.run(); // rejects (exit 1) if the server refuses this worker: a bad API key, an unknown type
