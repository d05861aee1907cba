/**
 * Helpers for the pull-worker tests: the `/v1/work` API with an API key, and real Python worker
 * processes (`python3 -m edgetask_worker`) running the functions of test/e2e/python. Every wait
 * is bounded; every process started here is stopped by `stopAll`.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { request, sleep, TERMINAL, type Answer, type ErrorJson, type TaskJson } from "./helpers";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

export interface Grant {
	task: { id: string; type: string; input: unknown; attempt: number; priority: string };
	lease: { token: string; expires_at: string; heartbeat_s: number };
}

export type PullTaskJson = TaskJson & { queue_position?: number | null; urls: { get: string; ws: string } };

/** The task API and the worker API of one server, with one API key. */
export class Api {
	constructor(
		readonly base: string,
		readonly key: string | null,
	) {}

	headers(extra: Record<string, string> = {}): Record<string, string> {
		return { "content-type": "application/json", ...(this.key ? { authorization: `Bearer ${this.key}` } : {}), ...extra };
	}

	post<T>(path: string, body: unknown, extra: Record<string, string> = {}): Promise<Answer<T>> {
		return request<T>(`${this.base}${path}`, { method: "POST", headers: this.headers(extra), body: JSON.stringify(body) });
	}

	submit(type: string, input: unknown, extra: Record<string, unknown> = {}, wait?: number): Promise<Answer<PullTaskJson>> {
		return this.post<PullTaskJson>("/v1/tasks", { type, input, ...extra }, wait === undefined ? {} : { prefer: `wait=${wait}` });
	}

	get(id: string, wait?: number): Promise<Answer<PullTaskJson>> {
		const headers = this.headers(wait === undefined ? {} : { prefer: `wait=${wait}` });
		return request<PullTaskJson>(`${this.base}/v1/tasks/${encodeURIComponent(id)}`, { headers });
	}

	/** Long-polls until the task is terminal (or `budgetMs` passes). */
	async settled(id: string, budgetMs = 60_000): Promise<PullTaskJson> {
		const deadline = Date.now() + budgetMs;
		for (;;) {
			const left = Math.floor((deadline - Date.now()) / 1000);
			const got = await this.get(id, Math.max(0, Math.min(30, left)));
			if (got.status !== 200) throw new Error(`GET ${id}: ${got.status} ${JSON.stringify(got.body)}`);
			if (TERMINAL.includes(got.body.status) || Date.now() >= deadline) return got.body;
			if (left <= 0) await sleep(100);
		}
	}

	/** Polls until the task has `status` (or fails after `budgetMs`). */
	async until(id: string, status: string, budgetMs = 30_000): Promise<PullTaskJson> {
		const deadline = Date.now() + budgetMs;
		for (;;) {
			const got = await this.get(id);
			if (got.body.status === status) return got.body;
			if (Date.now() >= deadline) throw new Error(`task ${id} not ${status} within ${budgetMs} ms: ${JSON.stringify(got.body)}`);
			await sleep(100);
		}
	}

	cancel(id: string): Promise<Answer<PullTaskJson | ErrorJson>> {
		return this.post(`/v1/tasks/${encodeURIComponent(id)}/cancel`, {});
	}

	lease(types: string[], waitS = 0, workerId = "test-http"): Promise<Answer<Grant | ErrorJson | "">> {
		return request(
			`${this.base}/v1/work/lease`,
			{ method: "POST", headers: this.headers(), body: JSON.stringify({ types, worker_id: workerId, wait_s: waitS }) },
			(waitS + 30) * 1000,
		);
	}

	heartbeat(id: string, body: unknown): Promise<Answer<{ expires_at: string; cancel_requested: boolean } | ErrorJson>> {
		return this.post(`/v1/work/${encodeURIComponent(id)}/heartbeat`, body);
	}

	complete(id: string, body: unknown): Promise<Answer<{ id: string; status: string } | ErrorJson>> {
		return this.post(`/v1/work/${encodeURIComponent(id)}/complete`, body);
	}

	fail(id: string, body: unknown): Promise<Answer<{ id: string; status: string } | ErrorJson>> {
		return this.post(`/v1/work/${encodeURIComponent(id)}/fail`, body);
	}
}

export function isGrant(body: unknown): body is Grant {
	return typeof body === "object" && body !== null && "lease" in body && "task" in body;
}

/** Leases the next task of `types` over HTTP, failing the test if none comes within `waitS`. */
export async function leaseOne(api: Api, types: string[], waitS = 10, workerId?: string): Promise<Grant> {
	const got = await api.lease(types, waitS, workerId);
	if (got.status !== 200 || !isGrant(got.body))
		throw new Error(`no lease for ${types.join(",")}: ${got.status} ${JSON.stringify(got.body)}`);
	return got.body;
}

