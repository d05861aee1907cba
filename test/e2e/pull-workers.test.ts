/**
 * Pull workers end to end: a real `wrangler dev`, real Python worker processes
 * (`python3 -m edgetask_worker`, the package in clients/python) and the worker API over HTTP.
 * Each test has a task type of its own, so no test's worker leases another test's tasks.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { join } from "node:path";
import { sleep, startDevServer, tempDir, type DevServer, type ErrorJson } from "./helpers";
import { freePort } from "../../scripts/devServer";
import { Api, isGrant, leaseOne, python39, startForwarder, startPythonWorker, stopAll, type Grant, type PullTaskJson } from "./pull";

const KEY = "pull-test-key";
const WORKER_TYPES = {
	rt: { lease_s: 30 },
	dup: { lease_s: 30 },
	prio: { lease_s: 30 },
	cpu: { lease_s: 4 },
	progress: { lease_s: 30 },
	hb: { lease_s: 2 },
	expire: { lease_s: 2, max_attempts: 2 },
	cancel: { lease_s: 3 },
	drain: { lease_s: 30 },
	seedjob: { lease_s: 30 },
	retry: { lease_s: 30, max_attempts: 3 },
	resize: { lease_s: 30 },
	schema: { input: { type: "object", properties: { n: { type: "integer" } }, required: ["n"] } },
	bigout: { lease_s: 30 },
	line: { lease_s: 30 },
	py39: { lease_s: 1.5 },
};

/** Python 3.9, the oldest version the package supports, when this machine has it. */
const PY39 = python39();

let server: DevServer;
let api: Api;
let dir: { path: string; remove(): Promise<void> };
let logs = 0;

beforeAll(async () => {
	dir = await tempDir("edgetask-pull");
	server = await startDevServer({
		// Fresh state: tasks left waiting by an earlier run would be ahead in the line.
		persistTo: join(dir.path, "state"),
		vars: {
			WORKER_TYPES: JSON.stringify(WORKER_TYPES),
			API_KEYS: KEY,
			PROCESS_TASK_TYPE: "seedjob",
			// A short head start, so the bounded-priority rule can be watched in seconds.
			PRIORITY_OFFSET_S: "2",
		},
	});
	api = new Api(server.url, KEY);
});

afterEach(async () => {
	await stopAll();
});

afterAll(async () => {
	await stopAll();
	await server?.stop();
	await dir?.remove();
});

function logFile(): string {
	return join(dir.path, `worker-${++logs}.jsonl`);
}

function worker(type: string, fn: string, more: string[] = [], file = logFile()) {
	return startPythonWorker({
		args: ["--url", server.url, "--type", type, "--task", `pull_tasks:${fn}`, "--wait", "5", ...more],
		env: { EDGETASK_API_KEY: KEY },
		logFile: file,
	});
}

async function submitted(type: string, input: unknown, extra: Record<string, unknown> = {}): Promise<PullTaskJson> {
	const res = await api.submit(type, input, extra);
	expect(res.status, JSON.stringify(res.body)).toBe(202);
	return res.body;
}

function errorCode(body: unknown): string | undefined {
	return (body as ErrorJson).error?.code;
}

