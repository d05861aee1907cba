import { isTerminal, type Shown } from "./tasks";

/** The element with `id`, of the type the page declares it with; a missing one is a bug in index.html. */
export function $<T extends HTMLElement>(id: string): T {
	const el = document.getElementById(id);
	if (!el) throw new Error(`#${id} is missing from the page`);
	return el as T;
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: (Node | string)[]) {
	const node = document.createElement(tag);
	Object.assign(node, props);
	node.append(...children);
	return node;
}

const ms = (n: number | null | undefined) => (n === null || n === undefined ? "–" : n.toLocaleString("en"));
const time = (iso: string | null) => (iso ? new Date(iso).toLocaleTimeString() : "–");
const STATUS_LABEL: Record<string, string> = { timed_out: "timed out" };

/** Elapsed ms since `iso` (a running task's clock), or the stored figure once it is known. */
function live(stored: number | null | undefined, since: string | null, running: boolean): number | null {
	if (stored !== null && stored !== undefined) return stored;
	return running && since ? Math.max(0, Date.now() - Date.parse(since)) : null;
}

export interface RowActions {
	open(id: string): void;
	cancel(id: string): void;
}

/**
 * The recent-tasks table, one row per task, kept in place: rows are updated, moved and
 * removed, never rebuilt, so keyboard focus and screen-reader position survive live updates.
 */
export class TaskTable {
	private readonly rows = new Map<string, HTMLTableRowElement>();

	constructor(
		private readonly body: HTMLTableSectionElement,
		private readonly actions: RowActions,
	) {}

	/** Shows exactly `tasks`, in this order. */
	render(tasks: Shown[]): void {
		const wanted = new Set(tasks.map((t) => t.id));
		for (const [id, row] of this.rows) {
			if (!wanted.has(id)) {
				row.remove();
				this.rows.delete(id);
			}
		}
		let previous: HTMLTableRowElement | null = null;
		for (const task of tasks) {
			const row = this.rows.get(task.id) ?? this.create(task.id);
			this.fill(row, task);
			const expected: Element | null = previous ? previous.nextElementSibling : this.body.firstElementChild;
			if (expected !== row) {
				if (previous) previous.after(row);
				else this.body.prepend(row);
			}
			previous = row;
		}
	}

	/** Updates one task's row if it is on screen. */
	update(task: Shown): void {
		const row = this.rows.get(task.id);
		if (row) this.fill(row, task);
	}

	private create(id: string): HTMLTableRowElement {
		const open = el("button", { type: "button", textContent: id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id, title: id });
		open.setAttribute("aria-label", `Details of task ${id}`);
		open.addEventListener("click", () => this.actions.open(id));
		const cancel = el("button", { type: "button", className: "secondary", textContent: "Cancel" });
		cancel.setAttribute("aria-label", `Cancel task ${id}`);
		cancel.addEventListener("click", () => this.actions.cancel(id));
		const bar = el("progress", { max: 100 });
		bar.setAttribute("aria-label", `Progress of task ${id}`);
		const row = el(
			"tr",
			{},
			el("td", { className: "id" }, open),
			el("td"),
			el("td"),
			el("td", {}, bar, el("span", { className: "percent" })),
			el("td", { className: "num" }),
			el("td"),
			el("td", { className: "num" }),
			el("td", { className: "num" }),
			el("td", { className: "num" }),
			el("td", {}, cancel),
		);
		row.dataset.taskId = id;
		this.rows.set(id, row);
		return row;
	}

	private fill(row: HTMLTableRowElement, t: Shown): void {
		const cells = row.cells;
		const running = t.status === "running";
		row.dataset.status = t.status;
		setText(cells[1], t.type);
		const status = cells[2];
		if (status) {
			status.className = `status status-${t.status}`;
			setText(status, (STATUS_LABEL[t.status] ?? t.status) + (t.error && t.error.code !== t.status ? ` (${t.error.code})` : ""));
		}
		const percent = t.status === "succeeded" ? 100 : (t.progress?.percent ?? 0);
		const bar = cells[3]?.querySelector("progress");
		// Without a value a <progress> is indeterminate (an animation): every task has one.
		if (bar && (!bar.hasAttribute("value") || bar.value !== percent)) bar.value = percent;
		setText(cells[3]?.querySelector(".percent") ?? undefined, ` ${Math.round(percent)}%`);
		setText(cells[4], t.status === "queued" && typeof t.queue_position === "number" ? String(t.queue_position) : "–");
		setText(cells[5], time(t.created_at));
		setText(cells[6], ms(t.metrics.queue_ms));
		setText(cells[7], ms(live(t.metrics.run_ms, t.started_at, running)));
		setText(cells[8], ms(live(t.metrics.total_ms, t.created_at, !isTerminal(t.status))));
		const cancel = cells[9]?.querySelector("button");
		if (cancel) cancel.disabled = isTerminal(t.status);
	}
}

function setText(node: Element | null | undefined, text: string): void {
	if (node && node.textContent !== text) node.textContent = text;
}

/** The detail panel's fields. */
export function renderFields(list: HTMLElement, t: Shown): void {
	const fields: [string, string][] = [
		["Id", t.id],
		["Type", t.type],
		["Status", (STATUS_LABEL[t.status] ?? t.status) + (t.error ? `: ${t.error.code}: ${t.error.message}` : "")],
		["Priority", t.priority],
		["Attempts", String(t.attempts)],
		["Progress", t.progress ? `${Math.round(t.progress.percent)}%${t.progress.message ? ` (${t.progress.message})` : ""}` : "–"],
		["Queue position", typeof t.queue_position === "number" ? String(t.queue_position) : "–"],
		["Created", t.created_at],
		["Started", t.started_at ?? "–"],
		["Finished", t.finished_at ?? "–"],
		["Queue / run / total ms", `${ms(t.metrics.queue_ms)} / ${ms(t.metrics.run_ms)} / ${ms(t.metrics.total_ms)}`],
	];
	list.replaceChildren(...fields.flatMap(([name, value]) => [el("dt", { textContent: name }), el("dd", { textContent: value })]));
}

/** A file reference in an output: `{ $file, content_type, … }`. */
function fileRef(value: unknown): { $file: string; content_type?: string } | null {
	if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
	const ref = value as { $file?: unknown; content_type?: unknown };
	return typeof ref.$file === "string"
		? { $file: ref.$file, content_type: typeof ref.content_type === "string" ? ref.content_type : undefined }
		: null;
}

/** The detail panel's output: the image itself when the output is one image file, else the JSON. */
export function renderOutput(box: HTMLElement, t: Shown): void {
	if (t.status !== "succeeded") {
		box.replaceChildren();
		return;
	}
	const file = fileRef(t.output);
	if (file?.content_type?.startsWith("image/") && t.urls && "output" in t.urls) {
		const img = el("img", { src: (t.urls as { output: string }).output, alt: `Output of task ${t.id} (${file.content_type})` });
		box.replaceChildren(el("h3", { textContent: "Output" }), img);
		return;
	}
	box.replaceChildren(el("h3", { textContent: "Output" }), el("pre", { textContent: JSON.stringify(t.output, null, 2) }));
}

/** One line of the detail panel's event list. */
export function eventLine(event: { seq: number; type: string; at: string; data: unknown }): HTMLLIElement {
	const data = event.type === "snapshot" ? "" : ` ${JSON.stringify(event.data)}`;
	return el("li", { textContent: `#${event.seq} ${event.type} ${new Date(event.at).toLocaleTimeString()}${data}` });
}
