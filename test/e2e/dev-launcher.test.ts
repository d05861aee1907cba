/**
 * `npm run dev` on a fresh clone (scripts/dev.ts): it makes `.dev.vars` with a webhook signing
 * secret on the first run and prints it, keeps it afterwards, adds it to a `.dev.vars` that lacks
 * it without touching the rest, and takes its port from `--port` (after `--`), else `PORT`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/devServer";
import { freshClone, request, sleep, tail } from "./helpers";

let clone = "";
const running: ChildProcess[] = [];

beforeAll(() => {
	clone = freshClone("edgetask-dev");
}, 120_000);

afterAll(async () => {
	await Promise.all(running.map(stopGroup));
	if (clone) rmSync(clone, { recursive: true, force: true });
});

function stopGroup(child: ChildProcess): Promise<void> {
	if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
	const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
	try {
		// A negative pid is the child's process group; never 0 (that would be our own group).
		if (child.pid !== undefined) process.kill(-child.pid, "SIGTERM");
	} catch {
		/* gone */
	}
	return gone;
}

/** Runs `npm run dev …` in the clone until it answers /health on `port`; returns its output and a stop. */
async function dev(args: string[], env: Record<string, string>, port: number) {
	const child = spawn("npm", ["run", "dev", ...(args.length ? ["--", ...args] : [])], {
		cwd: clone,
		env: {
			...process.env,
			CLOUDFLARE_CF_FETCH_ENABLED: "false",
			WRANGLER_SEND_METRICS: "false",
			X_LOCAL_OBSERVABILITY: "false",
			CI: "true",
			NO_COLOR: "1",
			...env,
		},
		stdio: ["ignore", "pipe", "pipe"],
		detached: true,
	});
	running.push(child);
	let log = "";
	child.stdout?.on("data", (c: Buffer) => (log += c.toString()));
	child.stderr?.on("data", (c: Buffer) => (log += c.toString()));
	const deadline = Date.now() + 120_000;
	for (;;) {
		if (child.exitCode !== null) throw new Error(`npm run dev exited:\n${tail(log)}`);
		try {
			const res = await fetch(`http://127.0.0.1:${port}/health`);
			if (res.ok) break;
		} catch {
			/* not yet */
		}
		if (Date.now() > deadline) throw new Error(`npm run dev did not answer on ${port}:\n${tail(log)}`);
		await sleep(200);
	}
	return { output: () => log, stop: () => stopGroup(child) };
}

const devVars = () => join(clone, ".dev.vars");

describe("npm run dev", () => {
	it("makes .dev.vars with a webhook secret on the first run, prints it, and keeps it after", async () => {
		const port = await freePort();
		const dashboardModule = join(clone, "src/api/routes/dashboardFiles.js");
		expect(existsSync(dashboardModule)).toBe(false);
		const first = await dev([], { PORT: String(port) }, port);
		// wrangler's [build] made the dashboard's files, and the Worker serves them.
		expect(existsSync(dashboardModule)).toBe(true);
		const page = await request<string>(`http://127.0.0.1:${port}/`);
		expect(page.status).toBe(200);
		expect(page.headers.get("content-type")).toMatch(/^text\/html/);
		expect(page.body).toContain('src="/dashboard/app.js"');
		const script = await request<string>(`http://127.0.0.1:${port}/dashboard/app.js`);
		expect(script.status).toBe(200);
		expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
		const etag = script.headers.get("etag") ?? "";
		expect(etag).toMatch(/^"[0-9a-f]{32}"$/);
		expect((await request(`http://127.0.0.1:${port}/dashboard/app.js`, { headers: { "if-none-match": etag } })).status).toBe(304);
		const made = /^WEBHOOK_SECRET=(whsec_[A-Za-z0-9+/=]{44})$/m.exec(readFileSync(devVars(), "utf8"))?.[1];
		expect(made, readFileSync(devVars(), "utf8")).toBeTruthy();
		expect(first.output()).toContain(`WEBHOOK_SECRET=${made}`);
		expect(first.output()).toMatch(/runs OPEN/);
		// The server signs with it: a webhook task is accepted (without a secret: 400 webhooks_unavailable).
		const submit = await request<{ status: string }>(`http://127.0.0.1:${port}/v1/tasks`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ type: "sleep", input: { ms: 0 }, webhook: "http://127.0.0.1:9/hook" }),
		});
		expect(submit.status, JSON.stringify(submit.body)).toBe(202);
		await first.stop();

		const again = await dev([], { PORT: String(port) }, port);
		expect(readFileSync(devVars(), "utf8")).toContain(`WEBHOOK_SECRET=${made}`);
		expect(again.output()).not.toContain(`WEBHOOK_SECRET=${made}`);
		expect(again.output()).toContain("webhooks are signed with WEBHOOK_SECRET from .dev.vars");
		await again.stop();
	}, 300_000);

	it("adds the secret to a .dev.vars that has none, keeping what is there", async () => {
		writeFileSync(devVars(), "# mine\nAPI_KEYS=local-key");
		const port = await freePort();
		const server = await dev([], { PORT: String(port) }, port);
		const text = readFileSync(devVars(), "utf8");
		expect(text.startsWith("# mine\nAPI_KEYS=local-key\n")).toBe(true);
		expect(text).toMatch(/^WEBHOOK_SECRET=whsec_/m);
		// The key it kept is in force: without it, 401.
		expect((await request(`http://127.0.0.1:${port}/v1/tasks/x`)).status).toBe(401);
		await server.stop();
		rmSync(devVars());
	}, 300_000);

	it("listens on --port given after --, over PORT", async () => {
		const [flag, env] = [await freePort(), await freePort()];
		const server = await dev(["--port", String(flag)], { PORT: String(env) }, flag);
		expect(server.output()).toContain(`:${flag}`);
		await expect(fetch(`http://127.0.0.1:${env}/health`)).rejects.toThrow();
		await server.stop();
	}, 300_000);
});
