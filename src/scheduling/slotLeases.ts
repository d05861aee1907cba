/**
 * The tasks holding one lane's slots. A slot is a lease: while anyone waits for the lane, the
 * lane asks each holder at least every `LEASE_CHECK_MS` whether it still runs (`slotOffered` on
 * the task's object), and a holder that does not (its instance died, it ended and its release
 * was lost, its object is gone) loses the slot. Holders are stored; when each was last confirmed
 * is kept in memory only, so a fresh lane instance counts every holder as confirmed at its start.
 */
export class SlotLeases {
	private readonly confirmedAt = new Map<string, number>();
	/** Holders whose grant or check did not get an answer: asked again soon, wanted or not. */
	private readonly unanswered = new Set<string>();
	private count: number;

	constructor(private readonly sql: SqlStorage) {
		sql.exec("CREATE TABLE IF NOT EXISTS holders (task_id TEXT PRIMARY KEY, granted_at INTEGER NOT NULL) WITHOUT ROWID");
		this.count = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM holders").one().n;
	}

	get size(): number {
		return this.count;
	}

	has(taskId: string): boolean {
		return this.sql.exec("SELECT 1 FROM holders WHERE task_id = ?", taskId).toArray().length > 0;
	}

	/** Gives `taskId` a slot; it counts as confirmed until its first check is due. */
	grant(taskId: string, now: number): void {
		const inserted = this.sql.exec("INSERT OR IGNORE INTO holders (task_id, granted_at) VALUES (?, ?)", taskId, now).rowsWritten;
		if (inserted > 0) this.count += 1;
		this.confirmedAt.set(taskId, now);
		this.unanswered.delete(taskId);
	}

	/** Frees `taskId`'s slot; false if it held none. */
	free(taskId: string): boolean {
		this.confirmedAt.delete(taskId);
		this.unanswered.delete(taskId);
		const removed = this.sql.exec("DELETE FROM holders WHERE task_id = ?", taskId).rowsWritten > 0;
		if (removed) this.count -= 1;
		return removed;
	}

	/** The holder said it still runs. */
	confirmed(taskId: string, now: number): void {
		if (!this.has(taskId)) return;
		this.confirmedAt.set(taskId, now);
		this.unanswered.delete(taskId);
	}

	/** The holder did not answer (a lost grant, an unreachable object): due again `retryMs` from now. */
	unconfirmed(taskId: string, now: number, leaseMs: number, retryMs: number): void {
		// It may have released the slot while the call was out (a slow answer, not a lost one).
		if (!this.has(taskId)) return;
		this.confirmedAt.set(taskId, now - leaseMs + retryMs);
		this.unanswered.add(taskId);
	}

	/** Some holder did not answer its grant or check: the lane must ask again even if nobody waits. */
	get anyUnanswered(): boolean {
		return this.unanswered.size > 0;
	}

	/** Holders last confirmed at or before `before` (all of them, in a fresh instance). */
	confirmedBefore(before: number): string[] {
		return this.ids().filter((id) => (this.confirmedAt.get(id) ?? -Infinity) <= before);
	}

	/** When the holder confirmed longest ago was confirmed (now, if one never was in this instance); null when none. */
	oldestConfirmation(now: number): number | null {
		if (this.count === 0) return null;
		let oldest = now;
		for (const id of this.ids()) oldest = Math.min(oldest, this.confirmedAt.get(id) ?? now);
		return oldest;
	}

	ids(): string[] {
		return this.sql
			.exec<{ task_id: string }>("SELECT task_id FROM holders ORDER BY granted_at")
			.toArray()
			.map((row) => row.task_id);
	}
}
