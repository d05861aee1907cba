/**
 * Reliability scenario: `wrangler dev` restarted with persisted state in the middle of a load.
 *
 * ~30 tasks are submitted, the server is stopped at once (SIGTERM: the in-memory local queue
 * loses undelivered messages and running attempts die), then started again on the same
 * --persist-to directory. Every task must end terminal and readable: a task whose message was
 * lost is re-sent by its object's recovery alarm (QUEUED_RECOVERY_S=2 here), a task whose attempt
 * died is re-run by its object's alarm. A last wave of submissions is still in flight at the
 * stop: whatever of it was stored must end terminal too, and a client retrying an unanswered
 * submission with the same id gets one task, never a conflict or a second run.
 *
 * Before touching any task after the restart, the test watches GET /health for a while and then
 * compares each task's finished_at with the moment of the first GET: a task that finished before
 * anyone asked for it was recovered by its persisted alarm alone.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import {
	getHealth,
	getTask,
	sleep,
	startDevServer,
	submitSleep,
	tail,
	tempDir,
	TERMINAL,
	uniqueId,
	waitTerminal,
	type DevServer,
	type HealthJson,
	type TaskJson,
	type TaskStatus,
} from "./helpers";

const VARS = { QUEUED_RECOVERY_S: "2" };
const DURATIONS = [0, 100, 300, 600, 1000, 1500, 2000, 2500, 3000, 3000];
const TASKS = 30;
/** Bound on the whole post-restart wait for every task (long-polls included). */
const RECOVERY_BUDGET_MS = 60_000;
/** How long to watch /health after the restart before touching any task: at least, at most. */
const PASSIVE_MIN_MS = 9_000;
const PASSIVE_MAX_MS = 20_000;
/** Submissions still in flight at the stop. */
const IN_FLIGHT = 20;
/**
 * The wave is fired at once and the server stopped as soon as the first of it is answered (at
 * most WAVE_STOP_MAX_MS later). Locally a submission's queue send lags its storage, so the stop
 * can catch tasks stored with their message not yet delivered (the re-send path) next to answered
 * ones and ones never stored. Which stage each one reaches depends on the machine's load; the
 * assertions hold for all of them, and the printed outcomes say which paths this run took.
 */
const WAVE_STOP_MAX_MS = 2_000;

let dir: Awaited<ReturnType<typeof tempDir>>;
let server: DevServer | undefined;

beforeAll(async () => {
	dir = await tempDir("edgetask-e2e-restart");
	server = await startDevServer({ persistTo: dir.path, vars: VARS });
});

afterAll(async () => {
	await server?.stop();
	await dir?.remove();
});

interface InFlight {
	id: string;
	ms: number;
	/** HTTP status of the submission, or the error if it never got an answer. */
	answer: number | string | null;
}

interface Snapshot {
	id: string;
	ms: number;
	before: TaskJson | null;
}

