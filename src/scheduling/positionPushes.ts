import type { WaitingList } from "./waitingList";

/** Position updates of one task are pushed at most this often (like progress: 4 a second). */
const POSITION_FLUSH_MS = 250;
/** …and a lane spends at most about this long per second of pushes, so many watchers get fewer. */
const POSITION_PUSH_COST_MS = 4;

/**
 * Queue positions pushed from a lane to the waiting tasks that have live subscribers (WebSocket,
 * SSE, hubs), which turn each into a `queued` event. Used by every lane that keeps a line: a
 * Scheduler lane (slots) and the work lane (pull workers), so a subscriber sees the same events
 * whatever its task waits for.
 *
 * Pushes are coalesced: when positions move (a task joined, left or started), the new ones go
 * out at most every POSITION_FLUSH_MS, and less often when many are watched, so a lane spends at
 * most ~1/POSITION_PUSH_COST_MS of its time on them. Tasks nobody watches are never told, which
 * would cost a call per waiting task every time the line moves: a GET asks the lane.
 */
export class PositionPushes {
	/** What each watched task was last told, so an unchanged position is not pushed again. */
	private readonly told = new Map<string, number>();
	private flushTimer = 0;
	private lastFlushAt = 0;
	private flushIntervalMs = POSITION_FLUSH_MS;

	constructor(
		private readonly ctx: DurableObjectState,
		private readonly waiting: WaitingList,
		/** Tells the task's object its new position; false when nobody watches it any more. */
		private readonly push: (taskId: string, position: number) => Promise<boolean>,
		/** The lane's name, for logs (null: not known yet, nothing is pushed). */
		private readonly lane: () => string | null,
	) {}

	/** Positions moved: push the new ones to watched tasks (coalesced; nothing to do when none is watched). */
	changed(): void {
		if (this.flushTimer || !this.waiting.anyWatched) return;
		const wait = Math.max(0, this.lastFlushAt + this.flushIntervalMs - Date.now());
		this.flushTimer = setTimeout(() => {
			this.flushTimer = 0;
			this.lastFlushAt = Date.now();
			this.ctx.waitUntil(this.pushAll());
		}, wait);
	}

	/** The task has live subscribers (or no longer has): push its position changes (or stop). Its position now. */
	watch(taskId: string, watched: boolean): number | null {
		this.waiting.setWatched(taskId, watched);
		if (!watched) this.told.delete(taskId);
		const position = this.waiting.position(taskId);
		// The caller learns this position from the answer: only a change from it is pushed.
		if (position !== null && watched) this.told.set(taskId, position);
		return position;
	}

	/** The task left the line: nothing more is pushed to it. */
	forget(taskId: string): void {
		this.told.delete(taskId);
	}

	private async pushAll(): Promise<void> {
		const lane = this.lane();
		if (lane === null) return;
		const changed = this.waiting.watchedPositions().filter(({ taskId, position }) => this.told.get(taskId) !== position);
		this.flushIntervalMs = Math.max(POSITION_FLUSH_MS, changed.length * POSITION_PUSH_COST_MS);
		await Promise.all(
			changed.map(async ({ taskId, position }) => {
				this.told.set(taskId, position);
				try {
					if (!(await this.push(taskId, position))) {
						this.waiting.setWatched(taskId, false);
						this.told.delete(taskId);
					}
				} catch (e) {
					this.told.delete(taskId);
					console.error(`lane ${lane}: position push to ${taskId} failed: ${String(e)}`);
				}
			}),
		);
	}
}
