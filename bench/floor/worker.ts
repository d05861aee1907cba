/**
 * Floor worker for the benchmark (see wrangler.toml here). Same body shape as edgetask's
 * `sleep` task (`{"ms": N}` JSON in, JSON out) so the floors pay for the same parsing work a
 * request has to do anyway, and nothing else.
 */
import { DurableObject } from "cloudflare:workers";
import { Hono } from "hono";

interface Env {
	SLEEPER: DurableObjectNamespace<Sleeper>;
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

app.onError((err, c) => c.json({ error: String(err) }, 500));

export default app;
