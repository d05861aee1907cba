/**
 * Helpers for the end-to-end suite: real HTTP against a `wrangler dev` started by
 * scripts/devServer.ts (the same thing `npm run dev` serves). Every wait here is bounded.
 *
 * `wrangler dev` rebuilds and restarts the worker whenever a file under src/ changes, which
 * fails requests in flight ("Your worker restarted mid-request", 503) and kills running attempts.
 * When the source is being edited while the suite runs, set E2E_SNAPSHOT=1: each server then
 * serves a copy of src/ and wrangler.toml taken when it starts. Either way, a server that
 * reloaded says so when it is stopped.
 */
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { startDevServer as startRaw, type DevServer, type DevServerOptions } from "../../scripts/devServer";
import { jsonOrText } from "../shared/body";
import { sleep } from "../shared/waits";

export type { DevServer };
export { sleep };

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");

/**
 * Vars every e2e server gets, as `npm run dev` sets them: wrangler.toml says
 * AUTH_MODE = "required" (closed without API keys) and no CORS_ORIGINS; local development opens both.
 */
export const DEV_VARS: Record<string, string> = { AUTH_MODE: "open", CORS_ORIGINS: "*" };

/** A copy of the worker's source for one server (E2E_SNAPSHOT=1); removed when it stops. */
function snapshotSource(): { config: string; remove(): void } {
	const dir = mkdtempSync(join(tmpdir(), "edgetask-e2e-src-"));
	cpSync(join(root, "src"), join(dir, "src"), { recursive: true });
	cpSync(join(root, "wrangler.toml"), join(dir, "wrangler.toml"));
	// What wrangler's build step needs to make the dashboard's files (scripts/buildDashboard.mjs).
	for (const part of ["scripts", "dashboard", "clients"]) cpSync(join(root, part), join(dir, part), { recursive: true });
	if (existsSync(join(root, ".dev.vars"))) cpSync(join(root, ".dev.vars"), join(dir, ".dev.vars"));
	symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir");
	return { config: join(dir, "wrangler.toml"), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The checkout as a fresh clone would have it, in a new temp dir: the files git would commit
 * (tracked and untracked, not ignored: no .dev.vars, no .wrangler state), so uncommitted edits are
 * included, plus a copy of node_modules (`npm install` then has nothing to fetch). The caller
 * removes it.
 */
export function freshClone(prefix: string): string {
	const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
	const files = spawnSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: root, encoding: "utf8" });
	if (files.status !== 0) throw new Error(`git ls-files: ${files.stderr}`);
	for (const file of files.stdout.split("\0").filter(Boolean)) {
		if (!existsSync(join(root, file))) continue; // deleted in the working tree
		mkdirSync(dirname(join(dir, file)), { recursive: true });
		cpSync(join(root, file), join(dir, file));
	}
	const copy = spawnSync("cp", ["-a", join(root, "node_modules"), join(dir, "node_modules")]);
	if (copy.status !== 0) throw new Error(`copying node_modules: ${String(copy.stderr)}`);
	return dir;
}

/**
 * A variant of wrangler.toml for one test (e.g. a tighter rate limit), written under .wrangler/
 * with its paths made absolute. `edit` gets the project's config text and returns the variant's.
 */
export function configVariant(name: string, edit: (toml: string) => string): string {
	const dir = join(root, ".wrangler", "e2e-configs");
	mkdirSync(dir, { recursive: true });
	const absolute = readFileSync(join(root, "wrangler.toml"), "utf8").replace(
		/^(main|directory|watch_dir|cwd) = "(\.?\/?)([^"]*)"/gm,
		(_, key: string, _dot: string, path: string) => `${key} = "${join(root, path)}"`,
	);
	const file = join(dir, `${name}.toml`);
	const variant = edit(absolute);
	if (variant === absolute) throw new Error(`configVariant(${name}): the edit changed nothing`);
	writeFileSync(file, variant);
	return file;
}

/** How many times wrangler rebuilt the worker since it started (a source file changed). */
export function reloads(server: DevServer): number {
	return server.output().split("Reloading local server").length - 1;
}

/**
 * scripts/devServer.ts with DEV_VARS under the caller's vars, the E2E_SNAPSHOT source copy, a
 * warning on stop if the worker reloaded mid-file, and a retry for one known race: devServer
 * probes free ports (`freePort`) and releases them before wrangler binds them, so on a busy
 * machine another process can take a port in between ("Address already in use").
 */
