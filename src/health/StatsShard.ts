import { DurableObject } from "cloudflare:workers";
import type { ListingEntry } from "../listing/row";
import { zeroCounts, type TaskStatus } from "../task/model";

export type StatusCounts = Record<TaskStatus, number>;

/** A task's status as of `version`; `null` means the task expired and no longer counts. */
export interface StatusReport {
	id: string;
	version: number;
	status: TaskStatus | null;
	/** When the task was created (epoch ms): with the id, the row's key. */
	createdAt?: number;
	/** What the task listing shows of it (absent when it expired). */
	listing?: ListingEntry;
}

/** A page request to one shard: its newest rows, older than `before`, matching the filters. */
export interface ShardListQuery {
	statuses: TaskStatus[] | null;
	type: string | null;
	/** Keyset position: rows strictly older than (createdAt, id). */
	before: { createdAt: number; id: string } | null;
	limit: number;
	/** Rows of tasks expired by then are left out (their expiry report may still be on its way). */
	now: number;
}

/** A row as a shard returns it: the order key and the stored JSON row. */
export interface ShardListRow {
	createdAt: number;
	id: string;
	row: string;
}

/**
 * One of the health shards, which are also the task listing's index. Task objects report their
 * status changes here, off the request path and batched per isolate (`src/health/reports.ts`);
 * `GET /health` sums the shards' counts and `GET /v1/tasks` merges their rows newest first
 * (`src/listing/query.ts`). A row per live task (rather than +1/-1 counters) keeps the counts
 * right when a report is repeated, and `version` drops reports that arrive late.
 *
 * The listing costs no write of its own. Each report carries the task's listing row, written by
 * the same statement, and the table is keyed, and so stored, in the listing's order: by
 * (created_at, id), WITHOUT ROWID. A report writes one row and no index entry; a page is a walk
 * down the key from the cursor. Rows go when their task expires.
 */
export class StatsShard extends DurableObject<Env> {
	private readonly sql = this.ctx.storage.sql;
	/** Rows carried over from a status-only table (no creation time yet): see `report`. */
	private legacyRows: boolean;

	constructor(ctx: DurableObjectState, env: Env) {
		super(ctx, env);
		this.sql.exec(`CREATE TABLE IF NOT EXISTS tasks (
				created_at INTEGER NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL,
				type TEXT NOT NULL DEFAULT '', expires_at INTEGER, row TEXT, PRIMARY KEY (created_at, id)
			) WITHOUT ROWID`);
		// Shards written before the listing kept statuses only, by id: carry them over with creation
		// time 0 (they count at once; their next report moves them to their place in the listing).
		const old = this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'task_status'").toArray().length > 0;
		if (old) {
			this.sql.exec("INSERT OR IGNORE INTO tasks (created_at, id, version, status) SELECT 0, id, version, status FROM task_status");
			this.sql.exec("DROP TABLE task_status");
		}
		this.legacyRows = this.sql.exec("SELECT 1 FROM tasks WHERE created_at = 0 LIMIT 1").toArray().length > 0;
	}

	/**
	 * Records a batch of reports. Each stands alone: one that cannot be stored does not cost the
	 * others theirs. Returns the rows SQLite wrote (the billed unit, for cost accounting) and the
	 * positions of the reports not recorded (their tasks send them again).
	 */
	reportMany(reports: StatusReport[]): { rowsWritten: number; failed: number[] } {
		let rowsWritten = 0;
		const failed: number[] = [];
		reports.forEach((report, i) => {
			try {
				rowsWritten += this.report(report);
			} catch (e) {
				console.error(`health shard: report for task ${report.id} not recorded: ${String(e)}`);
				failed.push(i);
			}
		});
		return { rowsWritten, failed };
	}

	/** Records a task's status (and listing row); `status: null` means the task expired. Returns the rows written. */
	report({ id, version, status, createdAt, listing }: StatusReport): number {
		let written = 0;
		if (this.legacyRows)
			written += this.sql.exec("DELETE FROM tasks WHERE created_at = 0 AND id = ? AND ? > 0", id, createdAt ?? 0).rowsWritten;
		// A report without its creation time (sent by a version before the listing): found by id.
		const at =
			createdAt ?? this.sql.exec<{ created_at: number }>("SELECT created_at FROM tasks WHERE id = ?", id).toArray()[0]?.created_at ?? 0;
		if (status === null) {
			return written + this.sql.exec("DELETE FROM tasks WHERE created_at = ? AND id = ? AND version <= ?", at, id, version).rowsWritten;
		}
		return (
			written +
			this.sql.exec(
				`INSERT INTO tasks (created_at, id, version, status, type, expires_at, row) VALUES (?, ?, ?, ?, ?, ?, ?)
			 ON CONFLICT (created_at, id) DO UPDATE SET version = excluded.version, status = excluded.status,
			   type = coalesce(nullif(excluded.type, ''), tasks.type), expires_at = excluded.expires_at,
			   row = coalesce(excluded.row, tasks.row)
			 WHERE excluded.version > tasks.version`,
				at,
				id,
				version,
				status,
				listing?.type ?? "",
				listing?.expiresAt ?? null,
				listing?.row ?? null,
			).rowsWritten
		);
	}

	counts(): StatusCounts {
		const counts = zeroCounts();
		for (const row of this.sql.exec<{ status: TaskStatus; n: number }>("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status")) {
			counts[row.status] = row.n;
		}
		return counts;
	}

	/** This shard's newest rows matching `q`, newest first (at most `q.limit`). */
	list(q: ShardListQuery): ShardListRow[] {
		const { sql, params } = listStatement(q);
		const rows = this.sql.exec<{ created_at: number; id: string; row: string }>(sql, ...params);
		return rows.toArray().map((r) => ({ createdAt: r.created_at, id: r.id, row: r.row }));
	}
}

/** The statement behind `list`: a walk down the table's key from the cursor, filtered on the way. */
export function listStatement(q: ShardListQuery): { sql: string; params: (string | number)[] } {
	const where = ["row IS NOT NULL", "(expires_at IS NULL OR expires_at > ?)"];
	const params: (string | number)[] = [q.now];
	if (q.before) {
		where.push("(created_at, id) < (?, ?)");
		params.push(q.before.createdAt, q.before.id);
	}
	if (q.statuses) {
		where.push(`status IN (${q.statuses.map(() => "?").join(", ")})`);
		params.push(...q.statuses);
	}
	if (q.type !== null) {
		where.push("type = ?");
		params.push(q.type);
	}
	params.push(q.limit);
	return { sql: `SELECT created_at, id, row FROM tasks WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id DESC LIMIT ?`, params };
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
