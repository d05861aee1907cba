/**
 * The task's Durable Object reached directly, past the HTTP API: what it stored, and storing a
 * task without its queue message so a test decides when, or whether, it is dispatched.
 */
import { env } from "cloudflare:workers";
import { runInDurableObject } from "cloudflare:test";
import { toSpec } from "../../../src/api/tasks";
import type { Task, TaskRecord } from "../../../src/task/model";

export function taskStub(id: string) {
	return env.TASKS.getByName(id);
}

/** The tables an object's SQLite holds (the runtime's own `_cf…` tables left out unless `all`). */
function tablesOf(state: DurableObjectState, all = false): string[] {
	const filter = all ? "" : " AND name NOT LIKE '\\_cf%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'";
	return state.storage.sql
		.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table'${filter}`)
		.toArray()
		.map((row) => row.name);
}

/**
 * What the task's object has stored: its record (null if none), whether an alarm is set, its
 * tables, and every table including the runtime's own (`allTables`: empty once nothing is left).
 */
export function storedState(
	id: string,
): Promise<{ record: TaskRecord | null; alarm: number | null; tables: string[]; allTables: string[] }> {
	return runInDurableObject(taskStub(id), async (_instance, state) => {
		const tables = tablesOf(state);
		const rows = tables.includes("task") ? state.storage.sql.exec<{ record: string }>("SELECT record FROM task").toArray() : [];
		const record = rows[0] ? (JSON.parse(rows[0].record) as TaskRecord) : null;
		return { record, alarm: await state.storage.getAlarm(), tables, allTables: tablesOf(state, true) };
	});
}

/**
 * Stores a task in its object exactly as POST /v1/tasks would, but sends no queue message: it
 * stays queued (until its recovery alarm re-sends the message, QUEUED_RECOVERY_S = 2 in the test
 * bindings) or until the test calls `dispatch`.
 */
export async function createWithoutMessage(body: Record<string, unknown>): Promise<Task> {
	const spec = await toSpec(env, body);
	const { outcome, task } = await taskStub(spec.id).create(spec);
	if (outcome !== "created") throw new Error(`create ${spec.id}: ${outcome}`);
	return task as Task;
}

/** What the consumer does when the task's message arrives. */
export function dispatch(id: string) {
	return taskStub(id).dispatch();
}

/** The hubs (multi-task sockets) a task's object lists as following it. */
export function followersOf(id: string): Promise<string[]> {
	return runInDurableObject(taskStub(id), (_instance, state) =>
		tablesOf(state).includes("followers")
			? state.storage.sql
					.exec<{ hub: string }>("SELECT hub FROM followers")
					.toArray()
					.map((row) => row.hub)
			: [],
	);
}

/** Everything a hub object has stored: every table (the runtime's own included) and its alarm. */
export function hubStorage(hub: string): Promise<{ tables: string[]; alarm: number | null }> {
	return runInDurableObject(env.HUBS.getByName(hub), async (_instance, state) => ({
		tables: tablesOf(state, true),
		alarm: await state.storage.getAlarm(),
	}));
}

/**
 * runInDurableObject for reaching an object's private state on purpose (fault injection, a race
 * forced, a state no client can produce): the instance is untyped, and so is the stub, whose RPC
 * type is too deep for the checker in some files.
 */
export function runInObject<T>(stub: unknown, fn: (instance: any, state: DurableObjectState) => T | Promise<T>): Promise<T> {
	const run = runInDurableObject as unknown as (
		stub: unknown,
		fn: (instance: any, state: DurableObjectState) => T | Promise<T>,
	) => Promise<T>;
	return run(stub, fn);
}

/**
 * Makes a task object's storage refuse to write its record once it says `succeeded` (a trigger
 * raises, as SQLite does for a row over its limit or a full disk): the write failure is real.
 */
export function refuseSucceededWrites(state: DurableObjectState): void {
	state.storage.sql.exec(`CREATE TRIGGER refuse_succeeded BEFORE INSERT ON task WHEN NEW.record LIKE '%"status":"succeeded"%'
		BEGIN SELECT RAISE(ABORT, 'injected: the storage refuses this write'); END`);
}