describe("Python worker package", () => {
	it("leases, runs and completes a task: the caller gets the worker's output", async () => {
		const w = worker("rt", "echo");
		const res = await api.submit("rt", { hello: "gpu" }, {}, 30);
		expect(res.status, JSON.stringify(res.body) + w.output()).toBe(200);
		expect(res.body.status).toBe("succeeded");
		expect(res.body.output).toMatchObject({ echo: { hello: "gpu" }, attempt: 1 });
		expect(res.body.attempts).toBe(1);
		expect(w.events()).toEqual([expect.objectContaining({ event: "run", task: res.body.id, attempt: 1 })]);
	});

	it("two workers never get the same task", async () => {
		const a = worker("dup", "nap", ["--concurrency", "2", "--worker-id", "A"]);
		const b = worker("dup", "nap", ["--concurrency", "2", "--worker-id", "B"]);
		await a.waitFor("leasing");
		await b.waitFor("leasing");
		const tasks = await Promise.all(Array.from({ length: 40 }, () => submitted("dup", { ms: 50 })));
		const done = await Promise.all(tasks.map((t) => api.settled(t.id)));
		expect(done.map((t) => t.status)).toEqual(tasks.map(() => "succeeded"));
		expect(done.every((t) => t.attempts === 1)).toBe(true);
		const starts = [...a.events(), ...b.events()].filter((e) => e.event === "start");
		// Each task ran exactly once, on one worker.
		expect(starts.map((e) => e.task).sort()).toEqual(tasks.map((t) => t.id).sort());
		expect(new Set(starts.map((e) => e.worker))).toEqual(new Set(["A", "B"]));
	});

	it("keeps the lease of a function that keeps the CPU busy for three lease periods", async () => {
		const w = worker("cpu", "burn");
		const task = await submitted("cpu", { seconds: 12.5 });
		const done = await api.settled(task.id, 60_000);
		expect(done.status, w.output()).toBe("succeeded");
		expect(done.attempts).toBe(1);
		expect(done.output).toMatchObject({ canceled: false });
		expect(done.metrics.run_ms).toBeGreaterThanOrEqual(12_000);
		expect(w.output()).not.toMatch(/lease lost|refused/);
	});

	it("relays progress from heartbeats to a WebSocket subscriber", async () => {
		const task = await submitted("progress", { steps: 4, gap_ms: 400 });
		const ws = new WebSocket(task.urls.ws);
		const frames: { type: string; data?: { progress?: { percent: number; message: string | null } } }[] = [];
		const closed = new Promise<void>((resolve) => ws.addEventListener("close", () => resolve()));
		ws.addEventListener("message", (m) => frames.push(JSON.parse(String(m.data))));
		await new Promise((resolve, reject) => {
			ws.addEventListener("open", resolve);
			ws.addEventListener("error", reject);
		});
		const w = worker("progress", "steps");
		await Promise.race([closed, sleep(30_000)]);
		const types = frames.map((f) => f.type);
		expect(types[0], w.output()).toBe("snapshot");
		expect(types).toContain("running");
		expect(types).toContain("succeeded");
		const progress = frames.filter((f) => f.type === "progress").map((f) => f.data?.progress);
		expect(progress.length).toBeGreaterThanOrEqual(2);
		expect(progress.map((p) => p?.message)).toContain("step 4 of 4");
		const percents = progress.map((p) => p?.percent ?? -1);
		expect(percents).toEqual([...percents].sort((x, y) => x - y));
	});

	it("cancel reaches the worker through its heartbeat; what it sends afterwards changes nothing", async () => {
		const file = logFile();
		const w = worker("cancel", "until_canceled", [], file);
		const task = await submitted("cancel", { max_s: 20 });
		await api.until(task.id, "running");
		const canceledAt = Date.now();
		const res = await api.cancel(task.id);
		expect(res.status).toBe(200);
		expect((res.body as PullTaskJson).status).toBe("canceled");
		// The worker's next heartbeat (every second for a 3 s lease) says so.
		await w.waitFor("canceled by the server", 15_000);
		const stopped = w.events().find((e) => e.event === "stopped");
		expect(stopped).toMatchObject({ canceled: true, reason: "canceled" });
		expect(Number(stopped?.at) * 1000 - canceledAt).toBeLessThan(10_000);
		await w.waitFor("result is dropped");
		const after = await api.get(task.id);
		expect(after.body.status).toBe("canceled");
		expect(after.body.output).toBeNull();
	});

	it("SIGTERM drains: running tasks finish and report, no new lease is taken, exit 0", async () => {
		const w = worker("drain", "nap", ["--concurrency", "2", "--wait", "2"]);
		const first = await Promise.all([submitted("drain", { ms: 3000 }), submitted("drain", { ms: 3000 })]);
		await Promise.all(first.map((t) => api.until(t.id, "running")));
		w.kill("SIGTERM");
		await w.waitFor("draining");
		const late = await submitted("drain", { ms: 10 });
		const exit = await Promise.race([w.exited, sleep(30_000).then(() => null)]);
		expect(exit, w.output()).toEqual({ code: 0, signal: null });
		for (const t of first) {
			const done = await api.get(t.id);
			expect(done.body.status, w.output()).toBe("succeeded");
		}
		const waiting = await api.get(late.id);
		expect(waiting.body.status).toBe("queued");
		expect(
			w
				.events()
				.filter((e) => e.event === "start")
				.map((e) => e.task),
		).not.toContain(late.id);
		await api.cancel(late.id);
	});

	it("backs off while the server cannot be reached, and works once it can", async () => {
		const port = await freePort();
		const w = startPythonWorker({
			args: ["--url", `http://127.0.0.1:${port}`, "--type", "rt", "--task", "pull_tasks:echo", "--wait", "2"],
			env: { EDGETASK_API_KEY: KEY },
			logFile: logFile(),
		});
		// Nothing listens yet: the worker logs its failures and waits longer each time.
		await w.waitFor(/lease failed[^\n]*\n[^]*lease failed[^\n]*\n[^]*lease failed/, 30_000);
		const delays = [...w.output().matchAll(/retried after ([\d.]+) s/g)].map((m) => Number(m[1]));
		expect(delays[2]).toBeGreaterThan(delays[0] ?? Infinity);
		expect(w.child.exitCode).toBeNull();
		const forwarder = await startForwarder(server.url, port);
		try {
			const res = await api.submit("rt", { after: "outage" }, {}, 40);
			expect(res.status, w.output()).toBe(200);
			expect(res.body.output).toMatchObject({ echo: { after: "outage" } });
		} finally {
			w.kill("SIGKILL");
			await forwarder.close();
		}
	});

	it("fails an attempt on an exception (retried) and at once on PermanentError", async () => {
		const w = worker("retry", "flaky");
		const flaky = await submitted("retry", { fail_times: 1 });
		const permanent = await submitted("retry", { permanent: true });
		const [a, b] = await Promise.all([api.settled(flaky.id), api.settled(permanent.id)]);
		expect(a.status, w.output()).toBe("succeeded");
		expect(a.attempts).toBe(2);
		expect(a.output).toEqual({ attempt: 2 });
		expect(b.status).toBe("failed");
		expect(b.attempts).toBe(1);
		expect(b.error).toEqual({ code: "bad_input", message: "the input cannot be processed" });
	});
});

