import type { Client } from "../clients/js/src/client";
import type { TaskEvent } from "../clients/js/src/types";
import type { Shown, TaskStore } from "./tasks";
import { $, eventLine, renderData, renderFields } from "./view";

export interface DetailHost {
	client(): Client;
	store: TaskStore;
	/** Whether the page's socket follows this task (its live events then come from there). */
	following(id: string): boolean;
	/** A task the page should show and follow (a detail opened from a link, say). */
	track(task: Shown): void;
	/** "Submit again": the form takes this task's type, priority and input. */
	again(task: Shown): void;
	/** Reports an error the panel cannot show itself (a 401: the key is needed). */
	failed(error: unknown): boolean;
	/** The panel opened or closed (the page's address says which task is open). */
	changed(id: string | null): void;
}

interface Open {
	id: string;
	abort: AbortController;
	opener: HTMLElement | null;
	events: Map<number, TaskEvent>;
	/** Highest seq read from the stored history. */
	historyMax: number;
	/** History up to this seq is needed before the socket's events join without a gap (null: not known yet). */
	liveNeed: number | null;
	/** Stops the history stream once it has caught up with the socket. */
	history: AbortController;
}

/**
 * A task's detail: its fields, input, output (the image itself for an image output) and every
 * event from the first. The stored events are read once over the task's event stream (SSE,
 * `after=0`), which is closed as soon as it reaches what the page's socket already delivered;
 * from then on the detail's live events come from that one socket, like everything else on the
 * page. A task the socket does not follow (it was refused) keeps its stream to the end.
 */
export class Detail {
	private open_: Open | null = null;

	constructor(private readonly host: DetailHost) {}

	get id(): string | null {
		return this.open_?.id ?? null;
	}

	async open(id: string, opener: HTMLElement | null = null): Promise<void> {
		this.open_?.abort.abort();
		const abort = new AbortController();
		const history = new AbortController();
		abort.signal.addEventListener("abort", () => history.abort(), { once: true });
		const current: Open = { id, abort, opener, events: new Map(), historyMax: 0, liveNeed: null, history };
		this.open_ = current;
		$("detail").hidden = false;
		$("detail-title").textContent = `Task ${id}`;
		$("detail-fields").replaceChildren();
		$("detail-data").replaceChildren();
		$("detail-events").replaceChildren();
		$("detail-note").textContent = "Loading…";
		$("detail-title").focus();
		this.host.changed(id);
		try {
			const task = this.host.store.put({ ...(await this.host.client().get(id, { signal: abort.signal })), seq: 0 });
			if (this.open_ !== current) return;
			$("detail-note").textContent = "";
			this.host.track(task);
			this.show(task);
			for await (const event of this.host.client().events(id, { after: 0, signal: history.signal })) {
				this.add(current, event);
				current.historyMax = Math.max(current.historyMax, event.seq);
				const known = this.host.store.apply(event);
				if (known) this.show(known);
				if (this.caughtUp(current)) history.abort();
			}
			// The stream ended by itself: the task ended, and its history is complete. A read shows its final fields.
			if (this.open_ === current)
				this.show(this.host.store.put({ ...(await this.host.client().get(id, { signal: abort.signal })), seq: 0 }));
		} catch (e) {
			if (history.signal.aborted || this.open_ !== current) return;
			if (!this.host.failed(e)) $("detail-note").textContent = `Could not load this task: ${e instanceof Error ? e.message : String(e)}`;
		}
	}

	close(): void {
		const current = this.open_;
		if (!current) return;
		current.abort.abort();
		this.open_ = null;
		$("detail").hidden = true;
		this.host.changed(null);
		if (current.opener?.isConnected) current.opener.focus();
		else $("recent-title").focus();
	}

	/** A live event from the page's socket (any task's). */
	live(event: TaskEvent): void {
		const current = this.open_;
		if (!current || event.task_id !== current.id) return;
		current.liveNeed ??= event.type === "snapshot" ? event.seq : event.seq - 1;
		if (event.type !== "snapshot") this.add(current, event);
		if (this.caughtUp(current)) current.history.abort();
	}

	/** The task changed on the page: shows it if it is the open one. */
	update(task: Shown): void {
		if (this.open_?.id === task.id) this.show(task);
	}

	/** True once the history read reaches what the socket has delivered, so the socket can take over. */
	private caughtUp(current: Open): boolean {
		if (!this.host.following(current.id)) return false;
		const need = current.liveNeed ?? (this.host.store.get(current.id)?.seq || null);
		return need !== null && current.historyMax >= need;
	}

	private add(current: Open, event: TaskEvent): void {
		if (current.events.has(event.seq)) return;
		current.events.set(event.seq, event);
		const list = $("detail-events");
		const line = eventLine(event);
		// In seq order, whichever source brought it first.
		const after = [...list.children].find((li) => Number((li as HTMLElement).dataset.seq) > event.seq);
		list.insertBefore(line, after ?? null);
	}

	private show(task: Shown): void {
		renderFields($("detail-fields"), task);
		renderData($("detail-data"), task);
		const again = $<HTMLButtonElement>("detail-again");
		again.hidden = task.input === undefined;
		again.onclick = () => this.host.again(task);
	}
}
