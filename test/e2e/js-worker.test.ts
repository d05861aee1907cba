/**
 * The TypeScript pull worker (clients/js/src/worker.ts) in Node against a real `wrangler dev`
 * with API keys: the same loop as the Python package, on the client module's HTTP helpers and
 * error classes. The README's example (clients/js/examples/resize-worker.ts) runs as its own
 * Node process and imports `edgetask/client` as a user would: the package export and the bundle
 * `npm install` builds.
 */
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createWorker, HttpError, PermanentError, type PullWorker } from "../../clients/js/src/index";
import { sleep, startDevServer, tempDir, type DevServer } from "./helpers";
import { Api } from "./pull";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const KEY = "js-worker-test-key";

let server: DevServer;
let api: Api;
let dir: { path: string; remove(): Promise<void> };
const logs: string[] = [];

beforeAll(async () => {
	dir = await tempDir("edgetask-js-worker");
	server = await startDevServer({
		persistTo: join(dir.path, "state"),
		vars: { WORKER_TYPES: JSON.stringify({ js: { lease_s: 2 }, jsdrain: { lease_s: 30 }, resize: { lease_s: 30 } }), API_KEYS: KEY },
	});
	api = new Api(server.url, KEY);
});

afterAll(async () => {
	await server?.stop();
	await dir?.remove();
});

function start(
	types: Record<string, Parameters<PullWorker["task"]>[1]>,
	options: { concurrency?: number; apiKey?: string } = {},
): { worker: PullWorker; running: Promise<void> } {
	const worker = createWorker({
		baseUrl: server.url,
		apiKey: options.apiKey ?? KEY,
		concurrency: options.concurrency ?? 1,
		waitS: 2,
		log: (level, message) => logs.push(`${level} ${message}`),
	});
	for (const [type, handler] of Object.entries(types)) worker.task(type, handler);
	return { worker, running: worker.run() };
}

describe("TypeScript pull worker", () => {
	it("runs tasks, keeps a lease through a handler that outlasts it, relays progress, fails on PermanentError", async () => {
		const { worker, running } = start({
			js: async (input, ctx) => {
				const { ms, permanent } = input as { ms: number; permanent?: boolean };
				if (permanent) throw new PermanentError("cannot", "bad_input");
				ctx.progress(40, "working");
				await sleep(ms);
				return { ms, attempt: ctx.attempt };
			},
		});
		try {
			// 5 s of work on a 2 s lease: only heartbeats keep it.
			const long = await api.submit("js", { ms: 5000 }, {}, 30);
			expect(long.body).toMatchObject({ status: "succeeded", output: { ms: 5000, attempt: 1 }, attempts: 1 });
			expect(long.body.progress).toEqual({ percent: 100, message: "working" });
			const bad = await api.submit("js", { ms: 0, permanent: true }, {}, 30);
			expect(bad.body).toMatchObject({ status: "failed", attempts: 1, error: { code: "bad_input", message: "cannot" } });
			// The caller may hear of the failure before the worker has read the answer to its report.
			const deadline = Date.now() + 5000;
			while (worker.stats.failed === 0 && Date.now() < deadline) await sleep(20);
			expect(worker.stats).toMatchObject({ succeeded: 1, failed: 1, dropped: 0 });
		} finally {
			await worker.stop();
			await running;
		}
	});

	it("cancel reaches the handler's signal through the heartbeat; the result is dropped", async () => {
		let aborted = false;
		const { worker, running } = start({
			js: async (_input, ctx) => {
				await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
				aborted = true;
				return "too late";
			},
		});
		try {
			const task = (await api.submit("js", {})).body;
			await api.until(task.id, "running");
			expect((await api.cancel(task.id)).status).toBe(200);
			const deadline = Date.now() + 10_000;
			while (!aborted && Date.now() < deadline) await sleep(50);
			expect(aborted).toBe(true);
			await sleep(300);
			expect((await api.get(task.id)).body).toMatchObject({ status: "canceled", output: null });
			expect(worker.stats.dropped).toBe(1);
		} finally {
			await worker.stop();
			await running;
		}
	});

	it("stop() drains: the running task finishes and reports, nothing new is leased", async () => {
		const { worker, running } = start({ jsdrain: async (input) => (await sleep((input as { ms: number }).ms), "done") });
		const first = (await api.submit("jsdrain", { ms: 1500 })).body;
		await api.until(first.id, "running");
		const stopped = worker.stop();
		const late = (await api.submit("jsdrain", { ms: 10 })).body;
		await stopped;
		await running;
		expect((await api.get(first.id)).body).toMatchObject({ status: "succeeded", output: "done" });
		expect((await api.get(late.id)).body.status).toBe("queued");
		await api.cancel(late.id);
	});

	it("run() rejects when the server refuses the worker (a type it does not know)", async () => {
		const { running } = start({ "no-such-type": async () => null });
		const error = await running.then(
			() => null,
			(e: unknown) => e,
		);
		expect(error).toBeInstanceOf(HttpError);
		expect((error as HttpError).code).toBe("unknown_worker_type");
	});

	it("run() rejects with the server's 401 when the API key is wrong", async () => {
		const { running } = start({ js: async () => null }, { apiKey: "not-the-key" });
		const error = await running.then(
			() => null,
			(e: unknown) => e,
		);
		expect(error).toBeInstanceOf(HttpError);
		expect((error as HttpError).status).toBe(401);
	});
});

describe("the README's example worker (clients/js/examples/resize-worker.ts)", () => {
	const EXAMPLE = "clients/js/examples/resize-worker.ts";

	it("is shown in the README exactly as it is in the file", () => {
		const readme = readFileSync(join(root, "README.md"), "utf8");
		const section = readme.slice(readme.indexOf("**Node workers**"));
		expect(section).toContain(["```ts", readFileSync(join(root, EXAMPLE), "utf8").trimEnd(), "```"].join("\n"));
	});

	it("runs as written with `edgetask/client`: output, progress, PermanentError; SIGTERM drains and exits 0", async () => {
		// Test what ships: the bundle `edgetask/client` resolves to, built from the current source.
		const build = spawnSync("npm", ["run", "--silent", "build"], { cwd: root, encoding: "utf8" });
		expect(build.status, build.stderr).toBe(0);
		const child = spawn(process.execPath, [join(root, EXAMPLE)], {
			cwd: root,
			env: { ...process.env, EDGETASK_URL: server.url, EDGETASK_API_KEY: KEY },
			stdio: ["ignore", "pipe", "pipe"],
		});
		let output = "";
		child.stdout.on("data", (c: Buffer) => (output += c.toString()));
		child.stderr.on("data", (c: Buffer) => (output += c.toString()));
		const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
			child.once("exit", (code, signal) => resolve({ code, signal })),
		);
		try {
			const ok = await api.submit("resize", { width: 1024 }, {}, 30);
			expect(ok.status, output).toBe(200);
			expect(ok.body.output).toEqual({ width: 512, task: ok.body.id, attempt: 1 });
			expect(ok.body.progress).toEqual({ percent: 100, message: "pass 3 of 3" });

			const bad = await api.submit("resize", { width: 0 }, {}, 30);
			expect(bad.body, output).toMatchObject({
				status: "failed",
				attempts: 1,
				error: { code: "processor_error", message: "width must be a positive number" },
			});

			// SIGTERM: its held lease request runs out (wait_s 20), then it exits 0.
			child.kill("SIGTERM");
			const exit = await Promise.race([exited, sleep(40_000).then(() => null)]);
			expect(exit, output).toEqual({ code: 0, signal: null });
		} finally {
			child.kill("SIGKILL");
		}
	});
});
