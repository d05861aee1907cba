import type { Task, TaskEvent, TaskStatus } from "../clients/js/src/types";

/** What the page knows of a task: a listing row, then whatever its live events said. */
export type Shown = Pick<
	Task,
	"id" | "type" | "status" | "priority" | "progress" | "attempts" | "created_at" | "started_at" | "finished_at" | "metrics" | "error"
> &
	Partial<Pick<Task, "urls" | "output" | "queue_position">> & {
		/** Sequence number of the last event applied (0: known from the listing or a read only). */
		seq: number;
	};

const RANK: Record<TaskStatus, number> = { queued: 0, running: 1, succeeded: 2, failed: 2, canceled: 2, timed_out: 2 };

export function isTerminal(status: TaskStatus): boolean {
	return RANK[status] === 2;
}

/**
 * The tasks on screen. Two sources feed it: listing pages (which trail the tasks by up to a
 * second) and the live socket (in order, per task). A listing row never takes a task back: it
 * replaces what is known only while no live event has been seen, or when it is further along.
 */
export class TaskStore {
	private readonly tasks = new Map<string, Shown>();

	get(id: string): Shown | undefined {
		return this.tasks.get(id);
	}

	/** A row of `GET /v1/tasks`, or a task as submitted or read. Returns the task as now known. */
	put(row: Omit<Shown, "seq">): Shown {
		const known = this.tasks.get(row.id);
		if (!known || (known.seq === 0 && RANK[row.status] >= RANK[known.status]) || RANK[row.status] > RANK[known.status]) {
			const next: Shown = { ...known, ...row, seq: known?.seq ?? 0 };
			this.tasks.set(row.id, next);
			return next;
		}
		// Keep what the events said; learn only what they do not carry (the capability URLs).
		if (row.urls && !known.urls) known.urls = row.urls;
		return known;
	}

	/** A live event; returns the task as now known, or null when the event was old news. */
	apply(event: TaskEvent): Shown | null {
		const known = this.tasks.get(event.task_id);
		if (event.type === "snapshot") {
			const task = event.data as Task;
			const next: Shown = { ...known, ...task, urls: known?.urls ?? task.urls, seq: event.seq };
			this.tasks.set(task.id, next);
			return next;
		}
		if (!known || event.seq <= known.seq) return null;
		const next: Shown = { ...known, ...(event.data as Partial<Shown>), seq: event.seq };
		this.tasks.set(known.id, next);
		return next;
	}

	/** Tasks matching the filters, newest first. */
	list(filter: { statuses: TaskStatus[] | null; type: string | null }): Shown[] {
		return [...this.tasks.values()]
			.filter((t) => (!filter.statuses || filter.statuses.includes(t.status)) && (!filter.type || t.type === filter.type))
			.sort((a, b) => b.created_at.localeCompare(a.created_at) || (a.id < b.id ? 1 : -1));
	}

	/** Forgets every task (a new key, a server that answers differently). */
	clear(): void {
		this.tasks.clear();
	}
}

/** The capability token in a task's URLs, if the server gave one. */
export function tokenOf(task: { urls?: { get: string } }): string | undefined {
	if (!task.urls) return undefined;
	return new URL(task.urls.get).searchParams.get("token") ?? undefined;
}
