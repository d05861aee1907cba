/**
 * Floor worker for the benchmark (see wrangler.toml here). Same body shape as edgetask's
 * `sleep` task (`{"ms": N}` JSON in, JSON out) so the floors pay for the same parsing work a
 * request has to do anyway, and nothing else.
 */
import { DurableObject } from "cloudflare:workers";
import { Hono } from "hono";

interface Env {
	SLEEPER: DurableObjectNamespace<Sleeper>;
	DESIGN: DurableObjectNamespace<DesignTask>;
	DESIGN_QUEUE: Queue<{ id: string }>;
	SHARDS: DurableObjectNamespace<CountShard>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function readMs(req: Request): Promise<number> {
	const body = (await req.json()) as { ms?: unknown };
	const ms = Number(body?.ms ?? 0);
	if (!Number.isFinite(ms) || ms < 0 || ms > 900_000) throw new Error("bad ms");
	return ms;
}

/**
 * One object per request: it only sleeps (floor b), or (do-store, diagnostic floor "b+store") it
 * does the least durable work the task API's own rules ask of a task's object: store the task and
 * set an alarm (to recover a lost task) when it starts, store the result and move the alarm (to
 * delete the task at its TTL) when it ends. Each pair is written in one turn, so one commit.
 */
export class Sleeper extends DurableObject<Env> {
	async sleep(ms: number): Promise<{ slept_ms: number }> {
		await sleep(ms);
		return { slept_ms: ms };
	}

	async sleepStore(id: string, ms: number): Promise<{ slept_ms: number }> {
		const sql = this.ctx.storage.sql;
		sql.exec("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, v TEXT NOT NULL)");
		sql.exec("INSERT OR REPLACE INTO t (id, v) VALUES (?, ?)", id, "running");
		const recoverAlarm = this.ctx.storage.setAlarm(Date.now() + 30_000);
		await sleep(ms);
		await recoverAlarm;
		sql.exec("INSERT OR REPLACE INTO t (id, v) VALUES (?, ?)", id, "done");
		await this.ctx.storage.setAlarm(Date.now() + 3_600_000);
		return { slept_ms: ms };
	}

	override async alarm(): Promise<void> {
		await this.ctx.storage.deleteAll();
	}
}

/** How long a stored task waits for its message before it would be re-sent, and how long a result is kept. */
const RECOVERY_MS = 30_000;
const TTL_MS = 3_600_000;

/**
 * The design's own floor ("design"): the least any build of edgetask's design can do per task.
 * A fresh object per task stores the task and sets its recovery alarm (one commit), sends one
 * queue message, and holds the request; the queue consumer hands the message to the object,
 * which runs the task, stores the result and moves the alarm to the TTL (one commit), and
 * releases the request. No events, counters, fan-out, validation or auth: what is left is the
 * design itself (object per task, queue hop, two durable commits, two alarms).
 */
export class DesignTask extends DurableObject<Env> {
	private ms: number | null = null;
	private contract = false;
	private result: { slept_ms: number } | null = null;
	private running = false;
	private readonly waiters = new Set<() => void>();

	/**
	 * `contract`: also what edgetask's own rules ask of a task beyond the design ("contract floor"):
	 * each lifecycle event stored as a row for subscribers that resume (queued, running, the end),
	 * the running state stored before the run, and the terminal status reported to a health shard
	 * (batched per isolate) with the alarm moved to the TTL only once the shard has it.
	 */
	async submit(id: string, ms: number, waitMs: number, contract = false): Promise<{ slept_ms: number } | null> {
		const sql = this.ctx.storage.sql;
		sql.exec("CREATE TABLE IF NOT EXISTS task (id TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID");
		if (contract) sql.exec("CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, event TEXT NOT NULL)");
		sql.exec("INSERT INTO task (id, state) VALUES (?, ?)", id, JSON.stringify({ ms, status: "queued" }));
		if (contract) sql.exec("INSERT INTO events (seq, event) VALUES (1, ?)", JSON.stringify({ id, type: "queued" }));
		this.ms = ms;
		this.contract = contract;
		await this.ctx.storage.setAlarm(Date.now() + RECOVERY_MS);
		await this.env.DESIGN_QUEUE.send({ id });
		if (!this.result) {
			await new Promise<void>((resolve) => {
				const release = () => {
					clearTimeout(timer);
					this.waiters.delete(release);
					resolve();
				};
				const timer = setTimeout(release, waitMs);
				this.waiters.add(release);
			});
		}
		return this.result;
	}

