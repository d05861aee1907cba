import type { Context } from "hono";
import { z } from "zod";
import { settings } from "../../config";
import { FILE_ID, isFileRef } from "../../files/model";
import { serveFile, serveJson } from "../../files/serve";
import { FileTooLargeError, TruncatedBodyError } from "../../files/store";
import { storeUpload } from "../../files/uploads";
import { isTerminal } from "../../task/model";
import { admitSubmission, withWaitingSlot } from "../admission";
import { routes, type App } from "../app";
import { ApiError } from "../errors";
import { describe } from "../openapi/describe";
import { ErrorBody, StoredFile } from "../openapi/wire";
import { preferredWait, taskIdParam, tooLarge } from "../request";
import { waitForTask } from "../tasks";

/** Files in and out: uploads, file downloads, and a task's output as bytes. */
export const fileRoutes = routes();

function fileIdParam(c: Context<App>): string {
	const id = c.req.param("id") ?? "";
	if (!FILE_ID.test(id)) throw new ApiError(400, "invalid_file_id", 'File ids are "file_" and 32 hex digits');
	return id;
}

const error = (description: string) => ({ description, schema: ErrorBody });
const FILE_PARAM = { id: { description: 'File id: "file_" and 32 hex digits', schema: z.string().regex(FILE_ID) } };
const BYTES = {
	mediaType: "application/octet-stream",
	description: "The file's bytes, with its own Content-Type; Range and If-None-Match are honoured",
};

/**
 * Upload a file: the raw body (any content type) up to MAX_UPLOAD_BYTES, streamed to R2.
 * 201 `{id, bytes, content_type, sha256}`; deleted after UPLOAD_TTL_S unless a task uses it.
 */
fileRoutes.post(
	"/v1/files",
	describe({
		summary: "Upload a file",
		description:
			'The raw body (any content type) up to MAX_UPLOAD_BYTES, streamed to R2; use it in an input as `{"$file": id}`. Deleted after UPLOAD_TTL_S unless a task uses it.',
		tags: ["files"],
		access: "key",
		rawBody: { mediaType: "*/*", description: "The file's bytes" },
		responses: {
			201: { description: "Stored", schema: StoredFile, headers: { Location: "/v1/files/{id}" } },
			400: error("The body ended before its Content-Length (`incomplete_body`)"),
			413: error("Over MAX_UPLOAD_BYTES"),
			429: { ...error("Too many submissions"), headers: { "Retry-After": "Seconds to wait" } },
		},
	}),
	async (c) => {
		await admitSubmission(c.env, c.req.raw);
		const max = settings(c.env).maxUploadBytes;
		const declared = c.req.header("content-length");
		const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null;
		if (length !== null && length > max) throw tooLarge(max);
		// Request bodies are byte streams; the runtime types them loosely.
		const body = (c.req.raw.body as ReadableStream<Uint8Array> | null) ?? (new Blob([]).stream() as ReadableStream<Uint8Array>);
		let file;
		try {
			file = await storeUpload(c.env, body, { contentType: c.req.header("content-type") || "application/octet-stream", length });
		} catch (e) {
			if (e instanceof FileTooLargeError) throw tooLarge(max);
			if (e instanceof TruncatedBodyError) throw new ApiError(400, "incomplete_body", e.message);
			throw e;
		}
		c.header("Location", `/v1/files/${file.$file}`);
		return c.json({ id: file.$file, bytes: file.bytes, content_type: file.content_type, sha256: file.sha256 }, 201);
	},
);

/** A stored file (an upload or a task's output file), streamed, with ETag and Range. */
fileRoutes.get(
	"/v1/files/:id",
	describe({
		summary: "Download a file (an upload or a task's output file)",
		tags: ["files"],
		access: "key",
		params: FILE_PARAM,
		responses: {
			200: { description: "The file", content: BYTES, headers: { ETag: "The file's entity tag" } },
			206: { description: "The requested range", content: BYTES, headers: { "Content-Range": "The range sent" } },
			304: { description: "Not modified (If-None-Match)" },
			404: error("No such file (unknown, expired or deleted)"),
			416: error("The range cannot be satisfied"),
		},
	}),
	async (c) => {
		const id = fileIdParam(c);
		const response = await serveFile(c.env.FILES, id, c.req.raw);
		if (!response) throw new ApiError(404, "file_not_found", `No file with id ${id} (unknown, expired or deleted)`);
		return response;
	},
);

/**
 * A task's output as bytes: the file itself when the output is one file (`{"$file": …}`, as
 * `image.resize` returns and as JSON over 64 KiB is kept), else the JSON. `Prefer: wait=N` waits
 * for the task to end first. A task token opens it, like the task's other URLs.
 */
fileRoutes.get(
	"/v1/tasks/:id/output",
	describe({
		summary: "A task's output as bytes",
		description:
			'The file itself when the output is one file (`{"$file": …}`), else the JSON. `Prefer: wait=N` waits for the task to end first. A task token opens it.',
		tags: ["files"],
		access: "key-or-task-token",
		headers: { prefer: { description: "`wait=N` (0-60 s): wait for the task to end first", schema: z.string() } },
		responses: {
			200: { description: "The output: the file's bytes, or the JSON", content: BYTES },
			206: { description: "The requested range", content: BYTES },
			304: { description: "Not modified (If-None-Match)" },
			404: error("No such task"),
			409: error("Not succeeded (yet): `output_not_ready` or `task_not_succeeded`"),
			410: error("The output file no longer exists (`output_gone`)"),
		},
	}),
	async (c) => {
		const id = taskIdParam(c);
		const wait = preferredWait(c);
		const task = wait ? await withWaitingSlot(c.env, wait, () => waitForTask(c.env, id, wait)) : await waitForTask(c.env, id, 0);
		if (wait !== null) c.header("Preference-Applied", `wait=${wait}`);
		if (!isTerminal(task.status)) {
			throw new ApiError(
				409,
				"output_not_ready",
				`Task ${id} is ${task.status}; its output exists once it succeeds (Prefer: wait=N waits)`,
				{
					status: task.status,
				},
			);
		}
		if (task.status !== "succeeded") {
			throw new ApiError(409, "task_not_succeeded", `Task ${id} ended ${task.status}; it has no output`, {
				status: task.status,
				error: task.error,
			});
		}
		if (!isFileRef(task.output)) return serveJson(task.output, c.req.raw);
		const response = await serveFile(c.env.FILES, task.output.$file, c.req.raw);
		if (!response) throw new ApiError(410, "output_gone", `The output file of task ${id} no longer exists`);
		return response;
	},
);
