import { shardIndexFor, statsShard, type StatusReport } from "./StatsShard";
import { listingEntry } from "../listing/row";
import { isTerminal, type TaskRecord, type TaskStatus } from "../task/model";

/** Passing statuses are coalesced over this window: a task that ends quickly sends one report, not four. */
const REPORT_DEBOUNCE_MS = 1000;
/** Reports wait this long for others from the same isolate to share one shard call. */
const BATCH_WINDOW_MS = 25;
/** A batch still unsent this long after it was due lost its sender (an instance reset): send it again. */
const SENDER_LOST_MS = 1000;
/** How long a task object waits for its terminal report to be acknowledged before leaving it to its alarm. */
const ACK_WAIT_MS = 2000;
/** How often a task object looks whether its terminal report was acknowledged. */
const ACK_POLL_MS = 10;

interface Outgoing {
	report: StatusReport;
	/** When the batch carrying it is sent: it cannot be answered before then. */
	dueAt: number;
	/** Set by the sender: the call ended, and whether the shard has the report. */
	settled: boolean;
	acknowledged: boolean;
}

/**
 * Reports waiting to go out, from every task object this isolate hosts (module state is shared
 * by them), grouped by shard: one call and one write per shard per window instead of one per
 * task. Deployed, each isolate hosts few tasks and this degrades to about a call per report.
 */
const outbox = new Map<number, Outgoing[]>();
/** When the pending batch is due (0: none scheduled). */
let batchDueAt = 0;

/** Tasks created in the same second of one isolate share a shard for life, so their reports batch. */
const SHARD_PERIOD_MS = 1000;
/** Where this isolate starts in the shard rotation, so isolates do not move in step. */
const isolateShardOffset = Math.floor(Math.random() * 1_000_000);

/**
 * One task object's reports to its health shard (`StatsShard`), off the request path; each carries
 * the task's listing row too (`GET /v1/tasks` reads the shards), written by the same statement. Only a
 * change of status is reported (progress and other updates leave the counts as they are). A
 * passing status (queued, running) of an object that stays in memory anyway goes out
 * REPORT_DEBOUNCE_MS after the first change, carrying the latest, so a task that ends quickly
 * sends its terminal status alone; an object that would otherwise hibernate (its task waits for a
 * worker, a slot or a retry) sends at once, with the isolate's next batch, rather than stay awake
 * a second for a timer. A lost passing report is overtaken by the next. The terminal status is
 * sent by `terminal()`, which says whether the shard has it: the task object keeps its alarm early
 * and retries until it does.
 */
export class HealthReports {
	private pending: StatusReport | null = null;
	private timer = 0;
	/** The last status sent or pending (null: nothing yet in this instance). */
	private lastStatus: TaskStatus | null = null;

	constructor(
		private readonly ctx: DurableObjectState,
		private readonly env: Env,
		private readonly shards: number,
	) {}

	/**
	 * The shard a new task reports to, for its whole life. Tasks created together tend to end
	 * together, so giving one second's tasks one shard lets their reports share calls, while the
	 * rotation spreads every isolate's tasks over all shards: no shard sees every task.
	 */
	shardForNewTask(): number {
		return (isolateShardOffset + Math.floor(Date.now() / SHARD_PERIOD_MS)) % this.shards;
	}

	/**
	 * The status the task had when this instance loaded it, which its last instance reported: a
	 * woken object does not report it again (a pull task wakes at each heartbeat).
	 */
	stored(status: TaskStatus): void {
		this.lastStatus = status;
	}

	/**
	 * The task was stored. A terminal status drops the pending passing one (`terminal()` follows).
	 * `heldOpen`: something else keeps the object in memory, so the report may wait to coalesce.
	 */
	changed(r: TaskRecord, heldOpen: boolean): void {
		if (isTerminal(r.status)) {
			this.dropPending();
			this.lastStatus = r.status;
			return;
		}
		if (r.status === this.lastStatus && !(this.pending && !heldOpen)) return;
		this.lastStatus = r.status;
		this.pending = { id: r.id, version: r.version, status: r.status, createdAt: r.createdAt };
		if (!heldOpen) {
			this.flush(r);
			return;
		}
		if (this.timer) return;
		this.timer = setTimeout(() => {
			this.timer = 0;
			this.flush(r);
		}, REPORT_DEBOUNCE_MS);
	}

