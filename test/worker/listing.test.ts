/**
 * GET /v1/tasks: recent tasks newest first, filters, cursor pages, limits, auth, and the index
 * kept off the hot path (a task never waits on it, and it failing never breaks a task).
 *
 * Every test file shares the health shards (the listing's index), so tests here never expect
 * the listing to hold only their tasks: they look for theirs, in order, among whatever is there.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { listStatement, statsShard } from "../../src/health/StatsShard";
import { listingEntry, type TaskRow } from "../../src/listing/row";
import { encodeCursor } from "../../src/listing/query";
import { withSchedulingDefaults, type TaskRecord } from "../../src/task/model";
import { eventually, sleep } from "../shared/waits";
import { call, cancelTask, errorOf, getTask, settled, submitTask, type EnvOverrides } from "./support/api";
import { newId } from "./support/ids";

const HEALTH_SHARDS = 16;
const ROW_FIELDS = [
	"attempts",
	"created_at",
	"error",
	"finished_at",
	"id",
	"metrics",
	"priority",
	"progress",
	"started_at",
	"status",
	"type",
	"urls",
];

type ListedRow = TaskRow & { urls: { get: string; ws: string; events: string; cancel: string } };

interface Page {
	tasks: ListedRow[];
	next_cursor: string | null;
}

async function list(query: string, overrides?: EnvOverrides, headers: Record<string, string> = {}) {
	return call<Page>(`/v1/tasks${query}`, { headers }, overrides);
}

/** Polls the listing (query `query`) until `ok` holds for the rows of `ids`; reports arrive off the request path. */
function listedUntil(query: string, ids: string[], ok: (rows: ListedRow[]) => boolean, what: string): Promise<ListedRow[]> {
	return eventually(
		async () => {
			const { res, body } = await list(query);
			expect(res.status, JSON.stringify(body)).toBe(200);
			const mine = body.tasks.filter((t) => ids.includes(t.id));
			return ok(mine) ? mine : undefined;
		},
		what,
		15_000,
		100,
	);
}

