/**
 * The TypeScript pull worker (clients/js/src/worker.ts) in Node against a real `wrangler dev`:
 * the same loop as the Python package, on the client module's HTTP helpers and error classes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { createWorker, HttpError, PermanentError, type PullWorker } from "../../clients/js/src/index";
import { sleep, startDevServer, tempDir, type DevServer } from "./helpers";
import { Api } from "./pull";

let server: DevServer;
let api: Api;
let dir: { path: string; remove(): Promise<void> };
const logs: string[] = [];

beforeAll(async () => {
	dir = await tempDir("edgetask-js-worker");
	server = await startDevServer({
		persistTo: join(dir.path, "state"),
		vars: { WORKER_TYPES: JSON.stringify({ js: { lease_s: 2 }, jsdrain: { lease_s: 30 } }) },
	});
	api = new Api(server.url, null);
});

afterAll(async () => {
	await server?.stop();
	await dir?.remove();
});

function start(types: Record<string, Parameters<PullWorker["task"]>[1]>, concurrency = 1): { worker: PullWorker; running: Promise<void> } {
	const worker = createWorker({ baseUrl: server.url, concurrency, waitS: 2, log: (level, message) => logs.push(`${level} ${message}`) });
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
});