export interface PythonWorker {
	child: ChildProcess;
	/** stdout + stderr so far (the worker logs to stderr). */
	output(): string;
	/** The JSON lines the task functions recorded. */
	events(): Record<string, unknown>[];
	exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
	/** Waits until the worker's log contains `text`. */
	waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
	kill(signal?: NodeJS.Signals): void;
}

const workers = new Set<PythonWorker>();

/**
 * A Python 3.9 interpreter (the oldest the package supports), if this machine has one:
 * `$EDGETASK_TEST_PYTHON39`, `python3.9` on the PATH, or a pyenv install.
 */
export function python39(): string | null {
	const pyenv = "/root/.pyenv/versions";
	const candidates = [
		process.env.EDGETASK_TEST_PYTHON39,
		"python3.9",
		...(existsSync(pyenv)
			? readdirSync(pyenv)
					.filter((v) => v.startsWith("3.9."))
					.map((v) => join(pyenv, v, "bin/python3"))
			: []),
	];
	for (const candidate of candidates) {
		if (!candidate) continue;
		const probe = spawnSync(candidate, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"], { encoding: "utf8" });
		if (probe.status === 0 && probe.stdout.trim() === "3.9") return candidate;
	}
	return null;
}

/**
 * `python3 -m edgetask_worker …` (or `python3 <script>`) with clients/python and test/e2e/python
 * importable; `logFile` gets the functions' records. `python` picks another interpreter.
 */
export function startPythonWorker(opts: {
	args: string[];
	logFile: string;
	env?: Record<string, string>;
	script?: string;
	python?: string;
}): PythonWorker {
	const command = opts.script ? [join(root, opts.script)] : ["-m", "edgetask_worker"];
	const child = spawn(opts.python ?? "python3", ["-u", ...command, ...opts.args], {
		cwd: root,
		env: {
			...process.env,
			PYTHONPATH: [join(root, "clients/python"), join(root, "test/e2e/python")].join(":"),
			EDGETASK_TEST_LOG: opts.logFile,
			...opts.env,
		},
		stdio: ["ignore", "pipe", "pipe"],
	});
	let log = "";
	child.stdout?.on("data", (chunk: Buffer) => (log += chunk.toString()));
	child.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
	const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
		child.once("exit", (code, signal) => resolve({ code, signal })),
	);
	const worker: PythonWorker = {
		child,
		output: () => log,
		events: () =>
			existsSync(opts.logFile)
				? readFileSync(opts.logFile, "utf8")
						.split("\n")
						.filter(Boolean)
						.map((line) => JSON.parse(line) as Record<string, unknown>)
				: [],
		exited,
		async waitFor(text, timeoutMs = 20_000) {
			const deadline = Date.now() + timeoutMs;
			while (!(typeof text === "string" ? log.includes(text) : text.test(log))) {
				if (child.exitCode !== null) throw new Error(`python worker exited (${child.exitCode}) before logging ${String(text)}:\n${log}`);
				if (Date.now() > deadline) throw new Error(`python worker did not log ${String(text)} within ${timeoutMs} ms:\n${log}`);
				await sleep(50);
			}
		},
		kill(signal = "SIGTERM") {
			if (child.exitCode === null && child.signalCode === null) child.kill(signal);
		},
	};
	workers.add(worker);
	void exited.then(() => workers.delete(worker));
	return worker;
}

/** Stops every Python worker still running (SIGKILL after 5 s). */
export async function stopAll(): Promise<void> {
	await Promise.all(
		[...workers].map(async (w) => {
			w.kill("SIGKILL");
			await Promise.race([w.exited, sleep(5000)]);
		}),
	);
}

/** A plain HTTP forwarder to `target` on `port`, so a test can take "the server" away and bring it back. */
export async function startForwarder(target: string, port: number): Promise<{ close(): Promise<void> }> {
	const server = createServer((req, res) => {
		const chunks: Buffer[] = [];
		req.on("data", (c: Buffer) => chunks.push(c));
		req.on("end", () => {
			const headers = Object.fromEntries(Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === "string"));
			delete headers.host;
			delete headers.connection;
			fetch(`${target}${req.url ?? "/"}`, { method: req.method, headers, body: chunks.length ? Buffer.concat(chunks) : undefined })
				.then(async (answer) => {
					res.writeHead(
						answer.status,
						Object.fromEntries([...answer.headers].filter(([k]) => k !== "content-encoding" && k !== "transfer-encoding")),
					);
					res.end(Buffer.from(await answer.arrayBuffer()));
				})
				.catch(() => res.destroy());
		});
	});
	await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
	return {
		close: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}
