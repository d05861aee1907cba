/**
 * README "Put edgetask in front of your model server", as written: the seed template itself
 * (examples/seed-origin/app.py, FastAPI, a real Python process) is the origin with concurrency 1
 * and its envelope; its clients' `POST /process` goes to edgetask unchanged (PROCESS_ORIGIN).
 *
 * Needs FastAPI and uvicorn for some python3 on the machine: Debian's python3-fastapi and
 * python3-uvicorn (what .ci/run installs) or `pip install fastapi uvicorn`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/devServer";
import { request, sleep, startDevServer, submit, tail, uniqueId, waitTerminal, type DevServer, type TaskJson } from "./helpers";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
/** The seed's process_task sleeps this long per task. */
const SEED_TASK_MS = 2000;

/** A python3 that has FastAPI and uvicorn, or a clear failure saying how to get one. */
function pythonWithFastapi(): string {
	for (const python of ["/usr/bin/python3", "python3"]) {
		const probe = spawnSync(python, ["-c", "import fastapi, uvicorn"], { stdio: "ignore" });
		if (probe.status === 0) return python;
	}
	throw new Error(
		"the seed template needs FastAPI and uvicorn: apt-get install -y python3-fastapi python3-uvicorn (or pip install fastapi uvicorn)",
	);
}

let seed: ChildProcess;
let seedLog = "";
let seedUrl: string;
let server: DevServer;
let base: string;

beforeAll(async () => {
	const port = await freePort();
	seedUrl = `http://127.0.0.1:${port}`;
	seed = spawn(pythonWithFastapi(), ["app.py", "--host", "127.0.0.1", "--port", String(port)], {
		cwd: join(root, "examples/seed-origin"),
		stdio: ["ignore", "pipe", "pipe"],
	});
	seed.stdout?.on("data", (c: Buffer) => (seedLog += c.toString()));
	seed.stderr?.on("data", (c: Buffer) => (seedLog += c.toString()));
	const deadline = Date.now() + 30_000;
	for (;;) {
		try {
			if ((await fetch(`${seedUrl}/health`)).ok) break;
		} catch {
			/* not up yet */
		}
		if (Date.now() > deadline || seed.exitCode !== null) throw new Error(`the seed did not start:\n${tail(seedLog)}`);
		await sleep(200);
	}
	// The README's configuration, with the seed's port.
	const origins = { model: { url: seedUrl, concurrency: 1, timeout_s: 120, envelope: "seed" } };
	server = await startDevServer({ vars: { ORIGINS: JSON.stringify(origins), PROCESS_ORIGIN: "model" } });
	base = server.url;
});

afterAll(async () => {
	await server?.stop();
	if (seed && seed.exitCode === null) {
		const exited = new Promise((resolve) => seed.once("exit", resolve));
		seed.kill("SIGTERM");
		await exited;
	}
});

interface SeedEnvelope {
	success: boolean;
	code: number;
	msg: string;
	data: { uuid: string; result: unknown };
}

function process(body: Record<string, unknown>) {
	return request<SeedEnvelope>(`${base}/process`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify(body),
	});
}

describe("the seed template behind edgetask", () => {
	it("a seed client's POST /process works unchanged: same body, same envelope, the seed's result", async () => {
		// A fresh uuid: the local state persists between runs, and a known uuid returns its stored task.
		const uuid = uniqueId("seed-job");
		const res = await process({ uuid, prompt: "a cat" });
		expect(res.status, JSON.stringify(res.body)).toBe(200);
		expect(res.body).toEqual({ success: true, code: 0, msg: "ok", data: { uuid, result: `result_for_${uuid}` } });
		expect(seedLog).toContain(`Task ${uuid}: 处理成功`);
		// The task is kept: GET /v1/tasks/{uuid} has it (the seed deletes a result once read).
		const task = await waitTerminal(base, uuid, 5000);
		expect(task.body).toMatchObject({ type: "http", status: "succeeded", output: `result_for_${uuid}` });
	});

	it("callers get their own answers at their own time; other work is not held behind the model", async () => {
		const sent = Date.now();
		const ids = ["seed-a", "seed-b", "seed-c"].map(uniqueId);
		const answers = ids.map((uuid) => process({ uuid }).then((res) => ({ res, at: Date.now() - sent })));
		// While the model works through them, a task that does not use it finishes at once.
		await sleep(300);
		const quick = await submit(base, "sleep", { ms: 100 }, { wait: 10 });
		expect(quick.body.status).toBe("succeeded");
		expect(quick.elapsedMs).toBeLessThan(SEED_TASK_MS);

		const done = await Promise.all(answers);
		for (const [i, { res }] of done.entries()) {
			expect(res.body).toMatchObject({ success: true, data: { uuid: ids[i], result: `result_for_${ids[i]}` } });
		}
		// One model, one task at a time: answers come back one by one as each is done, not all at the end.
		const times = done.map((d) => d.at).sort((a, b) => a - b);
		expect(times[2] - times[0]).toBeGreaterThanOrEqual(2 * SEED_TASK_MS - 500);
		// The origin's concurrency 1 holds: edgetask sends the next request only after the last
		// answer, so the runs never overlap, and each run_ms is that task's own ~2 s at the model
		// (had they been sent together, the seed's own queue would have held the last for ~6 s).
		const tasks = await Promise.all(ids.map(async (id) => (await waitTerminal(base, id, 5000)).body as TaskJson));
		const runs = tasks.map((t) => [Date.parse(t.started_at ?? ""), Date.parse(t.finished_at ?? "")] as const).sort((x, y) => x[0] - y[0]);
		for (let i = 1; i < runs.length; i++) expect(runs[i][0]).toBeGreaterThanOrEqual(runs[i - 1][1]);
		for (const task of tasks) {
			expect(task.metrics.run_ms).toBeGreaterThanOrEqual(SEED_TASK_MS - 100);
			expect(task.metrics.run_ms).toBeLessThan(2 * SEED_TASK_MS);
		}
	});

	it("new clients submit an http task to the same origin and come back for the result", async () => {
		const uuid = uniqueId("seed-new-client");
		const res = await submit(base, "http", { origin: "model", path: "/process", body: { uuid } });
		expect(res.status).toBe(202);
		const task = await waitTerminal(base, res.body.id, 20_000);
		expect(task.body).toMatchObject({ status: "succeeded", output: `result_for_${uuid}` });
	});
});
