/**
 * The dashboard at `/`: live counts, recent tasks with live progress, a task's detail with its
 * events, a submit form for every task type the server offers (with a file for `image.*`
 * types), cancel buttons. Built on the project's client (`edgetask/client`, clients/js/src):
 * submit, read, cancel, health, uploads and a task's event stream go through it; every unfinished task
 * on screen is followed over one WebSocket (`/v1/ws`, ./live.ts). With API keys on, the key is
 * asked for once and kept in this tab's sessionStorage.
 */
import { createClient, type Client } from "../clients/js/src/client";
import { HttpError } from "../clients/js/src/errors";
import type { Task, TaskStatus } from "../clients/js/src/types";
import { LiveTasks, type LiveState } from "./live";
import { isTerminal, TaskStore, tokenOf, type Shown } from "./tasks";
import { listTasks, taskTypes, type TaskTypeInfo } from "./server";
import { $, eventLine, renderFields, renderOutput, TaskTable } from "./view";

const KEY_STORAGE = "edgetask.apiKey";
const LIST_EVERY_MS = 5000;
const HEALTH_EVERY_MS = 3000;
const PAGE = 50;

let apiKey: string | undefined = sessionStorage.getItem(KEY_STORAGE) ?? undefined;
let client: Client = makeClient();
let types: TaskTypeInfo[] = [];
let olderCursor: string | null = null;
let timers: number[] = [];
let detail: { id: string; abort: AbortController; opener: HTMLElement | null } | null = null;

const store = new TaskStore();
const table = new TaskTable($<HTMLTableElement>("tasks").tBodies[0] ?? document.createElement("tbody"), {
	open: (id) => void openDetail(id),
	cancel: (id) => void cancelTask(id),
});
const live = new LiveTasks(
	socketUrl(),
	(event) => {
		const task = store.apply(event);
		if (!task) return;
		table.update(task);
		if (event.type !== "progress" && event.type !== "snapshot") scheduleRender();
		if (isTerminal(task.status)) scheduleHealth();
		if (detail?.id === task.id) showDetail(task);
	},
	showLiveState,
);

function makeClient(): Client {
	// No WebSocket for the client itself: the page's one socket is ./live.ts; a task's event
	// history streams over SSE (which, unlike a browser WebSocket, can send the key).
	return createClient({ baseUrl: location.origin, apiKey, WebSocket: null, transport: "sse" });
}

function socketUrl(): string {
	return `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/v1/ws`;
}

function status(text: string): void {
	$("connection").textContent = text;
}

function showLiveState(state: LiveState, detailText?: string): void {
	status(state === "open" ? "Live" : state === "connecting" ? "Connecting…" : (detailText ?? "Reconnecting…"));
}

/** Who may see what: a 401 from the server means a key is needed (or the one given is wrong). */
function needsKey(e: unknown): boolean {
	return e instanceof HttpError && e.status === 401;
}

function showKeyForm(message: string): void {
	stop();
	status("Waiting for an API key");
	$("key-section").hidden = false;
	$("key-error").textContent = message;
	$<HTMLInputElement>("api-key").focus();
}

// ---- the periodic work ----

function stop(): void {
	for (const t of timers) clearInterval(t);
	timers = [];
	live.stop();
}

async function start(): Promise<void> {
	try {
		await Promise.all([refreshList(), refreshHealth(), loadTypes()]);
	} catch (e) {
		if (needsKey(e)) {
			// A deployment without keys says how to set them; otherwise say whether ours was refused.
			const notConfigured = e instanceof HttpError && e.code === "auth_not_configured";
			showKeyForm(notConfigured ? e.body.error.message : apiKey ? "The server refused this key." : "");
			return;
		}
		status(`Cannot reach the server: ${String(e)}`);
	}
	$("key-section").hidden = true;
	$("forget-key").hidden = apiKey === undefined;
	live.start();
	timers = [
		window.setInterval(() => void refreshList().catch(reportError), LIST_EVERY_MS),
		window.setInterval(() => void refreshHealth().catch(reportError), HEALTH_EVERY_MS),
		// Running tasks' clocks.
		window.setInterval(() => render(), 1000),
	];
}

