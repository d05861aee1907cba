import { z } from "zod";
import { ConfigError, settings } from "../config";
import { defineProcessor, PermanentError, type InputProblem, type Processor } from "../processors/types";
import { callOrigin } from "./call";
import { ENVELOPES, findOrigin, ORIGIN_NAME, originLane, origins, type Origin } from "./config";

/** A path on the origin: one leading slash (so it cannot name another host), no spaces or fragment. */
const PATH = /^\/(?!\/)[^\s#]*$/;

/** Input of the `http` task type. */
export const HttpInput = z.strictObject({
	/** A name from `ORIGINS`. */
	origin: z.string().regex(ORIGIN_NAME, "must be the name of an origin in ORIGINS"),
	/** Appended to the origin's url. */
	path: z.string().max(2048).regex(PATH, "must start with a single / and hold no spaces or #").default("/"),
	/** POSTed as JSON (default `{}`). */
	body: z.json().default({}),
	/** Overrides the origin's `envelope`. */
	envelope: z.enum(ENVELOPES).optional(),
});
export type HttpInput = z.output<typeof HttpInput>;

/** The configured origin, or the task's error when it is gone or the configuration broke since submit. */
function originFor(env: Env, name: string): Origin {
	let origin: Origin | undefined;
	try {
		origin = findOrigin(env, name);
	} catch (e) {
		if (e instanceof ConfigError) throw new PermanentError(e.message, "invalid_config");
		throw e;
	}
	if (!origin) throw new PermanentError(`Origin "${name}" is no longer in ORIGINS`, "unknown_origin");
	return origin;
}

/** Unknown origin → a 400 at submit naming the configured ones. A bad config throws `ConfigError`. */
function checkOrigin(input: unknown, env: Env): InputProblem | null {
	const { origin } = input as HttpInput;
	const known = origins(env);
	if (known.has(origin)) return null;
	const names = [...known.keys()];
	return {
		code: "unknown_origin",
		path: "input.origin",
		message: `No origin "${origin}" in ORIGINS (${names.length ? `configured: ${names.join(", ")}` : "none is configured"})`,
	};
}

/**
 * `http`: POSTs `body` as JSON to an origin from `ORIGINS` (url + `path`) and makes its JSON
 * answer the output; streamed answers report progress (see stream.ts). The origin's
 * `concurrency` is the limit of its lane (`origin:<name>`): at most that many of these requests
 * are in flight to it across the deployment. Failures: see failures.ts.
 */
export const http: Processor = {
	...defineProcessor({
		input: HttpInput,
		max_attempts: 5,
		run: (input, ctx) => {
			const origin = originFor(ctx.env, input.origin);
			const request = { path: input.path, body: input.body, envelope: input.envelope ?? origin.envelope };
			// One var bounds every output: an answer (a streamed one: each line) is read up to
			// MAX_OUTPUT_BYTES, like any processor's output is stored up to it.
			return callOrigin(origin, request, ctx, settings(ctx.env).maxOutputBytes);
		},
	}),
	check: checkOrigin,
	lane: (input, env) => httpTaskLane(env, input),
};

/**
 * The lane of an `http` task, from its input: `origin:<name>` with the origin's concurrency;
 * null when the input names no configured origin. Throws `ConfigError` when ORIGINS is bad.
 */
export function httpTaskLane(env: Env, input: unknown): { lane: string; concurrency: number } | null {
	const parsed = HttpInput.safeParse(input);
	const origin = parsed.success ? findOrigin(env, parsed.data.origin) : undefined;
	return origin ? originLane(origin) : null;
}
