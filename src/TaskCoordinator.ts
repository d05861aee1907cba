import { DurableObject } from "cloudflare:workers";
import { settings, type Settings } from "./config";
import { findProcessor, PermanentError, type Processor } from "./processors";
import { statsShardFor } from "./StatsShard";
import { isTerminal, toTask, type Task, type TaskError, type TaskMessage, type TaskRecord, type TaskSpec, type TaskStatus } from "./task";

/** Longest gap between re-sends of a message presumed lost. */
const MAX_RECOVERY_GAP_MS = 3_600_000;

/** Exponential backoff with full jitter between attempts: up to 1 s, 2 s, 4 s … capped at 60 s. */
function retryBackoffMs(attemptsSoFar: number): number {
	return Math.round(Math.random() * Math.min(60_000, 1000 * 2 ** (attemptsSoFar - 1)));
}

export type CreateOutcome = "created" | "existing" | "conflict";
export type DispatchOutcome = "scheduled" | "duplicate" | "running" | "finished" | "unknown";

type AttemptResult =
	| { kind: "succeeded"; output: unknown }
	| { kind: "failed"; error: TaskError; retryable: boolean }
	| { kind: "timed_out" };

/**
 * One Durable Object per task: it owns the task's state, runs the task, and holds its waiters.
 *
 * Lifecycle (one place): `create` stores the task as `queued`; the API then sends its queue
 * message; the consumer's `dispatch` marks it deliverable and sets the alarm to now; `alarm`
 * runs the processor and `finish` stores the result and releases every waiter at once.
 *
 * `dispatch` starts the attempt at once (waiting for the alarm would add ~10 ms locally) and
 * points the alarm at now; the alarm handler then adopts the in-flight attempt and stays open
 * until it ends, so the run is held by an alarm event and survives eviction and restarts: an
 * alarm that finds the task `running` with no attempt in flight in this instance knows the
 * attempt died with its instance (crash, eviction, restart) and runs it again or fails it.
 *
 * The single alarm is always set to the task's next deadline, derived from its state:
 * - queued, message not yet delivered → `recoverAt` (the message was lost: send it again);
 * - queued, delivered → `runAfter` (start it; later than now only when backing off a retry);
 * - running → now (adopt the attempt, or detect that it was lost);
 * - terminal → `expiresAt` (delete everything the task stored).
 * Nothing else keeps a timer once the task is idle, so the runtime can evict the object.
 */