describe("the README's example worker", () => {
	it("runs as written: output, progress, and a PermanentError that fails at once", async () => {
		const w = startPythonWorker({
			args: [],
			env: { EDGETASK_API_KEY: KEY, EDGETASK_URL: server.url },
			logFile: logFile(),
			script: "clients/python/examples/resize_worker.py",
		});
		const ok = await api.submit("resize", { width: 1024 }, {}, 30);
		expect(ok.status, w.output()).toBe(200);
		expect(ok.body.output).toEqual({ width: 512, task: ok.body.id, attempt: 1 });
		expect(ok.body.progress).toEqual({ percent: 100, message: "pass 3 of 3" });
		const bad = await api.submit("resize", { width: 0 }, {}, 30);
		expect(bad.body).toMatchObject({
			status: "failed",
			attempts: 1,
			error: { code: "processor_error", message: "width must be a positive number" },
		});
	});

	it("a worker whose type the server does not know stops with exit 2 and says why", async () => {
		const w = worker("no-such-type", "echo");
		const exit = await Promise.race([w.exited, sleep(20_000).then(() => null)]);
		expect(exit, w.output()).toEqual({ code: 2, signal: null });
		expect(w.output()).toMatch(/unknown_worker_type/);
	});
});

describe("seed adapter", () => {
	it("runs a seed-template process_task unchanged; POST /process answers the seed envelope", async () => {
		const w = startPythonWorker({
			args: ["--url", server.url, "--type", "seedjob", "--seed", "seed_app:process_task", "--wait", "5"],
			env: { EDGETASK_API_KEY: KEY },
			logFile: logFile(),
		});
		const ok = await api.post("/process", { uuid: `seed-${Date.now()}`, prompt: "a cat" });
		expect(ok.status, w.output()).toBe(200);
		const uuid = (ok.body as { data: { uuid: string } }).data.uuid;
		expect(ok.body).toEqual({ success: true, code: 0, msg: "ok", data: { uuid, result: `result_for_${uuid}` } });

		const bad = await api.post("/process", { uuid: `seed-bad-${Date.now()}`, fail: true });
		expect(bad.status).toBe(200);
		expect(bad.body).toMatchObject({ success: false, code: 1, msg: "处理失败: bad input" });
		const task = await api.get((bad.body as { data: { uuid: string } }).data.uuid);
		expect(task.body.attempts).toBe(1);
		expect(task.body.error?.code).toBe("process_failed");
	});
});