export async function startDevServer(options: DevServerOptions = {}, tries = 3): Promise<DevServer> {
	for (let i = 1; ; i++) {
		const snapshot = options.config === undefined && process.env.E2E_SNAPSHOT === "1" ? snapshotSource() : undefined;
		try {
			const server = await startRaw({ ...options, config: options.config ?? snapshot?.config, vars: { ...DEV_VARS, ...options.vars } });
			const stop = server.stop;
			server.stop = async () => {
				const n = reloads(server);
				if (n > 0) {
					console.warn(
						`e2e: the worker on ${server.url} was rebuilt ${n} time(s) while it ran because its source changed; ` +
							"failed requests (503 'restarted mid-request') and lost attempts in this file may come from that. " +
							"Run with E2E_SNAPSHOT=1 while src/ is being edited.",
					);
				}
				try {
					await stop();
				} finally {
					snapshot?.remove();
				}
			};
			return server;
		} catch (e) {
			snapshot?.remove();
			if (i >= tries || !/address already in use/i.test(String(e))) throw e;
			console.warn(`startDevServer: port taken between probe and bind, retrying (${i}/${tries})`);
		}
	}
}

export type TaskStatus = "queued" | "running" | "succeeded" | "failed" | "canceled" | "timed_out";
export const TERMINAL: readonly TaskStatus[] = ["succeeded", "failed", "canceled", "timed_out"];

/** The public task JSON (GET /v1/tasks/{id}). */
export interface TaskJson {
	id: string;
	type: string;
	status: TaskStatus;
	priority: string;
	input: unknown;
	output: unknown;
	error: { code: string; message: string } | null;
	progress: { percent: number; message: string | null } | null;
	attempts: number;
	created_at: string;
	started_at: string | null;
	finished_at: string | null;
	metrics: { queue_ms: number | null; run_ms: number | null; total_ms: number | null };
	urls: { get: string };
}

export interface ErrorJson {
	error: { code: string; message: string; details?: unknown };
}

export interface HealthJson {
	status: "ok";
	queue_size: number;
	running: number;
	results_pending: number;
	by_status: Record<TaskStatus, number>;
	shards: number;
}

export interface Answer<T> {
	status: number;
	headers: Headers;
	body: T;
	/** Wall-clock ms from sending the request to having read the whole body. */
	elapsedMs: number;
}

/** Upper bound on any single request: the longest server-side wait is 60 s. */
const REQUEST_TIMEOUT_MS = 75_000;

/** A fetch with a hard deadline, returning the parsed JSON body (or the raw text if it is not JSON). */
export async function request<T = unknown>(url: string, init: RequestInit = {}, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Answer<T>> {
	const t0 = performance.now();
	const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
	const body = jsonOrText(await res.text());
	return { status: res.status, headers: res.headers, body: body as T, elapsedMs: performance.now() - t0 };
}

export interface SubmitOptions {
	/** Adds `Prefer: wait=N`. */
	wait?: number;
	id?: string;
	extra?: Record<string, unknown>;
}

/** POST /v1/tasks with a JSON body. */
export function submit(base: string, type: string, input: unknown, opts: SubmitOptions = {}): Promise<Answer<TaskJson>> {
	const headers: Record<string, string> = { "content-type": "application/json" };
	if (opts.wait !== undefined) headers.prefer = `wait=${opts.wait}`;
	const body: Record<string, unknown> = { type, input, ...opts.extra };
	if (opts.id !== undefined) body.id = opts.id;
	return request<TaskJson>(`${base}/v1/tasks`, { method: "POST", headers, body: JSON.stringify(body) });
}

/** POST /v1/tasks for a `sleep` task of `ms` milliseconds. */
export function submitSleep(base: string, ms: number, opts: SubmitOptions = {}): Promise<Answer<TaskJson>> {
	return submit(base, "sleep", { ms }, opts);
}

/** GET /v1/tasks/{id}, long-polling with `Prefer: wait=N` when `wait` is given. */
export function getTask(base: string, id: string, wait?: number): Promise<Answer<TaskJson>> {
	const headers: Record<string, string> = {};
	if (wait !== undefined) headers.prefer = `wait=${wait}`;
	return request<TaskJson>(`${base}/v1/tasks/${encodeURIComponent(id)}`, { headers });
}

/**
 * Long-polls GET /v1/tasks/{id} until the task is terminal or `budgetMs` has passed; returns
 * the last answer (check its status yourself). Each poll asks for at most 30 s.
 */
export async function waitTerminal(base: string, id: string, budgetMs = 60_000): Promise<Answer<TaskJson>> {
	const deadline = Date.now() + budgetMs;
	for (;;) {
		const left = deadline - Date.now();
		const wait = Math.max(0, Math.min(30, Math.floor(left / 1000)));
		const answer = await getTask(base, id, wait);
		if (answer.status !== 200 || TERMINAL.includes(answer.body.status)) return answer;
		if (Date.now() >= deadline) return answer;
		if (wait === 0) await sleep(200);
	}
}

export function getHealth(base: string): Promise<Answer<HealthJson>> {
	return request<HealthJson>(`${base}/health`);
}

/** A task id unique to this run, so a persisted state directory never sees it twice. */
export function uniqueId(prefix: string): string {
	return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

/** A fresh temporary directory and a function that removes it. */
export async function tempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
	const path = await mkdtemp(join(tmpdir(), `${prefix}-`));
	return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** The last `n` characters of the server's log, for failure messages. */
export function tail(log: string, n = 4000): string {
	return log.length > n ? `…${log.slice(-n)}` : log;
}
