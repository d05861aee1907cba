import { healthReport } from "../../health/summary";
import { routes } from "../app";
import { describe } from "../openapi/describe";
import { Health, SeedBody, SeedEnvelope } from "../openapi/wire";
import { handleProcess } from "../seed";

/** The seed template's endpoint and the service's health. */
export const serviceRoutes = routes();

serviceRoutes.post(
	"/process",
	describe({
		summary: "The seed template's endpoint",
		description:
			"The JSON body becomes the input of the task type PROCESS_TASK_TYPE (default `sleep`); `uuid` from the body or generated; waits up to 60 s. " +
			"Answers in the seed's envelope; a timeout loses nothing: GET /v1/tasks/{uuid} has the task.",
		tags: ["service"],
		access: "key",
		body: SeedBody,
		responses: {
			200: { description: "The task ended (`success` says how) or is still running after 60 s", schema: SeedEnvelope },
			400: { description: "Invalid body or uuid", schema: SeedEnvelope },
			429: { description: "Too many submissions or waiting requests", schema: SeedEnvelope, headers: { "Retry-After": "Seconds to wait" } },
			500: { description: "System error (or a misconfigured PROCESS_TASK_TYPE)", schema: SeedEnvelope },
		},
	}),
	handleProcess,
);

serviceRoutes.get(
	"/health",
	describe({
		summary: "Health and task counts",
		description: "Counts from the health shards. With auth on and no key, only `{status}`.",
		tags: ["service"],
		access: "public",
		responses: { 200: { description: "The report", schema: Health } },
	}),
	async (c) => c.json(c.get("access") === "anonymous" ? { status: "ok" } : await healthReport(c.env)),
);