describe("on Python 3.9, the oldest version the package supports", () => {
	it.skipIf(PY39 === null)("keeps a lease through heartbeats, relays progress, and runs the seed adapter", async () => {
		const python = PY39 ?? "python3";
		const w = startPythonWorker({
			python,
			args: ["--url", server.url, "--type", "py39", "--task", "pull_tasks:steps", "--wait", "5"],
			env: { EDGETASK_API_KEY: KEY },
			logFile: logFile(),
		});
		// 2.5 s of work on a 1.5 s lease: only heartbeats (every 0.5 s) keep it.
		const res = await api.submit("py39", { steps: 5, gap_ms: 500 }, {}, 30);
		expect(res.body.status, w.output()).toBe("succeeded");
		expect(res.body).toMatchObject({ attempts: 1, output: { steps: 5 }, progress: { percent: 100, message: "step 5 of 5" } });

		const seed = startPythonWorker({
			python,
			args: ["--url", server.url, "--type", "seedjob", "--seed", "seed_app:process_task", "--wait", "5"],
			env: { EDGETASK_API_KEY: KEY },
			logFile: logFile(),
		});
		const ok = await api.post("/process", { uuid: `seed39-${Date.now()}`, prompt: "a cat" });
		expect(ok.body, seed.output()).toMatchObject({ success: true, code: 0, msg: "ok" });
		expect(`${w.output()}${seed.output()}`).not.toMatch(/Traceback|lease lost|refused/);
	});
});

