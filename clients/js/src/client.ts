import { TaskTimeoutError, taskEndError } from "./errors";
import { followEvents, type EventSource } from "./follow";
import { abortReason, Http, type HttpOptions, type TaskLocation, type TaskRef } from "./http";
import { pollUntilEnd } from "./poll";
import { constructorConnector, platformConnector, type ConnectSocket, type WebSocketConstructor } from "./socket";
import {
	isTerminalStatus,
	type Health,
	type StoredFile,
	type InputOf,
	type ListQuery,
	type OutputOf,
	type SubmitFields,
	type Task,
	type TaskEvent,
	type TaskPage,
	type TaskProgress,
	type TaskTypeInfo,
	type TaskTypeMap,
	type TypeName,
} from "./types";

/**
 * How `run` and `wait` follow a task. `auto` (the default): a WebSocket where the platform has
 * one, else long-polling with `Prefer: wait`. `sse`: Server-Sent Events over fetch. `events()`
 * always streams: a WebSocket where there is one, else SSE.
 */
export type Transport = "auto" | "websocket" | "sse" | "poll";

export interface ClientOptions extends HttpOptions {
	/** The API's base URL, e.g. `http://127.0.0.1:8787` or `https://tasks.example.com`. */
	baseUrl: string;
	/** Sent as `Authorization: Bearer <key>`. Not needed with an open server or a task's capability URLs. */
	apiKey?: string;
	/** Replaces the platform's fetch (e.g. a service binding's `fetch` in a Worker). */
	fetch?: typeof fetch;
	/** How often a 429 (or 503 with Retry-After) is retried after the wait the server asks for. Default 3; 0 throws `RateLimitedError` at once. */
	maxRetries?: number;
	/** Longest Retry-After, in seconds, the client waits out by itself. Default 60. */
	maxRetryAfterS?: number;
	transport?: Transport;
	/** A WebSocket constructor to use instead of the platform's (e.g. the `ws` package on Node 20); null never opens one. */
	WebSocket?: WebSocketConstructor | null;
}

export interface WaitOptions {
	/** Called whenever the task's progress changes (and with 100 when it succeeds). */
	onProgress?: (progress: TaskProgress, task: Task) => void;
	/** Called for every event, in order, each once (long-polling sees states, not events: snapshots with seq 0). */
	onEvent?: (event: TaskEvent) => void;
	/** Stops waiting; for `run`, also cancels the task. */
	signal?: AbortSignal;
	/** Stop waiting after this long with `TaskTimeoutError`; the task goes on. */
	timeoutMs?: number;
}

export interface SubmitOptions extends SubmitFields {
	/** `Prefer: wait=N`: answer once the task ends, or after N s (0–60) with the task as it stands. */
	wait?: number;
	signal?: AbortSignal;
}

export type RunOptions = WaitOptions & SubmitFields;

/** A task of a known type: its input and output typed. */
export type TypedTask<M extends TaskTypeMap, T extends string> = Task<OutputOf<M, T>, InputOf<M, T>>;

