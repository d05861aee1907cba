import type { TaskFiles } from "../files/taskFiles";
import { withTimeout } from "../lib/timeout";
import { PermanentError } from "../processors";
import { rankOf } from "../scheduling/rank";
import type { PlaceInLine } from "../scheduling/taskSlot";
import { PROGRESS_EVENTS_PER_S, type TaskEventType } from "../task/events";
import { inLine, type Json, type Task, type TaskError, type TaskRecord, type TaskStatus } from "../task/model";
import { Throttle } from "../task/throttle";
import { heartbeatS, MAX_WORKER_ERROR_MESSAGE, newLeaseToken, type LeaseGrant } from "./lease";
import type { HeartbeatOutcome, LeaseOutcome } from "./outcomes";
import { WORK_LANE } from "./WorkLane";

/** Longest gap between two checks that the work lane still holds a waiting task. */
const MAX_RECHECK_GAP_MS = 3_600_000;
/** A work lane that could not be reached is offered the task again this much later. */
const UNREACHABLE_RETRY_MS = 1000;
/** Longest a GET or a new subscriber waits for the work lane to say a position. */
const POSITION_TIMEOUT_MS = 2000;

/** What a pull task needs from its TaskCoordinator: the lifecycle steps every task shares. */
export interface PullTaskHost {
	/** The task's record now: a call that awaited something checks the task is still the same one. */
	record(): TaskRecord | null;
	/** Commits a change (with its event, if any) and points the alarm at the next deadline. */
	save(type?: TaskEventType, data?: Partial<Task>): Promise<void>;
	/** Writes the record alone: a change nobody is told of (a lease's new expiry). */
	persist(): void;
	/** Points the alarm at the next deadline. */
	schedule(): Promise<void>;
	/** Commits a waiting task, with a `queued` event if its position changed from `positionBefore`. */
	saveWaiting(r: TaskRecord, positionBefore: number | null): Promise<void>;
	/** The task has live subscribers (sockets, SSE streams, hubs): its lane pushes it its position. */
	watched(): boolean;
	/** Sets the running attempt's progress; false if `attempt` is no longer current or the value is unusable. */
	setProgress(r: TaskRecord, attempt: number, percent: unknown, message: unknown): boolean;
	/** Sends the running attempt's progress as an event. */
	flushProgress(r: TaskRecord, attempt: number): void;
	/** Back to queued, to run again after a backoff. */
	retryLater(r: TaskRecord, error: TaskError): Promise<void>;
	/** Ends the task (if `attempt` is still current): stored, everyone told, reported. */
	finish(attempt: number, status: TaskStatus, fields: { output?: Json; error?: TaskError }): Promise<void>;
	/** How often (in s) a waiting task re-checks with the lane at first (QUEUED_RECOVERY_S). */
	recheckS: number;
	/** The priority rule's head start (PRIORITY_OFFSET_S). */
	priorityOffsetS: number;
}

/**
 * A task of a `WORKER_TYPES` type, as its TaskCoordinator runs it: it never runs in the Worker.
 * It waits in the work lane (WorkLane.ts) until a worker's lease request takes it; the lane asks
 * the task's object to grant the lease. While leased, the object holds no timer and no
 * connection: the alarm at the lease's expiry (moved by each heartbeat) is the durable deadline,
 * so the object hibernates while the worker computes. Every call of a worker carries the lease
 * token; only the current lease may change the task.
 *
 * The record's `offered` (it waits in the lane), `queuePosition` (its place there), `lease` and
 * `attemptDeadline` are kept here; the coordinator stores the record as part of the change that
 * caused the call. Its position reaches subscribers as a Scheduler lane's does (PlaceInLine).
 */
export class PullTask implements PlaceInLine {
	/** Progress events of the current lease, at most PROGRESS_EVENTS_PER_S (made on first use). */
	private leaseProgress: { attempt: number; throttle: Throttle } | null = null;

	constructor(
		private readonly ctx: DurableObjectState,
		private readonly env: Env,
		private readonly files: TaskFiles,
		private readonly host: PullTaskHost,
	) {}

	// ---- calls of the work lane and of workers (the coordinator's RPC methods) ----

