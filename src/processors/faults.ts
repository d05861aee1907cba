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

/**
 * `flaky`: fails its first `fail_times` attempts, then sleeps `ms` and succeeds. It allows 3
 * attempts; with `permanent` its failures are `PermanentError`s (with `code`), which end the task
 * at once however many attempts are left.
 */
export const flaky = defineProcessor({
	input: z.object({
		fail_times: z.number().int().min(0).max(10),
		ms: z.number().int().min(0).max(60_000).default(0),
		permanent: z.boolean().default(false),
		code: z.string().min(1).max(64).optional(),
	}),
	run: async ({ fail_times, ms, permanent, code }, ctx) => {
		const message = `flaky failure on attempt ${ctx.attempt}`;
		if (ctx.attempt <= fail_times) throw permanent ? new PermanentError(message, code) : new Error(message);
		await sleepFor(ms, ctx.signal);
		return { attempt: ctx.attempt };
	},
});

/**
 * `misbehave`: hands back what cannot be stored as it is, to prove that none of it wedges a
 * task: `ctx.progress` calls with any percent and a message of any size or type, then (after
 * `hold_ms`, so a test can look at the running task) an output of `bytes` characters, a BigInt
 * or a cycle, or a thrown huge message, or a thrown value that cannot even be turned into text.
 */
export const misbehave = defineProcessor({
	input: z.object({
		progress: z
			.array(
				z.object({
					percent: z.union([z.number(), z.enum(["NaN", "Infinity", "-Infinity", "text"])]),
					message: z.string().max(1000).optional(),
					/** The message repeated this many times. */
					repeat: z.number().int().min(1).max(1_000_000).default(1),
					/** A message that is not a string at all. */
					message_as: z.enum(["object", "number"]).optional(),
				}),
			)
			.max(50)
			.default([]),
		hold_ms: z.number().int().min(0).max(60_000).default(0),
		output: z.enum(["bytes", "bigint", "cycle"]).optional(),
		bytes: z.number().int().min(0).max(32_000_000).default(3_000_000),
		throws: z.enum(["huge_message", "unprintable"]).optional(),
	}),
	max_attempts: 2,
	run: async (input, ctx) => {
		// Called as untyped JavaScript would call it.
		const progress = (percent: unknown, message?: unknown) => ctx.progress(percent as number, message as string | undefined);
		for (const step of input.progress) {
			const percent = typeof step.percent === "number" ? step.percent : step.percent === "text" ? "50" : Number(step.percent);
			const message =
				step.message_as === "object" ? { text: step.message } : step.message_as === "number" ? 42 : step.message?.repeat(step.repeat);
			progress(percent, message);
		}
		if (input.hold_ms > 0) await sleepFor(input.hold_ms, ctx.signal);
		if (input.throws === "huge_message") throw new Error(`${"e".repeat(5_000_000)} (end)`);
		// An object without a prototype has no toString: String() of it throws.
		// eslint-disable-next-line @typescript-eslint/only-throw-error -- the point: a processor may throw anything
		if (input.throws === "unprintable") throw Object.create(null) as object;
		if (input.output === "bytes") return "x".repeat(input.bytes);
		if (input.output === "bigint") return { count: 10n ** 30n };
		if (input.output === "cycle") {
			const node: Record<string, unknown> = { name: "root" };
			node.self = node;
			return node;
		}
		return { ok: true };
	},
});