function reportError(e: unknown): void {
	if (needsKey(e)) showKeyForm("The server now needs an API key.");
	else status(`Trouble talking to the server: ${e instanceof Error ? e.message : String(e)}`);
}

function filters(): { statuses: TaskStatus[] | null; type: string | null } {
	const s = $<HTMLSelectElement>("filter-status").value;
	const t = $<HTMLSelectElement>("filter-type").value;
	return { statuses: s ? (s.split(",") as TaskStatus[]) : null, type: t || null };
}

function render(): void {
	const shown = store.list(filters());
	table.render(shown);
	$("tasks-empty").hidden = shown.length > 0;
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

/** The newest page (with the filters), merged into what is known; every unfinished task is followed live. */
async function refreshList(): Promise<void> {
	const f = filters();
	const page = await listTasks(apiKey, { status: f.statuses?.join(","), type: f.type ?? undefined, limit: PAGE });
	for (const row of page.tasks) track(store.put(row));
	if (olderCursor === null) olderCursor = page.next_cursor;
	$("older").hidden = olderCursor === null;
	render();
}

async function loadOlder(): Promise<void> {
	if (!olderCursor) return;
	const f = filters();
	const page = await listTasks(apiKey, { status: f.statuses?.join(","), type: f.type ?? undefined, limit: PAGE, cursor: olderCursor });
	for (const row of page.tasks) track(store.put(row));
	olderCursor = page.next_cursor;
	$("older").hidden = olderCursor === null;
	render();
}

function track(task: Shown): void {
	if (!isTerminal(task.status)) live.follow(task.id, tokenOf(task));
}

async function refreshHealth(): Promise<void> {
	const health = await client.health();
	for (const dd of document.querySelectorAll<HTMLElement>("#counts dd")) {
		const name = dd.dataset.count as TaskStatus;
		const n = health.by_status?.[name];
		dd.textContent = n === undefined ? "–" : n.toLocaleString("en");
	}
}

let healthQueued = 0;
function scheduleHealth(): void {
	clearTimeout(healthQueued);
	// Terminal reports reach the counts a moment after the task ends.
	healthQueued = window.setTimeout(() => void refreshHealth().catch(reportError), 400);
}

// ---- submitting ----

async function loadTypes(): Promise<void> {
	types = await taskTypes(apiKey);
	const select = $<HTMLSelectElement>("task-type");
	const filter = $<HTMLSelectElement>("filter-type");
	const chosen = select.value;
	select.replaceChildren(...types.map((t) => new Option(t.type, t.type)));
	filter.replaceChildren(new Option("any", ""), ...types.map((t) => new Option(t.type, t.type)));
	if (chosen && types.some((t) => t.type === chosen)) select.value = chosen;
	else if (types.some((t) => t.type === "sleep")) select.value = "sleep";
	typeChosen();
}

function typeChosen(): void {
	const info = types.find((t) => t.type === $<HTMLSelectElement>("task-type").value);
	$<HTMLTextAreaElement>("task-input").value = JSON.stringify(info?.example ?? {}, null, 2);
	$("input-hint").textContent = info?.runs === "pull" ? "Runs on a pull worker: it waits until a worker leases it." : "";
	const wantsFile = info !== undefined && info.type.startsWith("image.") && info.file_field !== null;
	$("file-field").hidden = !wantsFile;
}

async function submit(event: SubmitEvent): Promise<void> {
	event.preventDefault();
	const say = (text: string) => ($("submit-status").textContent = text);
	const type = $<HTMLSelectElement>("task-type").value;
	const info = types.find((t) => t.type === type);
	let input: unknown;
	try {
		input = JSON.parse($<HTMLTextAreaElement>("task-input").value || "null");
	} catch (e) {
		say(`The input is not JSON: ${(e as Error).message}`);
		$<HTMLTextAreaElement>("task-input").focus();
		return;
	}
	const button = (event.target as HTMLFormElement).querySelector("button");
	if (button) button.disabled = true;
	say("Submitting…");
	try {
		const file = $<HTMLInputElement>("task-file").files?.[0];
		if (file && !$("file-field").hidden && info?.file_field) {
			say(`Uploading ${file.name}…`);
			const uploaded = await client.files.upload(file);
			input = { ...(typeof input === "object" && input !== null ? input : {}), [info.file_field]: { $file: uploaded.id } };
		}
		const priority = $<HTMLSelectElement>("task-priority").value as "high" | "normal" | "low";
		const task = await client.submit(type, input, { priority });
		track(store.put(task));
		render();
		say(`Submitted ${task.id}`);
	} catch (e) {
		if (needsKey(e)) return showKeyForm("The server needs an API key.");
		say(e instanceof HttpError ? `${e.status} ${e.code}: ${e.body.error.message}` : String(e));
	} finally {
		if (button) button.disabled = false;
	}
}

async function cancelTask(id: string): Promise<void> {
	try {
		const task = await client.cancel(id);
		table.update(store.put(task));
		scheduleHealth();
	} catch (e) {
		if (e instanceof HttpError && e.status === 409) {
			const task = (e.details as { task?: Task } | undefined)?.task;
			if (task) table.update(store.put(task));
			status(`Task ${id} had already ended`);
		} else reportError(e);
	}
}

// ---- a task's detail ----

function showDetail(task: Shown): void {
	renderFields($("detail-fields"), task);
	renderOutput($("detail-output"), task);
}

async function openDetail(id: string): Promise<void> {
	detail?.abort.abort();
	const abort = new AbortController();
	detail = { id, abort, opener: document.activeElement instanceof HTMLElement ? document.activeElement : null };
	const section = $("detail");
	section.hidden = false;
	$("detail-title").textContent = `Task ${id}`;
	$("detail-title").focus();
	const events = $("detail-events");
	events.replaceChildren();
	try {
		const task = await client.get(id, { signal: abort.signal });
		showDetail(store.put(task));
		// The stored events from the first, then live ones until the end (SSE, resumable).
		for await (const event of client.events(id, { after: 0, signal: abort.signal })) {
			events.append(eventLine(event));
			const known = store.apply(event);
			if (known) showDetail(known);
		}
		showDetail(store.put(await client.get(id, { signal: abort.signal })));
	} catch (e) {
		if (!abort.signal.aborted) events.append(eventLine({ seq: 0, type: `error: ${String(e)}`, at: new Date().toISOString(), data: {} }));
	}
}

function closeDetail(): void {
	const opener = detail?.opener;
	detail?.abort.abort();
	detail = null;
	$("detail").hidden = true;
	opener?.focus();
}

// ---- wiring ----

$<HTMLFormElement>("key-form").addEventListener("submit", (event) => {
	event.preventDefault();
	apiKey = $<HTMLInputElement>("api-key").value.trim() || undefined;
	if (apiKey) sessionStorage.setItem(KEY_STORAGE, apiKey);
	$<HTMLInputElement>("api-key").value = "";
	client = makeClient();
	store.clear();
	void start();
});
$("forget-key").addEventListener("click", () => {
	sessionStorage.removeItem(KEY_STORAGE);
	apiKey = undefined;
	client = makeClient();
	store.clear();
	render();
	showKeyForm("");
});
$<HTMLFormElement>("submit-form").addEventListener("submit", (event) => void submit(event));
$("task-type").addEventListener("change", typeChosen);
$("filter-form").addEventListener("change", () => {
	olderCursor = null;
	render();
	void refreshList().catch(reportError);
});
$("older").addEventListener("click", () => void loadOlder().catch(reportError));
$("detail-close").addEventListener("click", closeDetail);
document.addEventListener("keydown", (event) => {
	if (event.key === "Escape" && detail) closeDetail();
});

void start();
