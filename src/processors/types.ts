import type { z } from "zod";

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
}

/**
 * A task type: how to validate its input at submit, and how to run it.
 * A processor throws to fail; `PermanentError` fails without retrying.
 */
export interface Processor<I = unknown> {
	input: z.ZodType<I>;
	/** Deadline for one attempt unless the task sets `timeout_s`. */
	defaultTimeoutS: number;
	/** Runs allowed in total, retries included. */
	maxAttempts: number;
	run(input: I, ctx: ProcessorContext): Promise<unknown>;
}

/** Thrown by a processor for a failure that a retry cannot fix (bad input, refused by a backend). */
export class PermanentError extends Error {
	constructor(
		message: string,
		readonly code = "processor_error",
	) {
		super(message);
		this.name = "PermanentError";
	}
}

/** Builds a processor with the input type inferred from its schema. */
export function defineProcessor<S extends z.ZodType>(p: {
	input: S;
	defaultTimeoutS?: number;
	maxAttempts?: number;
	run(input: z.output<S>, ctx: ProcessorContext): Promise<unknown>;
}): Processor {
	return {
		input: p.input,
		defaultTimeoutS: p.defaultTimeoutS ?? 900,
		maxAttempts: p.maxAttempts ?? 3,
		run: (input, ctx) => p.run(input as z.output<S>, ctx),
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
