import { DurableObject } from "cloudflare:workers";
import { zeroCounts, type TaskStatus } from "../task/model";

export type StatusCounts = Record<TaskStatus, number>;

/** A task's status as of `version`; `null` means the task expired and no longer counts. */
export interface StatusReport {
	id: string;
	version: number;
	status: TaskStatus | null;
}

/**
 * One shard of the health counters. Task objects report their status changes here, off the
 * request path and batched per isolate (`src/health/reports.ts`); `GET /health` sums the shards.
 * A row per live task (rather than +1/-1 counters) keeps the counts right when a report is
 * repeated, and `version` drops reports that arrive late.
 */
export class StatsShard extends DurableObject<Env> {
	private readonly sql = this.ctx.storage.sql;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		// WITHOUT ROWID: the key is the table, so a report writes one row, not a row and an index entry.
		this.sql.exec(
			"CREATE TABLE IF NOT EXISTS task_status (id TEXT PRIMARY KEY, version INTEGER NOT NULL, status TEXT NOT NULL) WITHOUT ROWID",
		);
	}

	/** Records a batch of reports in one write. */
	reportMany(reports: StatusReport[]): void {
		for (const { id, version, status } of reports) this.report(id, version, status);
	}

	/** Records a task's status; `null` means the task expired and no longer counts. */
	report(id: string, version: number, status: TaskStatus | null): void {
		if (status === null) {
			this.sql.exec("DELETE FROM task_status WHERE id = ? AND version <= ?", id, version);
			return;
		}
		this.sql.exec(
			`INSERT INTO task_status (id, version, status) VALUES (?, ?, ?)
			 ON CONFLICT (id) DO UPDATE SET version = excluded.version, status = excluded.status
			 WHERE excluded.version > task_status.version`,
			id,
			version,
			status,
		);
	}

	counts(): StatusCounts {
		const counts = zeroCounts();
		for (const row of this.sql.exec<{ status: TaskStatus; n: number }>("SELECT status, COUNT(*) AS n FROM task_status GROUP BY status")) {
			counts[row.status] = row.n;
		}
		return counts;
	}
}

/** Health shard number `index` (0 ≤ index < HEALTH_SHARDS): the one place that names them. */
export function statsShard(env: Env, index: number): DurableObjectStub<StatsShard> {
	return env.STATS.getByName(`shard-${index}`);
}

/** The shard of a task created before tasks carried their shard (FNV-1a of the id). */
export function shardIndexFor(id: string, shards: number): number {
	let hash = 0x811c9dc5;
	for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193) >>> 0;
	return hash % shards;
}
