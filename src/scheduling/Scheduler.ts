import { DurableObject } from "cloudflare:workers";
import { withTimeout } from "../lib/timeout";
import { PositionPushes } from "./positionPushes";
import { SlotLeases } from "./slotLeases";
import { WaitingList } from "./waitingList";

/**
 * While a task waits for the lane, every holder is asked at least this often whether it still
 * runs: a dead holder loses its slot within it, once the slot is wanted.
 */
export const LEASE_CHECK_MS = 20_000;
/** A holder that does not answer a grant or a check within this long is asked again RETRY_MS later. */
const CHECK_TIMEOUT_MS = 5_000;
const RETRY_MS = 2_000;

/** A task asks its lane for a slot. */
export interface SlotRequest {
	/** The lane's name, e.g. `type:sleep` or `origin:gpu` (see lanes.ts). */
	lane: string;
	taskId: string;
	/** Its place: lower goes first (see rank.ts). */
	rank: number;
	/** The lane's limit as the caller's config says now; the latest one given applies. */
	limit: number;
	/** The task has live subscribers: push it its position when it changes. */
	watched: boolean;
}

export type SlotAnswer = { granted: true } | { granted: false; position: number };

/** What a lane holds, for tests and diagnostics. */
export interface LaneState {
	lane: string | null;
	limit: number;
	holders: string[];
	waiting: { taskId: string; rank: number; watched: boolean }[];
}

/**
 * One object per lane (`type:<T>` for a type with a concurrency limit, `origin:<name>` for an
 * http origin): the tasks waiting for the lane's slots, in order, and the slots' holders.
 *
 * A task asks for a slot with `acquire` and gets it at once, or a place in line; then its object
 * hibernates. When a slot frees (`release`, or a holder found dead), the lane takes the next
 * waiting task and pushes the slot to that task's object (`slotOffered`), which starts at once:
 * no polling, no queue hop. Lanes are only ever touched by tasks of limited types.
 *
 * Slots are leases, checked by the lane (see slotLeases.ts): while anyone waits, the alarm asks
 * each holder at least every LEASE_CHECK_MS whether it still runs. Nobody waiting, nobody needs
 * a slot back, and a lane costs nothing but its two calls per task. The same call that grants a
 * slot also checks it, so a lost grant is repaired by asking again.
 */
