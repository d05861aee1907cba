import { z } from "zod";
import { defineProcessor, PermanentError, sleepFor } from "./types";

/**
 * Fault-injection processors for tests and demos of the failure paths. Registered only when
 * `ENABLE_FAULT_PROCESSORS = "true"`, so a production deployment never exposes them.
 */

/** `fail`: throws `message` (a retryable error unless `permanent`). */
export const fail = defineProcessor({
	input: z.preprocess((v) => v ?? {}, z.object({ message: z.string().max(1000).default("boom"), permanent: z.boolean().default(false) })),
	max_attempts: 1,
	run: async ({ message, permanent }) => {
		throw permanent ? new PermanentError(message) : new Error(message);
	},
});

/** `hang`: never settles and ignores its abort signal: only the object's deadline ends it. */
export const hang = defineProcessor({
	input: z.object({}).nullish(),
	timeout_s: 1,
	run: () => new Promise<never>(() => {}),
});

/** `flaky`: fails its first `fail_times` attempts, then sleeps `ms` and succeeds. */
export const flaky = defineProcessor({
	input: z.object({ fail_times: z.number().int().min(0).max(10), ms: z.number().int().min(0).max(60_000).default(0) }),
	run: async ({ fail_times, ms }, ctx) => {
		if (ctx.attempt <= fail_times) throw new Error(`flaky failure on attempt ${ctx.attempt}`);
		await sleepFor(ms, ctx.signal);
		return { attempt: ctx.attempt };
	},
});
