import { z } from "zod";
import { MAX_TIMEOUT_S, PRIORITIES, WEBHOOK_EVENT_FILTERS } from "../task/model";
import { webhookUrlProblem } from "../webhooks/signing";

/** Client-chosen task ids: safe in URLs, object names and logs. */
export const TASK_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const MAX_WAIT_S = 60;
/** Longest `delay_s`: a day. */
export const MAX_DELAY_S = 86_400;

/** Body of `POST /v1/tasks`. Unknown fields are refused so typos do not pass silently. */
export const SubmitBody = z.strictObject({
	type: z.string().min(1).max(64),
	input: z.json().optional(),
	id: z.string().regex(TASK_ID, "must be 1-128 characters of A-Z a-z 0-9 . _ : -").optional(),
	priority: z.enum(PRIORITIES).default("normal"),
	timeout_s: z.number().positive().max(MAX_TIMEOUT_S).optional(),
	/** Seconds before the task may start (at most a day). */
	delay_s: z.number().min(0).max(MAX_DELAY_S).optional(),
	ttl_s: z
		.number()
		.positive()
		.max(30 * 86_400)
		.optional(),
	webhook: z
		.string()
		.max(2048)
		.superRefine((url, ctx) => {
			const problem = webhookUrlProblem(url);
			if (problem) ctx.addIssue({ code: "custom", message: problem });
		})
		.optional(),
	webhook_events: z
		.array(z.enum(WEBHOOK_EVENT_FILTERS))
		.min(1)
		.refine((events) => new Set(events).size === events.length, "must not repeat an event")
		.optional(),
});
export type SubmitBody = z.output<typeof SubmitBody>;

/** Field-level problems, as `details` of a 400: `[{ path: "input.ms", message }]`. */
export function issuesOf(error: z.ZodError, prefix: (string | number)[] = []) {
	return error.issues.map((i) => ({
		path: [...prefix, ...i.path].map(String).join(".") || "(body)",
		message: i.message,
	}));
}
