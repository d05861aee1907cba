/**
 * `npm run bench:pull`: the "pull" benchmark. A `wrangler dev` (fresh state, no trace recorder)
 * with one pull-worker type, N real Python workers (`python3 -m edgetask_worker`, concurrency 1
 * each) whose function sleeps 100 ms, and 400 callers that each submit one task with
 * `Prefer: wait=60` at once. Reports tasks/s against the ideal (workers × 1000 / ms), and for
 * every task the time from its function returning (the worker then sends `complete`) to its
 * caller's answer, and from the result being stored (`finished_at`) to that answer.
 *
 * Options: --workers N (4), --tasks N (400), --ms N (100), --json FILE.
 * Plain Node 24 (type stripping), like bench/run.ts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../scripts/devServer.ts";
import { cpuMsByRole, epochNow, fmt, processTree, sampleTree, sleep, summarize } from "./lib.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function option(name: string, fallback: number): number {
	const i = process.argv.indexOf(name);
	return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const WORKERS = option("--workers", 4);
const TASKS = option("--tasks", 400);
const MS = option("--ms", 100);
const jsonAt = process.argv.indexOf("--json");
const JSON_FILE = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;

interface Outcome {
	ok: boolean;
	error?: string;
	answeredAt: number;
	returnedAt?: number;
	finishedAt?: number;
	attempts?: number;
}

function startWorker(url: string, i: number): { child: ChildProcess; log: () => string } {
	const child = spawn(
		"python3",
		["-u", "-m", "edgetask_worker", "--url", url, "--type", "pull", "--task", "pull_task:nap", "--worker-id", `bench-${i}`, "--wait", "20"],
		{
			cwd: root,
			env: { ...process.env, PYTHONPATH: [join(root, "clients/python"), join(root, "bench/python")].join(":") },
			stdio: ["ignore", "pipe", "pipe"],
		},
	);
	let log = "";
	child.stdout?.on("data", (c: Buffer) => (log += c.toString()));
	child.stderr?.on("data", (c: Buffer) => (log += c.toString()));
	return { child, log: () => log };
}

async function submitAndWait(url: string): Promise<Outcome> {
	try {
		const res = await fetch(`${url}/v1/tasks`, {
			method: "POST",
			headers: { "content-type": "application/json", prefer: "wait=60" },
			body: JSON.stringify({ type: "pull", input: { ms: MS } }),
			signal: AbortSignal.timeout(90_000),
		});
		const body = (await res.json()) as { status: string; output?: { returned_at_ms?: number }; finished_at?: string; attempts?: number };
		const answeredAt = epochNow();
		if (res.status !== 200 || body.status !== "succeeded") return { ok: false, error: `${res.status} ${body.status}`, answeredAt };
		return {
			ok: true,
			answeredAt,
			returnedAt: body.output?.returned_at_ms,
			finishedAt: body.finished_at ? Date.parse(body.finished_at) : undefined,
			attempts: body.attempts,
		};
	} catch (e) {
		return { ok: false, error: String(e), answeredAt: epochNow() };
	}
}

async function main(): Promise<void> {
	const state = mkdtempSync(join(tmpdir(), "edgetask-bench-pull-"));
	const server = await startDevServer({
		persistTo: state,
		vars: { AUTH_MODE: "open", WORKER_TYPES: JSON.stringify({ pull: { lease_s: 60 } }) },
	});
	const workers: ReturnType<typeof startWorker>[] = [];
	try {
		for (let i = 0; i < WORKERS; i++) workers.push(startWorker(server.url, i + 1));
		const deadline = Date.now() + 30_000;
		while (!workers.every((w) => w.log().includes("leasing"))) {
			if (Date.now() > deadline) throw new Error(`workers did not start:\n${workers.map((w) => w.log()).join("\n")}`);
			await sleep(100);
		}
		// Warm-up: one task per worker pays for the first objects and connections.
		await Promise.all(Array.from({ length: WORKERS }, () => submitAndWait(server.url)));

		const serverPid = server.child.pid ?? 0;
		const workerTicks = () => workers.flatMap((w) => processTree(w.child.pid ?? 0)).reduce((a, st) => a + st.cpuTicks, 0);
		const cpuBefore = sampleTree(serverPid, server.port);
		const workerTicksBefore = workerTicks();
		const started = epochNow();
		const outcomes = await Promise.all(Array.from({ length: TASKS }, () => submitAndWait(server.url)));
		const serverCpu = cpuMsByRole(cpuBefore, sampleTree(serverPid, server.port));
		const workersCpuMs = (workerTicks() - workerTicksBefore) * 10;
		const wallMs = Math.max(...outcomes.map((o) => o.answeredAt)) - started;
		const ok = outcomes.filter((o) => o.ok);
		const returnedToAnswer = summarize(ok.filter((o) => o.returnedAt !== undefined).map((o) => o.answeredAt - (o.returnedAt ?? 0)));
		const storedToAnswer = summarize(ok.filter((o) => o.finishedAt !== undefined).map((o) => o.answeredAt - (o.finishedAt ?? 0)));
		const ideal = (WORKERS * 1000) / MS;
		const result = {
			at: new Date().toISOString(),
			workers: WORKERS,
			tasks: TASKS,
			taskMs: MS,
			loadavg: loadavg(),
			wallMs,
			tasksPerS: (ok.length / wallMs) * 1000,
			idealPerS: ideal,
			errors: outcomes.length - ok.length,
			errorExamples: outcomes
				.filter((o) => !o.ok)
				.slice(0, 3)
				.map((o) => o.error),
			retried: ok.filter((o) => (o.attempts ?? 1) > 1).length,
			returnedToAnswerMs: returnedToAnswer,
			storedToAnswerMs: storedToAnswer,
			/** CPU time per task: the runtime running the Worker and its objects, and the Python workers. */
			runtimeCpuMsPerTask: (serverCpu["workerd-runtime"] ?? 0) / TASKS,
			workersCpuMsPerTask: workersCpuMs / TASKS,
		};
		console.log(`pull: ${WORKERS} Python workers, ${TASKS} tasks of ${MS} ms, each caller long-polling its own (Prefer: wait=60)`);
		console.log(
			`  throughput: ${fmt(result.tasksPerS)} tasks/s (ideal ${fmt(ideal)}/s: ${fmt((result.tasksPerS / ideal) * 100)} %), wall ${fmt(wallMs / 1000, 2)} s`,
		);
		console.log(
			`  function returned → caller's answer (the worker's complete call included): p50 ${fmt(returnedToAnswer.p50)} / p99 ${fmt(returnedToAnswer.p99)} ms`,
		);
		console.log(`  result stored (finished_at) → caller's answer: p50 ${fmt(storedToAnswer.p50)} / p99 ${fmt(storedToAnswer.p99)} ms`);
		console.log(
			`  CPU per task: runtime (workerd) ${fmt(result.runtimeCpuMsPerTask, 2)} ms, Python workers ${fmt(result.workersCpuMsPerTask, 2)} ms`,
		);
		console.log(
			`  errors ${result.errors}, retried ${result.retried}, load average ${loadavg()
				.map((l) => l.toFixed(2))
				.join(" ")}`,
		);
		if (JSON_FILE) writeFileSync(JSON_FILE, JSON.stringify(result, null, 2));
	} finally {
		for (const w of workers) w.child.kill("SIGKILL");
		await server.stop();
		rmSync(state, { recursive: true, force: true });
	}
}

await main();