export class Scheduler extends DurableObject<Env> {
	private readonly sql = this.ctx.storage.sql;
	private readonly waiting: WaitingList;
	private readonly slots: SlotLeases;
	private lane: string | null;
	private limit: number;
	/** The alarm this instance set (null: unknown, read it before relying on it). */
	private alarmAt: number | null = null;
	/** Queue positions pushed to the waiting tasks that are watched (positionPushes.ts). */
	private readonly positions: PositionPushes;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		// The lane's name and latest limit, one row (the object does not know the name it is called by).
		this.sql.exec("CREATE TABLE IF NOT EXISTS lane (id INTEGER PRIMARY KEY CHECK (id = 1), name TEXT NOT NULL, lim INTEGER NOT NULL)");
		const meta = this.sql.exec<{ name: string; lim: number }>("SELECT name, lim FROM lane").toArray()[0];
		this.lane = meta?.name ?? null;
		this.limit = meta?.lim ?? 1;
		this.waiting = new WaitingList(this.sql);
		this.slots = new SlotLeases(this.sql);
		this.positions = new PositionPushes(
			ctx,
			this.waiting,
			(taskId, position) => this.pushPosition(taskId, position),
			() => this.lane,
		);
	}

	// ---- RPC: called by task objects ----

	/**
	 * A task wants a slot: granted at once if one is free and nobody waits ahead of it, else it
	 * waits at its rank and is told its position. Idempotent: a holder is told it holds, a
	 * waiting task keeps its place.
	 */
	async acquire(req: SlotRequest): Promise<SlotAnswer> {
		this.configure(req.lane, req.limit);
		if (this.slots.has(req.taskId)) {
			this.slots.confirmed(req.taskId, Date.now());
			return { granted: true };
		}
		if (this.waiting.has(req.taskId)) {
			if (req.watched) this.waiting.setWatched(req.taskId, true);
		} else if (this.waiting.size === 0 && this.slots.size < this.limit) {
			// Nobody waits and a slot is free: one write (the holder), not a pass through the line.
			this.slots.grant(req.taskId, Date.now());
			return { granted: true };
		} else {
			this.waiting.add(req.taskId, req.rank, req.watched);
			// A slot is wanted now: the holders' leases count from here.
			this.ctx.waitUntil(this.ensureAlarm());
		}
		const mine = this.grantFreeSlots(req.taskId);
		if (mine) return { granted: true };
		this.positions.changed();
		return { granted: false, position: this.waiting.position(req.taskId) ?? 0 };
	}

	/** A task ended, backs off, or was canceled: its slot or its place is freed at once. Idempotent. */
	async release(lane: string, taskId: string): Promise<void> {
		this.configure(lane, this.limit);
		const held = this.slots.free(taskId);
		const waited = this.waiting.remove(taskId);
		this.positions.forget(taskId);
		if (held) this.grantFreeSlots(null);
		if (held || waited) this.positions.changed();
	}

	/** The task's position now (0 = next), or null if it is not waiting. */
	async position(taskId: string): Promise<number | null> {
		return this.waiting.position(taskId);
	}

	/** The task has live subscribers (or no longer has): push its position changes (or stop). */
	async watch(taskId: string, watched: boolean): Promise<number | null> {
		return this.positions.watch(taskId, watched);
	}

	/** Holders and waiting tasks in order (the first `max`), for tests and diagnostics. */
	async describe(max = 1000): Promise<LaneState> {
		return { lane: this.lane, limit: this.limit, holders: this.slots.ids(), waiting: this.waiting.list(max) };
	}

	// ---- the grant step ----

	/**
	 * Gives free slots to the waiting tasks in order and pushes each its slot. Returns true if
	 * `caller` got one (it is answered directly, not pushed to). The order is the waiting list's
	 * alone (the work lane hands its head to lease requests the same way).
	 */
	private grantFreeSlots(caller: string | null): boolean {
		let mine = false;
		const now = Date.now();
		while (this.waiting.size > 0 && this.slots.size < this.limit) {
			const next = this.waiting.head();
			if (next === null) break;
			this.waiting.remove(next);
			this.positions.forget(next);
			this.slots.grant(next, now);
			if (next === caller) mine = true;
			else this.ctx.waitUntil(this.offer(next));
		}
		if (this.slots.size > 0) this.ctx.waitUntil(this.ensureAlarm());
		return mine;
	}

	/**
	 * Offers (or re-confirms) `taskId`'s slot to its object. It answers whether it holds the slot:
	 * a waiting task starts and says yes; a running one says yes; a task that ended, was canceled
	 * or lost its attempt says no, and the slot goes to the next. Unreachable: asked again at the
	 * next check; the slot stays held meanwhile (it may be running).
	 */
	private async offer(taskId: string): Promise<void> {
		const lane = this.lane;
		if (lane === null) return;
		let holds: boolean;
		try {
			holds = await withTimeout(this.env.TASKS.getByName(taskId).slotOffered(lane), CHECK_TIMEOUT_MS, "slot check");
		} catch (e) {
			console.error(`lane ${lane}: task ${taskId}: ${String(e)}`);
			this.slots.unconfirmed(taskId, Date.now(), LEASE_CHECK_MS, RETRY_MS);
			await this.ensureAlarm();
			return;
		}
		if (holds) {
			this.slots.confirmed(taskId, Date.now());
		} else if (this.slots.free(taskId)) {
			this.grantFreeSlots(null);
			this.positions.changed();
		}
	}

	// ---- leases: the alarm checks every holder ----

	/**
	 * Checks the holders. The alarm is set for when the longest-unconfirmed holder's lease runs
	 * out, so no holder goes unchecked longer than LEASE_CHECK_MS; each alarm also checks those
	 * past half their lease, so alarms come at most about twice per lease however many hold.
	 */
	override async alarm(): Promise<void> {
		this.alarmAt = null;
		if (!this.checksNeeded()) return;
		const due = this.slots.confirmedBefore(Date.now() - LEASE_CHECK_MS / 2);
		await Promise.all(due.map((taskId) => this.offer(taskId)));
		await this.ensureAlarm();
	}

	/** Holders are checked only while a slot is wanted, or a grant went unanswered. */
	private checksNeeded(): boolean {
		return this.slots.size > 0 && (this.waiting.size > 0 || this.slots.anyUnanswered);
	}

	/** While checks are needed, the alarm is set for the next lease to run out. */
	private async ensureAlarm(): Promise<void> {
		if (!this.checksNeeded()) return;
		const oldest = this.slots.oldestConfirmation(Date.now());
		if (oldest === null) return;
		const at = oldest + LEASE_CHECK_MS;
		this.alarmAt ??= await this.ctx.storage.getAlarm();
		if (this.alarmAt !== null && this.alarmAt <= at) return;
		this.alarmAt = at;
		await this.ctx.storage.setAlarm(at);
	}

	/** Tells a waiting task's object its new position (positionPushes.ts); false: nobody watches it now. */
	private async pushPosition(taskId: string, position: number): Promise<boolean> {
		const lane = this.lane;
		return lane !== null && (await this.env.TASKS.getByName(taskId).queuePositionChanged(lane, position));
	}

	/** Remembers the lane's name and its latest limit (stored only when they change). */
	private configure(lane: string, limit: number): void {
		if (lane === this.lane && limit === this.limit) return;
		const raised = limit > this.limit;
		this.lane = lane;
		this.limit = limit;
		this.sql.exec("INSERT OR REPLACE INTO lane (id, name, lim) VALUES (1, ?, ?)", lane, limit);
		if (raised) this.grantFreeSlots(null);
	}
}