	/** The lane asks: lease this task to `workerId`, or null if it no longer waits (canceled, already leased). */
	async grantLease(r: TaskRecord | null, workerId: string): Promise<LeaseGrant | null> {
		const now = Date.now();
		if (!r?.pull || r.status !== "queued" || !r.dispatched || now < r.runAfter) return null;
		r.offered = false;
		r.queuePosition = null;
		r.status = "running";
		r.attempts += 1;
		r.startedAt = now;
		r.progress = null;
		r.error = null;
		r.lease = { token: newLeaseToken(r.attempts), workerId, expiresAt: now + r.pull.leaseS * 1000, reported: null };
		r.attemptDeadline = now + r.timeoutS * 1000;
		// queue_position: null, as a slot task's `running` event: subscribers stop showing a place.
		await this.host.save("running", {
			status: "running",
			attempts: r.attempts,
			started_at: new Date(now).toISOString(),
			queue_position: null,
		});
		return {
			task: { id: r.id, type: r.type, input: r.input, attempt: r.attempts, priority: r.priority },
			lease: { token: r.lease.token, expires_at: new Date(r.lease.expiresAt).toISOString(), heartbeat_s: heartbeatS(r.pull.leaseS) },
		};
	}

	/** A worker's heartbeat: extends the lease, relays progress; says when the task was canceled. */
	async heartbeat(
		r: TaskRecord | null,
		token: string,
		progress: { percent: number; message?: string | null } | null,
	): Promise<HeartbeatOutcome> {
		if (!r) return { kind: "unknown" };
		const now = Date.now();
		await this.lapseIfDue(r, now);
		if (r.status === "canceled" && r.lease?.token === token) {
			return { kind: "ok", expiresAt: r.lease.expiresAt, cancelRequested: true };
		}
		const lost = this.leaseLost(r, token);
		if (lost || !r.lease || !r.pull) return lost ?? { kind: "lease_lost", status: r.status, reason: "the task has no lease" };
		r.lease.expiresAt = now + r.pull.leaseS * 1000;
		const version = r.version;
		if (progress && this.host.setProgress(r, r.attempts, progress.percent, progress.message ?? undefined)) {
			this.progressThrottle(r).changed();
		}
		// Only the expiry changed: stored, but no event and no health report (the status did not
		// change); a progress event stored just now wrote the record with it already.
		if (r.version === version) this.host.persist();
		await this.host.schedule();
		return { kind: "ok", expiresAt: r.lease.expiresAt, cancelRequested: false };
	}

	/** The worker's output: the task succeeds. The same call repeated (a lost answer) is answered alike. */
	async complete(r: TaskRecord | null, token: string, output: Json): Promise<LeaseOutcome> {
		if (!r) return { kind: "unknown" };
		if (r.lease?.token === token && r.lease.reported === "complete") return { kind: "ok", status: r.status };
		await this.lapseIfDue(r, Date.now());
		const lost = this.leaseLost(r, token);
		if (lost || !r.lease) return lost ?? { kind: "lease_lost", status: r.status, reason: "the task has no lease" };
		// The same rule as a processor's output: JSON over 64 KiB is kept in R2, too large fails.
		const attempt = r.attempts;
		let stored: Json;
		try {
			stored = await this.files.prepareOutput(r.id, output);
		} catch (e) {
			if (!(e instanceof PermanentError)) throw e;
			if (r.lease) r.lease.reported = "complete";
			this.finishWithoutWaiting(attempt, "failed", { error: { code: e.code, message: e.message } });
			return { kind: "ok", status: r.status };
		}
		if (r.lease) r.lease.reported = "complete";
		r.runMs = Date.now() - (r.startedAt ?? Date.now());
		this.leaseProgress?.throttle.cancel();
		this.finishWithoutWaiting(attempt, "succeeded", { output: stored });
		return { kind: "ok", status: r.status };
	}

	/** The worker failed the attempt: retried after a backoff while it may be and attempts are left, else `failed`. */
	async fail(r: TaskRecord | null, token: string, error: TaskError, retryable: boolean): Promise<LeaseOutcome> {
		if (!r) return { kind: "unknown" };
		if (r.lease?.token === token && r.lease.reported === "fail") return { kind: "ok", status: r.status };
		await this.lapseIfDue(r, Date.now());
		const lost = this.leaseLost(r, token);
		if (lost || !r.lease) return lost ?? { kind: "lease_lost", status: r.status, reason: "the task has no lease" };
		r.lease.reported = "fail";
		r.runMs = Date.now() - (r.startedAt ?? Date.now());
		this.leaseProgress?.throttle.cancel();
		const stored = { code: error.code, message: error.message.slice(0, MAX_WORKER_ERROR_MESSAGE) };
		if (retryable && r.attempts < r.maxAttempts) await this.host.retryLater(r, stored);
		else this.finishWithoutWaiting(r.attempts, "failed", { error: stored });
		return { kind: "ok", status: r.status };
	}

