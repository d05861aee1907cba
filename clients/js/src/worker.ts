import { HttpError, RateLimitedError } from "./errors";
import { delay, Http, type HttpOptions } from "./http";

/** Thrown by a handler for a failure no retry can fix: the task fails at once. */
export class PermanentError extends Error {
	constructor(
		message: string,
		readonly code = "processor_error",
	) {
		super(message);
		this.name = "PermanentError";
	}
}

/** What a handler gets besides its input. */
export interface WorkContext {
	taskId: string;
	type: string;
	/** 1 on the first run, 2 on the first retry, … */
	attempt: number;
	priority: string;
	workerId: string;
	/** Aborted when the server says stop: the task was canceled, or this lease is gone. Nothing returned afterwards counts. */
	signal: AbortSignal;
	/** Reports progress (0–100); it reaches subscribers with the next heartbeat, which it brings forward. */
	progress(percent: number, message?: string): void;
}

export type TaskHandler = (input: unknown, ctx: WorkContext) => unknown;

export interface WorkerOptions extends HttpOptions {
	/** Tasks run at once (default 1). */
	concurrency?: number;
	/** Name in the server's logs (default a random one). */
	workerId?: string;
	/** Seconds a lease request waits for work, 0–25 (default 20); also bounds a drain. */
	waitS?: number;
	/** Where the worker's log lines go (default console). */
	log?: (level: "info" | "warn" | "error", message: string) => void;
}

export interface Lease {
	task: { id: string; type: string; input: unknown; attempt: number; priority: string };
	lease: { token: string; expires_at: string; heartbeat_s: number };
}

/** Outcomes so far: reported succeeded / failed, and results the server refused or that were dropped on cancel. */
export interface WorkerStats {
	succeeded: number;
	failed: number;
	dropped: number;
}

const MIN_PROGRESS_GAP_MS = 250;
const MAX_ERROR_MESSAGE = 1000;
/** A lease request is given up this long after its `wait_s` (a connection that went silent). */
const LEASE_SLACK_MS = 15_000;
/** Longest a `complete` or `fail` call may take before it is tried again. */
const REPORT_TIMEOUT_MS = 20_000;

export interface PullWorker {
	/** Registers the handler of a task type. */
	task(type: string, handler: TaskHandler): PullWorker;
	/** Leases and runs tasks until `stop()`; rejects when the server refuses this worker (a bad key, an unknown type). */
	run(): Promise<void>;
	/**
	 * Stops leasing: running tasks finish and report, and lease requests the server holds run out
	 * (within `waitS`; what they bring is run), since a request dropped by the worker could still
	 * be granted and its task would wait out a lease. Resolves when `run()` has returned.
	 */
	stop(): Promise<void>;
	readonly stats: WorkerStats;
}

/** Network trouble and overload pass; anything else is this worker's own mistake. */
function retryable(e: unknown): boolean {
	if (e instanceof HttpError) return e.status === 408 || e.status === 429 || e.status >= 500;
	return true;
}

function backoffMs(failures: number, capMs = 30_000): number {
	const ceiling = Math.min(capMs, 500 * 2 ** failures);
	return ceiling / 2 + Math.random() * (ceiling / 2);
}

function messageOf(e: unknown): string {
	const text = e instanceof Error ? (e instanceof PermanentError ? e.message : `${e.name}: ${e.message}`) : String(e);
	return text.slice(0, MAX_ERROR_MESSAGE);
}

/**
 * A pull worker in TypeScript: the same loop as the Python package (clients/python), for Node
 * (≥ 20) or any runtime with `fetch`. It leases tasks of the types it has handlers for over
 * `/v1/work`, runs them, heartbeats meanwhile and reports the outcome. Held lease requests are
 * let run out when it stops (see `stop`).
 *
 * Heartbeats run on the event loop: a handler that keeps the CPU busy without awaiting blocks
 * them, and its lease lapses (the task then runs again elsewhere). Run CPU-bound work in a
 * `worker_threads` Worker or a child process and await it, or raise the type's `lease_s`.
 *
 * @example
 * import { createWorker } from "edgetask/client";
 * const worker = createWorker({ baseUrl: "http://127.0.0.1:8787", concurrency: 2 });
 * worker.task("resize", async (input, ctx) => {
 *   ctx.progress(50, "half way");
 *   return { width: (input as { width: number }).width / 2 };
 * });
 * process.once("SIGTERM", () => void worker.stop());
 * await worker.run();
 */