export class TaskCoordinator extends DurableObject<Env> {
	private readonly sql = this.ctx.storage.sql;
	private readonly cfg: Settings;
	private record: TaskRecord | null;
	/** Resolvers of long-polling requests, released the instant the task is terminal. */
	private readonly waiters = new Set<() => void>();
	/** The attempt executing in this instance, if any (a fresh instance never has one). */
	private inFlight: Promise<void> | null = null;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.cfg = settings(env);
		this.record = this.load();
	}

	// ---- RPC: called by the API and the consumer ----

	/** Stores a new task, or reports the one already stored under this id. */
	async create(spec: TaskSpec): Promise<{ outcome: CreateOutcome; task: Task }> {
		if (this.record) {
			return { outcome: this.record.fingerprint === spec.fingerprint ? "existing" : "conflict", task: toTask(this.record) };
		}
		const now = Date.now();
		this.sql.exec("CREATE TABLE IF NOT EXISTS task (id TEXT PRIMARY KEY, record TEXT NOT NULL)");
		this.record = {
			...spec,
			status: "queued",
			output: null,
			error: null,
			progress: null,
			attempts: 0,
			createdAt: now,
			startedAt: null,
			finishedAt: null,
			runMs: null,
			dispatched: false,
			recoverAt: now + this.cfg.queuedRecoveryS * 1000,
			recoveries: 0,
			runAfter: 0,
			expiresAt: null,
			version: 0,
		};
		await this.save();
		return { outcome: "created", task: toTask(this.record) };
	}

	/**
	 * A queue message for this task arrived. Marks the task startable and returns at once: the
	 * run happens in the alarm, so the consumer's batch never waits on a task's run.
	 * Repeated deliveries are harmless: a task runs once per attempt.
	 */
	async dispatch(): Promise<DispatchOutcome> {
		const r = this.record;
		if (!r) return "unknown";
		if (isTerminal(r.status)) return "finished";
		if (r.status === "running") return "running";
		if (r.dispatched) return "duplicate";
		r.dispatched = true;
		await this.save();
		if (this.mayStart(r)) this.startAttempt(r);
		return "scheduled";
	}

	/** The task now, or once it is terminal if that happens within `waitMs`; null if unknown. */
	async waitFor(waitMs: number): Promise<Task | null> {
		if (this.record && !isTerminal(this.record.status) && waitMs > 0) {
			await new Promise<void>((resolve) => {
				const release = () => {
					clearTimeout(timer);
					this.waiters.delete(release);
					resolve();
				};
				const timer = setTimeout(release, waitMs);
				this.waiters.add(release);
			});
		}
		return this.record ? toTask(this.record) : null;
	}

	/** The dead-letter queue gave up on this task's message: fail it rather than leave it waiting. */
	async deadLettered(): Promise<void> {
		const r = this.record;
		if (!r || isTerminal(r.status) || r.status === "running") return;
		await this.finish(r.attempts, "failed", {
			error: { code: "dead_lettered", message: "The task's queue message could not be delivered" },
		});
	}

	// ---- the alarm: every deadline of the task ----

	override async alarm(): Promise<void> {
		const r = this.record;
		if (!r) return;
		const now = Date.now();
		if (isTerminal(r.status)) {
			if (r.expiresAt !== null && now >= r.expiresAt) await this.expire();
			else await this.schedule();
		} else if (this.inFlight) {
			await this.inFlight;
		} else if (r.status === "running") {
			await this.attemptLost(r);
		} else if (r.dispatched) {
			if (now >= r.runAfter && this.mayStart(r)) {
				this.startAttempt(r);
				await this.inFlight;
			} else await this.schedule();
		} else if (now >= r.recoverAt) {
			await this.resend(r);
		} else {
			await this.schedule();
		}
	}

	/**
	 * The one place that decides whether a delivered task may start now. Today every task may;
	 * per-type concurrency limits and priorities gate here.
	 */
	private mayStart(_r: TaskRecord): boolean {
		return true;
	}

	/** Starts an attempt in this instance; the alarm handler awaits it (see the class comment). */
	private startAttempt(r: TaskRecord): void {
		this.inFlight = this.run(r)
			.catch((e: unknown) => console.error(`task ${r.id}: attempt crashed: ${String(e)}`))
			.finally(() => {
				this.inFlight = null;
			});
	}

	/** Runs one attempt under the task's deadline, then stores its outcome. */
	private async run(r: TaskRecord): Promise<void> {
		const processor = findProcessor(r.type, this.env);
		if (!processor) {
			await this.finish(r.attempts, "failed", { error: { code: "unknown_type", message: `No processor for type ${r.type}` } });
			return;
		}
		const timeoutMs = r.timeoutS * 1000;
		const started = Date.now();
		r.status = "running";
		r.attempts += 1;
		r.startedAt = started;
		const attempt = r.attempts;
		await this.save();

		const result = await this.execute(processor, r, attempt, timeoutMs);
		const runMs = Date.now() - started;
		// Fence: only the attempt that is still current may write its outcome.
		if (this.record !== r || r.status !== "running" || r.attempts !== attempt) return;
		r.runMs = runMs;
		if (result.kind === "succeeded") {
			await this.finish(attempt, "succeeded", { output: result.output });
		} else if (result.kind === "timed_out") {
			await this.finish(attempt, "timed_out", {
				error: { code: "timeout", message: `Attempt ${attempt} exceeded timeout_s=${r.timeoutS}` },
			});
		} else if (result.retryable && attempt < r.maxAttempts) {
			await this.retryLater(r, result.error);
		} else {
			await this.finish(attempt, "failed", { error: result.error });
		}
	}

	/** A retryable failure with attempts left: back to queued, started again after a backoff. */
	private async retryLater(r: TaskRecord, error: TaskError): Promise<void> {
		r.status = "queued";
		r.error = error;
		r.progress = null;
		r.runAfter = Date.now() + retryBackoffMs(r.attempts);
		await this.save();
	}

	/** Calls the processor; a deadline timer wins even if the processor never settles. */
	private async execute(processor: Processor, r: TaskRecord, attempt: number, timeoutMs: number): Promise<AttemptResult> {
		const controller = new AbortController();
		let timer = 0;
		const deadline = new Promise<AttemptResult>((resolve) => {
			timer = setTimeout(() => resolve({ kind: "timed_out" }), timeoutMs);
		});
		const work = (async (): Promise<AttemptResult> => {
			const input = processor.input.parse(r.input);
			const output = await processor.run(input, {
				taskId: r.id,
				attempt,
				signal: controller.signal,
				env: this.env,
				progress: (percent, message) => this.progress(r, attempt, percent, message),
			});
			return { kind: "succeeded", output: output ?? null };
		})().catch((e: unknown): AttemptResult => {
			const permanent = e instanceof PermanentError;
			return {
				kind: "failed",
				error: { code: permanent ? e.code : "processor_error", message: e instanceof Error ? e.message : String(e) },
				retryable: !permanent,
			};
		});
		try {
			const result = await Promise.race([work, deadline]);
			if (result.kind === "timed_out") controller.abort(new Error("timed out"));
			return result;
		} finally {
			clearTimeout(timer);
		}
	}

	/** Latest progress of the running attempt; kept in memory and stored with the next save. */
	private progress(r: TaskRecord, attempt: number, percent: number, message?: string): void {
		if (this.record !== r || r.status !== "running" || r.attempts !== attempt) return;
		if (!Number.isFinite(percent)) return;
		r.progress = { percent: Math.min(100, Math.max(0, percent)), message: message?.slice(0, 256) ?? null };
	}

	/** Stores the terminal state and releases every waiter. */
	private async finish(attempt: number, status: TaskStatus, fields: { output?: unknown; error?: TaskError }): Promise<void> {
		const r = this.record;
		if (!r || isTerminal(r.status) || r.attempts !== attempt) return;
		const now = Date.now();
		r.status = status;
		r.output = fields.output ?? null;
		r.error = fields.error ?? null;
		r.finishedAt = now;
		r.expiresAt = now + r.ttlS * 1000;
		if (status === "succeeded") r.progress = { percent: 100, message: r.progress?.message ?? null };
		await this.save();
		for (const release of [...this.waiters]) release();
	}

	/** The instance running an attempt died (crash, eviction, restart): run it again or fail it. */
	private async attemptLost(r: TaskRecord): Promise<void> {
		const error = { code: "execution_lost", message: `Attempt ${r.attempts} was lost (instance restarted or evicted)` };
		if (r.attempts >= r.maxAttempts) await this.finish(r.attempts, "failed", { error });
		else await this.retryLater(r, error);
	}

	/** The task's message never arrived: send it again, backing off between re-sends. */
	private async resend(r: TaskRecord): Promise<void> {
		const message: TaskMessage = { id: r.id, reason: "recovery" };
		try {
			await this.env.TASK_QUEUE.send(message);
		} catch (e) {
			console.error(`task ${r.id}: recovery re-send failed: ${(e as Error).message}`);
		}
		r.recoveries += 1;
		const gap = Math.min(this.cfg.queuedRecoveryS * 1000 * 2 ** r.recoveries, MAX_RECOVERY_GAP_MS);
		r.recoverAt = Date.now() + gap;
		await this.save();
	}

	/** TTL reached: delete everything the task stored; the id becomes unknown (404). */
	private async expire(): Promise<void> {
		const r = this.record;
		if (!r) return;
		this.record = null;
		await this.ctx.storage.deleteAll();
		await this.ctx.storage.deleteAlarm();
		this.reportStatus(r.id, r.version + 1, null);
	}

	// ---- persistence ----

	private load(): TaskRecord | null {
		const exists = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task'").toArray().length > 0;
		if (!exists) return null;
		const row = this.sql.exec<{ record: string }>("SELECT record FROM task LIMIT 1").toArray()[0];
		return row ? (JSON.parse(row.record) as TaskRecord) : null;
	}

	/** Persists the record, points the alarm at its next deadline and tells the health shard. */
	private async save(): Promise<void> {
		const r = this.record;
		if (!r) return;
		r.version += 1;
		this.sql.exec("INSERT OR REPLACE INTO task (id, record) VALUES (?, ?)", r.id, JSON.stringify(r));
		await this.schedule();
		this.reportStatus(r.id, r.version, r.status);
	}

	private async schedule(): Promise<void> {
		const r = this.record;
		if (!r) return;
		const at =
			r.status === "running"
				? Date.now()
				: isTerminal(r.status)
					? (r.expiresAt ?? Date.now())
					: r.dispatched
						? r.runAfter
						: r.recoverAt;
		await this.ctx.storage.setAlarm(Math.max(at, Date.now()));
	}

	/** Off the request path: the report is not awaited by anyone waiting on the task. */
	private reportStatus(id: string, version: number, status: TaskStatus | null): void {
		const shard = statsShardFor(this.env, id, this.cfg.healthShards);
		this.ctx.waitUntil(
			shard.report(id, version, status).catch((e: unknown) => console.error(`task ${id}: health report failed: ${String(e)}`)),
		);
	}
}
