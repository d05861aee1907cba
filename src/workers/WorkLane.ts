import { DurableObject } from "cloudflare:workers";
import type { LeaseGrant } from "./lease";

/** A task waiting for a worker: its place is `rank` (the priority rule), ties by arrival. */
export interface WaitingTask {
	id: string;
	type: string;
	rank: number;
}

/** A held `POST /v1/work/lease`: answered with the first task of its types, or null at its deadline. */
interface LeaseRequest {
	types: ReadonlySet<string>;
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
 * Where pull-worker tasks wait for a worker, and workers for a task. Tasks are kept in SQLite in
 * the order of the priority rule (rank, then arrival), so a restart loses none; lease requests
 * are the live calls of the API, held in memory until their `wait_s` ends. Whenever both sides
 * have someone, the oldest request gets the first task of its types: this object removes the
 * task from the list, then asks the task's own object to grant the lease (which it refuses if
 * the task was canceled meanwhile, and the next one is tried). Grants are made one at a time, so
 * a task goes to exactly one request. Task objects do not wait on this object: a waiting task
 * costs nothing but its row here.
 */
export class WorkLane extends DurableObject<Env> {
	private readonly sql = this.ctx.storage.sql;
	private readonly requests: LeaseRequest[] = [];
	/** The matching loop; calls chain on it so only one runs at a time. */
	private matching: Promise<void> = Promise.resolve();

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.sql
			.exec(`CREATE TABLE IF NOT EXISTS waiting (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, rank INTEGER NOT NULL);
			CREATE INDEX IF NOT EXISTS waiting_order ON waiting (type, rank, seq);`);
	}

	/** A task waits for a worker (idempotent). Returns its queue position. */
	async offer(task: WaitingTask): Promise<number> {
		this.sql.exec("INSERT OR IGNORE INTO waiting (id, type, rank) VALUES (?, ?, ?)", task.id, task.type, Math.round(task.rank));
		const position = this.position(task.id) ?? 0;
		if (this.requests.length > 0) this.kick();
		return position;
	}

	/** A waiting task ended (canceled) or no longer waits: it leaves the list. */
	async withdraw(id: string): Promise<void> {
		this.sql.exec("DELETE FROM waiting WHERE id = ?", id);
	}

	/** How many waiting tasks of the same type a worker gets before this one (0 = next); null if it does not wait. */
	async queuePosition(id: string): Promise<number | null> {
		return this.position(id);
	}

	/** Waits up to `waitMs` for a task of `types`; null if none came. */
	async lease(types: string[], workerId: string, waitMs: number): Promise<LeaseGrant | null> {
		return new Promise<LeaseGrant | null>((resolve) => {
			const request: LeaseRequest = {
				types: new Set(types),
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

	private position(id: string): number | null {
		const row = this.sql
			.exec<{ type: string; rank: number; seq: number }>("SELECT type, rank, seq FROM waiting WHERE id = ?", id)
			.toArray()[0];
		if (!row) return null;
		const ahead = this.sql
			.exec<{ n: number }>(
				"SELECT COUNT(*) AS n FROM waiting WHERE type = ? AND (rank < ? OR (rank = ? AND seq < ?))",
				row.type,
				row.rank,
				row.rank,
				row.seq,
			)
			.one();
		return ahead.n;
	}

	private drop(request: LeaseRequest): void {
		const i = this.requests.indexOf(request);
		if (i >= 0) this.requests.splice(i, 1);
	}

	private kick(): void {
		this.matching = this.matching.then(() => this.match()).catch((e: unknown) => console.error(`work lane: matching failed: ${String(e)}`));
	}

	/** The first waiting task of any of `types`, by the priority rule. */
	private first(types: ReadonlySet<string>): { id: string } | undefined {
		const list = [...types];
		return this.sql
			.exec<{ id: string }>(`SELECT id FROM waiting WHERE type IN (${list.map(() => "?").join(",")}) ORDER BY rank, seq LIMIT 1`, ...list)
			.toArray()[0];
	}

	/** Pairs requests and tasks until one side runs out. */
	private async match(): Promise<void> {
		for (;;) {
			let pair: { request: LeaseRequest; id: string } | null = null;
			for (const request of this.requests) {
				const task = this.first(request.types);
				if (task) {
					pair = { request, id: task.id };
					break;
				}
			}
			if (!pair) return;
			const { request, id } = pair;
			// The task leaves the list before the call: nothing else can hand it out meanwhile.
			this.sql.exec("DELETE FROM waiting WHERE id = ?", id);
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
}