	/** Sends the pending passing report with the isolate's next batch. */
	private flush(r: TaskRecord): void {
		clearTimeout(this.timer);
		this.timer = 0;
		const report = this.pending;
		this.pending = null;
		// The listing row as the task stands when the report leaves (its start, attempts, progress).
		if (report) this.enqueue(this.shardOf(r), { ...report, version: r.version, listing: listingEntry(r) });
	}

	/**
	 * Reports the terminal status; true once the shard has it. Never throws. The answer is read
	 * from the batch entry rather than awaited across objects: a promise settled by another
	 * object's call may run its continuation only at this object's next event.
	 */
	terminal(r: TaskRecord): Promise<boolean> {
		return this.acknowledged(
			this.enqueue(this.shardOf(r), { id: r.id, version: r.version, status: r.status, createdAt: r.createdAt, listing: listingEntry(r) }),
		);
	}

	/** The task expired: it no longer counts. True once the shard has that; the task retries until it does. */
	expired(r: TaskRecord, version: number): Promise<boolean> {
		this.dropPending();
		return this.acknowledged(this.enqueue(this.shardOf(r), { id: r.id, version, status: null, createdAt: r.createdAt }));
	}

	/**
	 * Waits (at most ACK_WAIT_MS) for the batch carrying `entry` to be answered; true when the shard
	 * has it. The first look is one poll after the batch is due: a look before it could not find an
	 * answer, and each look is a timer event of the task's object.
	 */
	private async acknowledged(entry: Outgoing): Promise<boolean> {
		const now = Date.now();
		const giveUpAt = now + ACK_WAIT_MS;
		let waitMs = Math.max(ACK_POLL_MS, entry.dueAt - now + ACK_POLL_MS);
		while (!entry.settled && Date.now() < giveUpAt) {
			await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, Math.max(1, giveUpAt - Date.now()))));
			waitMs = ACK_POLL_MS;
		}
		return entry.acknowledged;
	}

	private shardOf(r: TaskRecord): number {
		return r.healthShard ?? shardIndexFor(r.id, this.shards);
	}

	private dropPending(): void {
		clearTimeout(this.timer);
		this.timer = 0;
		this.pending = null;
	}

	/**
	 * Adds a report to this isolate's outbox and makes sure a send is due. A passing report of the
	 * same task still waiting there is replaced: the shard only needs the latest.
	 */
	private enqueue(shard: number, report: StatusReport): Outgoing {
		const entry: Outgoing = { report, dueAt: 0, settled: false, acknowledged: false };
		const list = outbox.get(shard);
		const stale = list?.findIndex((e) => e.report.id === report.id && e.report.status !== null && !isTerminal(e.report.status)) ?? -1;
		if (list && stale >= 0) list[stale] = entry;
		else if (list) list.push(entry);
		else outbox.set(shard, [entry]);
		const now = Date.now();
		if (batchDueAt === 0 || now > batchDueAt + SENDER_LOST_MS) {
			batchDueAt = now + BATCH_WINDOW_MS;
			this.ctx.waitUntil(sendBatchAfter(this.env, BATCH_WINDOW_MS));
		}
		entry.dueAt = batchDueAt;
		return entry;
	}
}

/** Sends everything in the outbox, one call per shard; failed reports are left to their tasks' alarms. */
async function sendBatchAfter(env: Env, delayMs: number): Promise<void> {
	await new Promise((resolve) => setTimeout(resolve, delayMs));
	batchDueAt = 0;
	const batches = [...outbox];
	outbox.clear();
	await Promise.all(
		batches.map(async ([shard, entries]) => {
			try {
				const { failed } = await statsShard(env, shard).reportMany(entries.map((e) => e.report));
				const refused = new Set(failed);
				entries.forEach((e, i) => (e.acknowledged = !refused.has(i)));
			} catch (e) {
				console.error(`health shard ${shard}: ${entries.length} reports not delivered: ${String(e)}`);
			} finally {
				for (const e of entries) e.settled = true;
			}
		}),
	);
}