describe("GET /v1/tasks", () => {
	it("lists recent tasks newest first, each row with the contract's fields and no input or output", async () => {
		const ids: string[] = [];
		for (let i = 0; i < 3; i++) {
			const id = newId("list");
			ids.push(id);
			await submitTask({ id, type: "echo", input: { secret: "not in the listing" }, priority: i === 1 ? "high" : "normal" }, { wait: 10 });
			await sleep(5); // distinct creation times
		}
		const rows = await listedUntil("?limit=500", ids, (r) => r.length === 3, "the three tasks listed");
		// Newest first.
		expect(rows.map((r) => r.id)).toEqual([...ids].reverse());
		for (const row of rows) {
			expect(Object.keys(row).sort()).toEqual(ROW_FIELDS);
			expect(JSON.stringify(row)).not.toContain("not in the listing");
			const task = (await getTask(row.id)).body;
			expect(row).toEqual({
				id: task.id,
				type: task.type,
				status: "succeeded",
				priority: task.priority,
				progress: task.progress,
				attempts: task.attempts,
				created_at: task.created_at,
				started_at: task.started_at,
				finished_at: task.finished_at,
				metrics: task.metrics,
				error: null,
				urls: task.urls,
			});
		}
		expect(rows[1]?.priority).toBe("high");
		const { res } = await list("");
		expect(res.headers.get("cache-control")).toBe("no-store");
	});

	it("filters by status (one or several) and by type", async () => {
		const ok = newId("list-ok");
		const failed = newId("list-fail");
		const running = newId("list-run");
		await submitTask({ id: ok, type: "echo", input: 1 }, { wait: 10 });
		await submitTask({ id: failed, type: "fail", input: { permanent: true, message: "x".repeat(1000) } }, { wait: 10 });
		await submitTask({ id: running, type: "sleep", input: { ms: 6000 } });
		const ids = [ok, failed, running];
		try {
			const failedRows = await listedUntil("?status=failed&limit=500", ids, (r) => r.length === 1, "the failed task alone");
			expect(failedRows[0]).toMatchObject({ id: failed, status: "failed", error: { code: "processor_error" } });
			// Rows carry the error's code and the start of its message; the task has the rest.
			expect(failedRows[0]?.error?.message.length).toBe(256);

			const live = await listedUntil(
				"?status=queued,running&limit=500",
				ids,
				(r) => r.some((t) => t.status === "running"),
				"the running task",
			);
			expect(live.map((t) => t.id)).toEqual([running]);
			expect(live[0]?.started_at).not.toBeNull();

			const echoes = await listedUntil("?type=echo&limit=500", ids, (r) => r.length === 1, "the echo task alone");
			expect(echoes.map((t) => t.id)).toEqual([ok]);
			const both = await listedUntil(
				"?type=fail&status=failed,succeeded&limit=500",
				ids,
				(r) => r.length === 1,
				"type and status together",
			);
			expect(both.map((t) => t.id)).toEqual([failed]);

			// Every row of a filtered page matches the filter, not only ours.
			const { body } = await list("?status=succeeded,failed&type=echo&limit=500");
			for (const row of body.tasks) {
				expect(row.type).toBe("echo");
				expect(["succeeded", "failed"]).toContain(row.status);
			}
		} finally {
			await cancelTask(running);
		}
	});

	it("pages through with next_cursor: every task once, newest first, at most `limit` a page, null at the end", async () => {
		const ids: string[] = [];
		for (let i = 0; i < 7; i++) {
			const id = newId("page");
			ids.push(id);
			await submitTask({ id, type: "echo", input: i }, { wait: 10 });
		}
		const newestFirst = [...ids].reverse();
		await listedUntil("?limit=500", ids, (r) => r.length === 7, "all seven listed");

		// Start just above our newest task (other files' tasks keep arriving on top), then walk down.
		const newest = (await getTask(newestFirst[0]!)).body;
		let cursor: string | null = encodeCursor({ createdAt: Date.parse(newest.created_at) + 1, id: "0" });
		const seen: TaskRow[] = [];
		let pages = 0;
		while (cursor && seen.filter((t) => ids.includes(t.id)).length < 7) {
			const { res, body } = await list(`?limit=3&cursor=${encodeURIComponent(cursor)}`);
			expect(res.status, JSON.stringify(body)).toBe(200);
			expect(body.tasks.length).toBeLessThanOrEqual(3);
			if (body.next_cursor) expect(body.tasks.length).toBe(3);
			seen.push(...body.tasks);
			cursor = body.next_cursor;
			expect(++pages).toBeLessThan(200);
		}
		const order = seen.map((t) => [Date.parse(t.created_at), t.id] as const);
		for (let i = 1; i < order.length; i++) {
			const [prevAt, prevId] = order[i - 1]!;
			const [at, id] = order[i]!;
			expect(prevAt > at || (prevAt === at && prevId > id), `row ${i} is older than row ${i - 1}`).toBe(true);
		}
		expect(new Set(seen.map((t) => t.id)).size).toBe(seen.length);
		expect(seen.filter((t) => ids.includes(t.id)).map((t) => t.id)).toEqual(newestFirst);

		// The last page says so: a cursor below every task gives an empty page and no cursor.
		const { body: end } = await list(`?cursor=${encodeCursor({ createdAt: 1, id: "0" })}`);
		expect(end).toEqual({ tasks: [], next_cursor: null });
	});

	it("defaults to 50 rows and allows 500 at most", async () => {
		// Enough tasks for a full default page, whatever else the run has created.
		await Promise.all(Array.from({ length: 55 }, (_, i) => submitTask({ id: newId("many"), type: "echo", input: i })));
		const { body } = await eventually(
			async () => {
				const answer = await list("");
				return answer.body.tasks.length === 50 ? answer : undefined;
			},
			"a full default page",
			15_000,
			100,
		);
		expect(body.next_cursor).toEqual(expect.any(String));
		const big = await list("?limit=500");
		expect(big.res.status).toBe(200);
		expect(big.body.tasks.length).toBeGreaterThanOrEqual(55);
		expect(big.body.tasks.length).toBeLessThanOrEqual(500);
	});

	it.each([
		["?limit=0", "invalid_query"],
		["?limit=501", "invalid_query"],
		["?limit=ten", "invalid_query"],
		["?limit=1.5", "invalid_query"],
		["?limit=-1", "invalid_query"],
		["?status=done", "invalid_query"],
		["?status=", "invalid_query"],
		["?status=queued,,running", "invalid_query"],
		["?type=", "invalid_query"],
		[`?type=${"t".repeat(65)}`, "invalid_query"],
		["?cursor=nonsense", "invalid_cursor"],
		[`?cursor=${btoa(JSON.stringify([1, "bad id with spaces"]))}`, "invalid_cursor"],
		[`?cursor=${btoa(JSON.stringify(["1", "x"]))}`, "invalid_cursor"],
		[`?cursor=${btoa("{}")}`, "invalid_cursor"],
	])("%s → 400 %s", async (query, code) => {
		const { res, body } = await list(query);
		expect(res.status, JSON.stringify(body)).toBe(400);
		expect(errorOf(body).code).toBe(code);
	});

	it("leaves out a task once it expires, and lists nothing of it again", async () => {
		const id = newId("list-ttl");
		await submitTask({ id, type: "echo", input: 1, ttl_s: 1 }, { wait: 10 });
		await listedUntil("?limit=500", [id], (r) => r.length === 1, "the task listed");
		await listedUntil("?limit=500", [id], (r) => r.length === 0, "the task gone from the listing after its TTL");
		// The listing leaves a row out from its expiry time on; the task's own alarm deletes it a
		// moment later (once the health shard has acknowledged the expiry).
		await eventually(async () => ((await getTask(id)).res.status === 404 ? true : undefined), "the task deleted", 10_000);
	});

	it("needs an API key when keys are set; a task's capability token does not open it", async () => {
		const keyed: EnvOverrides = { API_KEYS: "list-k1", AUTH_MODE: "required" };
		expect((await list("", keyed)).res.status).toBe(401);
		const submitted = await submitTask(
			{ id: newId("list-auth"), type: "echo" },
			{ headers: { authorization: "Bearer list-k1" }, env: keyed },
		);
		const token = new URL(submitted.body.urls.get).searchParams.get("token");
		expect(token).toBeTruthy();
		expect((await list(`?token=${token}`, keyed)).res.status).toBe(401);
		const withKey = await list("?limit=500", keyed, { authorization: "Bearer list-k1" });
		expect(withKey.res.status).toBe(200);
		// Each row has its task's URLs, whose token opens that task (and only it) without the key.
		const row = await eventually(
			async () => (await list("?limit=500", keyed, { authorization: "Bearer list-k1" })).body.tasks.find((t) => t.id === submitted.body.id),
			"the keyed task listed",
		);
		const rowToken = new URL(row.urls.get).searchParams.get("token");
		expect(rowToken).toBeTruthy();
		expect(row.urls.ws).toMatch(/^ws:\/\/.+\/ws\?token=/);
		expect((await call(new URL(row.urls.get).pathname + new URL(row.urls.get).search, {}, keyed)).res.status).toBe(200);
		const other = withKey.body.tasks.find((t) => t.id !== submitted.body.id);
		if (other) expect((await call(`/v1/tasks/${other.id}?token=${rowToken}`, {}, keyed)).res.status).toBe(401);
	});
});

