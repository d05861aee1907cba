import { DurableObject } from "cloudflare:workers";
import { PositionPushes } from "../scheduling/positionPushes";
import { WaitingList } from "../scheduling/waitingList";
import type { LeaseGrant } from "./lease";

/** A task waiting for a worker: its place is `rank` (the priority rule), ties by arrival. */
export interface WaitingTask {
	id: string;
	type: string;
	rank: number;
	/** The task has live subscribers: push it its position when it changes. */
	watched: boolean;
}

/** A held `POST /v1/work/lease`: answered with the first task of its types, or null at its deadline. */
interface LeaseRequest {
	types: readonly string[];
	workerId: string;
	resolve(grant: LeaseGrant | null): void;
	timer: ReturnType<typeof setTimeout>;
	/** A grant is being made to it (it left the list); its deadline may pass meanwhile. */
	granting: boolean;
	expired: boolean;
}

/** The one lane that holds every pull-worker task waiting for a lease, and the workers waiting for one. */
export const WORK_LANE = "work";

/**
 * Where pull-worker tasks wait for a worker, and workers for a task. Tasks wait in the same kind
 * of line as a Scheduler lane's (scheduling/waitingList.ts: in SQLite, in the order of the
 * priority rule, so a restart loses none), one group per type: a task's position counts the
 * tasks of its type ahead of it. Watched tasks get their position pushed as it changes, as in a
 * Scheduler lane (scheduling/positionPushes.ts). Lease requests are the live calls of the API,
 * held in memory until their `wait_s` ends. Whenever both sides have someone, the oldest request
 * gets the first task of its types: this object removes the task from the list, then asks the
 * task's own object to grant the lease (which it refuses if the task was canceled meanwhile, and
 * the next one is tried). Grants are made one at a time, so a task goes to exactly one request.
 * Task objects do not wait on this object: a waiting task costs nothing but its row here.
 *
 * It is one object for every pull type, unlike the one-per-lane Scheduler, because a lease
 * request may name several types and must be answered by the first task of any of them.
 */
export class WorkLane extends DurableObject<Env> {
	private readonly sql = this.ctx.storage.sql;
	private readonly waiting: WaitingList;
	private readonly positions: PositionPushes;
	private readonly requests: LeaseRequest[] = [];
	/** The matching loop; calls chain on it so only one runs at a time. */
	private matching: Promise<void> = Promise.resolve();

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.waiting = new WaitingList(this.sql);
		this.adoptOldList();
		this.positions = new PositionPushes(
			ctx,
			this.waiting,
			async (taskId, position) => await env.TASKS.getByName(taskId).queuePositionChanged(WORK_LANE, position),
			() => WORK_LANE,
		);
	}

	/** A task waits for a worker (idempotent). Returns its queue position. */
	async offer(task: WaitingTask): Promise<number> {
		this.waiting.add(task.id, task.rank, task.watched, task.type);
		// The caller learns its position from the answer; tasks it went ahead of are told.
		const position = task.watched ? this.positions.watch(task.id, true) : this.waiting.position(task.id);
		this.positions.changed();
		if (this.requests.length > 0) this.kick();
		return position ?? 0;
	}

	/** A waiting task ended (canceled) or no longer waits: it leaves the list. */
	async withdraw(id: string): Promise<void> {
		this.positions.forget(id);
		if (this.waiting.remove(id)) this.positions.changed();
	}

	/** How many waiting tasks of the same type a worker gets before this one (0 = next); null if it does not wait. */
	async position(id: string): Promise<number | null> {
		return this.waiting.position(id);
	}

	/** The task has live subscribers (or no longer has): push its position changes (or stop). Its position now. */
	async watch(id: string, watched: boolean): Promise<number | null> {
		return this.positions.watch(id, watched);
	}

	/** Waits up to `waitMs` for a task of `types`; null if none came. */
	async lease(types: string[], workerId: string, waitMs: number): Promise<LeaseGrant | null> {
		return new Promise<LeaseGrant | null>((resolve) => {
			const request: LeaseRequest = {
				types,
				workerId,
				resolve,
				granting: false,
				expired: false,
				timer: setTimeout(() => {
					request.expired = true;
					if (request.granting) return;
					this.drop(request);
					resolve(null);
				}, waitMs),
			};
			this.requests.push(request);
			this.kick();
		});
	}

	private drop(request: LeaseRequest): void {
		const i = this.requests.indexOf(request);
		if (i >= 0) this.requests.splice(i, 1);
	}

	private kick(): void {
		this.matching = this.matching.then(() => this.match()).catch((e: unknown) => console.error(`work lane: matching failed: ${String(e)}`));
	}

	/** Pairs requests and tasks until one side runs out. */
	private async match(): Promise<void> {
		for (;;) {
			let pair: { request: LeaseRequest; id: string } | null = null;
			for (const request of this.requests) {
				const id = this.waiting.head(request.types);
				if (id !== null) {
					pair = { request, id };
					break;
				}
			}
			if (!pair) return;
			const { request, id } = pair;
			// The task leaves the list before the call: nothing else can hand it out meanwhile.
			this.waiting.remove(id);
			this.positions.forget(id);
			this.positions.changed();
			this.drop(request);
			request.granting = true;
			let grant: LeaseGrant | null = null;
			try {
				grant = await this.env.TASKS.getByName(id).grantLease(request.workerId);
			} catch (e) {
				// The task's own alarm offers it again if it still waits; it is not lost.
				console.error(`work lane: task ${id}: lease grant failed: ${String(e)}`);
			}
			request.granting = false;
			if (grant) {
				clearTimeout(request.timer);
				request.resolve(grant);
			} else if (request.expired) {
				request.resolve(null);
			} else {
				// The task had ended (canceled) or was not leasable: this request stays first in line.
				this.requests.unshift(request);
			}
		}
	}

	/**
	 * Lanes stored before the waiting list was shared kept their own `waiting` table: its tasks
	 * move to the shared list once, in their order, so none loses its place.
	 */
	private adoptOldList(): void {
		const old = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'waiting'").toArray().length > 0;
		if (!old) return;
		const rows = this.sql.exec<{ id: string; type: string; rank: number }>("SELECT id, type, rank FROM waiting ORDER BY seq").toArray();
		for (const row of rows) this.waiting.add(row.id, row.rank, false, row.type);
		this.sql.exec("DROP TABLE waiting");
	}
}