export interface Client<M extends TaskTypeMap = TaskTypeMap> {
	readonly baseUrl: string;
	/** Submits a task and returns it as stored (`202`), or finished when `wait` is given and it ends in time. */
	submit<T extends TypeName<M>>(type: T, input: InputOf<M, T>, options?: SubmitOptions): Promise<TypedTask<M, T>>;
	/**
	 * Submits a task, follows it to the end and returns its output. Throws `TaskFailedError`
	 * (`TaskCanceledError` when canceled) with the final task, `TaskTimeoutError` after
	 * `timeoutMs`; an aborted `signal` cancels the task and rejects with the signal's reason.
	 */
	run<T extends TypeName<M>>(type: T, input: InputOf<M, T>, options?: RunOptions): Promise<OutputOf<M, T>>;
	/** Reads a task; `wait` long-polls up to that many seconds for it to end. */
	get(ref: TaskRef, options?: { wait?: number; signal?: AbortSignal }): Promise<Task>;
	/** Follows a task to its end and returns it, whatever its final status; `TaskTimeoutError` after `timeoutMs`. */
	wait(ref: TaskRef, options?: WaitOptions): Promise<Task>;
	/** Cancels a task; `HttpError` 409 if it had already ended otherwise (its final state in `details.task`). */
	cancel(ref: TaskRef, options?: { signal?: AbortSignal }): Promise<Task>;
	/** Every event of a task, in order, each once, across reconnections, up to the terminal one. */
	events(ref: TaskRef, options?: { after?: number; signal?: AbortSignal }): AsyncIterable<TaskEvent>;
	health(options?: { signal?: AbortSignal }): Promise<Health>;
	/**
	 * One page of recent tasks, newest first (`GET /v1/tasks`), filtered by status and type. A
	 * row's status trails its task by up to about a second; follow a task for its live state.
	 */
	list(query?: ListQuery & { signal?: AbortSignal }): Promise<TaskPage>;
	/** The task types the server offers, with their input's JSON Schema (`GET /v1/types`). */
	types(options?: { signal?: AbortSignal }): Promise<TaskTypeInfo[]>;
	/** Files (R2): upload one to use in a task's input as `{ $file: id }`; download one. */
	files: {
		upload(data: Blob | ArrayBuffer | Uint8Array | string, options?: { contentType?: string; signal?: AbortSignal }): Promise<StoredFile>;
		/** The file's bytes as the server streams them (`res.body`, `res.arrayBuffer()`, …). */
		get(id: string, options?: { signal?: AbortSignal; headers?: Record<string, string> }): Promise<Response>;
	};
	/**
	 * A task's output as bytes: the file itself when the output is one file, else its JSON.
	 * `wait` waits up to that many seconds for the task to end first; 409 if it has not succeeded.
	 */
	output(ref: TaskRef, options?: { wait?: number; signal?: AbortSignal }): Promise<Response>;
}

