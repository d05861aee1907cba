import { isFileRef, type TaskEvent } from "../clients/js/src/types";
import { isTerminal, type Shown } from "./tasks";

/** The element with `id`, of the type the page declares it with; a missing one is a bug in index.html. */
export function $<T extends HTMLElement>(id: string): T {
	const el = document.getElementById(id);
	if (!el) throw new Error(`#${id} is missing from the page`);
	return el as T;
}

export function el<K extends keyof HTMLElementTagNameMap>(
	tag: K,
	props: Partial<HTMLElementTagNameMap[K]> = {},
	...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
	const node = document.createElement(tag);
	Object.assign(node, props);
	node.append(...children);
	return node;
}

const ms = (n: number | null | undefined) => (n === null || n === undefined ? "–" : n.toLocaleString("en"));
const clock = (iso: string | null) => (iso ? new Date(iso).toLocaleTimeString() : "–");
const STATUS_LABEL: Record<string, string> = { timed_out: "timed out" };

export function statusLabel(t: Pick<Shown, "status" | "error">): string {
	return (STATUS_LABEL[t.status] ?? t.status) + (t.error && t.error.code !== t.status ? ` (${t.error.code})` : "");
}

/** A task's clock while it runs (ms since `since`), or the stored figure once it is known. */
function ticking(stored: number | null | undefined, since: string | null, running: boolean): number | null {
	if (stored !== null && stored !== undefined) return stored;
	return running && since ? Math.max(0, Date.now() - Date.parse(since)) : null;
}

/** A progress bar's value: full once succeeded, else the last percent reported. */
export function percentOf(t: Pick<Shown, "status" | "progress">): number {
	return t.status === "succeeded" ? 100 : (t.progress?.percent ?? 0);
}

export interface RowActions {
	open(id: string): void;
	cancel(id: string): void;
}

/**
 * The recent-tasks table, one row per task, kept in place: rows are updated, moved and
 * removed, never rebuilt, so keyboard focus and a screen reader's position survive live updates.
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
		const open = el("button", {
			type: "button",
			className: "link",
			textContent: id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id,
			title: id,
		});
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
			el("td", { className: "progress" }, bar, el("span", { className: "percent" })),
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
		row.dataset.status = t.status;
		setText(cells[1], t.type);
		const status = cells[2];
		if (status) {
			status.className = `status status-${t.status}`;
			setText(status, statusLabel(t));
		}
		const percent = percentOf(t);
		const bar = cells[3]?.querySelector("progress");
		// Without a value a <progress> is indeterminate (an animation): every task has one.
		if (bar && (!bar.hasAttribute("value") || bar.value !== percent)) bar.value = percent;
		setText(cells[3]?.querySelector(".percent"), ` ${Math.round(percent)}%`);
		setText(cells[4], t.status === "queued" && typeof t.queue_position === "number" ? String(t.queue_position) : "–");
		const created = cells[5];
		setText(created, clock(t.created_at));
		if (created && created.title !== t.created_at) created.title = t.created_at;
		setText(cells[6], ms(ticking(t.metrics.queue_ms, t.created_at, t.status === "queued")));
		setText(cells[7], ms(ticking(t.metrics.run_ms, t.started_at, t.status === "running")));
		setText(cells[8], ms(ticking(t.metrics.total_ms, t.created_at, !isTerminal(t.status))));
		const cancel = cells[9]?.querySelector("button");
		if (cancel) cancel.disabled = isTerminal(t.status);
	}
}

export function setText(node: Element | null | undefined, text: string): void {
	if (node && node.textContent !== text) node.textContent = text;
}

/** The detail panel's fields. */
export function renderFields(list: HTMLElement, t: Shown): void {
	const bar = el("progress", { max: 100, value: percentOf(t) });
	bar.setAttribute("aria-label", `Progress of task ${t.id}`);
	const progress = t.progress ? `${Math.round(t.progress.percent)}%${t.progress.message ? ` (${t.progress.message})` : ""}` : "–";
	const fields: [string, string | (Node | string)[]][] = [
		["Id", t.id],
		["Type", t.type],
		["Status", statusLabel(t)],
		["Priority", t.priority],
		["Attempts", String(t.attempts)],
		["Progress", [bar, ` ${progress}`]],
		["Queue position", t.status === "queued" && typeof t.queue_position === "number" ? String(t.queue_position) : "–"],
		["Created", t.created_at],
		["Started", t.started_at ?? "–"],
		["Finished", t.finished_at ?? "–"],
		["Queue / run / total ms", `${ms(t.metrics.queue_ms)} / ${ms(t.metrics.run_ms)} / ${ms(t.metrics.total_ms)}`],
	];
	if (t.error) fields.push(["Error", `${t.error.code}: ${t.error.message}`]);
	list.replaceChildren(
		...fields.flatMap(([name, value]) => [
			el("dt", { textContent: name }),
			typeof value === "string" ? el("dd", { textContent: value }) : el("dd", {}, ...value),
		]),
	);
	list.dataset.status = t.status;
}

/** JSON for people: indented, and cut short past what a panel can usefully show. */
function json(value: unknown): string {
	const text = JSON.stringify(value, null, 2) ?? "null";
	return text.length > 20_000 ? `${text.slice(0, 20_000)}\n… (${text.length.toLocaleString("en")} characters in all)` : text;
}

/** The detail's input and output: the output image itself when the output is one image file, else JSON. */
export function renderData(box: HTMLElement, t: Shown): void {
	const parts: Node[] = [];
	if (t.input !== undefined) parts.push(el("h3", { textContent: "Input" }), el("pre", { className: "json", textContent: json(t.input) }));
	if (t.status === "succeeded" && t.output !== undefined) {
		parts.push(el("h3", { textContent: "Output" }));
		const file = isFileRef(t.output) ? t.output : null;
		if (file?.content_type?.startsWith("image/")) {
			const img = el("img", { src: t.urls.output, alt: `Output of task ${t.id} (${file.content_type})` });
			img.id = "output-image";
			parts.push(
				el("a", { href: t.urls.output, target: "_blank", rel: "noopener" }, img),
				el("pre", { className: "json", textContent: json(file) }),
			);
		} else parts.push(el("pre", { className: "json", id: "output-json", textContent: json(t.output) }));
	}
	if (t.error?.details !== undefined)
		parts.push(el("h3", { textContent: "Error details" }), el("pre", { className: "json", textContent: json(t.error.details) }));
	box.replaceChildren(...parts);
}

/** One line of the detail's event list. */
export function eventLine(event: TaskEvent): HTMLLIElement {
	const data = event.type === "snapshot" ? "" : ` ${JSON.stringify(event.data)}`;
	const li = el("li", { textContent: `#${event.seq} ${event.type} ${new Date(event.at).toLocaleTimeString()}${data}` });
	li.dataset.seq = String(event.seq);
	li.dataset.type = event.type;
	return li;
}
