import { z } from "zod";
import { MAX_TIMEOUT_S } from "../task/model";
import { defineProcessor, sleepFor } from "./types";

/**
 * `sleep`: waits `ms` milliseconds (default 1000) and reports progress on the way. The stand-in
 * for real work in demos, benchmarks and the seed-compatible `POST /process`; other fields of
 * the input are accepted and ignored, as the seed template's clients send arbitrary JSON.
 */
export const sleep = defineProcessor({
	// No input (null) means the defaults. Written as a transform, not a preprocess, so callers
	// see the input type ({ ms?: number }) rather than `unknown`.
	input: z
		.looseObject({
			ms: z
				.number()
				.int()
				.min(0)
				.max(MAX_TIMEOUT_S * 1000)
				.default(1000),
		})
		.nullish()
		.transform((v) => v ?? { ms: 1000 }),
	async run({ ms }, ctx) {
		const steps = ms >= 1000 ? 10 : 1;
		const start = Date.now();
		for (let i = 1; i <= steps; i++) {
			// Sleep to fixed deadlines so timer slack does not add up over the steps.
			const remaining = start + (ms * i) / steps - Date.now();
			// A zero sleep (the no-op of benchmarks) should cost nothing, not a timer tick.
			if (remaining > 0) await sleepFor(remaining, ctx.signal);
			else if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error("aborted");
			if (i < steps) ctx.progress((100 * i) / steps);
		}
		return { slept_ms: ms };
	},
});