describe("the listing's index stays off the hot path", () => {
	/** Makes every shard refuse rows of tasks whose id starts with `prefix`: a real failing index write. */
	async function refuseRows(prefix: string, refuse: boolean): Promise<void> {
		for (let i = 0; i < HEALTH_SHARDS; i++) {
			await runInDurableObject(statsShard(env, i), async (_shard, state) => {
				const name = `refuse_${prefix.replace(/\W/g, "_")}`;
				for (const op of ["INSERT", "UPDATE"]) {
					state.storage.sql.exec(`DROP TRIGGER IF EXISTS ${name}_${op}`);
					if (refuse) {
						state.storage.sql.exec(
							`CREATE TRIGGER ${name}_${op} BEFORE ${op} ON tasks WHEN NEW.id LIKE '${prefix}%' BEGIN SELECT RAISE(ABORT, 'index down'); END`,
						);
					}
				}
			});
		}
	}

	it("a task whose index rows cannot be written still ends, answers its waiter and reads back; the row arrives once the index is back", async () => {
		const prefix = `idxdown-${crypto.randomUUID().slice(0, 8)}-`;
		await refuseRows(prefix, true);
		const id = `${prefix}task`;
		try {
			const answer = await submitTask({ id, type: "sleep", input: { ms: 300 } }, { wait: 10 });
			expect(answer.res.status).toBe(200);
			expect(answer.body.status).toBe("succeeded");
			expect((await settled(id)).status).toBe("succeeded");
			// The answer came while the index could not have the task at all.
			await sleep(500);
			const { body } = await list("?limit=500");
			expect(body.tasks.some((t) => t.id === id)).toBe(false);
		} finally {
			await refuseRows(prefix, false);
		}
		// The task's alarm sends the unacknowledged terminal report again (every 2 s).
		const rows = await listedUntil("?limit=500", [id], (r) => r.length === 1, "the row once the index is back");
		expect(rows[0]).toMatchObject({ id, status: "succeeded" });
	});

	it("costs no write of its own: one row a report, as the status-only rows did", async () => {
		// The reports a task's object sends over its life, as its health shard receives them.
		const stub = statsShard(env, 0);
		const id = newId("cost");
		const now = Date.now();
		const record = withSchedulingDefaults({
			id,
			type: "echo",
			status: "queued",
			priority: "normal",
			progress: null,
			attempts: 0,
			createdAt: now,
			startedAt: null,
			finishedAt: null,
			runMs: null,
			expiresAt: null,
			error: null,
			output: null,
			webhook: null,
			webhookEvents: [],
		} as unknown as TaskRecord);
		const queued = await stub.reportMany([{ id, version: 1, status: "queued", createdAt: now, listing: listingEntry(record) }]);
		const running = { ...record, status: "running", attempts: 1, startedAt: now + 5 } as TaskRecord;
		const runningWrite = await stub.reportMany([{ id, version: 2, status: "running", createdAt: now, listing: listingEntry(running) }]);
		const done = { ...running, status: "succeeded", finishedAt: now + 9, runMs: 4, expiresAt: now + 3_600_000 } as TaskRecord;
		const doneWrite = await stub.reportMany([{ id, version: 3, status: "succeeded", createdAt: now, listing: listingEntry(done) }]);
		const late = await stub.reportMany([{ id, version: 2, status: "running", createdAt: now, listing: listingEntry(running) }]);
		const expired = await stub.reportMany([{ id, version: 4, status: null, createdAt: now }]);
		const written = {
			queued: queued.rowsWritten,
			running: runningWrite.rowsWritten,
			succeeded: doneWrite.rowsWritten,
			late: late.rowsWritten,
			expired: expired.rowsWritten,
		};
		for (const r of [queued, runningWrite, doneWrite, late, expired]) expect(r.failed).toEqual([]);

		// The same life on the status-only table the shards had before the listing (keyed by id).
		const legacy = await runInDurableObject(stub, async (_shard, state) => {
			const sql = state.storage.sql;
			const table = `legacy_${crypto.randomUUID().replace(/-/g, "")}`;
			sql.exec(`CREATE TABLE ${table} (id TEXT PRIMARY KEY, version INTEGER NOT NULL, status TEXT NOT NULL) WITHOUT ROWID`);
			const upsert = (version: number, status: string) =>
				sql.exec(
					`INSERT INTO ${table} (id, version, status) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version,
					 status = excluded.status WHERE excluded.version > ${table}.version`,
					id,
					version,
					status,
				).rowsWritten;
			const counts = {
				queued: upsert(1, "queued"),
				running: upsert(2, "running"),
				succeeded: upsert(3, "succeeded"),
				late: upsert(2, "running"),
				expired: sql.exec(`DELETE FROM ${table} WHERE id = ? AND version <= ?`, id, 4).rowsWritten,
			};
			sql.exec(`DROP TABLE ${table}`);
			return counts;
		});
		const total = (w: Record<string, number>) => Object.values(w).reduce((a, b) => a + b, 0);
		console.log(`rows written per report: with the listing ${JSON.stringify(written)}, status only before ${JSON.stringify(legacy)}`);
		// One row a report (the table is its own index, in the listing's order), nothing for a late
		// one: exactly what the status-only rows cost.
		expect(written).toEqual({ queued: 1, running: 1, succeeded: 1, late: 0, expired: 1 });
		expect(written).toEqual(legacy);
	});

	it("carries over a shard kept before the listing: its tasks still count, and move into the listing with their next report", async () => {
		const shard = env.STATS.getByName(`legacy-${crypto.randomUUID()}`);
		// A shard as the status-only version left it.
		await runInDurableObject(shard, async (_s, state) => {
			state.storage.sql.exec("DROP TABLE tasks");
			state.storage.sql.exec(
				"CREATE TABLE task_status (id TEXT PRIMARY KEY, version INTEGER NOT NULL, status TEXT NOT NULL) WITHOUT ROWID",
			);
			state.storage.sql.exec("INSERT INTO task_status VALUES ('old-a', 3, 'running'), ('old-b', 5, 'succeeded')");
		});
		await evictDurableObject(shard);
		expect(await shard.counts()).toMatchObject({ running: 1, succeeded: 1 });
		expect(await shard.list({ statuses: null, type: null, before: null, limit: 10, now: Date.now() })).toEqual([]);
		// old-a ends: its report brings its creation time and row; it is counted once, and listed.
		const createdAt = Date.now() - 5000;
		const row = JSON.stringify({ id: "old-a", status: "succeeded" });
		await shard.reportMany([{ id: "old-a", version: 4, status: "succeeded", createdAt, listing: { type: "echo", expiresAt: null, row } }]);
		expect(await shard.counts()).toMatchObject({ running: 0, succeeded: 2 });
		expect(await shard.list({ statuses: null, type: null, before: null, limit: 10, now: Date.now() })).toEqual([
			{ createdAt, id: "old-a", row },
		]);
		// old-b expires without a creation time (sent by the version before): found by its id.
		await shard.reportMany([{ id: "old-b", version: 6, status: null }]);
		expect(await shard.counts()).toMatchObject({ succeeded: 1 });
	});

	it.each([
		["no filter", { statuses: null, type: null, before: null }],
		["every filter and a cursor", { statuses: ["failed", "canceled"], type: "echo", before: { createdAt: 1, id: "x" } }],
	] as const)("a shard reads a page along its key, newest first, without sorting (%s)", async (_, filters) => {
		const { sql, params } = listStatement({ ...filters, statuses: filters.statuses && [...filters.statuses], limit: 5, now: Date.now() });
		const plan = await runInDurableObject(statsShard(env, 0), async (_shard, state) =>
			state.storage.sql
				.exec<{ detail: string }>(`EXPLAIN QUERY PLAN ${sql}`, ...params)
				.toArray()
				.map((r) => r.detail)
				.join("; "),
		);
		// The table is stored in the listing's order: a cursor starts a search on the key, and no
		// page is ever sorted.
		expect(plan).not.toContain("TEMP B-TREE");
		if (filters.before) expect(plan).toMatch(/SEARCH tasks USING PRIMARY KEY/);
	});
});
