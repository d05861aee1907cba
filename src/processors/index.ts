import { settings } from "../config";
import { http } from "../origins/http";
import { checksum } from "./checksum";
import { echo } from "./echo";
import { emit } from "./emit";
import { fail, flaky, hang } from "./faults";
import { imageResize } from "./image";
import { sleep } from "./sleep";
import type { Processor } from "./types";

export type { InputProblem, Processor, ProcessorContext } from "./types";
export { attemptFailure, defineProcessor, PermanentError, RetryableError } from "./types";

/**
 * Every task type this deployment offers, by the name clients submit. One module per type;
 * add yours here (README "Add your own task type").
 */
const TASK_TYPES: Record<string, Processor> = { sleep, echo, http, checksum, "image.resize": imageResize };

/**
 * Test processors, offered only with ENABLE_FAULT_PROCESSORS = "true": the failure paths, and
 * `emit` for output sizes and files.
 */
const FAULTS: Record<string, Processor> = { fail, hang, flaky, emit };

/** The processor for `type`, or undefined when this deployment does not offer that type. */
export function findProcessor(type: string, env: Env): Processor | undefined {
	if (Object.hasOwn(TASK_TYPES, type)) return TASK_TYPES[type];
	if (settings(env).faultProcessors && Object.hasOwn(FAULTS, type)) return FAULTS[type];
	return undefined;
}
