import { settings } from "../config";
import { http } from "../origins/http";
import { checksum } from "./checksum";
import { echo } from "./echo";
import { emit } from "./emit";
import { fail, flaky, hang, misbehave } from "./faults";
import { imageResize } from "./image";
import { sleep } from "./sleep";
import type { Processor, TypedProcessor } from "./types";

export type { InputProblem, Processor, ProcessorContext } from "./types";
export { attemptFailure, defineProcessor, PermanentError, RetryableError } from "./types";

/**
 * Every task type this deployment offers, by the name clients submit. One module per type;
 * add yours here (README "Add your own task type").
 */
const TASK_TYPES = { sleep, echo, http, checksum, "image.resize": imageResize } satisfies Record<string, Processor>;

/**
 * Test processors, offered only with ENABLE_FAULT_PROCESSORS = "true": the failure paths,
 * `emit` for output sizes and files, `misbehave` for what cannot be stored.
 */
const FAULTS: Record<string, Processor> = { fail, hang, flaky, emit, misbehave };

/**
 * Input and output types of the task types every deployment offers, for callers
 * (`edgetask/client` imports this type only): `client.run("sleep", { ms: 1500 })` resolves to
 * `{ slept_ms: number }`. A type defined without types (`http`) takes and gives `unknown`.
 */
export type TaskTypes = {
	[K in keyof typeof TASK_TYPES]: (typeof TASK_TYPES)[K] extends TypedProcessor<infer In, infer Out>
		? { input: In; output: Out }
		: { input: unknown; output: unknown };
};

/** Every task type that runs in the Worker here, by name (the API's documentation, `GET /v1/types`). */
export function offeredProcessors(env: Env): Record<string, Processor> {
	return settings(env).faultProcessors ? { ...TASK_TYPES, ...FAULTS } : { ...TASK_TYPES };
}

/** The processor for `type`, or undefined when this deployment does not offer that type. */
export function findProcessor(type: string, env: Env): Processor | undefined {
	if (Object.hasOwn(TASK_TYPES, type)) return TASK_TYPES[type as keyof typeof TASK_TYPES];
	if (settings(env).faultProcessors && Object.hasOwn(FAULTS, type)) return FAULTS[type];
	return undefined;
}
