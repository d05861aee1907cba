import { z } from "zod";
import { describeTypes } from "../../processors/catalog";
import { routes } from "../app";
import { describe } from "../openapi/describe";
import { ErrorBody } from "../openapi/wire";

/** The task types this deployment offers, with their input schemas (the dashboard's submit form reads it). */
export const typeRoutes = routes();

export const TypeList = z.object({
	types: z.array(
		z.object({
			type: z.string(),
			runs: z.enum(["worker", "pull"]).describe("`worker`: inside the Worker; `pull`: leased by a pull worker (WORKER_TYPES)"),
			input_schema: z.record(z.string(), z.unknown()).nullable().describe("JSON Schema of the input as submitted"),
		}),
	),
});

typeRoutes.get(
	"/v1/types",
	describe({
		summary: "List the task types offered here",
		description: "Every type a submission may name, with the JSON Schema of its input, sorted by name.",
		tags: ["tasks"],
		access: "key",
		responses: {
			200: { description: "The types", schema: TypeList },
			500: { description: "A bad WORKER_TYPES (`invalid_config`)", schema: ErrorBody },
		},
	}),
	(c) => c.json({ types: describeTypes(c.env) }, 200),
);
