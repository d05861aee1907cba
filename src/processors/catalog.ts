import { z } from "zod";
import { workerTypes } from "../workers/config";
import { offeredProcessors } from "./index";

/** A task type as `GET /v1/types` describes it. */
export interface TypeDescription {
	type: string;
	/** `worker`: runs inside the Worker; `pull`: waits for an external worker (WORKER_TYPES). */
	runs: "worker" | "pull";
	/** JSON Schema of the input as submitted (defaults optional); null when it cannot be expressed. */
	input_schema: Record<string, unknown> | null;
}

/** Schemas are fixed for an isolate's life: made once per schema. */
const schemas = new WeakMap<z.ZodType, Record<string, unknown> | null>();

function jsonSchema(schema: z.ZodType): Record<string, unknown> | null {
	let out = schemas.get(schema);
	if (out === undefined) {
		try {
			out = z.toJSONSchema(schema, { io: "input", unrepresentable: "any" });
		} catch {
			// A refinement JSON Schema cannot say (a transform's output, say): the form shows no hints.
			out = null;
		}
		schemas.set(schema, out);
	}
	return out;
}

/** Every task type a submission may name here, by name: what a form or a client needs to offer them. */
export function describeTypes(env: Env): TypeDescription[] {
	const types: TypeDescription[] = Object.entries(offeredProcessors(env)).map(([type, p]) => ({
		type,
		runs: "worker",
		input_schema: jsonSchema(p.input),
	}));
	for (const [type, w] of workerTypes(env)) types.push({ type, runs: "pull", input_schema: w.input ? jsonSchema(w.input) : null });
	return types.sort((a, b) => a.type.localeCompare(b.type));
}
