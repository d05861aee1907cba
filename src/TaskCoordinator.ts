import { DurableObject } from "cloudflare:workers";
import { ConfigError, settings, type Settings } from "./config";
import { TaskFiles } from "./files/taskFiles";
import { HealthReports } from "./health/reports";
import { logTaskEnd } from "./observability/taskEndLog";
import { backoffMs } from "./lib/backoff";
import { answerPings, echoClose, sendJson } from "./lib/sockets";
import { findProcessor, type Processor } from "./processors";
import { TaskSlot, type PlaceInLine } from "./scheduling/taskSlot";
import { PROGRESS_EVENTS_PER_S, snapshotEvent, type TaskEvent, type TaskEventType } from "./task/events";
import { Fanout, MAX_FOLLOWERS } from "./task/fanout";
import {
	inLine,
	iso,
	isTerminal,
	metricsOf,
	toTask,
	type Json,
	type Task,
	type TaskError,
	type TaskMessage,
	type TaskRecord,
	type TaskSpec,
	type TaskStatus,
	type WebhookAttempt,
	withSchedulingDefaults,
} from "./task/model";
import { cut, MAX_ERROR_MESSAGE, storableError, storableProgress } from "./task/storable";
import { Throttle } from "./task/throttle";
import { WebhookOutbox } from "./webhooks/outbox";
import type { LeaseGrant } from "./workers/lease";
import type { HeartbeatOutcome, LeaseOutcome } from "./workers/outcomes";
import { PullTask } from "./workers/pullTask";

/** Longest gap between re-sends of a message presumed lost. */
const MAX_RECOVERY_GAP_MS = 3_600_000;
/**
 * An attempt still running this long after it started is adopted by the alarm handler; quick
 * ones never cost an alarm. Until then the alarm set at submit covers a lost attempt.
 */
const ADOPT_AFTER_MS = 1000;
/** A terminal status the health shard did not acknowledge is reported again this much later. */
const REPORT_RETRY_MS = 2000;
/** A task whose files could not be deleted at its TTL tries again this much later. */
const FILE_DELETE_RETRY_MS = 60_000;

/** Backoff with full jitter between attempts: up to 1 s, 2 s, 4 s … capped at 60 s. */
function retryBackoffMs(attemptsSoFar: number): number {
	return backoffMs(attemptsSoFar, { baseMs: 1000, capMs: 60_000, jitter: true });
}

/** What records stored before the webhook outbox had a row of its own carried. */
type LegacyWebhookFields = { webhookOutbox?: { seq: number; attempts: number; nextAt: number }[]; webhookLog?: WebhookAttempt[] };

export type CreateOutcome = "created" | "existing" | "conflict";
/**
 * What a queue message did to its task: `started` (its attempt began), `gated` (delivered, but it
 * may not start yet: it waits for its turn), or nothing because the task was `already_dispatched`,
 * `already_running`, `already_finished`, or is an `unknown_task`.
 */
export type DispatchOutcome = "started" | "gated" | "already_dispatched" | "already_running" | "already_finished" | "unknown_task";
export type CancelOutcome = "canceled" | "already_finished" | "unknown";

type AttemptResult =
	| { kind: "succeeded"; output: Json }
	| { kind: "failed"; error: TaskError; retryable: boolean; retryAfterMs?: number }
	| { kind: "timed_out" };

/**
 * One Durable Object per task: it owns the task's state, runs the task, and tells everyone who
 * waits on it (long-polls, WebSockets, SSE streams, multi-task hubs, a webhook) the instant
 * anything happens. The task's lifecycle (create, dispatch, run, retry, finish, expire) is decided
 * in this file; what it delegates has names: fan-out to waiters and subscribers (task/fanout.ts),
 * webhook deliveries (webhooks/outbox.ts), health reports (health/reports.ts), progress
 * coalescing (task/throttle.ts), the task's files and how its output is stored (files/taskFiles.ts),
 * making what a processor hands back storable (task/storable.ts), its lane's slot
 * (scheduling/taskSlot.ts), and for a `WORKER_TYPES` task, the work lane and the worker's lease
 * (workers/pullTask.ts).
 *
 * Storage: the record (spec, input, lifecycle state, output) in `task`, rewritten only by a
 * lifecycle change; each event in `events`, where a progress event takes the place of the previous
 * one (progress never rewrites the record); webhook bookkeeping in `webhook` (outbox.ts); the hubs
 * that follow the task in `followers`, once one does; its files in `files` (taskFiles.ts).
 *
 * `create` stores the task as `queued`; the API then sends its queue message; the consumer's
 * `dispatch` starts the attempt at once (waiting for the alarm would add ~10 ms locally) and
 * points the alarm at now. The alarm handler then adopts the in-flight attempt and stays open
 * until it ends, so the run is held by an alarm event and survives eviction and restarts: an
 * alarm that finds the task `running` with no attempt in flight in this instance knows the
 * attempt died with its instance (crash, eviction, restart) and runs it again or fails it.
 *
 * The single alarm is always set to the earliest deadline, derived from the stored state:
 * - queued, message not yet delivered → `recoverAt` (the message was lost: send it again);
 * - queued, delivered → `runAfter` (start it: its `run_at`, the end of a retry's backoff, or
 *   for a task in its lane's line, when to ask the lane again: the lane pushes the slot itself);
 * - running → now (adopt the attempt, or detect that it was lost);
 * - terminal → `expiresAt` (delete everything the task stored, once no webhook delivery is owed
 *   and the health shard has the expiry; until then its reports are retried every 2 s);
 * - and the next webhook retry, if one is pending.
 * The invocation that holds a run awaits nothing else (see `alarm`: its 15-minute limit).
 * Nothing else keeps a timer once the task is idle, so the runtime can evict the object.
 */