it("every task ends terminal and readable after wrangler dev restarts mid-load", { timeout: 240_000 }, async () => {
	let base = server!.url;

	// Warm the pipeline so the load below is not stuck behind cold starts.
	const warm = await submitSleep(base, 0, { wait: 30 });
	expect(warm.body.status).toBe("succeeded");

	// ---- load ----
	const tasks: Snapshot[] = Array.from({ length: TASKS }, (_, i) => ({
		id: uniqueId(`restart-${i}`),
		ms: DURATIONS[i % DURATIONS.length]!,
		before: null,
	}));
	const submitted = await Promise.all(tasks.map((t) => submitSleep(base, t.ms, { id: t.id })));
	for (const s of submitted) expect([200, 202], JSON.stringify(s.body)).toContain(s.status);
	// A quick look (plain GETs, nothing waits) at where each task stands just before the stop.
	const seen = await Promise.all(tasks.map((t) => getTask(base, t.id)));
	seen.forEach((s, i) => (tasks[i]!.before = s.status === 200 ? s.body : null));

	// A last wave still in flight when the server goes down: some of these may be stored
	// without their message ever being sent or delivered, some may never be stored at all.
	const inFlight: InFlight[] = Array.from({ length: IN_FLIGHT }, (_, i) => ({
		id: uniqueId(`inflight-${i}`),
		ms: DURATIONS[(i * 3) % DURATIONS.length]!,
		answer: null,
	}));
	const wave = inFlight.map((t) =>
		submitSleep(base, t.ms, { id: t.id }).then(
			(a) => (t.answer = a.status),
			(e: unknown) => (t.answer = `error: ${(e as Error).cause ?? (e as Error).message}`),
		),
	);
	await Promise.race([Promise.race(wave), sleep(WAVE_STOP_MAX_MS)]);
	const stoppedAt = Date.now();

	// ---- restart on the same state ----
	await server!.stop();
	const firstLog = server!.output();
	server = undefined;
	await Promise.allSettled(wave);
	server = await startDevServer({ persistTo: dir.path, vars: VARS });
	base = server.url;
	const readyAt = Date.now();

	// ---- watch, without touching any task ----
	// Health counts may miss a task whose first report died with the old server, so the watch
	// always lasts long enough for every recovery path (2 s re-send, ≤1 s retry backoff, 3 s run).
	const timeline: { t: number; h: HealthJson }[] = [];
	for (;;) {
		const h = await getHealth(base);
		expect(h.status).toBe(200);
		const t = Date.now() - readyAt;
		timeline.push({ t, h: h.body });
		if ((t >= PASSIVE_MIN_MS && h.body.queue_size === 0 && h.body.running === 0) || t >= PASSIVE_MAX_MS) break;
		await sleep(500);
	}
	const touchedAt = Date.now();

	// ---- every task: long-poll until terminal, bounded ----
	const [after, afterInFlight] = await Promise.all([
		Promise.all(tasks.map((t) => waitTerminal(base, t.id, RECOVERY_BUDGET_MS))),
		Promise.all(inFlight.map((t) => waitTerminal(base, t.id, RECOVERY_BUDGET_MS))),
	]);
	const finalHealth = await getHealth(base);

	// ---- report ----
	const all = [
		...tasks.map((t, i) => ({ ...t, submitted: 202 as number | string | null, a: after[i]! })),
		...inFlight.map((t, i) => ({ ...t, before: null, submitted: t.answer, a: afterInFlight[i]! })),
	];
	const rows = all.map((t) => {
		const a = t.a;
		const task = a.body;
		const finishedAt = task.finished_at ? Date.parse(task.finished_at) : null;
		const startedAt = task.started_at ? Date.parse(task.started_at) : null;
		const path =
			a.status !== 200
				? "never stored"
				: finishedAt !== null && finishedAt < stoppedAt
					? "done before stop"
					: task.attempts > 1
						? "attempt lost, re-run"
						: startedAt !== null && startedAt > stoppedAt
							? "first run after restart (message re-sent)"
							: "first attempt survived";
		return {
			id: t.id.replace(/-[^-]+-[^-]+$/, ""),
			ms: t.ms,
			submit: typeof t.submitted === "string" ? t.submitted.slice(0, 40) : t.submitted,
			before: t.before?.status ?? "?",
			beforeAttempts: t.before?.attempts ?? null,
			http: a.status,
			status: a.status === 200 ? task.status : "-",
			attempts: a.status === 200 ? task.attempts : null,
			path,
			finished:
				a.status !== 200 || finishedAt === null
					? "-"
					: finishedAt < stoppedAt
						? "before stop"
						: finishedAt < touchedAt
							? "after restart, untouched"
							: "after first GET",
			queue_ms: task.metrics?.queue_ms ?? null,
			run_ms: task.metrics?.run_ms ?? null,
		};
	});
	console.log(
		[
			`restart scenario: stopped ${stoppedAt - Date.parse(warm.body.finished_at!)} ms after warm-up; ready again; first GET ${touchedAt - readyAt} ms after ready`,
			`health after restart (no task touched; changes only): ${timeline
				.map(({ t, h }) => ({ t, line: `q=${h.queue_size} r=${h.running} done=${h.results_pending}` }))
				.filter((x, i, all) => i === 0 || i === all.length - 1 || x.line !== all[i - 1]!.line)
				.map(({ t, line }) => `${t}ms ${line}`)
				.join(" | ")}`,
			`health at end: ${JSON.stringify(finalHealth.body.by_status)}`,
		].join("\n"),
	);
	console.table(rows);
	const paths = new Map<string, number>();
	for (const r of rows) paths.set(r.path, (paths.get(r.path) ?? 0) + 1);
	console.log(`outcomes: ${[...paths].map(([p, n]) => `${p}: ${n}`).join(", ")}`);

	// Answered submissions must be found; an unanswered one may be unknown (404) but never stuck.
	const stuck = rows.filter((r) =>
		typeof r.submit === "number"
			? r.http !== 200 || !TERMINAL.includes(r.status as TaskStatus)
			: r.http === 200
				? !TERMINAL.includes(r.status as TaskStatus)
				: r.http !== 404,
	);
	expect(
		stuck,
		`tasks not terminal after restart\n--- log after restart ---\n${tail(server.output())}\n--- log before stop ---\n${tail(firstLog, 2000)}`,
	).toEqual([]);
	for (const [i, t] of tasks.entries()) {
		const task = after[i]!.body;
		expect(task.id).toBe(t.id);
		expect(task.status, `${t.id}: ${JSON.stringify(task.error)}`).toBe("succeeded");
		expect(task.output).toEqual({ slept_ms: t.ms });
		expect(task.attempts).toBeGreaterThanOrEqual(1);
		expect(task.attempts).toBeLessThanOrEqual(3);
		// A task seen finished before the stop is exactly what was stored: not re-run.
		if (t.before && TERMINAL.includes(t.before.status)) {
			expect(task.attempts).toBe(t.before.attempts);
			expect(task.finished_at).toBe(t.before.finished_at);
		}
		// A task seen running with plenty left to do when the server died lost that attempt.
		if (t.before?.status === "running" && t.before.started_at && Date.parse(t.before.started_at) + t.ms > stoppedAt + 1000) {
			expect(task.attempts, `${t.id} was running at the stop`).toBeGreaterThan(t.before.attempts);
		}
	}
	for (const [i, t] of inFlight.entries()) {
		const a = afterInFlight[i]!;
		if (a.status !== 200) continue;
		expect(a.body.status, `${t.id}: ${JSON.stringify(a.body.error)}`).toBe("succeeded");
		expect(a.body.output).toEqual({ slept_ms: t.ms });
	}
	// A client whose submission died with the server retries it with the same id and body:
	// never a conflict, and a task that was stored after all is the same task, not a second run.
	const retried = await Promise.all(
		inFlight
			.filter((t) => typeof t.answer !== "number")
			.map(async (t) => ({ t, prior: afterInFlight[inFlight.indexOf(t)]!, again: await submitSleep(base, t.ms, { id: t.id, wait: 30 }) })),
	);
	for (const { t, prior, again } of retried) {
		expect(again.status, `${t.id} resubmitted: ${JSON.stringify(again.body)}`).toBe(200);
		expect(again.body.status).toBe("succeeded");
		expect(again.body.output).toEqual({ slept_ms: t.ms });
		if (prior.status === 200) {
			expect(again.body.created_at).toBe(prior.body.created_at);
			expect(again.body.attempts).toBe(prior.body.attempts);
		} else {
			expect(again.body.attempts).toBe(1);
		}
	}
	// Recovery needs no client: every task left unfinished by the stop was finished by its own
	// persisted alarm (re-send or re-run) before anything asked for it.
	expect(
		rows.filter((r) => r.finished === "after first GET"),
		"tasks that finished only after the first GET after the restart (alarms did not recover them on their own)",
	).toEqual([]);
	// The health counters agree once everything is done (they are eventually consistent).
	const deadline = Date.now() + 10_000;
	let h = finalHealth.body;
	while ((h.queue_size > 0 || h.running > 0) && Date.now() < deadline) {
		await sleep(250);
		h = (await getHealth(base)).body;
	}
	expect({ queued: h.queue_size, running: h.running }, `health after every task ended: ${JSON.stringify(h)}`).toEqual({
		queued: 0,
		running: 0,
	});
});
