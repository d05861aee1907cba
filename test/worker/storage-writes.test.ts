/**
 * What a task writes to its storage, row by row: a progress event costs one row (it takes the
 * place of the previous one) and never rewrites the task's record, whose input may be 128 KiB;
 * a task without a webhook writes nothing for webhooks. Counted from the runtime's own
 * `rowsWritten` of every statement the task's object runs.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { TaskRecord } from "../../src/task/model";
import { cancelTask, getTask, settled, warmUp } from "./support/api";
import { newId } from "./support/ids";
import { createWithoutMessage, dispatch, runInObject, storedState, taskStub } from "./support/objects";

beforeAll(warmUp);

interface Statement {
	sql: string;
	cursor: { rowsWritten: number };
}

/** Records every SQL statement the task's object runs from now on (until it is evicted). */
async function recordStatements(id: string): Promise<Statement[]> {
	const statements: Statement[] = [];
	await runInObject(taskStub(id), (instance) => {
		const sql = instance.sql as SqlStorage;
		const exec = sql.exec.bind(sql);
		sql.exec = ((query: string, ...bindings: unknown[]) => {
			const cursor = exec(query, ...bindings);
			statements.push({ sql: query, cursor });
			return cursor;
		}) as SqlStorage["exec"];
	});
	return statements;
}

const rows = (statements: Statement[]) => statements.reduce((n, s) => n + s.cursor.rowsWritten, 0);

describe("rows written", () => {
	it("each progress event writes one row and never the record; the record is rewritten only by lifecycle changes", async () => {
		const id = newId("writes");
		// A 100 KiB input: rewriting the record for each progress event would write it each time.
		await createWithoutMessage({ id, type: "sleep", input: { ms: 2500, pad: "p".repeat(100_000) } });
		const statements = await recordStatements(id);
		expect(await dispatch(id)).toBe("started");
		const done = await settled(id, 20);
		expect(done.status).toBe("succeeded");

		const recordWrites = statements.filter((s) => /INTO task\b/.test(s.sql));
		const progressWrites = statements.filter((s) => /^(UPDATE events|INSERT INTO events)/.test(s.sql) && s.cursor.rowsWritten > 0);
		// running and succeeded rewrite the record; nothing else does.
		expect(recordWrites.map((s) => s.cursor.rowsWritten)).toEqual([1, 1]);
		// 10 steps of 250 ms, at most 4 progress events a second: several, each one row.
		const progress = progressWrites.length - 2;
		expect(progress).toBeGreaterThanOrEqual(5);
		expect(statements.filter((s) => s.sql.startsWith("UPDATE events")).every((s) => s.cursor.rowsWritten === 1)).toBe(true);
		// Everything the run wrote: the running and succeeded events and records, one row per progress event.
		expect(rows(statements)).toBe(4 + progress);
		console.log(
			`storage-writes: a 2.5 s sleep task with a 100 KiB input wrote ${rows(statements)} rows from dispatch to end: the record twice, ${progress} progress events one row each`,
		);
		// No webhook: no webhook table, and only the latest progress event is kept.
		const { tables } = await storedState(id);
		expect(tables.sort()).toEqual(["events", "task"]);
	});

	it("loading a running task reads its progress back from the progress event, newer than its record", async () => {
		const id = newId("writes");
		await createWithoutMessage({ id, type: "misbehave", input: { progress: [{ percent: 37, message: "in place" }], hold_ms: 60_000 } });
		expect(await dispatch(id)).toBe("started");
		await expect.poll(async () => (await getTask(id)).body.progress, { timeout: 5000 }).toEqual({ percent: 37, message: "in place" });
		const { record } = await storedState(id);
		// The stored record was written with the running event, before the progress.
		expect(record?.progress).toBeNull();
		// What a fresh instance would load (after a crash or a restart): the record and its latest event.
		const loaded = await runInObject(taskStub(id), (instance) => {
			const r = instance.load() as TaskRecord;
			return { status: r.status, progress: r.progress, seq: r.eventSeq };
		});
		expect(loaded).toEqual({ status: "running", progress: { percent: 37, message: "in place" }, seq: (record?.eventSeq ?? 0) + 1 });
		await cancelTask(id);
	});
});
