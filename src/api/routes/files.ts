import type { Context } from "hono";
import { settings } from "../../config";
import { FILE_ID, isFileRef } from "../../files/model";
import { serveFile, serveJson } from "../../files/serve";
import { FileTooLargeError, TruncatedBodyError } from "../../files/store";
import { storeUpload } from "../../files/uploads";
import { isTerminal } from "../../task/model";
import { admitSubmission, clientKey, withWaitingSlot } from "../admission";
import { routes, type App } from "../app";
import { ApiError } from "../errors";
import { preferredWait, taskIdParam, tooLarge } from "../request";
import { waitForTask } from "../tasks";

/** Files in and out: uploads, file downloads, and a task's output as bytes. */
export const fileRoutes = routes();

function fileIdParam(c: Context<App>): string {
	const id = c.req.param("id") ?? "";
	if (!FILE_ID.test(id)) throw new ApiError(400, "invalid_file_id", 'File ids are "file_" and 32 hex digits');
	return id;
}

/**
 * Upload a file: the raw body (any content type) up to MAX_UPLOAD_BYTES, streamed to R2.
 * 201 `{id, bytes, content_type, sha256}`; deleted after UPLOAD_TTL_S unless a task uses it.
 */
fileRoutes.post("/v1/files", async (c) => {
	admitSubmission(c.env, clientKey(c.req.raw));
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
});

/** A stored file (an upload or a task's output file), streamed, with ETag and Range. */
fileRoutes.get("/v1/files/:id", async (c) => {
	const id = fileIdParam(c);
	const response = await serveFile(c.env.FILES, id, c.req.raw);
	if (!response) throw new ApiError(404, "file_not_found", `No file with id ${id} (unknown, expired or deleted)`);
	return response;
});

/**
 * A task's output as bytes: the file itself when the output is one file (`{"$file": …}`, as
 * `image.resize` returns and as JSON over 64 KiB is kept), else the JSON. `Prefer: wait=N` waits
 * for the task to end first. A task token opens it, like the task's other URLs.
 */
fileRoutes.get("/v1/tasks/:id/output", async (c) => {
	const id = taskIdParam(c);
	const wait = preferredWait(c);
	const task = wait ? await withWaitingSlot(c.env, wait, () => waitForTask(c.env, id, wait)) : await waitForTask(c.env, id, 0);
	if (wait !== null) c.header("Preference-Applied", `wait=${wait}`);
	if (!isTerminal(task.status)) {
		throw new ApiError(409, "output_not_ready", `Task ${id} is ${task.status}; its output exists once it succeeds (Prefer: wait=N waits)`, {
			status: task.status,
		});
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
});
