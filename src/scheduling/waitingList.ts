/**
 * The tasks waiting for one lane's slots, in the order they will get them: by rank (see
 * `rank.ts`), ties by arrival. Kept in the lane object's SQLite, so a restart loses no place.
 * Only the order lives here; who gets the head (a free slot, or a worker's lease request) is the
 * lane's business.
 */
export class WaitingList {
	private nextArrival: number;
	private count: number;

	constructor(private readonly sql: SqlStorage) {
		sql.exec(`CREATE TABLE IF NOT EXISTS waiting (
				task_id TEXT PRIMARY KEY, rank REAL NOT NULL, arrival INTEGER NOT NULL, watched INTEGER NOT NULL DEFAULT 0
			) WITHOUT ROWID;
			CREATE INDEX IF NOT EXISTS waiting_order ON waiting (rank, arrival);`);
		const row = sql.exec<{ n: number; last: number | null }>("SELECT COUNT(*) AS n, MAX(arrival) AS last FROM waiting").one();
		this.count = row.n;
		this.nextArrival = (row.last ?? 0) + 1;
	}

	get size(): number {
		return this.count;
	}

	has(taskId: string): boolean {
		return this.sql.exec("SELECT 1 FROM waiting WHERE task_id = ?", taskId).toArray().length > 0;
	}

	/** Adds a task at its rank (a task already waiting keeps its place). */
	add(taskId: string, rank: number, watched: boolean): void {
		const inserted = this.sql.exec(
			"INSERT OR IGNORE INTO waiting (task_id, rank, arrival, watched) VALUES (?, ?, ?, ?)",
			taskId,
			rank,
			this.nextArrival,
			watched ? 1 : 0,
		).rowsWritten;
		if (inserted > 0) {
			this.nextArrival += 1;
			this.count += 1;
		}
	}

	/** Removes a task; false if it was not waiting. */
	remove(taskId: string): boolean {
		const removed = this.sql.exec("DELETE FROM waiting WHERE task_id = ?", taskId).rowsWritten > 0;
		if (removed) this.count -= 1;
		return removed;
	}

	/** The task that goes next, or null. */
	head(): string | null {
		return this.sql.exec<{ task_id: string }>("SELECT task_id FROM waiting ORDER BY rank, arrival LIMIT 1").toArray()[0]?.task_id ?? null;
	}

	/** How many waiting tasks go before this one (0 = next); null if it is not waiting. */
	position(taskId: string): number | null {
		const me = this.sql.exec<{ rank: number; arrival: number }>("SELECT rank, arrival FROM waiting WHERE task_id = ?", taskId).toArray()[0];
		if (!me) return null;
		return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM waiting WHERE (rank, arrival) < (?, ?)", me.rank, me.arrival).one().n;
	}

	/** Whether the lane should push this task's position changes (it has live subscribers). */
	setWatched(taskId: string, watched: boolean): void {
		this.sql.exec("UPDATE waiting SET watched = ? WHERE task_id = ? AND watched != ?", watched ? 1 : 0, taskId, watched ? 1 : 0);
	}

	/** The position of every watched task, in one pass over the list. */
	watchedPositions(): { taskId: string; position: number }[] {
		return this.sql
			.exec<{ task_id: string; position: number }>(
				`SELECT task_id, position FROM (
					SELECT task_id, watched, ROW_NUMBER() OVER (ORDER BY rank, arrival) - 1 AS position FROM waiting
				) WHERE watched = 1`,
			)
			.toArray()
			.map((row) => ({ taskId: row.task_id, position: row.position }));
	}

	/** The first `limit` waiting tasks in order (diagnostics and tests). */
	list(limit: number): { taskId: string; rank: number; watched: boolean }[] {
		return this.sql
			.exec<{ task_id: string; rank: number; watched: number }>(
				"SELECT task_id, rank, watched FROM waiting ORDER BY rank, arrival LIMIT ?",
				limit,
			)
			.toArray()
			.map((row) => ({ taskId: row.task_id, rank: row.rank, watched: row.watched === 1 }));
	}
}
