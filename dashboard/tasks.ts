import { isTerminalStatus, type Task, type TaskEvent, type TaskRow, type TaskStatus } from "../clients/js/src/types";

/** What the page knows of a task: a listing row or a read, then whatever its live events said. */
export type Shown = TaskRow &
	Partial<Pick<Task, "input" | "output" | "queue_position">> & {
		/** Sequence number of the last live event applied (0: known from the listing or a read only). */
		seq: number;
	};

const RANK: Record<TaskStatus, number> = { queued: 0, running: 1, succeeded: 2, failed: 2, canceled: 2, timed_out: 2 };

export const isTerminal = isTerminalStatus;

/** Which tasks the list shows: some statuses (null: all) and one type (null: all). */
export interface ListFilter {
	statuses: TaskStatus[] | null;
	type: string | null;
}

export function matches(task: Shown, filter: ListFilter): boolean {
	return (!filter.statuses || filter.statuses.includes(task.status)) && (!filter.type || task.type === filter.type);
}

/**
 * The tasks on the page. Two sources feed it: listing pages and reads (which trail a task by up
 * to a second) and the live socket (in order, per task). A row never takes a task back: it
 * replaces what is known only while no live event has been seen, or when it is further along.
 */
export class TaskStore {
	private readonly tasks = new Map<string, Shown>();

	get(id: string): Shown | undefined {
		return this.tasks.get(id);
	}

	get size(): number {
		return this.tasks.size;
	}

	has(id: string): boolean {
		return this.tasks.has(id);
	}

	/** A row of `GET /v1/tasks`, or a task as submitted, read or canceled. Returns the task as now known. */
	put(row: TaskRow & Partial<Shown>): Shown {
		const known = this.tasks.get(row.id);
		if (!known || (known.seq === 0 && RANK[row.status] >= RANK[known.status]) || RANK[row.status] > RANK[known.status]) {
			const next: Shown = { ...known, ...row, seq: known?.seq ?? 0 };
			this.tasks.set(row.id, next);
			return next;
		}
		// Keep what the events said; take what they do not carry: fresh URLs (tokens), input, output.
		const next: Shown = { ...known, urls: row.urls };
		if (row.input !== undefined) next.input = row.input;
		if (row.output !== undefined && known.output === undefined) next.output = row.output;
		this.tasks.set(row.id, next);
		return next;
	}

	/** A live event; returns the task as now known, or null when the event was old news or of a task not on the page. */
	apply(event: TaskEvent): Shown | null {
		const known = this.tasks.get(event.task_id);
		if (!known) return null;
		if (event.type === "snapshot") {
			if (event.seq < known.seq) return null;
			// A snapshot is the whole task (without URLs, which only the API's answers carry).
			const next: Shown = { ...known, ...(event.data as Partial<Shown>), urls: known.urls, seq: event.seq };
			this.tasks.set(known.id, next);
			return next;
		}
		if (event.seq <= known.seq) return null;
		const next: Shown = { ...known, ...(event.data as Partial<Shown>), seq: event.seq };
		this.tasks.set(known.id, next);
		return next;
	}

	/** Tasks matching `filter`, newest first. */
	list(filter: ListFilter): Shown[] {
		return [...this.tasks.values()].filter((t) => matches(t, filter)).sort(newestFirst);
	}

	/** Forgets one task; returns whether it was known. */
	delete(id: string): boolean {
		return this.tasks.delete(id);
	}

	/** Forgets every task (a new key, a new filter). */
	clear(): void {
		this.tasks.clear();
	}
}

/** The listing's order: creation time, then id, both descending. */
export function newestFirst(a: Shown, b: Shown): number {
	return b.created_at.localeCompare(a.created_at) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** The capability token in a task's URLs, if the server gave one (it does when API keys are set). */
export function tokenOf(task: { urls?: { get: string } }): string | undefined {
	if (!task.urls) return undefined;
	return new URL(task.urls.get).searchParams.get("token") ?? undefined;
}
