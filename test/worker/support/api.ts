/**
 * The worker's HTTP API as the tests call it. Every call reads the whole body and times it.
 *
 * Two ways to reach the worker:
 * - `exports.default.fetch` (the default): the worker as deployed in the test runtime, with the
 *   test bindings (AUTH_MODE "open", fault processors on, QUEUED_RECOVERY_S "2");
 * - `worker.fetch(request, { ...env, ...overrides }, ctx)` when a test needs other vars (API keys,
 *   limits). Only the worker's own code sees the overrides: Durable Objects keep the test bindings.
 */
import { env, exports } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import worker from "../../../src/index";
import type { ErrorBody } from "../../../src/api/errors";
import type { Task } from "../../../src/task/model";
import { jsonOrText } from "../../shared/body";
import { eventually } from "../../shared/waits";

/** Any origin works: requests go straight to the worker's fetch handler, never to the network. */
export const ORIGIN = "http://edgetask.test";

/** A task as the API returns it. */
export type TaskView = Task & { urls: { get: string; ws: string; events: string; cancel: string } };

/** Vars (strings) or bindings (e.g. a tighter rate limiter) to run one request with; object-valued vars (CONCURRENCY …) are not in the generated Env, so they are named here. */
export type EnvOverrides = { [K in keyof Env]?: Env[K] | string | undefined } & { CONCURRENCY?: string | undefined };

export interface Answer<T = any> {
	res: Response;
	/** Parsed JSON, or the text when it is not JSON. */
	body: T;
	text: string;
	/** Milliseconds from sending the request to having read its whole body. */
	elapsed: number;
}

/** Sends `request` to the worker: through its service binding, or with `overrides` applied to env. */
export async function send(request: Request, overrides?: EnvOverrides): Promise<Response> {
	if (!overrides) return exports.default.fetch(request);
	return await worker.fetch(request, { ...env, ...overrides } as Env, createExecutionContext());
}

/** Calls `path` and reads the whole body. */
export async function call<T = any>(path: string, init: RequestInit = {}, overrides?: EnvOverrides): Promise<Answer<T>> {
	const t0 = Date.now();
	const res = await send(new Request(`${ORIGIN}${path}`, init), overrides);
	const text = await res.text();
	const elapsed = Date.now() - t0;
	return { res, body: jsonOrText(text) as T, text, elapsed };
}

/** POST /v1/tasks with a JSON body; `wait` becomes `Prefer: wait=N`. */
export function submitTask(
	body: unknown,
	opts: { wait?: number; headers?: Record<string, string>; env?: EnvOverrides; signal?: AbortSignal } = {},
): Promise<Answer<TaskView>> {
	const headers: Record<string, string> = { "content-type": "application/json", ...opts.headers };
	if (opts.wait !== undefined) headers.prefer = `wait=${opts.wait}`;
	return call<TaskView>("/v1/tasks", { method: "POST", headers, body: JSON.stringify(body), signal: opts.signal }, opts.env);
}

/** GET /v1/tasks/{id}; `wait` becomes `Prefer: wait=N`. */
export function getTask(
	id: string,
	opts: { wait?: number; headers?: Record<string, string>; env?: EnvOverrides } = {},
): Promise<Answer<TaskView>> {
	const headers: Record<string, string> = { ...opts.headers };
	if (opts.wait !== undefined) headers.prefer = `wait=${opts.wait}`;
	return call<TaskView>(`/v1/tasks/${encodeURIComponent(id)}`, { headers }, opts.env);
}

/** POST /v1/tasks/{id}/cancel. */
export function cancelTask(id: string): Promise<Answer> {
	return call(`/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: "POST" });
}

/** Long-polls the task until it is terminal (at most `waitS` seconds) and returns it; fails unless it answered 200. */
export async function settled(id: string, waitS = 15): Promise<TaskView> {
	const { res, body } = await getTask(id, { wait: waitS });
	if (res.status !== 200) throw new Error(`GET /v1/tasks/${id} answered ${res.status}: ${JSON.stringify(body)}`);
	return body;
}

/** Polls GET /v1/tasks/{id} until `match` holds for the task (at most `timeoutMs`); returns that task. */
export function pollTask(id: string, match: (task: TaskView) => boolean, what: string, timeoutMs = 10_000): Promise<TaskView> {
	return eventually(
		async () => {
			const { res, body } = await getTask(id);
			return res.status === 200 && match(body) ? body : undefined;
		},
		what,
		timeoutMs,
	);
}

/** `?token=…` of a task URL from a submit response (ws: URLs too). */
export function tokenOf(url: string): string {
	const token = new URL(url.replace(/^ws/, "http")).searchParams.get("token");
	if (!token) throw new Error(`no token in ${url}`);
	return token;
}

/** Asserts nothing but the JSON error envelope's shape; returns the error for the test's own expectations. */
export function errorOf(body: unknown): ErrorBody["error"] {
	const error = (body as Partial<ErrorBody> | null)?.error;
	if (!error || typeof error.code !== "string" || typeof error.message !== "string") {
		throw new Error(`not an error envelope: ${JSON.stringify(body)?.slice(0, 500)}`);
	}
	return error;
}

/**
 * Runs one tiny task end to end. The first task of a run pays for loading the worker, the queue
 * and the objects (over a second locally); timing tests call this first so they measure tasks.
 */
export async function warmUp(): Promise<void> {
	const { body } = await submitTask({ type: "echo", input: "warm-up" }, { wait: 8 });
	if (body.status !== "succeeded") throw new Error(`warm-up task ended ${body.status}`);
}
