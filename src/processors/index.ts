import { settings } from "../config";
import { echo, sleep } from "./builtin";
import { fail, flaky, hang } from "./faults";
import type { Processor } from "./types";

export type { Processor, ProcessorContext } from "./types";
export { PermanentError } from "./types";

/** Task types every deployment offers. Add a processor here to add a task type. */
const BUILTIN: Record<string, Processor> = { sleep, echo };
const FAULTS: Record<string, Processor> = { fail, hang, flaky };

/** The processor for `type`, or undefined when this deployment does not offer that type. */
export function findProcessor(type: string, env: Env): Processor | undefined {
	if (Object.hasOwn(BUILTIN, type)) return BUILTIN[type];
	if (settings(env).faultProcessors && Object.hasOwn(FAULTS, type)) return FAULTS[type];
	return undefined;
}