export class TaskCoordinator extends DurableObject<Env> {
	private readonly sql = this.ctx.storage.sql;
	private readonly cfg: Settings;
	private record: TaskRecord | null;
	private readonly fanout: Fanout;
	private readonly health: HealthReports;
	/** The attempt executing in this instance, if any (a fresh instance never has one). */
	private inFlight: Promise<void> | null = null;
	private attemptActive = false;
	/** True while an alarm handler holds the in-flight attempt. */
	private adopted = false;
	/** The health shard acknowledged the terminal status. Not stored: until the shard has it, the
	 * alarm stays early (see `schedule`), so after a restart the alarm reports it again. */
	private terminalReported = false;
	/** Hubs following the task (mirrors the followers table; loaded on first use). */
	private followerCache: Set<string> | null = null;
	private abortAttempt: ((reason: Error) => void) | null = null;
	/** The alarm time this instance last set (null: unknown, set it). */
	private alarmAt: number | null = null;
	private readonly webhooks: WebhookOutbox;
	/** The seq of the latest stored progress event (null: none; undefined: not looked up yet). */
	private progressSeq: number | null | undefined = undefined;
	/** A terminal task past its TTL whose expiry report the shard did not acknowledge: when to try again. */
	private expiryRetryAt: number | null = null;
	private readonly files: TaskFiles;
	/** The task's side of its lane: slots for limited types (scheduling/). */
	private readonly slot: TaskSlot;
	/** A `WORKER_TYPES` task's side of the work lane and of its worker's lease (workers/). */
	private readonly pullTask: PullTask;
	/** `queued` events for position changes, at most PROGRESS_EVENTS_PER_S like progress. */
	private readonly positionEvents = new Throttle(1000 / PROGRESS_EVENTS_PER_S, () => this.flushPosition());

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.cfg = settings(env);
		this.fanout = new Fanout(ctx, env);
		this.files = new TaskFiles(ctx.storage.sql, env);
		this.health = new HealthReports(ctx, env, this.cfg.healthShards);
		this.slot = new TaskSlot(ctx, env);
		this.pullTask = new PullTask(ctx, env, this.files, {
			record: () => this.record,
			save: (type, data) => this.save(type, data),
			persist: () => this.persist(),
			schedule: () => this.schedule(),
			saveWaiting: (r, positionBefore) => this.saveWaiting(r, positionBefore),
			watched: () => this.watched(),
			setProgress: (r, attempt, percent, message) => this.setProgress(r, attempt, percent, message),
			flushProgress: (r, attempt) => this.flushProgress(r, attempt),
			retryLater: (r, error) => this.retryLater(r, error),
			finish: (attempt, status, fields) => this.finish(attempt, status, fields),
			recheckS: this.cfg.queuedRecoveryS,
			priorityOffsetS: this.cfg.priorityOffsetS,
		});
		this.webhooks = new WebhookOutbox(this.sql, {
			record: () => this.record,
			event: (seq) => {
				const row = this.sql.exec<{ event: string }>("SELECT event FROM events WHERE seq = ?", seq).toArray()[0];
				return row ? (JSON.parse(row.event) as TaskEvent) : null;
			},
			secret: () => this.env.WEBHOOK_SECRET,
			retryBaseS: this.cfg.webhookRetryBaseS,
			settled: (seq) => this.pruneProgress(seq),
			schedule: () => this.schedule(),
		});
		this.record = this.load();
		if (this.record) this.health.stored(this.record.status);
		answerPings(ctx);
	}

	// ---- RPC: called by the API, the consumer and subscription hubs ----

	/** Stores a new task, or reports the one already stored under this id. */
	async create(spec: TaskSpec): Promise<{ outcome: CreateOutcome; task: Task }> {
		const outcome = await this.storeTask(spec);
		return { outcome, task: this.task() };
	}

	/** `create` without the answer's view of the task (`submit` makes its own once the task is dispatched). */
	private async storeTask(spec: TaskSpec): Promise<CreateOutcome> {
		if (this.record) return this.record.fingerprint === spec.fingerprint ? "existing" : "conflict";
		const now = Date.now();
		this.terminalReported = false;
		// Every task creates a database, so it creates as little as it can: no separate index for
		// the key (WITHOUT ROWID), and the followers table only once a hub follows.
		this.sql.exec(`CREATE TABLE IF NOT EXISTS task (id TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
			CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, event TEXT NOT NULL);`);
		this.followerCache = new Set();
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
			runAfter: now + (spec.delayS ?? 0) * 1000,
			runAt: now + (spec.delayS ?? 0) * 1000,
			lane: null,
			laneState: "out",
			queuePosition: null,
			expiresAt: null,
			version: 0,
			healthShard: this.health.shardForNewTask(),
			eventSeq: 0,
		};
		const createdAt = new Date(now).toISOString();
		const runAt = new Date(this.record.runAt).toISOString();
		await this.save("queued", { status: "queued", priority: spec.priority, created_at: createdAt, run_at: runAt });
		return "created";
	}

	/**
	 * `create`, then send the task's queue message (only when it was created: a repeated submit
	 * runs nothing again), then wait up to `waitMs` for it to end — one round trip for the API.
	 * A failed send loses nothing: the recovery alarm re-sends a message that never arrived.
	 */
	async submit(spec: TaskSpec, waitMs: number, dispatch: "queue" | "direct" = "queue"): Promise<{ outcome: CreateOutcome; task: Task }> {
		const outcome = await this.storeTask(spec);
		if (outcome === "created" && this.record?.pull) {
			await this.pullTask.submitted(this.record);
		} else if (outcome === "created" && dispatch === "direct") {
			// DISPATCH=direct: this object hands the task to itself, as the consumer would, with no
			// queue hop; a start lost with this instance is found by the recovery alarm set at create.
			await this.dispatch();
		} else if (outcome === "created") {
			const message: TaskMessage = { id: spec.id, reason: "submit" };
			try {
				await this.env.TASK_QUEUE.send(message);
			} catch (e) {
				console.error(`task ${spec.id}: enqueue failed, the recovery alarm will re-send: ${String(e)}`);
			}
		}
		if (outcome !== "conflict" && waitMs > 0 && this.record && !isTerminal(this.record.status)) {
			await this.fanout.waitForEnd(waitMs);
		}
		return { outcome, task: await this.taskWithPosition() };
	}

	/**
	 * A queue message for this task arrived: start it now (unless it is gated) and return at
	 * once, so the consumer's batch never waits on a task's run. Queues deliver at least once;
	 * a repeated message finds the task dispatched, running or finished and changes nothing.
	 */
	async dispatch(): Promise<DispatchOutcome> {
		const r = this.record;
		if (!r) return "unknown_task";
		if (isTerminal(r.status)) return "already_finished";
		if (r.status === "running") return "already_running";
		if (r.dispatched) return "already_dispatched";
		if (r.pull) {
			await this.pullTask.dispatched(r);
			return "gated";
		}
		r.dispatched = true;
		// Starting stores `dispatched` with the running state; a gated task stores it now.
		const position = r.queuePosition;
		if (await this.mayStart(r)) {
			void this.startAttempt(r);
			return "started";
		}
		await this.saveWaiting(r, position);
		return "gated";
	}

	/** The task now, or once it is terminal if that happens within `waitMs`; null if unknown. */
	async waitFor(waitMs: number): Promise<Task | null> {
		if (this.record && !isTerminal(this.record.status) && waitMs > 0) await this.fanout.waitForEnd(waitMs);
		return this.record ? this.taskWithPosition() : null;
	}

	/**
	 * Cancels the task. A queued task never starts; a running one has its signal aborted and
	 * ends `canceled` at once even if its processor ignores the signal. Idempotent.
	 */
	async cancel(): Promise<{ outcome: CancelOutcome; task: Task | null }> {
		const r = this.record;
		if (!r) return { outcome: "unknown", task: null };
		if (r.status === "canceled") return { outcome: "canceled", task: this.task() };
		if (isTerminal(r.status)) return { outcome: "already_finished", task: this.task() };
		this.abortAttempt?.(new Error("canceled"));
		const waitingForWorker = this.pullTask.leavesLane(r);
		await this.finish(r.attempts, "canceled", { error: { code: "canceled", message: "Canceled by request" } });
		if (waitingForWorker) await this.pullTask.withdraw(r);
		return { outcome: "canceled", task: this.task() };
	}

	/** The dead-letter queue gave up on this task's message: fail it rather than leave it waiting. */
	async deadLettered(): Promise<void> {
		const r = this.record;
		// A task that is running, or was delivered and waits for a retry, got its message through.
		if (!r || isTerminal(r.status) || r.status === "running" || r.dispatched) return;
		await this.finish(r.attempts, "failed", {
			error: { code: "dead_lettered", message: "The task's queue message could not be delivered" },
		});
	}

	/** Webhook deliveries that fell due while a run holds the alarm, made here in an invocation of their own (see `adoptAttempt`). */
	async deliverDueWebhooks(): Promise<void> {
		await this.webhooks.deliverDue(Date.now());
	}

	// ---- RPC: called by the task's lane (scheduling/Scheduler.ts) ----

	/**
	 * The lane gives this task a slot, or checks that it still holds one. True: it holds it (it
	 * was waiting and starts now, or its attempt runs in this instance). False: the slot goes to
	 * the next task (the task ended, was canceled, backs off, or its attempt died with an earlier
	 * instance, which is handled here and now).
	 */
	async slotOffered(lane: string): Promise<boolean> {
		const r = this.record;
		if (!r || isTerminal(r.status) || r.lane !== lane) return false;
		if (this.inFlight) return true;
		if (r.status === "running") {
			await this.attemptLost(r);
			return false;
		}
		if (!this.slot.takesOffered(r, lane)) return false;
		void this.startAttempt(r);
		return true;
	}

	/**
	 * The lane says where the task now stands in line (a Scheduler lane, or the work lane for a
	 * pull task); subscribers get a `queued` event. False: stop telling.
	 */
	async queuePositionChanged(lane: string, position: number): Promise<boolean> {
		const r = this.record;
		if (!r || !this.line(r).waitsIn(r, lane)) return false;
		if (this.line(r).heard(r, position)) this.positionEvents.changed();
		return this.watched();
	}

	private flushPosition(): void {
		const r = this.record;
		if (r && inLine(r)) this.commit("queued", { queue_position: r.queuePosition });
	}

	/** Where the task's place in line is kept: its slot lane's, or the work lane's for a pull task. */
	private line(r: TaskRecord): PlaceInLine {
		return r.pull ? this.pullTask : this.slot;
	}

	/** The task has live subscribers (sockets, SSE streams, hubs): lanes push it its position. */
	private watched(): boolean {
		return this.fanout.hasSubscribers() || this.followers().size > 0;
	}

	// ---- RPC: called by the work lane and the worker API (src/workers/, src/api/routes/work.ts) ----

	/** The work lane asks: lease this task to `workerId`, or null if it no longer waits (canceled, already leased). */
	async grantLease(workerId: string): Promise<LeaseGrant | null> {
		return this.pullTask.grantLease(this.record, workerId);
	}

	/** A worker's heartbeat: extends the lease, relays progress; says when the task was canceled. */
	async heartbeat(token: string, progress: { percent: number; message?: string | null } | null): Promise<HeartbeatOutcome> {
		return this.pullTask.heartbeat(this.record, token, progress);
	}

	/** The worker's output: the task succeeds. */
	async completeLease(token: string, output: Json): Promise<LeaseOutcome> {
		return this.pullTask.complete(this.record, token, output);
	}

	/** The worker failed the attempt. */
	async failLease(token: string, error: TaskError, retryable: boolean): Promise<LeaseOutcome> {
		return this.pullTask.fail(this.record, token, error, retryable);
	}

	/** Events after `after` (replay for resuming subscribers), or a snapshot when `after` is null. */
	private catchUp(after: number | null): TaskEvent[] {
		const r = this.record;
		if (!r) return [];
		if (after === null) return [snapshotEvent(this.task(), r.eventSeq)];
		const rows = this.sql.exec<{ event: string }>("SELECT event FROM events WHERE seq > ? ORDER BY seq", after).toArray();
		return rows.map((row) => JSON.parse(row.event) as TaskEvent);
	}

	/**
	 * An SSE stream of the task's events (after `after`, else from a snapshot). "ended" when a
	 * resuming client of a finished task has nothing left to get.
	 */
	async eventStream(after: number | null): Promise<ReadableStream<Uint8Array> | "unknown" | "ended"> {
		if (!this.record) return "unknown";
		await this.line(this.record).refresh(this.record, true);
		const events = this.catchUp(after);
		const ended = isTerminal(this.record.status);
		if (ended && events.length === 0) return "ended";
		return this.fanout.openStream(events, ended);
	}

	/** A multi-task hub starts following this task: the current snapshot, or why it cannot. */
	async follow(hub: string): Promise<TaskEvent | "unknown" | "too_many_followers"> {
		const r = this.record;
		if (!r) return "unknown";
		if (!isTerminal(r.status)) {
			const followers = this.followers();
			if (!followers.has(hub) && followers.size >= MAX_FOLLOWERS) return "too_many_followers";
			this.sql.exec("CREATE TABLE IF NOT EXISTS followers (hub TEXT PRIMARY KEY) WITHOUT ROWID");
			this.sql.exec("INSERT OR IGNORE INTO followers (hub) VALUES (?)", hub);
			followers.add(hub);
			await this.line(r).refresh(r, true);
		}
		return snapshotEvent(this.task(), r.eventSeq);
	}

	async unfollow(hub: string): Promise<void> {
		if (!this.record || !this.followers().delete(hub)) return;
		this.sql.exec("DELETE FROM followers WHERE hub = ?", hub);
	}

	/** Only for the WebSocket upgrade of `GET /v1/tasks/{id}/ws` (`?after=N` replays from N). */
	override async fetch(request: Request): Promise<Response> {
		if (!this.record) {
			return Response.json({ error: { code: "task_not_found", message: "No such task" } }, { status: 404 });
		}
		const after = new URL(request.url).searchParams.get("after");
		await this.line(this.record).refresh(this.record, true);
		return this.fanout.acceptSocket(this.catchUp(after === null ? null : Number(after)), isTerminal(this.record.status));
	}

	/** Client frames on a per-task socket: `ping` is answered by the runtime; anything else is an error. */
	override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
		const text = typeof message === "string" ? message.slice(0, 64) : "(binary)";
		sendJson(ws, {
			type: "error",
			error: {
				code: "bad_frame",
				message: `Only {"type":"ping"} is accepted here (got ${JSON.stringify(text)}); follow many tasks on /v1/ws`,
			},
		});
	}

	override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
		echoClose(ws, code, reason);
	}

	// ---- the alarm: every deadline of the task ----

	/**
	 * One invocation may last 15 minutes deployed. The one that holds a run awaits only the
	 * attempt and its outcome (at most `timeout_s` ≤ MAX_TIMEOUT_S, plus the few seconds that
	 * storing the outcome and its health report take): webhook deliveries (up to 10 s each) are
	 * made in the other invocations, so that a full-length run is never cut short by them.
	 */
	override async alarm(): Promise<void> {
		this.alarmAt = null;
		const r = this.record;
		if (!r) return;
		const now = Date.now();
		if (isTerminal(r.status)) {
			await this.webhooks.deliverDue(now);
			if (!this.terminalReported) await this.reportTerminal();
			// Owed deliveries keep the task past its TTL until each is made or given up (recorded on it).
			if (r.expiresAt !== null && now >= r.expiresAt && !this.webhooks.owesAny()) await this.expire();
			else await this.schedule();
		} else if (r.pull) {
			await this.webhooks.deliverDue(now);
			await this.pullTask.alarm(r, now);
		} else if (this.inFlight) {
			await this.adoptAttempt(this.inFlight);
		} else if (r.status === "running") {
			await this.attemptLost(r);
		} else if (r.dispatched) {
			const position = r.queuePosition;
			if (now >= r.runAfter && (await this.mayStart(r))) {
				await this.adoptAttempt(this.startAttempt(r));
			} else {
				await this.webhooks.deliverDue(now);
				await this.saveWaiting(r, position);
			}
		} else {
			await this.webhooks.deliverDue(now);
			if (now >= r.recoverAt) await this.resend(r);
			else await this.schedule();
		}
	}

	/**
	 * The one place that decides whether a delivered task may start now: not before `runAfter`
	 * (its `run_at`, a retry's backoff), and for a type or origin with a concurrency limit only
	 * with a slot of its lane (scheduling/). Without a free slot it waits in line; the lane then
	 * pushes the slot to `slotOffered`. Types without a limit never call a lane.
	 */
	private async mayStart(r: TaskRecord): Promise<boolean> {
		if (Date.now() < r.runAfter) return false;
		let granted: boolean;
		try {
			// Whether it is watched matters only to a lane: a type without a limit never asks.
			granted = await this.slot.acquire(r, () => this.watched());
		} catch (e) {
			if (!(e instanceof ConfigError)) throw e;
			// Limits that no longer parse (changed since submit): fail clearly rather than wait forever.
			await this.finish(r.attempts, "failed", { error: { code: "invalid_config", message: e.message } });
			return false;
		}
		// The lane answers asynchronously: a cancel or a pushed slot may have moved the task on.
		return granted && this.record === r && r.status === "queued" && !this.inFlight;
	}

	/** A delivered task that may not start yet: store where it stands (a `queued` event if its place changed). */
	private async saveWaiting(r: TaskRecord, positionBefore: number | null): Promise<void> {
		if (this.record !== r || r.status !== "queued") return;
		if (inLine(r) && r.queuePosition !== null && r.queuePosition !== positionBefore) {
			this.positionEvents.sentElsewhere();
			await this.save("queued", { queue_position: r.queuePosition });
		} else {
			await this.save();
		}
	}

	/** Starts an attempt in this instance; the alarm handler adopts it (see the class comment). */
	private startAttempt(r: TaskRecord): Promise<void> {
		this.attemptActive = true;
		// A long attempt asks the alarm to adopt it, so an alarm event holds it from then on.
		const adoptTimer = setTimeout(() => {
			if (!this.adopted) this.ctx.waitUntil(this.ctx.storage.setAlarm(Date.now()).then(() => void (this.alarmAt = Date.now())));
		}, ADOPT_AFTER_MS);
		const attempt = this.run(r)
			.catch((e: unknown) => console.error(`task ${r.id}: attempt crashed: ${String(e)}`))
			.finally(() => {
				clearTimeout(adoptTimer);
				this.inFlight = null;
				this.attemptActive = false;
			})
			// An attempt that crashed before storing its outcome leaves the task `running`: the
			// alarm, pointed at now, finds no attempt in flight and runs it again or fails it.
			.then(() => this.schedule());
		this.inFlight = attempt;
		return attempt;
	}

	/**
	 * Holds the alarm handler open for the attempt's whole run, and for nothing else. The alarm
	 * cannot fire again meanwhile, so webhook deliveries that fall due during the run are made
	 * by the object calling itself (`deliverDueWebhooks`): an invocation of their own, which this
	 * one never awaits. (A delivery's first attempt goes out at once, never awaited either.)
	 */
	private async adoptAttempt(attempt: Promise<void>): Promise<void> {
		this.adopted = true;
		const stop = this.webhooks.whileRunning(() => {
			const r = this.record;
			if (!r) return;
			this.ctx.waitUntil(
				this.env.TASKS.getByName(r.id)
					.deliverDueWebhooks()
					.catch((e: unknown) => console.error(`task ${r.id}: webhook deliveries due mid-run failed to start: ${String(e)}`)),
			);
		});
		try {
			await attempt;
		} finally {
			stop();
			this.adopted = false;
		}
	}

	/** Runs one attempt under the task's deadline, then stores its outcome. */
	private async run(r: TaskRecord): Promise<void> {
		const processor = findProcessor(r.type, this.env);
		if (!processor) {
			await this.finish(r.attempts, "failed", { error: { code: "unknown_type", message: `No processor for type ${r.type}` } });
			return;
		}
		const started = Date.now();
		r.status = "running";
		r.attempts += 1;
		r.startedAt = started;
		r.progress = null;
		const attempt = r.attempts;
		const running: Partial<Task> = { status: "running", attempts: attempt, started_at: new Date(started).toISOString() };
		if (r.laneState === "holding") running.queue_position = null;
		this.commit("running", running);
		// Moving the alarm need not delay the start: it runs alongside the attempt.
		const scheduled = this.schedule();
		const result = await this.execute(processor, r, attempt);
		await scheduled;
		const runMs = Date.now() - started;
		// Fence: only the attempt that is still current may write its outcome (a cancel or a
		// newer attempt may have moved on while this one ran).
		if (this.record !== r || r.status !== "running" || r.attempts !== attempt) return;
		r.runMs = runMs;
		if (result.kind === "succeeded") {
			await this.finish(attempt, "succeeded", { output: result.output });
		} else if (result.kind === "timed_out") {
			await this.finish(attempt, "timed_out", {
				error: { code: "timeout", message: `Attempt ${attempt} exceeded timeout_s=${r.timeoutS}` },
			});
		} else if (result.retryable && attempt < r.maxAttempts) {
			await this.retryLater(r, result.error, result.retryAfterMs);
		} else {
			await this.finish(attempt, "failed", { error: result.error });
		}
	}

	/** Calls the processor; the deadline timer wins even if the processor never settles. */
	private async execute(processor: Processor, r: TaskRecord, attempt: number): Promise<AttemptResult> {
		const controller = new AbortController();
		const progressEvents = new Throttle(1000 / PROGRESS_EVENTS_PER_S, () => this.flushProgress(r, attempt));
		let timer = 0;
		const stop = new Promise<AttemptResult>((resolve) => {
			timer = setTimeout(() => resolve({ kind: "timed_out" }), r.timeoutS * 1000);
			this.abortAttempt = (reason) => {
				controller.abort(reason);
				resolve({ kind: "failed", error: { code: "canceled", message: reason.message }, retryable: false });
			};
		});
		const parsed = processor.input.safeParse(r.input);
		if (!parsed.success) {
			// Checked at submit; a failure here means the processor changed since. No retry can fix it.
			return { kind: "failed", error: { code: "invalid_input", message: parsed.error.message }, retryable: false };
		}
		const input = parsed.data;
		const work = (async (): Promise<AttemptResult> => {
			const output = await processor.run(input, {
				taskId: r.id,
				attempt,
				signal: controller.signal,
				env: this.env,
				progress: (percent, message) => {
					if (this.setProgress(r, attempt, percent, message)) progressEvents.changed();
				},
				files: this.files.forAttempt(r.id, () => this.record === r && r.status === "running" && r.attempts === attempt),
			});
			// Large JSON goes to R2 (under the deadline, like the run); too large or not JSON fails here, at once.
			return { kind: "succeeded", output: await this.files.prepareOutput(r.id, output) };
		})().catch((e: unknown): AttemptResult => ({ kind: "failed", ...storableError(e) }));
		try {
			const result = await Promise.race([work, stop]);
			if (result.kind === "timed_out") controller.abort(new Error("timed out"));
			return result;
		} finally {
			clearTimeout(timer);
			this.abortAttempt = null;
			progressEvents.cancel();
		}
	}

	/**
	 * `ctx.progress` of the running attempt: updates the value (false if this attempt is no longer
	 * current). Events go out through the attempt's throttle, at most PROGRESS_EVENTS_PER_S a second.
	 */
	private setProgress(r: TaskRecord, attempt: number, percent: unknown, message: unknown): boolean {
		if (this.record !== r || r.status !== "running" || r.attempts !== attempt) return false;
		const progress = storableProgress(percent, message);
		if (!progress) return false;
		r.progress = progress;
		return true;
	}

	private flushProgress(r: TaskRecord, attempt: number): void {
		if (this.record !== r || r.status !== "running" || r.attempts !== attempt) return;
		this.commit("progress", { progress: r.progress });
	}

	/**
	 * A retryable failure with attempts left: back to queued, started again after a backoff, or
	 * after `retryAfterMs` when the processor knows better (an origin's `Retry-After`).
	 */
	private async retryLater(r: TaskRecord, error: TaskError, retryAfterMs?: number): Promise<void> {
		r.status = "queued";
		r.error = error;
		r.progress = null;
		r.offered = false;
		r.runAfter = Date.now() + (retryAfterMs ?? retryBackoffMs(r.attempts));
		// The slot is given back while it backs off; it asks again at runAfter, with its old place.
		this.slot.release(r);
		await this.save("retrying", { status: "queued", attempts: r.attempts, error, progress: null });
	}

	/**
	 * Stores the terminal state, then tells every subscriber and releases every waiter. The task
	 * turns terminal only once that write succeeded: a result the storage refuses after all (a
	 * storage error, a row over its limit) fails the task `storage_error` instead, never leaving
	 * it `running` in storage while it looks finished in memory.
	 */
	private async finish(attempt: number, status: TaskStatus, fields: { output?: Json; error?: TaskError }): Promise<void> {
		const r = this.record;
		if (!r || isTerminal(r.status) || r.attempts !== attempt) return;
		try {
			this.commitTerminal(r, status, fields);
		} catch (e) {
			console.error(`task ${r.id}: its ${status} state could not be stored, failing it: ${String(e)}`);
			const message = cut(`The task's ${status} state could not be stored: ${String(e)}`, MAX_ERROR_MESSAGE);
			this.commitTerminal(r, "failed", { error: { code: "storage_error", message } });
		}
		// Everyone is told already; the health count follows, and the alarm retries it if lost.
		await this.reportTerminal();
		await this.schedule();
	}

	/** Turns the record terminal and commits it; if the write fails, the record is left as it was and the error thrown. */
	private commitTerminal(r: TaskRecord, status: TaskStatus, fields: { output?: Json; error?: TaskError }): void {
		const before = {
			status: r.status,
			output: r.output,
			error: r.error,
			progress: r.progress,
			finishedAt: r.finishedAt,
			expiresAt: r.expiresAt,
		};
		const now = Date.now();
		r.status = status;
		r.output = fields.output ?? null;
		r.error = fields.error ?? null;
		r.finishedAt = now;
		r.expiresAt = now + r.ttlS * 1000;
		this.slot.release(r);
		if (status === "succeeded") r.progress = { percent: 100, message: r.progress?.message ?? null };
		try {
			// The fields of the public view that ended (as toTask shows them), without building the whole view.
			this.commit(status, {
				status,
				output: r.output ?? null,
				error: r.error,
				progress: r.progress,
				finished_at: iso(r.finishedAt),
				metrics: metricsOf(r),
			});
		} catch (e) {
			Object.assign(r, before);
			throw e;
		}
		if (this.cfg.taskEndLogs) logTaskEnd(r);
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
			console.error(`task ${r.id}: recovery re-send failed: ${String(e)}`);
		}
		r.recoveries += 1;
		r.recoverAt = Date.now() + backoffMs(r.recoveries + 1, { baseMs: this.cfg.queuedRecoveryS * 1000, capMs: MAX_RECOVERY_GAP_MS });
		await this.save();
	}

	/**
	 * TTL reached: delete everything the task stored; the id becomes unknown (404). Its files go
	 * first: if R2 refuses, the task stays whole and its alarm tries again a minute later. Then the
	 * health shard must stop counting it: an expiry report lost here would leave the task in
	 * `results_pending` for good, so until the shard acknowledges it the task stays and the alarm
	 * tries again.
	 */
	private async expire(): Promise<void> {
		const r = this.record;
		if (!r) return;
		try {
			await this.files.deleteOwn();
		} catch (e) {
			console.error(`task ${r.id}: deleting its files failed, trying again later: ${String(e)}`);
			this.alarmAt = Date.now() + FILE_DELETE_RETRY_MS;
			await this.ctx.storage.setAlarm(this.alarmAt);
			return;
		}
		if (!(await this.health.expired(r, r.version + 1))) {
			this.expiryRetryAt = Date.now() + REPORT_RETRY_MS;
			await this.schedule();
			return;
		}
		if (this.record !== r) return;
		this.record = null;
		this.expiryRetryAt = null;
		this.progressSeq = undefined;
		this.webhooks.cleared();
		this.fanout.end();
		// deleteAll removes the alarm too (compatibility date 2026-02-24 and later), and this alarm
		// has fired: a deleteAlarm would only be one more row written.
		await this.ctx.storage.deleteAll();
		this.alarmAt = null;
		this.followerCache = null;
		await this.files.releaseInputs(r.id, r.input);
	}

	/** The task, with its queue position made current: from its slot lane, or the work lane for a pull task. */
	private async taskWithPosition(): Promise<Task> {
		const r = this.record;
		if (r) await this.line(r).refresh(r, false);
		return this.task();
	}

	// ---- events and webhooks ----

	/**
	 * Records a change: one write of the record (plus its event, if any), then everyone is told
	 * at once: subscribers, followers, waiters (on a terminal event), the webhook, the health
	 * shard. A progress event changes nothing but the progress, so it costs one row: it takes the
	 * place of the previous progress event, and the record is not rewritten (`load` reads the
	 * progress back from its event). Synchronous: SQLite writes are durable before any reply
	 * leaves (the output gate). All or nothing: if a write throws, nothing is stored, nobody is
	 * told, the counters it moved are put back, and the error is thrown.
	 */
	private commit(type?: TaskEventType, data?: Partial<Task>): void {
		const r = this.record;
		if (!r) return;
		const progressOnly = type === "progress";
		const before = { version: r.version, eventSeq: r.eventSeq };
		if (!progressOnly) r.version += 1;
		const event: TaskEvent | null = type && data ? { task_id: r.id, seq: r.eventSeq + 1, type, at: new Date().toISOString(), data } : null;
		if (event) r.eventSeq = event.seq;
		// Serialised once: the same text is stored and sent to sockets and streams.
		const json = event ? JSON.stringify(event) : "";
		let wantsWebhook: boolean;
		try {
			wantsWebhook = this.ctx.storage.transactionSync(() => {
				if (event) this.storeEvent(event, json);
				if (!progressOnly) this.persist();
				// Last: the outbox changes its memory only once its own write is done.
				return event ? this.webhooks.add(r, event) : false;
			});
		} catch (e) {
			r.version = before.version;
			r.eventSeq = before.eventSeq;
			throw e;
		}
		if (event?.type === "progress") this.progressSeq = event.seq;
		// Progress changes no status: the health shard has nothing to learn from it.
		if (!progressOnly) this.health.changed(r, this.heldOpen(r));
		if (event) this.publish(event, json, r, wantsWebhook);
	}

	/** Tells subscribers, followers and waiters of a stored event, and makes its webhook's first attempt. */
	private publish(event: TaskEvent, json: string, r: TaskRecord, wantsWebhook: boolean): void {
		const followers = this.followers();
		this.fanout.publish(event, json, [...followers], (hub) => void this.unfollow(hub));
		if (isTerminal(r.status) && followers.size > 0) {
			this.sql.exec("DELETE FROM followers");
			followers.clear();
		}
		if (wantsWebhook) this.ctx.waitUntil(this.webhooks.deliver(event.seq));
	}

	/**
	 * Stores an event. Only the latest progress and queue position are worth replaying to a
	 * subscriber that resumes, so a progress event is written over the previous one, unless a
	 * webhook still owes that one (then it stays until its delivery is over: `pruneProgress`),
	 * and a position event replaces the previous one (no webhook is ever owed a `queued` event).
	 */
	private storeEvent(event: TaskEvent, json: string): void {
		if (event.type === "queued" && !("status" in event.data)) {
			this.sql.exec("DELETE FROM events WHERE type = 'queue_position'");
			this.sql.exec("INSERT INTO events (seq, type, event) VALUES (?, 'queue_position', ?)", event.seq, json);
			return;
		}
		const previous = event.type === "progress" ? this.latestProgressSeq() : null;
		if (previous !== null && !this.webhooks.owes(previous)) {
			this.sql.exec("UPDATE events SET seq = ?, event = ? WHERE seq = ?", event.seq, json, previous);
		} else {
			this.sql.exec("INSERT INTO events (seq, type, event) VALUES (?, ?, ?)", event.seq, event.type, json);
		}
	}

	/** The seq of the latest stored progress event, if any. */
	private latestProgressSeq(): number | null {
		if (this.progressSeq === undefined) {
			this.progressSeq = this.sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM events WHERE type = 'progress'").one().seq;
		}
		return this.progressSeq;
	}

	/** A webhook is done with event `seq`: a progress event other than the latest is deleted, as the next one would have. */
	private pruneProgress(seq: number): void {
		if (this.record && seq !== this.latestProgressSeq()) this.sql.exec("DELETE FROM events WHERE seq = ? AND type = 'progress'", seq);
	}

	/** `commit`, then point the alarm at the next deadline. */
	private async save(type?: TaskEventType, data?: Partial<Task>): Promise<void> {
		this.commit(type, data);
		await this.schedule();
	}

	/**
	 * Something keeps this object in memory anyway: an attempt runs here, a request waits on the
	 * task, or it was just created and its queue message is due within milliseconds. A health
	 * report may then wait to be coalesced with the next change; otherwise it goes at once, so a
	 * task that waits (for a worker, a slot, a retry) leaves its object free to hibernate.
	 */
	private heldOpen(r: TaskRecord): boolean {
		return this.inFlight !== null || this.fanout.waiting() || (r.status === "queued" && !r.dispatched);
	}

	private followers(): Set<string> {
		if (this.followerCache) return this.followerCache;
		const hasTable = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'followers'").toArray().length > 0;
		const rows = hasTable ? this.sql.exec<{ hub: string }>("SELECT hub FROM followers").toArray() : [];
		this.followerCache = new Set(rows.map((row) => row.hub));
		return this.followerCache;
	}

	// ---- persistence ----

	private task(): Task {
		if (!this.record) throw new Error("no task");
		return toTask(this.record, this.webhooks.view());
	}

	private load(): TaskRecord | null {
		const exists = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task'").toArray().length > 0;
		if (!exists) return null;
		const row = this.sql.exec<{ record: string }>("SELECT record FROM task LIMIT 1").toArray()[0];
		if (!row) return null;
		const record = JSON.parse(row.record) as TaskRecord & LegacyWebhookFields;
		// Records stored before the webhook outbox had a row of its own carried it.
		if (record.webhookOutbox || record.webhookLog) {
			this.webhooks.adoptLegacy(record.webhookOutbox, record.webhookLog);
			delete record.webhookOutbox;
			delete record.webhookLog;
		}
		// Progress is stored in its event alone, so the latest event may be newer than the record.
		const latest = this.sql
			.exec<{ seq: number; type: string; event: string }>("SELECT seq, type, event FROM events ORDER BY seq DESC LIMIT 1")
			.toArray()[0];
		if (latest && latest.seq > record.eventSeq) {
			record.eventSeq = latest.seq;
			if (latest.type === "progress" && record.status === "running") {
				record.progress = (JSON.parse(latest.event) as TaskEvent).data.progress ?? null;
			}
		}
		return withSchedulingDefaults(record);
	}

	/** Writes the record (synchronous SQLite; the output gate holds replies until it is durable). */
	private persist(): void {
		const r = this.record;
		if (r) this.sql.exec("INSERT OR REPLACE INTO task (id, record) VALUES (?, ?)", r.id, JSON.stringify(r));
	}

	private async schedule(): Promise<void> {
		const r = this.record;
		if (!r) return;
		const now = Date.now();
		// A running attempt in this instance needs no deadline of its own: the alarm already set
		// (at submit, or the handler holding it) covers it, and the adopt timer calls it early.
		let at =
			r.pull && !isTerminal(r.status)
				? this.pullTask.deadline(r)
				: r.status === "running"
					? this.attemptActive
						? Infinity
						: now
					: isTerminal(r.status)
						? this.terminalDeadline(r, now)
						: r.dispatched
							? r.runAfter
							: r.recoverAt;
		at = Math.min(at, this.webhooks.nextAt());
		if (at === Infinity) return;
		at = Math.max(at, now);
		// An alarm already due stays due: setting it again would only cost a storage write.
		if (this.alarmAt !== null && (this.alarmAt === at || (this.alarmAt <= now && at <= now))) return;
		await this.ctx.storage.setAlarm(at);
		this.alarmAt = at;
	}

	/**
	 * When a finished task's alarm must fire: to report its end again until the health shard has
	 * it, then at its expiry (again, until the shard has that), which owed webhooks put off.
	 */
	private terminalDeadline(r: TaskRecord, now: number): number {
		if (!this.terminalReported) return now + REPORT_RETRY_MS;
		if (this.expiryRetryAt !== null) return this.expiryRetryAt;
		const expiresAt = r.expiresAt ?? now;
		return expiresAt <= now && this.webhooks.owesAny() ? Infinity : expiresAt;
	}

	/** Reports the terminal status and remembers that the shard has it. Never throws. */
	private async reportTerminal(): Promise<void> {
		const r = this.record;
		if (!r || !isTerminal(r.status) || this.terminalReported) return;
		const acknowledged = await this.health.terminal(r);
		if (acknowledged && this.record === r) this.terminalReported = true;
	}
}