	// ---- calls of the coordinator ----

	/** The task was submitted: it waits for a worker at once (after its delay_s: the alarm at runAfter offers it then). */
	async submitted(r: TaskRecord): Promise<void> {
		// Nothing runs in the Worker, so no queue message.
		r.dispatched = true;
		if (Date.now() >= r.runAfter) await this.offer(r);
		else await this.host.save();
	}

	/** A queue message for a pull task (none is sent for one; a stray one offers it, which is idempotent). */
	async dispatched(r: TaskRecord): Promise<void> {
		r.dispatched = true;
		await this.offer(r);
	}

	/** The task is being canceled: true if it waited in the work lane (then `withdraw` it once it is ended). */
	leavesLane(r: TaskRecord): boolean {
		const waiting = r.pull !== undefined && r.offered === true;
		// A leased task keeps its lease on record: the worker's next heartbeat is told to stop.
		r.offered = false;
		return waiting;
	}

	/** Takes a canceled task out of the work lane. */
	async withdraw(r: TaskRecord): Promise<void> {
		try {
			await this.env.WORK_LANE.getByName(WORK_LANE).withdraw(r.id);
		} catch (e) {
			// The lane drops it at its turn anyway: the grant is refused for an ended task.
			console.error(`task ${r.id}: withdrawing from the work lane failed: ${String(e)}`);
		}
	}

	/** The alarm of a pull task that has not ended: lease expiry, attempt deadline, or (re-)offering it to the lane. */
	async alarm(r: TaskRecord, now: number): Promise<void> {
		if (r.status === "running") {
			if (r.lease && now >= r.lease.expiresAt) await this.leaseLapsed(r);
			else if (r.attemptDeadline !== null && r.attemptDeadline !== undefined && now >= r.attemptDeadline) {
				this.leaseProgress?.throttle.cancel();
				await this.host.finish(r.attempts, "timed_out", {
					error: { code: "timeout", message: `Attempt ${r.attempts} exceeded timeout_s=${r.timeoutS}` },
				});
			} else await this.host.schedule();
		} else if (!r.dispatched || (now >= r.runAfter && (!r.offered || now >= r.recoverAt))) {
			// First offer (a restart lost it), due after a retry's backoff, or a periodic check that
			// the lane still has it (offering is idempotent).
			if (r.offered) r.recoveries += 1;
			r.dispatched = true;
			await this.offer(r);
		} else {
			await this.host.schedule();
		}
	}

	/** When the alarm of a pull task that has not ended must fire. */
	deadline(r: TaskRecord): number {
		if (r.status === "running") return Math.min(r.lease?.expiresAt ?? Date.now(), r.attemptDeadline ?? Infinity);
		if (!r.dispatched) return r.recoverAt;
		return r.offered ? r.recoverAt : r.runAfter;
	}

	// ---- its place in the work lane (PlaceInLine) ----

	/** True when `lane` is the lane the task waits in now. */
	waitsIn(r: TaskRecord, lane: string): boolean {
		return lane === WORK_LANE && inLine(r);
	}

	/** A position from the work lane: true if it differs from the one the task had. */
	heard(r: TaskRecord, position: number): boolean {
		const changed = r.queuePosition !== position;
		r.queuePosition = position;
		return changed;
	}

	/**
	 * Makes the task's position current before it is shown: for a new subscriber (`watched`: the
	 * lane then pushes it every change) or a GET. Unlike a Scheduler lane's task, a GET always
	 * asks (two indexed reads in the lane), so positions read one after another agree with each
	 * other. If the lane does not answer in time, the last position heard is shown.
	 */
	async refresh(r: TaskRecord, watched: boolean): Promise<void> {
		if (!inLine(r)) return;
		try {
			const lane = this.env.WORK_LANE.getByName(WORK_LANE);
			const position = await withTimeout(watched ? lane.watch(r.id, true) : lane.position(r.id), POSITION_TIMEOUT_MS, "the work lane");
			if (position !== null && inLine(r)) this.heard(r, position);
		} catch (e) {
			console.error(`task ${r.id}: queue position not refreshed: ${String(e)}`);
		}
	}

