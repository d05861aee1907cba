import { statsShardFor } from "./StatsShard";
import { isTerminal, type TaskStatus } from "./task";

/** Passing statuses are coalesced over this window: a task that ends quickly sends one report, not four. */
const REPORT_DEBOUNCE_MS = 1000;

/**
 * One task object's reports to its health shard (`StatsShard`), off the request path. A passing
 * status (queued, running) goes out REPORT_DEBOUNCE_MS after the first change, carrying the latest;
 * a lost one is overtaken by the next. The terminal status is sent by `terminal()`, whose answer
 * says whether the shard has it: the task object keeps its alarm early and retries until it does.
 */
export class HealthReports {
	private pending: { version: number; status: TaskStatus } | null = null;
	private timer = 0;

	constructor(
		private readonly ctx: DurableObjectState,
		private readonly env: Env,
		private readonly shards: number,
	) {}

	/** The task's status changed. A terminal status drops the pending passing one (`terminal()` follows). */
	changed(id: string, version: number, status: TaskStatus): void {
		if (isTerminal(status)) {
			this.dropPending();
			return;
		}
		this.pending = { version, status };
		if (this.timer) return;
		this.timer = setTimeout(() => {
			this.timer = 0;
			const report = this.pending;
			this.pending = null;
			if (report) this.send(id, report.version, report.status);
		}, REPORT_DEBOUNCE_MS);
	}

	/** Reports the terminal status; true once the shard has it. Never throws. */
	async terminal(id: string, version: number, status: TaskStatus): Promise<boolean> {
		try {
			await statsShardFor(this.env, id, this.shards).report(id, version, status);
			return true;
		} catch (e) {
			console.error(`task ${id}: health report failed, the alarm retries it: ${String(e)}`);
			return false;
		}
	}

	/** The task expired: it no longer counts. */
	expired(id: string, version: number): void {
		this.dropPending();
		this.send(id, version, null);
	}

	private dropPending(): void {
		clearTimeout(this.timer);
		this.timer = 0;
		this.pending = null;
	}

	private send(id: string, version: number, status: TaskStatus | null): void {
		const shard = statsShardFor(this.env, id, this.shards);
		this.ctx.waitUntil(
			shard.report(id, version, status).catch((e: unknown) => console.error(`task ${id}: health report failed: ${String(e)}`)),
		);
	}
}
