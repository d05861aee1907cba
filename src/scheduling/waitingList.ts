/** The group of a list whose entries are not grouped (a Scheduler lane: one line). */
const ONE_LINE = "";

/**
 * The tasks waiting in one lane, in the order they will leave it: by rank (see `rank.ts`), ties
 * by arrival. Kept in the lane object's SQLite, so a restart loses no place. Only the order lives
 * here; who gets the head (a free slot, or a worker's lease request) is the lane's business.
 *
 * Entries may be grouped: the work lane (workers/WorkLane.ts) keeps one group per pull-worker
 * type, because a worker leases by type, so a task's position counts only the tasks of its own
 * type ahead of it, while a worker that takes several types gets the first of all of them. A
 * Scheduler lane has a single group.
 */
export class WaitingList {
	private nextArrival: number;
	private count: number;
	/** How many entries have live subscribers: with none, nobody needs a position pushed. */
	private watchedCount: number;

	constructor(private readonly sql: SqlStorage) {
		// `waiting_line`, not the work lane's older `waiting` table (see WorkLane's constructor).
		sql.exec(`CREATE TABLE IF NOT EXISTS waiting_line (
				task_id TEXT PRIMARY KEY, grp TEXT NOT NULL, rank REAL NOT NULL, arrival INTEGER NOT NULL, watched INTEGER NOT NULL DEFAULT 0
			) WITHOUT ROWID;
			CREATE INDEX IF NOT EXISTS waiting_line_order ON waiting_line (grp, rank, arrival);`);
		const row = sql
			.exec<{ n: number; last: number | null; watched: number | null }>(
				"SELECT COUNT(*) AS n, MAX(arrival) AS last, SUM(watched) AS watched FROM waiting_line",
			)
			.one();
		this.count = row.n;
		this.nextArrival = (row.last ?? 0) + 1;
		this.watchedCount = row.watched ?? 0;
	}

	get size(): number {
		return this.count;
	}

	/** True when some waiting task has live subscribers. */
	get anyWatched(): boolean {
		return this.watchedCount > 0;
	}

	has(taskId: string): boolean {
		return this.sql.exec("SELECT 1 FROM waiting_line WHERE task_id = ?", taskId).toArray().length > 0;
	}

	/** Adds a task at its rank, in `group` (a task already waiting keeps its place). */
	add(taskId: string, rank: number, watched: boolean, group = ONE_LINE): void {
		const inserted = this.sql.exec(
			"INSERT OR IGNORE INTO waiting_line (task_id, grp, rank, arrival, watched) VALUES (?, ?, ?, ?, ?)",
			taskId,
			group,
			rank,
			this.nextArrival,
			watched ? 1 : 0,
		).rowsWritten;
		if (inserted > 0) {
			this.nextArrival += 1;
			this.count += 1;
			if (watched) this.watchedCount += 1;
		} else if (watched) {
			this.setWatched(taskId, true);
		}
	}

	/** Removes a task; false if it was not waiting. */
	remove(taskId: string): boolean {
		// Reading the row back costs a row read: only worth it while some task is watched.
		if (!this.anyWatched) {
			const removed = this.sql.exec("DELETE FROM waiting_line WHERE task_id = ?", taskId).rowsWritten > 0;
			if (removed) this.count -= 1;
			return removed;
		}
		const removed = this.sql.exec<{ watched: number }>("DELETE FROM waiting_line WHERE task_id = ? RETURNING watched", taskId).toArray()[0];
		if (!removed) return false;
		this.count -= 1;
		if (removed.watched === 1) this.watchedCount -= 1;
		return true;
	}

	/** The task that goes next among `groups` (by default the single group of an ungrouped list), or null. */
	head(groups: readonly string[] = [ONE_LINE]): string | null {
		let first: { task_id: string; rank: number; arrival: number } | undefined;
		// One index seek per group, rather than a sort of every waiting task of those groups.
		for (const group of groups) {
			const row = this.sql
				.exec<{ task_id: string; rank: number; arrival: number }>(
					"SELECT task_id, rank, arrival FROM waiting_line WHERE grp = ? ORDER BY rank, arrival LIMIT 1",
					group,
				)
				.toArray()[0];
			if (row && (!first || row.rank < first.rank || (row.rank === first.rank && row.arrival < first.arrival))) first = row;
		}
		return first?.task_id ?? null;
	}

	/** How many waiting tasks of its group go before this one (0 = next); null if it is not waiting. */
	position(taskId: string): number | null {
		const me = this.sql
			.exec<{ grp: string; rank: number; arrival: number }>("SELECT grp, rank, arrival FROM waiting_line WHERE task_id = ?", taskId)
			.toArray()[0];
		if (!me) return null;
		return this.sql
			.exec<{ n: number }>("SELECT COUNT(*) AS n FROM waiting_line WHERE grp = ? AND (rank, arrival) < (?, ?)", me.grp, me.rank, me.arrival)
			.one().n;
	}

	/** Whether the lane should push this task's position changes (it has live subscribers). */
	setWatched(taskId: string, watched: boolean): void {
		const flag = watched ? 1 : 0;
		const changed = this.sql.exec("UPDATE waiting_line SET watched = ? WHERE task_id = ? AND watched != ?", flag, taskId, flag).rowsWritten;
		if (changed > 0) this.watchedCount += watched ? 1 : -1;
	}

	/** The position of every watched task within its group, in one pass over the list (none: no pass). */
	watchedPositions(): { taskId: string; position: number }[] {
		if (!this.anyWatched) return [];
		return this.sql
			.exec<{ task_id: string; position: number }>(
				`SELECT task_id, position FROM (
					SELECT task_id, watched, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY rank, arrival) - 1 AS position FROM waiting_line
				) WHERE watched = 1`,
			)
			.toArray()
			.map((row) => ({ taskId: row.task_id, position: row.position }));
	}

	/** The first `limit` waiting tasks in order (diagnostics and tests). */
	list(limit: number): { taskId: string; rank: number; watched: boolean }[] {
		return this.sql
			.exec<{ task_id: string; rank: number; watched: number }>(
				"SELECT task_id, rank, watched FROM waiting_line ORDER BY rank, arrival LIMIT ?",
				limit,
			)
			.toArray()
			.map((row) => ({ taskId: row.task_id, rank: row.rank, watched: row.watched === 1 }));
	}
}