	// ---- the lease and the lane ----

	/**
	 * Puts the task in the work lane. If the lane cannot be reached the alarm tries again; while
	 * it waits there, a slow alarm (backing off to an hour) checks the lane still has it.
	 */
	private async offer(r: TaskRecord): Promise<void> {
		const positionBefore = inLine(r) ? r.queuePosition : null;
		let position: number | null = null;
		try {
			position = await this.env.WORK_LANE.getByName(WORK_LANE).offer({
				id: r.id,
				type: r.type,
				rank: rankOf(r.runAt, r.priority, this.host.priorityOffsetS),
				watched: this.host.watched(),
			});
		} catch (e) {
			console.error(`task ${r.id}: offering to the work lane failed, the alarm retries: ${String(e)}`);
		}
		// The lane may have leased it (or a cancel ended it) during the call: that stored its state.
		if (this.host.record() !== r || r.status !== "queued") return;
		r.offered = position !== null;
		if (position === null) r.runAfter = Date.now() + UNREACHABLE_RETRY_MS;
		else this.heard(r, position);
		r.recoverAt = Date.now() + Math.min(this.host.recheckS * 1000 * 2 ** r.recoveries, MAX_RECHECK_GAP_MS);
		await this.host.saveWaiting(r, positionBefore);
	}

	/** A lease past its expiry is over even if the alarm has not fired yet: no late call revives it. */
	private async lapseIfDue(r: TaskRecord, now: number): Promise<void> {
		if (r.pull && r.status === "running" && r.lease && now >= r.lease.expiresAt) await this.leaseLapsed(r);
	}

	/** The lease ran out without a heartbeat: the attempt counts; the task is leased again or fails `execution_lost`. */
	private async leaseLapsed(r: TaskRecord): Promise<void> {
		const worker = r.lease?.workerId ?? "?";
		const error = {
			code: "execution_lost",
			message: `Attempt ${r.attempts}: worker ${worker} sent no heartbeat for ${r.pull?.leaseS ?? "?"} s (its lease lapsed)`,
		};
		this.leaseProgress?.throttle.cancel();
		if (r.attempts >= r.maxAttempts) await this.host.finish(r.attempts, "failed", { error });
		else await this.host.retryLater(r, error);
	}

	/** Why `token` may not act on the task now (null: it is the running attempt's lease). */
	private leaseLost(r: TaskRecord, token: string): Exclude<LeaseOutcome, { kind: "ok" }> | null {
		if (!r.pull) return { kind: "lease_lost", status: r.status, reason: "the task runs inside the service, not on a worker" };
		if (r.lease?.token !== token) {
			return { kind: "lease_lost", status: r.status, reason: "another lease is current (this one lapsed, or the token is wrong)" };
		}
		if (r.status !== "running") return { kind: "lease_lost", status: r.status, reason: `the task is ${r.status}` };
		return null;
	}

	/**
	 * `finish` for a worker's call: the outcome is stored and every waiter told before its first
	 * await (commit is synchronous, and the output gate holds the reply until it is durable), so
	 * the worker is answered without waiting for the health report's batch and the alarm move,
	 * which go on here (the alarm, still at the lease's expiry, redoes both if they are lost).
	 */
	private finishWithoutWaiting(attempt: number, status: TaskStatus, fields: { output?: Json; error?: TaskError }): void {
		this.ctx.waitUntil(this.host.finish(attempt, status, fields));
	}

	/** The throttle of this lease's progress events (a new one per attempt). */
	private progressThrottle(r: TaskRecord): Throttle {
		if (this.leaseProgress?.attempt !== r.attempts) {
			this.leaseProgress?.throttle.cancel();
			const attempt = r.attempts;
			this.leaseProgress = {
				attempt,
				throttle: new Throttle(1000 / PROGRESS_EVENTS_PER_S, () => this.host.flushProgress(r, attempt)),
			};
		}
		return this.leaseProgress.throttle;
	}
}
