/**
 * The dashboard at `/`: live counts, recent tasks with live progress, queue positions and
 * timings, a task's detail with its events, a submit form for every task type the server offers
 * (with a file for `image.*` types), cancel buttons. Built on the project's client
 * (clients/js/src, `edgetask/client`): every HTTP call goes through it. Every unfinished task on
 * the page is followed over one WebSocket (`/v1/ws`, ./live.ts); new tasks and the counts are
 * read every few seconds while the page is visible. With API keys on, the key is asked for once
 * and kept in this tab's sessionStorage.
 */
import { createClient, type Client } from "../clients/js/src/client";
import { HttpError } from "../clients/js/src/errors";
import type { Priority, TaskEvent, TaskStatus, TaskTypeInfo } from "../clients/js/src/types";
import { Detail } from "./detail";
import { LiveTasks, MAX_FOLLOWED, type LiveState } from "./live";
import { exampleOf, fileField, type JsonSchema } from "./schema";
import { isTerminal, matches, TaskStore, tokenOf, type ListFilter, type Shown } from "./tasks";
import { $, el, TaskTable } from "./view";

const KEY_STORAGE = "edgetask.apiKey";
/** New tasks and the counts are read this often while the page is visible. */
const TICK_MS = 3000;
const DEFAULT_LIMIT = 50;
/** Most tasks the page holds (and follows: the socket takes up to MAX_FOLLOWED). */
const MAX_ROWS = MAX_FOLLOWED;

let apiKey: string | undefined = sessionStorage.getItem(KEY_STORAGE) ?? undefined;
let client: Client = makeClient();
let types: TaskTypeInfo[] = [];
/** The listing's next page below what the page holds; undefined: the first page is not loaded yet. */
let olderCursor: string | null | undefined;
/** Bumped when the list starts over (a new filter, a new key): answers to older requests are dropped. */
let generation = 0;
let running = false;
let timers: number[] = [];
let liveState: { state: LiveState; text?: string } = { state: "connecting" };
let trouble: string | null = null;

const store = new TaskStore();
const table = new TaskTable($<HTMLTableElement>("tasks").tBodies[0] ?? $<HTMLTableElement>("tasks").createTBody(), {
	open: (id) => void detail.open(id, document.activeElement instanceof HTMLElement ? document.activeElement : null),
	cancel: (id) => void cancelTask(id),
});
const live = new LiveTasks(socketUrl(), onLiveEvent, (state, text) => {
	liveState = { state, text };
	showStatus();
});
const detail = new Detail({
	client: () => client,
	store,
	following: (id) => live.isFollowing(id),
	track,
	again: fillFormFrom,
	failed: (e) => {
		if (!needsKey(e)) return false;
		showKeyForm("The server needs an API key.");
		return true;
	},
	changed: () => writeLocation(),
});

function makeClient(): Client {
	// No WebSocket for the client itself: the page's one socket is ./live.ts. A task's stored
	// events are read over SSE (which, unlike a browser WebSocket, can send the key).
	return createClient({ baseUrl: location.origin, apiKey, WebSocket: null, transport: "sse", maxRetries: 1 });
}