export function createWorker(options: WorkerOptions): PullWorker {
	const http = new Http({ ...options, maxRetries: 0 });
	const concurrency = options.concurrency ?? 1;
	const waitS = options.waitS ?? 20;
	if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError("concurrency must be a positive integer");
	if (!(waitS >= 0 && waitS <= 25)) throw new RangeError("waitS must be between 0 and 25");
	const workerId = options.workerId ?? `ts-${crypto.randomUUID().slice(0, 8)}`;
	const log = options.log ?? ((level, message) => console[level](`edgetask worker ${workerId}: ${message}`));
	const handlers = new Map<string, TaskHandler>();
	const stats: WorkerStats = { succeeded: 0, failed: 0, dropped: 0 };
	const stopping = new AbortController();
	let running: Promise<void> | null = null;

	// Every call has a deadline: a connection that goes silent must not hold a slot (or a heartbeat) forever.
	const post = <T>(path: string, json: unknown, timeoutMs: number) =>
		http.request<T>(http.url(path), { method: "POST", json, accept: [204], signal: AbortSignal.timeout(timeoutMs) });

	async function slot(): Promise<void> {
		let failures = 0;
		while (!stopping.signal.aborted) {
			let answer;
			try {
				answer = await post<Lease | null>(
					"/v1/work/lease",
					{ types: [...handlers.keys()], worker_id: workerId, wait_s: waitS },
					waitS * 1000 + LEASE_SLACK_MS,
				);
			} catch (e) {
				if (!retryable(e)) throw e;
				// An overloaded server says when to come back; anything else backs off, jittered.
				const ms = e instanceof RateLimitedError ? e.retryAfter * 1000 : backoffMs(failures++);
				log("warn", `lease failed (${messageOf(e)}); retried after ${(ms / 1000).toFixed(1)} s`);
				await delay(ms, stopping.signal).catch(() => undefined);
				continue;
			}
			failures = 0;
			if (answer.status === 200 && answer.body) await runLease(answer.body);
		}
	}

	async function runLease({ task, lease }: Lease): Promise<void> {
		const stop = new AbortController();
		const base = `/v1/work/${encodeURIComponent(task.id)}`;
		let pending: { percent: number; message?: string } | null = null;
		let reporting = false;
		let lastSent = Date.now();
		let timer: ReturnType<typeof setTimeout> | null = null;
		let beating: Promise<void> = Promise.resolve();
		const intervalMs = Math.max(100, lease.heartbeat_s * 1000);
		// A stuck heartbeat must not outlive the lease: give up on it in time to send the next.
		const heartbeatTimeoutMs = Math.max(2000, Math.min(10_000, intervalMs));
		let failures = 0;

		const schedule = (ms: number) => {
			if (timer) clearTimeout(timer);
			if (!stop.signal.aborted) timer = setTimeout(() => void (beating = beating.then(beat)), ms);
		};
		const beat = async (): Promise<void> => {
			if (stop.signal.aborted) return;
			const progress = pending;
			pending = null;
			try {
				const answer = await post<{ expires_at: string; cancel_requested: boolean }>(
					`${base}/heartbeat`,
					{
						token: lease.token,
						...(progress ? { progress } : {}),
					},
					heartbeatTimeoutMs,
				);
				failures = 0;
				lastSent = Date.now();
				if (answer.body.cancel_requested) {
					log("info", `task ${task.id} attempt ${task.attempt}: canceled by the server`);
					stop.abort(new Error("canceled"));
					return;
				}
				schedule(pending ? MIN_PROGRESS_GAP_MS : intervalMs);
			} catch (e) {
				pending ??= progress;
				if (retryable(e)) {
					schedule(Math.min(intervalMs, backoffMs(failures++, intervalMs)));
					log("warn", `task ${task.id}: heartbeat failed (${messageOf(e)})`);
				} else if (!reporting) {
					log(
						"warn",
						`task ${task.id} attempt ${task.attempt}: lease lost (${e instanceof HttpError ? e.code : messageOf(e)}); whatever it returns is refused`,
					);
					stop.abort(new Error("lease lost"));
				}
			}
		};
		const ctx: WorkContext = {
			taskId: task.id,
			type: task.type,
			attempt: task.attempt,
			priority: task.priority,
			workerId,
			signal: stop.signal,
			progress(percent, message) {
				if (!Number.isFinite(percent)) throw new RangeError("percent must be a finite number");
				pending = {
					percent: Math.min(100, Math.max(0, percent)),
					...(message === undefined ? {} : { message: String(message).slice(0, 256) }),
				};
				schedule(Math.max(0, MIN_PROGRESS_GAP_MS - (Date.now() - lastSent)));
			},
		};
		schedule(intervalMs);

		const started = Date.now();
		let outcome: { output: unknown } | { error: { code: string; message: string }; retryable: boolean };
		try {
			const handler = handlers.get(task.type);
			if (!handler) throw new Error(`this worker has no handler for ${task.type}`);
			const output = await handler(task.input, ctx);
			outcome = { output: output === undefined ? null : output };
		} catch (e) {
			outcome =
				e instanceof PermanentError
					? { error: { code: e.code, message: messageOf(e) }, retryable: false }
					: { error: { code: "processor_error", message: messageOf(e) }, retryable: true };
		}
		reporting = true;
		// Progress the handler left goes out before the end of the task overtakes it.
		if (pending && !stop.signal.aborted) await (beating = beating.then(beat));
		const seconds = ((Date.now() - started) / 1000).toFixed(2);
		try {
			if (stop.signal.aborted) {
				stats.dropped++;
				log("info", `task ${task.id} attempt ${task.attempt}: stopped after ${seconds} s; its result is dropped`);
				return;
			}
			for (let failures = 0; ; failures++) {
				try {
					if ("output" in outcome) await post(`${base}/complete`, { token: lease.token, output: outcome.output }, REPORT_TIMEOUT_MS);
					else await post(`${base}/fail`, { token: lease.token, error: outcome.error, retryable: outcome.retryable }, REPORT_TIMEOUT_MS);
					if ("output" in outcome) stats.succeeded++;
					else stats.failed++;
					log(
						"info",
						`task ${task.id} attempt ${task.attempt}: ${"output" in outcome ? "succeeded" : `failed (${outcome.error.code})`} in ${seconds} s`,
					);
					return;
				} catch (e) {
					if (e instanceof HttpError && e.status === 409) {
						stats.dropped++;
						log("warn", `task ${task.id} attempt ${task.attempt}: result refused (${e.code}): the lease had lapsed`);
						return;
					}
					if (e instanceof HttpError && !retryable(e) && "output" in outcome) {
						outcome = {
							error: {
								code: e.status === 413 ? "output_too_large" : "output_rejected",
								message: `the server refused the output: ${e.message}`,
							},
							retryable: false,
						};
						continue;
					}
					if (!retryable(e) || stop.signal.aborted || failures >= 60) {
						log("error", `task ${task.id} attempt ${task.attempt}: could not report: ${messageOf(e)}`);
						return;
					}
					await delay(backoffMs(failures, 10_000));
				}
			}
		} finally {
			stop.abort(new Error("done"));
			if (timer) clearTimeout(timer);
		}
	}

	const worker: PullWorker = {
		stats,
		task(type, handler) {
			handlers.set(type, handler);
			return worker;
		},
		run() {
			if (handlers.size === 0) return Promise.reject(new Error("register a handler with worker.task(type, handler) first"));
			running ??= (async () => {
				log("info", `leasing ${[...handlers.keys()].join(", ")} from ${http.base}, ${concurrency} at a time`);
				const slots = Array.from({ length: concurrency }, () => slot());
				try {
					await Promise.all(slots);
				} catch (e) {
					stopping.abort(e);
					await Promise.allSettled(slots);
					throw e;
				}
			})();
			return running;
		},
		async stop() {
			stopping.abort(new Error("stopped"));
			await running?.catch(() => undefined);
		},
	};
	return worker;
}
