import { settings } from "../config";
import { withTimeout } from "../lib/timeout";
import type { TaskRecord } from "../task/model";
import { laneOf } from "./lanes";
import { rankOf } from "./rank";

/** A task waiting in line asks its lane again this long after it last heard from it (a lost grant or place). */
const RECHECK_MS = 300_000;
/** A lane that could not be reached is asked again this much later. */
const UNREACHABLE_RETRY_MS = 1_000;
/**
 * A release whose call fails (a dropped connection, an overloaded or restarting lane) is sent
 * again after each of these delays: left to the lane's lease check, the finished task's slot would
 * sit unused for up to LEASE_CHECK_MS (with a limit of 1, the whole lane). Releases are idempotent.
 */
const RELEASE_RETRY_MS = [100, 1_000, 5_000];
/** A position heard within this long is fresh enough to answer a GET; older, the lane is asked. */
const POSITION_FRESH_MS = 1_000;
/** Longest a GET or a new subscriber waits for the lane to say a position. */
const POSITION_TIMEOUT_MS = 2_000;

/**
 * A waiting task's place in the line of the lane it waits in, as its TaskCoordinator shows it:
 * a Scheduler lane's (TaskSlot) or, for a pull task, the work lane's (workers/pullTask.ts). Both
 * lanes push positions to watched tasks the same way (positionPushes.ts), so subscribers get the
 * same `queued` events whatever the task waits for.
 */
export interface PlaceInLine {
	/** True when the task waits in `lane`'s line now. */
	waitsIn(r: TaskRecord, lane: string): boolean;
	/** A position from the lane: true if it differs from the one the task had. */
	heard(r: TaskRecord, position: number): boolean;
	/** Makes the position current before it is shown (`watched`: a new subscriber; the lane then pushes changes). */
	refresh(r: TaskRecord, watched: boolean): Promise<void>;
}

/**
 * A task's side of its lane (see Scheduler.ts), used by its TaskCoordinator: ask for a slot,
 * give it back, learn the queue position. It keeps the record's `lane`, `laneState` and
 * `queuePosition` up to date; the coordinator stores the record as part of the change that
 * caused the call, so none of this costs a write of its own.
 */
export class TaskSlot implements PlaceInLine {
	/** When the queue position was last heard from the lane (memory only). */
	private positionAt = 0;

	constructor(
		private readonly ctx: DurableObjectState,
		private readonly env: Env,
	) {}

	/**
	 * Asks for a slot; true when the task may start now. A type without a limit never asks:
	 * true at once. Otherwise the task waits in line (`laneState` "waiting", `runAfter` set to
	 * when it asks again if it hears nothing) and its lane pushes the slot to it when its turn
	 * comes. Throws ConfigError when the limits are misconfigured.
	 */
	async acquire(r: TaskRecord, watched: () => boolean): Promise<boolean> {
		const lane = laneOf(this.env, r.type, r.input);
		if (!lane) {
			// A limit that was removed since the task joined a line: leave it.
			this.release(r);
			return true;
		}
		if (r.lane !== null && r.lane !== lane.lane) this.release(r);
		r.lane = lane.lane;
		// Set before asking, so a slot pushed while the answer is on its way is taken.
		if (r.laneState === "out") r.laneState = "waiting";
		const rank = rankOf(r.runAt, r.priority, settings(this.env).priorityOffsetS);
		let answer;
		try {
			answer = await this.stub(lane.lane).acquire({ lane: lane.lane, taskId: r.id, rank, limit: lane.concurrency, watched: watched() });
		} catch (e) {
			console.error(`task ${r.id}: lane ${lane.lane} unreachable, asking again: ${String(e)}`);
			r.runAfter = Date.now() + UNREACHABLE_RETRY_MS;
			return false;
		}
		if (r.status !== "queued" || r.laneState !== "waiting") {
			// Moved on while the lane answered: started by a pushed slot, or ended (its release may
			// have reached the lane before this request did: release again).
			if (r.status !== "running") this.sendRelease(lane.lane, r.id, () => r.status !== "running" && r.status !== "queued");
			return false;
		}
		if (answer.granted) {
			r.laneState = "holding";
			r.queuePosition = null;
			return true;
		}
		this.heard(r, answer.position);
		r.runAfter = Date.now() + RECHECK_MS;
		return false;
	}

	/** The lane pushed a slot (or checks one): true if the task takes it now. */
	takesOffered(r: TaskRecord, lane: string): boolean {
		if (r.lane !== lane || r.laneState !== "waiting" || r.status !== "queued" || !r.dispatched) return false;
		r.laneState = "holding";
		r.queuePosition = null;
		return true;
	}

	/** Gives the slot or the place back at once (the task ended, backs off, or was canceled). */
	release(r: TaskRecord): void {
		if (r.laneState === "out" || r.lane === null) return;
		r.laneState = "out";
		r.queuePosition = null;
		const lane = r.lane;
		// Sent again only while the task has not asked this lane again since (a retry's new place or slot is not freed).
		this.sendRelease(lane, r.id, () => r.laneState === "out" && r.lane === lane);
	}

	waitsIn(r: TaskRecord, lane: string): boolean {
		return r.status === "queued" && r.lane === lane && r.laneState === "waiting";
	}

	/** A position from the lane: true if it differs from the one the task had. */
	heard(r: TaskRecord, position: number): boolean {
		this.positionAt = Date.now();
		const changed = r.queuePosition !== position;
		r.queuePosition = position;
		return changed;
	}

	/**
	 * Makes the task's position current before it is shown: for a new subscriber (`watched`:
	 * the lane then pushes it every change) or a GET (asked only when the last one is stale).
	 */
	async refresh(r: TaskRecord, watched: boolean): Promise<void> {
		const lane = r.lane;
		if (r.laneState !== "waiting" || lane === null) return;
		if (!watched && Date.now() - this.positionAt < POSITION_FRESH_MS) return;
		try {
			const stub = this.stub(lane);
			const position = await withTimeout(watched ? stub.watch(r.id, true) : stub.position(r.id), POSITION_TIMEOUT_MS, `lane ${lane}`);
			if (position !== null && r.laneState === "waiting") this.heard(r, position);
		} catch (e) {
			console.error(`task ${r.id}: queue position not refreshed: ${String(e)}`);
		}
	}

	/** Gives the slot or place back; a failed call is sent again (RELEASE_RETRY_MS) while `stillWanted()` holds. */
	private sendRelease(lane: string, taskId: string, stillWanted: () => boolean): void {
		const send = async (): Promise<void> => {
			for (let attempt = 0; ; attempt++) {
				try {
					await this.stub(lane).release(lane, taskId);
					return;
				} catch (e) {
					const delay = RELEASE_RETRY_MS[attempt];
					if (delay === undefined) {
						console.error(`task ${taskId}: release in lane ${lane} failed ${attempt + 1} times (its lease check frees it): ${String(e)}`);
						return;
					}
					console.error(`task ${taskId}: release in lane ${lane} failed, sending it again in ${delay} ms: ${String(e)}`);
					await new Promise((resolve) => setTimeout(resolve, delay));
					if (!stillWanted()) return;
				}
			}
		};
		this.ctx.waitUntil(send());
	}

	private stub(lane: string) {
		return this.env.SCHEDULER.getByName(lane);
	}
}
