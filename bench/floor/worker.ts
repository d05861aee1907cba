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

/** One object per request: it only sleeps (floor b), or also writes SQLite before and after (do-store). */
export class Sleeper extends DurableObject<Env> {
	async sleep(ms: number): Promise<{ slept_ms: number }> {
		await sleep(ms);
		return { slept_ms: ms };
	}

	async sleepStore(id: string, ms: number): Promise<{ slept_ms: number }> {
		const sql = this.ctx.storage.sql;
		sql.exec("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, v TEXT NOT NULL)");
		sql.exec("INSERT OR REPLACE INTO t (id, v) VALUES (?, ?)", id, "running");
		await sleep(ms);
		sql.exec("INSERT OR REPLACE INTO t (id, v) VALUES (?, ?)", id, "done");
		return { slept_ms: ms };
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
