import { z } from "zod";
import { decodeCursor, listTasks } from "../../listing/query";
import { TASK_STATUSES, type TaskStatus } from "../../task/model";
import { routes } from "../app";
import { ApiError } from "../errors";
import { describe } from "../openapi/describe";
import { ErrorBody, TaskView } from "../openapi/wire";
import { issuesOf, TASK_ID } from "../schemas";
import { taskUrls } from "../urls";

/** The task listing: recent tasks, newest first, from the health shards' rows (src/listing/). */
export const listingRoutes = routes();

export const DEFAULT_LIST_LIMIT = 50;
/** Lifetime of the tokens in a page's URLs: a day (whoever listed can list again for fresh ones). */
const ROW_TOKEN_TTL_S = 86_400;
export const MAX_LIST_LIMIT = 500;

/** `GET /v1/tasks` query: `status` (one or more, comma-separated), `type`, `limit`, `cursor`. */
export const ListTasksQuery = z.object({
	status: z
		.string()
		.transform((s) => s.split(",").map((part) => part.trim()))
		.pipe(z.array(z.enum(TASK_STATUSES)).min(1).max(TASK_STATUSES.length))
		.optional(),
	type: z.string().min(1).max(64).optional(),
	limit: z.string().regex(/^\d+$/, "must be a whole number").transform(Number).pipe(z.number().int().min(1).max(MAX_LIST_LIMIT)).optional(),
	cursor: z.string().min(1).max(1024).optional(),
});

/** A row of the listing: the task without its input and output (their sizes are unbounded), with its URLs. */
export const TaskRowView = TaskView.pick({
	id: true,
	type: true,
	status: true,
	priority: true,
	progress: true,
	attempts: true,
	created_at: true,
	started_at: true,
	finished_at: true,
	metrics: true,
	error: true,
	urls: true,
});
export const TaskPage = z.object({
	tasks: z.array(TaskRowView),
	next_cursor: z.string().nullable().describe("Pass as `cursor` for the next page; null on the last one"),
});

const error = (description: string) => ({ description, schema: ErrorBody });

/** Recent tasks: `{ tasks: [...], next_cursor }`; pass `next_cursor` back as `cursor` for the next page. */
listingRoutes.get(
	"/v1/tasks",
	describe({
		summary: "List recent tasks",
		description:
			"Newest first, from the health shards' rows (a row's status trails the task by up to ~1 s; its progress is as of its last change of status). " +
			"A task is listed until it expires. Rows carry no input or output.",
		tags: ["tasks"],
		access: "key",
		query: {
			status: { description: "Only these statuses: one, or several comma-separated (`queued,running`)", schema: z.string() },
			type: { description: "Only this task type", schema: z.string().max(64) },
			limit: { description: `Rows per page, 1–${MAX_LIST_LIMIT} (default ${DEFAULT_LIST_LIMIT})`, schema: z.string().regex(/^\d+$/) },
			cursor: { description: "The previous page's `next_cursor`", schema: z.string() },
		},
		responses: {
			200: { description: "A page of tasks", schema: TaskPage, headers: { "Cache-Control": "no-store" } },
			400: error("A bad parameter (`invalid_query`, with `details`) or a cursor this listing did not make (`invalid_cursor`)"),
			503: { ...error("A shard could not be read (`listing_unavailable`)"), headers: { "Retry-After": "Seconds to wait" } },
		},
	}),
	async (c) => {
		const parsed = ListTasksQuery.safeParse(c.req.query());
		if (!parsed.success)
			throw new ApiError(400, "invalid_query", "The query does not match the listing's parameters", issuesOf(parsed.error));
		const { status, type, limit, cursor } = parsed.data;
		const position = cursor === undefined ? null : decodeCursor(cursor, (id) => TASK_ID.test(id));
		if (cursor !== undefined && !position) {
			throw new ApiError(400, "invalid_cursor", "cursor must be a next_cursor from a previous page of this listing");
		}
		let page: Awaited<ReturnType<typeof listTasks>>;
		try {
			page = await listTasks(c.env, {
				statuses: status ? ([...new Set(status)] as TaskStatus[]) : null,
				type: type ?? null,
				limit: limit ?? DEFAULT_LIST_LIMIT,
				cursor: position,
			});
		} catch (e) {
			// A shard briefly unreachable: say so and when to retry, rather than a bare 500.
			console.error(`GET /v1/tasks: a listing shard failed: ${String(e)}`);
			throw new ApiError(503, "listing_unavailable", "The task listing is briefly unavailable; retry", undefined, { "Retry-After": "1" });
		}
		// Each row carries its task's URLs, as a task does: with keys set their tokens let a browser
		// follow the listed tasks (a WebSocket cannot send the API key).
		const tasks = await Promise.all(page.tasks.map(async (row) => ({ ...row, urls: await taskUrls(c, row.id, ROW_TOKEN_TTL_S) })));
		c.header("Cache-Control", "no-store");
		return c.json({ tasks, next_cursor: page.next_cursor }, 200);
	},
);
