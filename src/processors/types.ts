import type { z } from "zod";
import { MAX_TIMEOUT_S, type Json, type TaskError } from "../task/model";
import type { ProcessorFiles } from "../files/taskFiles";

/** What a processor gets besides its input. */
export interface ProcessorContext {
	taskId: string;
	/** 1 on the first run, 2 on the first retry, … */
	attempt: number;
	/** Aborted when the task times out or is canceled. Processors should stop promptly. */
	signal: AbortSignal;
	env: Env;
	/** Reports progress; the task's object coalesces rapid calls. */
	progress(percent: number, message?: string): void;
	/** Reads the input's files and stores files of the task's own (`ctx.files.put`). */
	files: ProcessorFiles;
}

/** Why a submission's input cannot run in this deployment (a 400 at submit, nothing stored). */
export interface InputProblem {
	code: string;
	message: string;
	/** Where in the body, e.g. `input.origin`. */
	path: string;
}

/**
 * A task type as the runtime uses it: how to validate its input at submit, and how to run it.
 * Built by `defineProcessor` from the public shape. A processor throws to fail; `PermanentError`
 * fails without retrying; `RetryableError` may say when to try again.
 */
export interface Processor<I = unknown> {
	input: z.ZodType<I>;
	/** Deadline for one attempt unless the task sets `timeout_s`. */
	defaultTimeoutS: number;
	/** Runs allowed in total, retries included. */
	maxAttempts: number;
	/** At most this many attempts of the type run at once across the deployment (none: no limit). */
	concurrency?: number;
	/**
	 * For a type whose limit depends on the input: the lane a task waits in and its slots (the
	 * `http` type: `origin:<name>`, the origin's concurrency); null when the input names none.
	 * Wins over `concurrency`. May throw `ConfigError` when the configuration it reads is bad.
	 */
	lane?(input: I, env: Env): { lane: string; concurrency: number } | null;
	/**
	 * Checks a schema-valid input against the deployment's configuration at submit (the `http`
	 * type: is the origin configured?). May throw `ConfigError` when that configuration is bad.
	 */
	check?(input: I, env: Env): InputProblem | null;
	run(input: I, ctx: ProcessorContext): Promise<unknown>;
}

/** The task type as its author writes it (README "Add your own task type"). */
export interface ProcessorDefinition<S extends z.ZodType, O extends z.ZodType = z.ZodType, R extends z.input<O> = z.input<O>> {
	/** Validates `input` at submit; the parsed value is what `run` gets. */
	input: S;
	/** When given, the output is checked against it; a mismatch fails the task (`invalid_output`). */
	output?: O;
	/** At most this many attempts of this type run at once across the deployment. */
	concurrency?: number;
	/** Deadline of one attempt when the task sets none (default MAX_TIMEOUT_S, 840, the longest). */
	timeout_s?: number;
	/** Attempts in all, retries included (default 3). */
	max_attempts?: number;
	run(input: z.output<S>, ctx: ProcessorContext): Promise<R>;
}

/**
 * A processor that remembers, for the type checker only, what callers send (its input schema's
 * input type) and what they get back (its output schema's type, else what `run` returns):
 * `TaskTypes` (processors/index.ts) hands them to the typed client, `edgetask/client`.
 */
export interface TypedProcessor<In, Out> extends Processor {
	readonly types?: { input: In; output: Out };
}

/** The output type callers see: the output schema's, or what `run` returns when there is none. */
type OutputOf<O extends z.ZodType, R> = unknown extends z.output<O> ? R : z.output<O>;

/** Thrown by a processor for a failure that a retry cannot fix (bad input, refused by a backend). */
export class PermanentError extends Error {
	constructor(
		message: string,
		readonly code = "processor_error",
		/** Shown to the client as `error.details`. */
		readonly details?: Json,
	) {
		super(message);
		this.name = "PermanentError";
	}
}

/**
 * Thrown by a processor for a failure worth another attempt, when it knows more than a plain
 * Error says: a code, details, and how long to wait before the next attempt (a backend's
 * `Retry-After`) instead of the usual backoff.
 */
export class RetryableError extends Error {
	constructor(
		message: string,
		readonly code = "processor_error",
		readonly details?: Json,
		/** Wait at least this long before the next attempt; undefined: the usual backoff. */
		readonly retryAfterMs?: number,
	) {
		super(message);
		this.name = "RetryableError";
	}
}

/** How a thrown value ends an attempt: the task's error, whether to retry, and when. */
export interface AttemptFailure {
	error: TaskError;
	retryable: boolean;
	retryAfterMs?: number;
}

/** Reads what a processor threw: `PermanentError` never retries, everything else may. */
export function attemptFailure(e: unknown): AttemptFailure {
	if (e instanceof PermanentError || e instanceof RetryableError) {
		const error: TaskError = { code: e.code, message: e.message };
		if (e.details !== undefined) error.details = e.details;
		if (e instanceof PermanentError) return { error, retryable: false };
		return { error, retryable: true, retryAfterMs: e.retryAfterMs };
	}
	return { error: { code: "processor_error", message: e instanceof Error ? e.message : String(e) }, retryable: true };
}

/**
 * Builds a task type from its public definition, with the input type inferred from its schema.
 *
 * @example
 * export const shout = defineProcessor({
 *   input: z.object({ text: z.string() }),
 *   output: z.object({ text: z.string() }),
 *   run: async ({ text }) => ({ text: text.toUpperCase() }),
 * });
 */
export function defineProcessor<S extends z.ZodType, O extends z.ZodType = z.ZodType, R extends z.input<O> = z.input<O>>(
	p: ProcessorDefinition<S, O, R>,
): TypedProcessor<z.input<S>, OutputOf<O, R>> {
	const output = p.output;
	return {
		input: p.input,
		defaultTimeoutS: p.timeout_s ?? MAX_TIMEOUT_S,
		maxAttempts: p.max_attempts ?? 3,
		concurrency: p.concurrency,
		run: async (input, ctx) => {
			const result = await p.run(input as z.output<S>, ctx);
			if (!output) return result;
			const checked = output.safeParse(result);
			if (!checked.success) {
				const details = checked.error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(output)", message: i.message }));
				throw new PermanentError("The output does not match the type's output schema", "invalid_output", details);
			}
			return checked.data;
		},
	};
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts; never leaves a timer behind. */
export function sleepFor(ms: number, signal: AbortSignal): Promise<void> {
	const reason = (): Error => (signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
	return new Promise((resolve, reject) => {
		if (signal.aborted) {
			reject(reason());
			return;
		}
		const onAbort = () => {
			clearTimeout(timer);
			reject(reason());
		};
		const timer = setTimeout(() => {
			signal.removeEventListener("abort", onAbort);
			resolve();
		}, ms);
		signal.addEventListener("abort", onAbort, { once: true });
	});
}