	/** The queue message arrived: start the run and return at once (the consumer never waits on a run). */
	async dispatch(id: string): Promise<void> {
		if (this.running || this.result || this.ms === null) return;
		this.running = true;
		const ms = this.ms;
		const sql = this.ctx.storage.sql;
		if (this.contract) {
			sql.exec("INSERT OR REPLACE INTO task (id, state) VALUES (?, ?)", id, JSON.stringify({ ms, status: "running" }));
			sql.exec("INSERT INTO events (seq, event) VALUES (2, ?)", JSON.stringify({ id, type: "running" }));
		}
		void (async () => {
			await sleep(ms);
			this.result = { slept_ms: ms };
			sql.exec("INSERT OR REPLACE INTO task (id, state) VALUES (?, ?)", id, JSON.stringify({ ms, status: "succeeded" }));
			if (this.contract) {
				sql.exec("INSERT INTO events (seq, event) VALUES (3, ?)", JSON.stringify({ id, type: "succeeded", output: this.result }));
				for (const release of [...this.waiters]) release();
				await reportTerminal(this.env, this.ctx, id);
				await this.ctx.storage.setAlarm(Date.now() + TTL_MS);
				return;
			}
			await this.ctx.storage.setAlarm(Date.now() + TTL_MS);
			for (const release of [...this.waiters]) release();
		})();
	}

	override async alarm(): Promise<void> {
		await this.ctx.storage.deleteAll();
	}
}

/** The contract floor's health counters: a row per task, as edgetask's StatsShard keeps them. */
export class CountShard extends DurableObject<Env> {
	reportMany(ids: string[]): void {
		const sql = this.ctx.storage.sql;
		sql.exec("CREATE TABLE IF NOT EXISTS status (id TEXT PRIMARY KEY, status TEXT NOT NULL) WITHOUT ROWID");
		for (const id of ids) sql.exec("INSERT OR REPLACE INTO status (id, status) VALUES (?, 'succeeded')", id);
	}
}

/** Terminal reports of this isolate waiting for the next shard call, by shard; each settles when sent. */
const pendingReports = new Map<number, { id: string; done: boolean }[]>();
let reportBatchDue = false;

/** Reports a task's end with the isolate's next batch (25 ms) and waits (polling, like edgetask) until it is sent. */
async function reportTerminal(env: Env, ctx: DurableObjectState, id: string): Promise<void> {
	const shard = Math.floor(Date.now() / 1000) % 16;
	const entry = { id, done: false };
	const list = pendingReports.get(shard);
	if (list) list.push(entry);
	else pendingReports.set(shard, [entry]);
	if (!reportBatchDue) {
		reportBatchDue = true;
		ctx.waitUntil(
			(async () => {
				await sleep(25);
				reportBatchDue = false;
				const batches = [...pendingReports];
				pendingReports.clear();
				await Promise.all(
					batches.map(async ([n, entries]) => {
						await env.SHARDS.getByName(`shard-${n}`).reportMany(entries.map((e) => e.id));
						for (const e of entries) e.done = true;
					}),
				);
			})(),
		);
	}
	while (!entry.done) await sleep(10);
}

const app = new Hono<{ Bindings: Env }>();

app.get("/health", (c) => c.json({ status: "ok" }));

app.post("/sleep", async (c) => {
	const ms = await readMs(c.req.raw);
	await sleep(ms);
	return c.json({ slept_ms: ms });
});

app.post("/do-sleep", async (c) => {
	const ms = await readMs(c.req.raw);
	const out = await c.env.SLEEPER.getByName(crypto.randomUUID()).sleep(ms);
	return c.json(out);
});

app.post("/do-store", async (c) => {
	const ms = await readMs(c.req.raw);
	const id = crypto.randomUUID();
	const out = await c.env.SLEEPER.getByName(id).sleepStore(id, ms);
	return c.json(out);
});

app.post("/design", async (c) => {
	const ms = await readMs(c.req.raw);
	const id = crypto.randomUUID();
	const out = await c.env.DESIGN.getByName(id).submit(id, ms, 60_000);
	return out ? c.json(out) : c.json({ error: "not finished within 60 s" }, 202);
});

app.post("/contract", async (c) => {
	const ms = await readMs(c.req.raw);
	const id = crypto.randomUUID();
	const out = await c.env.DESIGN.getByName(id).submit(id, ms, 60_000, true);
	return out ? c.json(out) : c.json({ error: "not finished within 60 s" }, 202);
});

app.onError((err, c) => c.json({ error: String(err) }, 500));

/** The design floor's consumer: hands each message to its task's object, which starts the run, then acks. */
async function queue(batch: MessageBatch<{ id: string }>, env: Env): Promise<void> {
	await Promise.all(
		batch.messages.map(async (message) => {
			await env.DESIGN.getByName(message.body.id).dispatch(message.body.id);
			message.ack();
		}),
	);
}

export default { fetch: app.fetch, queue } satisfies ExportedHandler<Env, { id: string }>;