function socketUrl(): string {
	return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/v1/ws`;
}

// ---- what the address says: filters, page size, the open task ----

const filter: ListFilter = { statuses: null, type: null };
let limit = DEFAULT_LIMIT;

function readLocation(): string | null {
	const q = new URLSearchParams(location.search);
	const statuses = q.get("status");
	filter.statuses = statuses ? (statuses.split(",") as TaskStatus[]) : null;
	filter.type = q.get("type") || null;
	const l = Number(q.get("limit"));
	limit = Number.isInteger(l) && l >= 1 && l <= 500 ? l : DEFAULT_LIMIT;
	ensureOption($<HTMLSelectElement>("filter-status"), statuses ?? "", statuses ?? "");
	ensureOption($<HTMLSelectElement>("filter-type"), filter.type ?? "", filter.type ?? "");
	ensureOption($<HTMLSelectElement>("filter-limit"), String(limit), String(limit));
	return q.get("task");
}

function writeLocation(): void {
	const q = new URLSearchParams();
	if (filter.statuses) q.set("status", filter.statuses.join(","));
	if (filter.type) q.set("type", filter.type);
	if (limit !== DEFAULT_LIMIT) q.set("limit", String(limit));
	if (detail.id) q.set("task", detail.id);
	const search = q.toString().replaceAll("%2C", ",");
	history.replaceState(null, "", search ? `?${search}` : location.pathname);
}

/** Selects `value` in `select`, adding it as an option first when the page does not offer it. */
function ensureOption(select: HTMLSelectElement, value: string, label: string): void {
	if (![...select.options].some((o) => o.value === value)) select.add(new Option(label, value));
	select.value = value;
}

// ---- status line ----

function showStatus(): void {
	const text =
		trouble ??
		(liveState.state === "open" ? "Live" : liveState.state === "connecting" ? "Connecting…" : (liveState.text ?? "Reconnecting…"));
	$("connection").textContent = text;
	$("connection").dataset.state = trouble ? "trouble" : liveState.state;
}

/** A 401: a key is needed, or the one given was refused. */
function needsKey(e: unknown): e is HttpError {
	return e instanceof HttpError && e.status === 401;
}

function showKeyForm(message: string): void {
	stop();
	trouble = "Waiting for an API key";
	showStatus();
	$("key-section").hidden = false;
	$("key-error").textContent = message;
	$<HTMLInputElement>("api-key").focus();
}

function reportError(e: unknown): void {
	if (needsKey(e)) showKeyForm("The server now needs an API key.");
	else {
		trouble = `Trouble talking to the server: ${e instanceof Error ? e.message : String(e)}`;
		showStatus();
	}
}

// ---- starting, stopping, the periodic reads ----

function stop(): void {
	running = false;
	for (const t of timers) clearInterval(t);
	timers = [];
	live.stop();
}

async function start(): Promise<void> {
	stop();
	trouble = null;
	try {
		await Promise.all([loadTypes(), refreshNewest(), refreshHealth()]);
	} catch (e) {
		if (needsKey(e)) {
			// A deployment without keys says how to set them; otherwise say whether ours was refused.
			showKeyForm(e.code === "auth_not_configured" ? e.body.error.message : apiKey ? "The server refused this key." : "");
			return;
		}
		// Not reachable (yet): say so, and try again on the next tick.
		reportError(e);
	}
	running = true;
	// Kept for the tab once the server took it (a refused key is not kept).
	if (apiKey) sessionStorage.setItem(KEY_STORAGE, apiKey);
	$("key-section").hidden = true;
	$("forget-key").hidden = apiKey === undefined;
	live.start();
	showStatus();
	// A task named in the address opens once the page can read it (after the key, if one was needed).
	if (linkedTask) void detail.open(linkedTask);
	linkedTask = null;
	timers = [
		window.setInterval(tick, TICK_MS),
		// Unfinished tasks' clocks.
		window.setInterval(render, 1000),
	];
}

function tick(): void {
	if (!running || document.visibilityState === "hidden") return;
	const work = types.length === 0 ? [loadTypes(), refreshNewest(), refreshHealth()] : [refreshNewest(), refreshHealth()];
	Promise.all(work).then(() => {
		if (trouble) {
			trouble = null;
			showStatus();
		}
	}, reportError);
}

// ---- the list ----

function render(): void {
	const shown = store.list(filter);
	table.render(shown);
	$("tasks-empty").hidden = shown.length > 0;
	$("older").hidden = !olderCursor;
	$("tasks-count").textContent = `${shown.length.toLocaleString("en")} shown${olderCursor ? ", more below" : ""}`;
}

let renderQueued = false;
function scheduleRender(): void {
	if (renderQueued) return;
	renderQueued = true;
	requestAnimationFrame(() => {
		renderQueued = false;
		render();
	});
}

/** Follows an unfinished task over the socket, with the token of its freshest URLs. */
function track(task: Shown): void {
	if (!isTerminal(task.status)) live.follow(task.id, tokenOf(task));
}

/** Forgets the list (but not the open detail's task) and stops following what it held. */
function startListOver(): void {
	generation++;
	olderCursor = undefined;
	const keep = detail.id;
	const ids = store.list({ statuses: null, type: null }).map((t) => t.id);
	const dropped = ids.filter((id) => id !== keep);
	for (const id of dropped) store.delete(id);
	live.unfollow(dropped);
	render();
}

/** The newest page (with the filters), merged into what the page holds. */
async function refreshNewest(): Promise<void> {
	const asked = generation;
	const page = await client.list({ status: filter.statuses ?? undefined, type: filter.type ?? undefined, limit });
	if (asked !== generation) return;
	// More new tasks than a page since the last read: what the page holds no longer joins up with
	// the newest page, so the list starts over from it.
	const joins = page.tasks.some((row) => store.has(row.id)) || page.tasks.length < limit;
	if (olderCursor !== undefined && !joins) startListOver();
	for (const row of page.tasks) track(store.put({ ...row, seq: 0 }));
	if (olderCursor === undefined) olderCursor = page.next_cursor;
	if (store.size > MAX_ROWS) {
		// Holding too much to follow it all: back to the newest page.
		startListOver();
		for (const row of page.tasks) track(store.put({ ...row, seq: 0 }));
		olderCursor = page.next_cursor;
	}
	render();
}

async function loadOlder(): Promise<void> {
	if (!olderCursor) return;
	const asked = generation;
	const button = $<HTMLButtonElement>("older");
	button.disabled = true;
	try {
		const page = await client.list({
			status: filter.statuses ?? undefined,
			type: filter.type ?? undefined,
			limit,
			cursor: olderCursor,
		});
		if (asked !== generation) return;
		for (const row of page.tasks) track(store.put({ ...row, seq: 0 }));
		olderCursor = page.next_cursor;
		render();
		// Keyboard users continue from the first row just loaded.
		const first = page.tasks[0];
		if (first) document.querySelector<HTMLButtonElement>(`tr[data-task-id="${CSS.escape(first.id)}"] button`)?.focus();
	} finally {
		button.disabled = false;
	}
}

function onLiveEvent(event: TaskEvent): void {
	detail.live(event);
	const task = store.apply(event);
	if (!task) return;
	table.update(task);
	detail.update(task);
	// A change of status may move the task in or out of the filter; progress never does.
	if (event.type !== "progress") scheduleRender();
	if (isTerminal(task.status)) scheduleHealth();
}

// ---- the counts ----

async function refreshHealth(): Promise<void> {
	const health = await client.health();
	for (const dd of document.querySelectorAll<HTMLElement>("#counts dd")) {
		const n = health.by_status?.[dd.dataset.count as TaskStatus];
		dd.textContent = n === undefined ? "–" : n.toLocaleString("en");
	}
}

let healthTimer = 0;
function scheduleHealth(): void {
	clearTimeout(healthTimer);
	// A task's end reaches the counts a moment after its event.
	healthTimer = window.setTimeout(() => void refreshHealth().catch(reportError), 500);
}

// ---- submitting and canceling ----

async function loadTypes(): Promise<void> {
	types = await client.types();
	const select = $<HTMLSelectElement>("task-type");
	const chosen = select.value;
	select.replaceChildren(...types.map((t) => new Option(t.runs === "pull" ? `${t.type} (pull worker)` : t.type, t.type)));
	const filterType = $<HTMLSelectElement>("filter-type");
	filterType.replaceChildren(new Option("any", ""), ...types.map((t) => new Option(t.type, t.type)));
	ensureOption(filterType, filter.type ?? "", filter.type ?? "");
	if (chosen && types.some((t) => t.type === chosen)) select.value = chosen;
	else if (types.some((t) => t.type === "sleep")) select.value = "sleep";
	typeChosen();
}

function chosenType(): (TaskTypeInfo & { fileField: string | null }) | undefined {
	const info = types.find((t) => t.type === $<HTMLSelectElement>("task-type").value);
	return info && { ...info, fileField: fileField(info.input_schema) };
}

/** A type was chosen: its example input, and the file field for image types. */
function typeChosen(input?: unknown): void {
	const info = chosenType();
	$<HTMLTextAreaElement>("task-input").value = JSON.stringify(input ?? exampleOf(info?.input_schema as JsonSchema | null) ?? {}, null, 2);
	$("input-hint").textContent =
		info?.runs === "pull"
			? "Runs on a pull worker: it waits, with its place in the queue, until a worker leases it."
			: info?.fileField
				? `The file below is uploaded first and passed as "${info.fileField}"; or give "${info.fileField}" yourself.`
				: "";
	$("file-field").hidden = !(info?.type.startsWith("image.") && info.fileField);
}

function fillFormFrom(task: Shown): void {
	$<HTMLSelectElement>("task-type").value = task.type;
	$<HTMLSelectElement>("task-priority").value = task.priority;
	typeChosen(task.input);
	$("submit-title").scrollIntoView({ block: "start" });
	$<HTMLTextAreaElement>("task-input").focus();
}

async function submit(event: SubmitEvent): Promise<void> {
	event.preventDefault();
	const status = $("submit-status");
	const say = (...parts: (Node | string)[]) => status.replaceChildren(...parts);
	const info = chosenType();
	if (!info) return say("Choose a type first.");
	let input: unknown;
	try {
		input = JSON.parse($<HTMLTextAreaElement>("task-input").value || "null");
	} catch (e) {
		say(`The input is not JSON: ${e instanceof Error ? e.message : String(e)}`);
		$<HTMLTextAreaElement>("task-input").focus();
		return;
	}
	const button = $<HTMLButtonElement>("submit-button");
	button.disabled = true;
	say("Submitting…");
	try {
		const file = $<HTMLInputElement>("task-file").files?.[0];
		if (file && !$("file-field").hidden && info.fileField) {
			say(`Uploading ${file.name}…`);
			const uploaded = await client.files.upload(file);
			input = { ...(typeof input === "object" && input !== null ? input : {}), [info.fileField]: { $file: uploaded.id } };
		}
		const priority = $<HTMLSelectElement>("task-priority").value as Priority;
		const task = await client.submit(info.type, input, { priority });
		const shown = store.put({ ...task, seq: 0 });
		track(shown);
		render();
		const open = el("button", { type: "button", className: "link", textContent: "open it" });
		open.addEventListener("click", () => void detail.open(task.id, open));
		say(el("span", { className: "submitted", textContent: `Submitted ${task.id}` }), " — ", open);
		status.dataset.taskId = task.id;
		if (!matches(shown, filter)) status.append(" (hidden by the list's filter)");
	} catch (e) {
		if (needsKey(e)) return showKeyForm("The server needs an API key.");
		say(e instanceof HttpError ? `${e.status} ${e.code}: ${e.body.error.message}` : String(e));
		if (e instanceof HttpError && e.details !== undefined)
			status.append(el("pre", { className: "json", textContent: JSON.stringify(e.details, null, 2) }));
	} finally {
		button.disabled = false;
	}
}

async function cancelTask(id: string): Promise<void> {
	try {
		const task = await client.cancel(id);
		const shown = store.put({ ...task, seq: 0 });
		table.update(shown);
		detail.update(shown);
		scheduleRender();
		scheduleHealth();
	} catch (e) {
		if (e instanceof HttpError && e.status === 409) {
			const task = (e.details as { task?: Shown } | undefined)?.task;
			if (task) table.update(store.put({ ...task, seq: 0 }));
			$("submit-status").textContent = `Task ${id} had already ended`;
		} else reportError(e);
	}
}

// ---- wiring ----

$<HTMLFormElement>("key-form").addEventListener("submit", (event) => {
	event.preventDefault();
	apiKey = $<HTMLInputElement>("api-key").value.trim() || undefined;
	$<HTMLInputElement>("api-key").value = "";
	client = makeClient();
	startListOver();
	void start();
});
$("forget-key").addEventListener("click", () => {
	sessionStorage.removeItem(KEY_STORAGE);
	apiKey = undefined;
	client = makeClient();
	detail.close();
	startListOver();
	$("forget-key").hidden = true;
	showKeyForm("");
});
$<HTMLFormElement>("submit-form").addEventListener("submit", (event) => void submit(event));
$("task-type").addEventListener("change", () => typeChosen());
$("filter-form").addEventListener("submit", (event) => event.preventDefault());
$("filter-form").addEventListener("change", () => {
	const s = $<HTMLSelectElement>("filter-status").value;
	filter.statuses = s ? (s.split(",") as TaskStatus[]) : null;
	filter.type = $<HTMLSelectElement>("filter-type").value || null;
	limit = Number($<HTMLSelectElement>("filter-limit").value) || DEFAULT_LIMIT;
	writeLocation();
	startListOver();
	void refreshNewest().catch(reportError);
});
$("older").addEventListener("click", () => void loadOlder().catch(reportError));
$("detail-close").addEventListener("click", () => detail.close());
document.addEventListener("keydown", (event) => {
	if (event.key === "Escape" && detail.id !== null) detail.close();
});
// Hidden tabs read nothing; back in view, they catch up at once.
document.addEventListener("visibilitychange", () => {
	if (document.visibilityState === "visible") tick();
});

let linkedTask = readLocation();
void start();
