import { admitSubmission, withWaitingSlot } from "./admission";
import { ConfigError, settings } from "../config";
import { ApiError } from "./errors";
import { readJsonBody } from "./request";
import { TASK_ID } from "./schemas";
import type { Task } from "../task/model";
import { submit, toSpec } from "./tasks";
import type { Context } from "hono";

/** How long `POST /process` waits, as the seed template did. */
export const PROCESS_WAIT_S = 60;

/** The seed template's response envelope, kept so its clients can switch over unchanged. */
export interface SeedEnvelope {
	success: boolean;
	code: 0 | 1;
	msg: string;
	data: { uuid: string; result: unknown };
}

function envelope(uuid: string, success: boolean, msg: string, result: unknown = ""): SeedEnvelope {
	return { success, code: success ? 0 : 1, msg, data: { uuid, result } };
}

/** The envelope for a task as it stands after the wait. */
export function taskEnvelope(task: Task): SeedEnvelope {
	switch (task.status) {
		case "succeeded":
			return envelope(task.id, true, "ok", task.output);
		case "queued":
		case "running":
			return envelope(
				task.id,
				false,
				`Request timeout (${PROCESS_WAIT_S}s); the task is still ${task.status}: GET /v1/tasks/${task.id} has it`,
			);
		default:
			return envelope(task.id, false, task.error?.message ?? task.status);
	}
}

/**
 * `POST /process`, the seed's endpoint: the JSON body is the input of the task type named by
 * `PROCESS_TASK_TYPE` (or, with `PROCESS_ORIGIN` set, the body of an `http` task to that origin's
 * `/process`), `uuid` comes from the body or is generated, and the answer comes in the seed's
 * envelope and statuses. Unlike the seed, a timeout loses nothing: the task goes on.
 */
export async function handleProcess(c: Context<{ Bindings: Env }>) {
	let uuid = "";
	try {
		await admitSubmission(c.env, c.req.raw);
		const body = await readJsonBody(c, settings(c.env).maxBodyBytes);
		if (typeof body !== "object" || body === null || Array.isArray(body)) {
			throw new ApiError(400, "invalid_request", "Body must be a JSON object");
		}
		const given = (body as Record<string, unknown>).uuid;
		uuid = typeof given === "string" || typeof given === "number" ? String(given) : "";
		if (!uuid) uuid = crypto.randomUUID();
		if (!TASK_ID.test(uuid)) throw new ApiError(400, "invalid_id", "uuid must be 1-128 characters of A-Z a-z 0-9 . _ : -");
		const input = { ...body, uuid };
		const { processOrigin, processTaskType } = settings(c.env);
		// In front of a seed-template server: the same body goes to its own POST /process.
		const submission = processOrigin
			? { type: "http", input: { origin: processOrigin, path: "/process", body: input } }
			: { type: processTaskType, input };
		const spec = await toSpec(c.env, { ...submission, id: uuid });
		const { task } = await withWaitingSlot(c.env, PROCESS_WAIT_S, () => submit(c.env, spec, PROCESS_WAIT_S));
		return c.json(taskEnvelope(task), 200);
	} catch (e) {
		if (e instanceof ApiError) {
			// A misconfigured PROCESS_TASK_TYPE or PROCESS_ORIGIN is the server's fault, not the client's.
			const status = e.status === 422 || e.code === "unknown_origin" ? 500 : e.status;
			const details = e.details === undefined ? "" : `: ${JSON.stringify(e.details)}`;
			for (const [name, value] of Object.entries(e.headers)) c.header(name, value);
			return c.json(envelope(uuid, false, `${e.message}${details}`), status);
		}
		if (e instanceof ConfigError) return c.json(envelope(uuid, false, e.message), 500);
		console.error(`POST /process ${uuid}: ${String(e)}`);
		return c.json(envelope(uuid, false, "System error"), 500);
	}
}