describe("worker API", () => {
	it("orders leases by the priority rule: a bounded head start, ties by arrival", async () => {
		// PRIORITY_OFFSET_S is 2 here: high goes 2 s ahead of normal, low 2 s behind.
		const lowOld = await submitted("prio", { n: "low, 4.5 s before the high one" }, { priority: "low" });
		await sleep(4500);
		const normal1 = await submitted("prio", { n: "normal 1" });
		const normal2 = await submitted("prio", { n: "normal 2" });
		const high = await submitted("prio", { n: "high" }, { priority: "high" });
		const low = await submitted("prio", { n: "low" }, { priority: "low" });
		// Every task waits with a position in the order it will be leased.
		const expected = [lowOld, high, normal1, normal2, low].map((t) => t.id);
		for (const [position, id] of expected.entries()) {
			const got = await api.get(id);
			expect(got.body.status).toBe("queued");
			expect(got.body.queue_position, id).toBe(position);
		}
		const grants: Grant[] = [];
		for (let i = 0; i < expected.length; i++) grants.push(await leaseOne(api, ["prio"], 10));
		expect(grants.map((g) => g.task.id)).toEqual(expected);
		expect((await api.get(high.id)).body.queue_position).toBeNull();
		for (const g of grants) await api.complete(g.task.id, { token: g.lease.token, output: null });
	});

	it("a subscriber of a waiting task gets its place: snapshot, `queued` events as workers take the tasks ahead, `running` clears it", async () => {
		const line = [await submitted("line", { n: 0 }), await submitted("line", { n: 1 }), await submitted("line", { n: 2 })];
		const last = line[2] as PullTaskJson;
		const ws = new WebSocket(last.urls.ws);
		const frames: { type: string; data?: { status?: string; queue_position?: number | null } }[] = [];
		ws.addEventListener("message", (m) => frames.push(JSON.parse(String(m.data))));
		await new Promise((resolve, reject) => {
			ws.addEventListener("open", resolve);
			ws.addEventListener("error", reject);
		});
		const frame = async (match: (f: (typeof frames)[number]) => boolean, what: string) => {
			const deadline = Date.now() + 10_000;
			for (;;) {
				const found = frames.find(match);
				if (found) return found;
				if (Date.now() > deadline) throw new Error(`no ${what} within 10 s: ${JSON.stringify(frames)}`);
				await sleep(25);
			}
		};
		expect(await frame((f) => f.type === "snapshot", "snapshot")).toMatchObject({ data: { status: "queued", queue_position: 2 } });
		const grants: Grant[] = [];
		for (const expected of [1, 0]) {
			grants.push(await leaseOne(api, ["line"]));
			await frame((f) => f.type === "queued" && f.data?.queue_position === expected, `a queued event with position ${expected}`);
		}
		grants.push(await leaseOne(api, ["line"]));
		expect(grants.map((g) => g.task.id)).toEqual(line.map((t) => t.id));
		expect((await frame((f) => f.type === "running", "the running event")).data).toMatchObject({ queue_position: null });
		for (const g of grants) expect((await api.complete(g.task.id, { token: g.lease.token, output: null })).status).toBe(200);
		ws.close();
		expect(frames.filter((f) => f.type === "queued").map((f) => f.data?.queue_position)).toEqual([1, 0]);
	});

	it("a task goes to exactly one of many held lease requests", async () => {
		const requests = Array.from({ length: 12 }, (_, i) => api.lease(["dup"], 8, `racer-${i}`));
		await sleep(500);
		const tasks = await Promise.all(Array.from({ length: 6 }, (_, i) => submitted("dup", { i })));
		const answers = await Promise.all(requests);
		const grants = answers.filter((a) => a.status === 200).map((a) => a.body as Grant);
		expect(answers.filter((a) => a.status === 204)).toHaveLength(6);
		expect(grants.map((g) => g.task.id).sort()).toEqual(tasks.map((t) => t.id).sort());
		for (const g of grants) expect((await api.complete(g.task.id, { token: g.lease.token, output: { ok: true } })).status).toBe(200);
	});

	it("a worker's JSON output over 64 KiB is kept in R2, like a processor's, and served back by /output", async () => {
		const task = await submitted("bigout", {});
		const grant = await leaseOne(api, ["bigout"]);
		const output = { text: "y".repeat(100_000) };
		const done = await api.complete(task.id, { token: grant.lease.token, output });
		expect(done.status, JSON.stringify(done.body)).toBe(200);
		const stored = await api.settled(task.id);
		expect(stored.status).toBe("succeeded");
		expect(stored.output).toMatchObject({ $file: expect.stringMatching(/^file_/), content_type: "application/json" });
		const res = await fetch(`${server.url}/v1/tasks/${task.id}/output`, { headers: api.headers() });
		expect(await res.json()).toEqual(output);
	});

	it("a heartbeat extends the lease past its first expiry and relays progress", async () => {
		const task = await submitted("hb", {});
		const grant = await leaseOne(api, ["hb"]);
		expect(grant.task).toMatchObject({ id: task.id, type: "hb", attempt: 1, priority: "normal", input: {} });
		expect(grant.lease.heartbeat_s).toBeCloseTo(2 / 3, 2);
		let expires = Date.parse(grant.lease.expires_at);
		const end = Date.now() + 5000;
		let beats = 0;
		while (Date.now() < end) {
			await sleep(500);
			const hb = await api.heartbeat(task.id, { token: grant.lease.token, progress: { percent: 10 + beats, message: `beat ${beats}` } });
			expect(hb.status, JSON.stringify(hb.body)).toBe(200);
			const body = hb.body as { expires_at: string; cancel_requested: boolean };
			expect(body.cancel_requested).toBe(false);
			expect(Date.parse(body.expires_at)).toBeGreaterThanOrEqual(expires);
			expires = Date.parse(body.expires_at);
			beats++;
		}
		const running = await api.get(task.id);
		expect(running.body.status).toBe("running");
		expect(running.body.attempts).toBe(1);
		expect(running.body.progress?.message).toMatch(/^beat /);
		const done = await api.complete(task.id, { token: grant.lease.token, output: { beats } });
		expect(done.status, JSON.stringify(done.body)).toBe(200);
		expect(done.body).toEqual({ id: task.id, status: "succeeded" });
		// The same call again (a lost answer, retried) gets the same answer and changes nothing.
		expect((await api.complete(task.id, { token: grant.lease.token, output: { beats } })).status).toBe(200);
		expect((await api.get(task.id)).body).toMatchObject({ status: "succeeded", output: { beats }, attempts: 1 });
	});

	it("an expired lease re-leases the task; the old worker's complete gets 409 and changes nothing", async () => {
		const task = await submitted("expire", { job: 1 });
		const first = await leaseOne(api, ["expire"]);
		expect(first.task.attempt).toBe(1);
		// No heartbeat: the 2 s lease lapses, the attempt is counted, the task is leased again.
		const second = await leaseOne(api, ["expire"], 15);
		expect(second.task).toMatchObject({ id: task.id, attempt: 2 });
		expect(second.lease.token).not.toBe(first.lease.token);
		const stale = await api.complete(task.id, { token: first.lease.token, output: { from: "the old worker" } });
		expect(stale.status).toBe(409);
		expect(errorCode(stale.body)).toBe("lease_lost");
		expect((await api.heartbeat(task.id, { token: first.lease.token })).status).toBe(409);
		expect((await api.fail(task.id, { token: first.lease.token, error: { code: "x", message: "y" } })).status).toBe(409);
		const mid = await api.get(task.id);
		expect(mid.body).toMatchObject({ status: "running", attempts: 2, output: null });
		expect((await api.complete(task.id, { token: second.lease.token, output: { from: "the new worker" } })).status).toBe(200);
		expect((await api.get(task.id)).body).toMatchObject({ status: "succeeded", output: { from: "the new worker" } });

		// Once its attempts are used, a lapsed lease fails the task `execution_lost`.
		const lost = await submitted("expire", { job: 2 });
		await leaseOne(api, ["expire"]);
		await leaseOne(api, ["expire"], 15);
		const failed = await api.settled(lost.id, 20_000);
		expect(failed).toMatchObject({ status: "failed", attempts: 2 });
		expect(failed.error?.code).toBe("execution_lost");
	});

	it("a canceled leased task answers the heartbeat with cancel_requested, and refuses complete", async () => {
		const task = await submitted("hb", {});
		const grant = await leaseOne(api, ["hb"]);
		expect((await api.cancel(task.id)).status).toBe(200);
		const hb = await api.heartbeat(task.id, { token: grant.lease.token });
		expect(hb.status).toBe(200);
		expect(hb.body).toMatchObject({ cancel_requested: true });
		const late = await api.complete(task.id, { token: grant.lease.token, output: 1 });
		expect(late.status).toBe(409);
		expect((await api.get(task.id)).body).toMatchObject({ status: "canceled", output: null });
	});

	it("a task canceled while waiting is never leased", async () => {
		const task = await submitted("hb", {});
		expect((await api.cancel(task.id)).status).toBe(200);
		const got = await api.lease(["hb"], 1);
		expect(got.status).toBe(204);
	});

	it("bad tokens, unknown ids, wrong types and bad bodies get clear 4xx", async () => {
		const task = await submitted("hb", {});
		const grant = await leaseOne(api, ["hb"]);
		const bad = await api.heartbeat(task.id, { token: "1.not-the-token" });
		expect(bad.status).toBe(409);
		expect(errorCode(bad.body)).toBe("lease_lost");
		expect((await api.complete(task.id, { token: grant.lease.token.slice(0, -1), output: 1 })).status).toBe(409);
		expect((await api.heartbeat("no-such-task", { token: grant.lease.token })).status).toBe(404);
		expect(errorCode((await api.complete("no-such-task", { token: "x", output: 1 })).body)).toBe("task_not_found");
		expect((await api.heartbeat("bad id!", { token: "x" })).status).toBe(400);
		expect((await api.complete(task.id, { output: 1 })).status).toBe(400);
		expect((await api.fail(task.id, { token: grant.lease.token, error: { code: "has space", message: "m" } })).status).toBe(400);
		expect((await api.heartbeat(task.id, { token: grant.lease.token, progress: { percent: 140 } })).status).toBe(400);

		const wrongType = await api.lease(["no-such-type"]);
		expect(wrongType.status).toBe(400);
		expect(errorCode(wrongType.body)).toBe("unknown_worker_type");
		expect((await api.lease(["hb"], 26)).status).toBe(400);
		expect((await api.post("/v1/work/lease", { types: [], worker_id: "w" })).status).toBe(400);

		// A sleep task runs inside the Worker: it has no lease to heartbeat.
		const inWorker = await api.submit("sleep", { ms: 10 }, {}, 10);
		expect((await api.heartbeat(inWorker.body.id, { token: "1.x" })).status).toBe(409);

		// The lease is untouched by all of that.
		expect((await api.complete(task.id, { token: grant.lease.token, output: "ok" })).status).toBe(200);
	});

	it("the worker API needs an API key; a task URL's token does not open it", async () => {
		const anonymous = new Api(server.url, null);
		const got = await anonymous.lease(["hb"]);
		expect(got.status).toBe(401);
		expect(errorCode(got.body)).toBe("unauthorized");
		const task = await submitted("hb", {});
		const token = new URL(task.urls.get).searchParams.get("token");
		expect(token).toBeTruthy();
		const withTaskToken = await anonymous.post(`/v1/work/${task.id}/heartbeat?token=${token}`, { token: "1.x" });
		expect(withTaskToken.status).toBe(401);
		await api.cancel(task.id);
	});

	it("validates a worker type's input against its JSON Schema at submit; nothing is stored", async () => {
		const bad = await api.submit("schema", { n: "three" }, { id: `schema-bad-${Date.now()}` });
		expect(bad.status).toBe(400);
		expect(errorCode(bad.body)).toBe("invalid_input");
		expect((await api.get((bad.body as unknown as { id?: string }).id ?? "schema-bad-none")).status).toBe(404);
		const good = await api.submit("schema", { n: 3 });
		expect(good.status).toBe(202);
		expect(good.body).toMatchObject({ status: "queued", type: "schema" });
		await api.cancel(good.body.id);
	});

	it("lease grants carry what the worker needs, and a 204 when nothing comes", async () => {
		const none = await api.lease(["rt"], 0.5);
		expect(none.status).toBe(204);
		const task = await submitted("rt", { x: 1 }, { priority: "high" });
		const grant = await api.lease(["rt", "hb"], 5);
		expect(isGrant(grant.body)).toBe(true);
		const g = grant.body as Grant;
		expect(g.task).toEqual({ id: task.id, type: "rt", input: { x: 1 }, attempt: 1, priority: "high" });
		expect(g.lease.heartbeat_s).toBe(10);
		expect(Date.parse(g.lease.expires_at) - Date.now()).toBeGreaterThan(20_000);
		expect(
			(await api.fail(task.id, { token: g.lease.token, error: { code: "oom", message: "CUDA out of memory" }, retryable: false })).body,
		).toEqual({ id: task.id, status: "failed" });
		expect((await api.get(task.id)).body).toMatchObject({ status: "failed", error: { code: "oom", message: "CUDA out of memory" } });
	});
});
