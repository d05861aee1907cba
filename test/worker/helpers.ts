import { env, exports } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import type { ErrorBody } from "../../src/errors";
import type { Task, TaskRecord } from "../../src/task";

/** Any origin works: requests go straight to the worker's fetch handler, never to the network. */
export const ORIGIN = "http://edgetask.test";

/** A task as the API returns it. */
export type TaskView = Task & { urls: { get: string } };

export interface Timed<T> {
	res: Response;
	body: T;
	/** Milliseconds from sending the request to having read its whole body. */
	elapsed: number;
}

export function newId(): string {
	return crypto.randomUUID();
}

export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls the worker's own fetch handler and times the round trip. */
export async function call<T = unknown>(path: string, init: RequestInit = {}): Promise<Timed<T>> {
	const t0 = Date.now();
	const res = await exports.default.fetch(new Request(`${ORIGIN}${path}`, init));
	const text = await res.text();
	const elapsed = Date.now() - t0;
	let body: unknown = text;
	try {
		body = JSON.parse(text);
	} catch {
		// Left as text: the test asserting on it will say what it got.
	}
	return { res, body: body as T, elapsed };
}

/** POST /v1/tasks with a JSON body; `wait` becomes `Prefer: wait=N`. */
export function submitTask(body: unknown, opts: { wait?: number; headers?: Record<string, string> } = {}): Promise<Timed<TaskView>> {
	const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
	if (opts.wait !== undefined) headers.prefer = `wait=${opts.wait}`;
	return call<TaskView>("/v1/tasks", { method: "POST", headers, body: JSON.stringify(body) });
}

/** GET /v1/tasks/{id}; `wait` becomes `Prefer: wait=N`. */
export function getTask(id: string, opts: { wait?: number } = {}): Promise<Timed<TaskView>> {
	const headers: Record<string, string> = {};
	if (opts.wait !== undefined) headers.prefer = `wait=${opts.wait}`;
	return call<TaskView>(`/v1/tasks/${encodeURIComponent(id)}`, { headers });
}

/** Long-polls the task until it is terminal (at most `waitS` seconds) and returns it. */
export async function settled(id: string, waitS = 15): Promise<TaskView> {
	const { res, body } = await getTask(id, { wait: waitS });
	if (res.status !== 200) throw new Error(`GET /v1/tasks/${id} answered ${res.status}: ${JSON.stringify(body)}`);
	return body;
}

/** Asserts nothing but the shape; returns the error for the test's own expectations. */
export function errorOf(body: unknown): ErrorBody["error"] {
	const error = (body as Partial<ErrorBody> | null)?.error;
	if (!error || typeof error.code !== "string" || typeof error.message !== "string") {
		throw new Error(`not an error envelope: ${JSON.stringify(body)}`);
	}
	return error;
}

/** Polls `probe` every `intervalMs` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await probe();
		if (value !== undefined) return value;
		if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
		await sleep(intervalMs);
	}
}

export function taskStub(id: string) {
	return env.TASKS.getByName(id);
}

/** What the task's object has stored: its record (null if none) and whether an alarm is set. */
export function storedState(id: string): Promise<{ record: TaskRecord | null; alarm: number | null; tables: string[] }> {
	return runInDurableObject(taskStub(id), async (_instance, state) => {
		const tables = state.storage.sql
			.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'")
			.toArray()
			.map((row) => row.name);
		const rows = tables.includes("task")
			? state.storage.sql.exec<{ record: string }>("SELECT record FROM task").toArray()
			: [];
		const record = rows[0] ? (JSON.parse(rows[0].record) as TaskRecord) : null;
		return { record, alarm: await state.storage.getAlarm(), tables };
	});
}

/**
 * Runs one tiny task end to end. The first task of a run pays for loading the worker, the queue
 * and the objects (over a second locally); timing tests call this first so they measure tasks.
 */
export async function warmUp(): Promise<void> {
	const { body } = await submitTask({ type: "echo", input: "warm-up" }, { wait: 8 });
	if (body.status !== "succeeded") throw new Error(`warm-up task ended ${body.status}`);
}