/** A fresh task id, so a submission can be retried (and canceled) even when its answer was lost. */
function newTaskId(): string {
	if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
	// Pages over plain http (not a secure context) have getRandomValues but no randomUUID.
	const b = crypto.getRandomValues(new Uint8Array(16));
	b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
	b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
	const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
	return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A signal that aborts with the caller's signal, or with `onTimeout()` after `timeoutMs`.
 * `dispose` clears the timer and the listener.
 */
function scope(signal: AbortSignal | undefined, timeoutMs: number | undefined, onTimeout: () => unknown) {
	const controller = new AbortController();
	const forward = () => controller.abort(abortReason(signal));
	if (signal?.aborted) forward();
	else signal?.addEventListener("abort", forward, { once: true });
	const timer = timeoutMs === undefined ? undefined : setTimeout(() => controller.abort(onTimeout()), timeoutMs);
	return {
		signal: controller.signal,
		dispose() {
			if (timer !== undefined) clearTimeout(timer);
			signal?.removeEventListener("abort", forward);
		},
	};
}

function sameProgress(a: TaskProgress | null | undefined, b: TaskProgress | null | undefined): boolean {
	return a?.percent === b?.percent && a?.message === b?.message;
}

/**
 * Creates a client of an edgetask server. Works in Node ≥ 20, browsers and Workers, with no
 * dependencies. Type parameter `M` gives task types their input and output types (the
 * `edgetask/client` export fills it with the server's own processors).
 *
 * @example
 * const client = createClient({ baseUrl: "http://127.0.0.1:8787" });
 * const out = await client.run("sleep", { ms: 1500 }, { onProgress: (p) => console.log(p.percent) });
 */
export function createClient<M extends TaskTypeMap = TaskTypeMap>(options: ClientOptions): Client<M> {
	const http = new Http(options);
	const transport = options.transport ?? "auto";
	const connect: ConnectSocket | null =
		options.WebSocket === null
			? null
			: options.WebSocket
				? constructorConnector(options.WebSocket)
				: platformConnector(http.fetch, () => http.headers());
	const useSocket = transport === "websocket" || (transport === "auto" && connect !== null);
	if (transport === "websocket" && !connect)
		throw new Error("transport 'websocket': this platform has no WebSocket; pass one as options.WebSocket");

	async function getTask(at: TaskLocation, wait: number | undefined, signal: AbortSignal | undefined): Promise<Task> {
		const headers: Record<string, string> = wait === undefined ? {} : { prefer: `wait=${wait}` };
		return (await http.request<Task>(http.taskUrl(at, ""), { headers, signal })).body;
	}

	/**
	 * A socket opened by a WebSocket constructor cannot send the API key; the task's own URLs
	 * carry a capability token when the server has keys, so read the task once to learn it.
	 */
	async function withToken(at: TaskLocation, signal: AbortSignal, overSocket: boolean): Promise<TaskLocation> {
		if (at.token || !options.apiKey || !overSocket) return at;
		return { ...http.locate(await getTask(at, undefined, signal)), base: at.base };
	}

	const source = (streamOverSocket: boolean): EventSource => ({
		http,
		connect: streamOverSocket ? connect : null,
		getTask: (at, signal) => getTask(at, undefined, signal),
	});

	/** Follows the task to its end within an already-scoped signal, feeding the callbacks. */
	async function follow(
		at: TaskLocation,
		known: Task | null,
		opts: WaitOptions,
		signal: AbortSignal,
		seen: { task: Task | null },
	): Promise<Task> {
		let reported: TaskProgress | null | undefined = undefined;
		const observe = (task: Task) => {
			seen.task = task;
			if (task.progress && !sameProgress(task.progress, reported)) {
				reported = task.progress;
				opts.onProgress?.(task.progress, task);
			}
		};
		if (known) seen.task = known;
		if (!useSocket && transport !== "sse") {
			let last: Task | null = null;
			const onTask = (task: Task) => {
				const changed =
					!last || last.status !== task.status || last.attempts !== task.attempts || !sameProgress(last.progress, task.progress);
				last = task;
				if (changed) opts.onEvent?.({ task_id: task.id, seq: 0, type: "snapshot", at: new Date().toISOString(), data: task });
				observe(task);
			};
			// The state the caller already has (e.g. from submit) is the first one seen.
			if (known) onTask(known);
			if (known && isTerminalStatus(known.status)) return known;
			return pollUntilEnd(http, at, signal, Boolean(opts.onProgress ?? opts.onEvent), onTask);
		}
		const located = await withToken(at, signal, useSocket);
		let state: Task | null = known;
		let sawSnapshot = false;
		for await (const event of followEvents(source(useSocket), located, null, signal)) {
			if (event.type === "snapshot") {
				sawSnapshot = true;
				state = { ...state, ...(event.data as Task), urls: state?.urls ?? (event.data as Task).urls };
			} else if (state) {
				state = { ...state, ...event.data };
			}
			opts.onEvent?.(event);
			if (state) observe(state);
		}
		if (state && sawSnapshot && isTerminalStatus(state.status)) return state;
		// Only reached if the stream ended without the client seeing the whole task.
		return getTask(located, undefined, signal);
	}

	async function waitScoped(ref: TaskRef, opts: WaitOptions, known: Task | null): Promise<Task> {
		const at = http.locate(ref);
		const seen: { task: Task | null } = { task: known };
		const s = scope(opts.signal, opts.timeoutMs, () => new TaskTimeoutError(at.id, opts.timeoutMs ?? 0, seen.task));
		try {
			return await follow(at, known, opts, s.signal, seen);
		} catch (e) {
			throw s.signal.aborted ? abortReason(s.signal) : e;
		} finally {
			s.dispose();
		}
	}

	async function cancelQuietly(at: TaskLocation): Promise<void> {
		try {
			await http.request(http.taskUrl(at, "/cancel"), { method: "POST", signal: AbortSignal.timeout(10_000) });
		} catch {
			/* already ended, never created, or unreachable: nothing more to do */
		}
	}

	const client: Client<M> = {
		baseUrl: http.base,

		async submit(type, input, opts = {}) {
			const { wait, signal, ...fields } = opts;
			const headers: Record<string, string> = wait === undefined ? {} : { prefer: `wait=${wait}` };
			const body = { type, input, ...fields, id: fields.id ?? newTaskId() };
			const res = await http.request<TypedTask<M, typeof type>>(http.url("/v1/tasks"), { method: "POST", json: body, headers, signal });
			return res.body;
		},

		async run(type, input, opts = {}) {
			const { onProgress, onEvent, signal, timeoutMs, ...fields } = opts;
			const id = fields.id ?? newTaskId();
			const at = http.locate(id);
			const seen: { task: Task | null } = { task: null };
			const s = scope(signal, timeoutMs, () => new TaskTimeoutError(id, timeoutMs ?? 0, seen.task));
			let final: Task;
			try {
				const task = await client.submit(type, input, { ...fields, id, signal: s.signal });
				final = await follow(http.locate(task), task, { onProgress, onEvent }, s.signal, seen);
			} catch (e) {
				// The caller gave up on this run: the task is theirs to stop. (A timeout only stops waiting.)
				if (signal?.aborted) await cancelQuietly(at);
				throw s.signal.aborted ? abortReason(s.signal) : e;
			} finally {
				s.dispose();
			}
			if (final.status === "succeeded") return final.output as OutputOf<M, typeof type>;
			throw taskEndError(final);
		},

		get: (ref, opts = {}) => getTask(http.locate(ref), opts.wait, opts.signal),

		wait: (ref, opts = {}) => waitScoped(ref, opts, typeof ref === "object" && "status" in ref ? (ref as Task) : null),

		async cancel(ref, opts = {}) {
			return (await http.request<Task>(http.taskUrl(http.locate(ref), "/cancel"), { method: "POST", signal: opts.signal })).body;
		},

		events(ref, opts = {}) {
			const signal = opts.signal ?? new AbortController().signal;
			return {
				async *[Symbol.asyncIterator]() {
					const at = await withToken(http.locate(ref), signal, connect !== null);
					yield* followEvents(source(connect !== null), at, opts.after ?? null, signal);
				},
			};
		},

		async health(opts = {}) {
			return (await http.request<Health>(http.url("/health"), { signal: opts.signal })).body;
		},

		async list(query = {}) {
			const params = new URLSearchParams();
			const statuses = typeof query.status === "string" ? [query.status] : query.status;
			if (statuses?.length) params.set("status", statuses.join(","));
			if (query.type !== undefined) params.set("type", query.type);
			if (query.limit !== undefined) params.set("limit", String(query.limit));
			if (query.cursor !== undefined) params.set("cursor", query.cursor);
			const search = params.toString();
			return (await http.request<TaskPage>(http.url(search ? `/v1/tasks?${search}` : "/v1/tasks"), { signal: query.signal })).body;
		},

		async types(opts = {}) {
			return (await http.request<{ types: TaskTypeInfo[] }>(http.url("/v1/types"), { signal: opts.signal })).body.types;
		},

		files: {
			async upload(data, opts = {}) {
				const headers = {
					"content-type": opts.contentType ?? (data instanceof Blob && data.type ? data.type : "application/octet-stream"),
				};
				// A copy of a byte view is backed by a plain ArrayBuffer, which every fetch accepts.
				const body = data instanceof Uint8Array ? data.slice() : data;
				const res = await http.raw(http.url("/v1/files"), { method: "POST", body, headers, signal: opts.signal });
				return JSON.parse(await res.text()) as StoredFile;
			},
			get: (id, opts = {}) => http.raw(http.url(`/v1/files/${encodeURIComponent(id)}`), { signal: opts.signal, headers: opts.headers }),
		},

		output(ref, opts = {}) {
			const headers: Record<string, string> = opts.wait === undefined ? {} : { prefer: `wait=${opts.wait}` };
			return http.raw(http.taskUrl(http.locate(ref), "/output"), { headers, signal: opts.signal });
		},
	};
	return client;
}
