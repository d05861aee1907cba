/**
 * Workloads of a concurrency-limited type (issue 9), run by bench/run.ts against an edgetask
 * started with `CONCURRENCY` set (`--workloads limited`):
 *
 *   limited  limit 4, 40 tasks of 500 ms submitted at once, each caller long-polling its task:
 *            wall time (ideal 40 × 500 / 4 = 5 s; target ≤ 5.5 s), and for every task that had
 *            to wait, its start delay after the slot it took was freed (p50/p99/max; target: none
 *            over 200 ms), from the tasks' own timestamps. Also checks the limit held.
 *   lane     2,000 no-op tasks (`echo`) at concurrency 100 through a lane whose limit is never
 *            reached (every task asks its lane for a slot and gives it back: 2 lane calls each),
 *            against the same burst of an unlimited no-op type (`flaky` failing 0 times, 0 ms) on
 *            the same server, alternating: what the limiter costs per task, and how many calls a
 *            second one lane object served meanwhile.
 */
import { epochNow, runPool, RuntimeProbe, summarize, timedPost, type Summary } from "./lib.ts";

interface TaskTimes {
	id: string;
	created: number;
	started: number;
	finished: number;
}

export interface LimitedResult {
	limit: number;
	n: number;
	ms: number;
	wallMs: number;
	idealMs: number;
	errors: string[];
	/** Most tasks running at one instant, from their own started_at / finished_at. */
	maxRunning: number;
	/** For each task that waited: its start minus the moment the slot it took was freed. */
	startDelay: Summary;
	over200: number;
	/** Where the wall time went, from t0 (the first submission): first start, last end, last answer. */
	firstStartMs: number;
	lastFinishMs: number;
	/** Each task's own run time (run_ms: its sleep plus the attempt's own overhead). */
	runMs: Summary;
	/**
	 * What the hand-overs added to the wall time: every start delay, spread over the `limit`
	 * chains of tasks that ran one after another (Σ delays / limit). The rest of the wall time is
	 * the first start (submission and queue hop), the runs themselves, and the last answer.
	 */
	handOverShareMs: number;
	/** The runtime's own responsiveness meanwhile (bench/lib.ts RuntimeProbe). */
	runtime: { probes: number; maxMs: number; stalls: number };
}

/** Most intervals [started, finished) open at one instant (an end at the same ms as a start is no overlap). */
function maxRunning(tasks: TaskTimes[]): number {
	const edges = tasks.flatMap((t) => [[t.started, 1] as const, [t.finished, -1] as const]);
	edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
	let open = 0;
	let most = 0;
	for (const [, d] of edges) most = Math.max(most, (open += d));
	return most;
}

/**
 * Start delays: with a limit L, the k-th start (in time order, k ≥ L) can only happen once the
 * (k − L)-th end has: that end freed the slot it took. A task that arrived after that end is
 * measured from its own creation instead (it did not wait for the slot).
 */
function startDelays(tasks: TaskTimes[], limit: number): number[] {
	const starts = [...tasks].sort((a, b) => a.started - b.started);
	const ends = tasks.map((t) => t.finished).sort((a, b) => a - b);
	const delays: number[] = [];
	for (let k = limit; k < starts.length; k++) {
		const t = starts[k]!;
		const freed = ends[k - limit]!;
		delays.push(t.started - Math.max(freed, t.created));
	}
	return delays;
}

export async function runLimited(
	base: string,
	headers: Record<string, string>,
	limit: number,
	n: number,
	ms: number,
): Promise<LimitedResult> {
	const probe = new RuntimeProbe(base);
	const t0 = epochNow();
	const answers = await Promise.all(
		Array.from({ length: n }, () =>
			timedPost(`${base}/v1/tasks`, JSON.stringify({ type: "sleep", input: { ms } }), { prefer: "wait=60", ...headers }, 70_000),
		),
	);
	const wallMs = epochNow() - t0;
	const runtime = await probe.stop();
	const errors: string[] = [];
	const tasks: TaskTimes[] = [];
	const runs: number[] = [];
	for (const a of answers) {
		const t = a.json as {
			id?: string;
			status?: string;
			created_at?: string;
			started_at?: string;
			finished_at?: string;
			metrics?: { run_ms?: number };
		} | null;
		if (a.status !== 200 || t?.status !== "succeeded" || !t.started_at || !t.finished_at || !t.created_at || !t.id) {
			errors.push(`HTTP ${a.status} ${t?.status ?? a.error ?? ""}`.trim());
			continue;
		}
		tasks.push({ id: t.id, created: Date.parse(t.created_at), started: Date.parse(t.started_at), finished: Date.parse(t.finished_at) });
		runs.push(t.metrics?.run_ms ?? NaN);
	}
	const delays = startDelays(tasks, limit);
	return {
		limit,
		n,
		ms,
		wallMs,
		idealMs: (n * ms) / limit,
		errors,
		maxRunning: maxRunning(tasks),
		startDelay: summarize(delays),
		over200: delays.filter((d) => d > 200).length,
		firstStartMs: Math.min(...tasks.map((t) => t.started)) - t0,
		lastFinishMs: Math.max(...tasks.map((t) => t.finished)) - t0,
		runMs: summarize(runs),
		handOverShareMs: delays.reduce((a, b) => a + b, 0) / limit,
		runtime: { probes: runtime.probes, maxMs: runtime.max, stalls: runtime.stalls.length },
	};
}

export interface BurstResult {
	n: number;
	conc: number;
	wallMs: number;
	tasksPerS: number;
	errors: number;
}

/** A no-op task that goes through a lane (`echo`, limited far above any load) or none (`flaky`, unlimited). */
export const NO_OP = {
	lane: (i: number) => ({ type: "echo", input: i }),
	free: () => ({ type: "flaky", input: { fail_times: 0, ms: 0 } }),
};

/** `n` no-op tasks at `conc`, each waited for (`Prefer: wait=60`): tasks/s. */
export async function runBurst(
	base: string,
	headers: Record<string, string>,
	n: number,
	conc: number,
	body: (i: number) => unknown,
): Promise<BurstResult> {
	const t0 = performance.now();
	const { results } = await runPool(n, conc, 300_000, (i) =>
		timedPost(`${base}/v1/tasks`, JSON.stringify(body(i)), { prefer: "wait=60", ...headers }, 70_000),
	);
	const wallMs = performance.now() - t0;
	const ok = results.filter((r) => r.status === 200 && (r.json as { status?: string } | null)?.status === "succeeded").length;
	return { n, conc, wallMs, tasksPerS: ok / (wallMs / 1000), errors: n - ok };
}
