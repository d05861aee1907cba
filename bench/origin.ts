/**
 * The "origin" workload of `npm run bench`: the `http` task type against a local origin (a Node
 * HTTP server on 127.0.0.1) that takes `workMs` per request, with the origin's concurrency limit
 * `limit`. The origin cannot do more than limit / workMs requests a second (8 / 0.2 s = 40/s):
 * that is the ceiling the throughput is compared with. The origin counts its own requests in
 * flight, so the run also shows whether the limit held.
 *
 * The origin is started before edgetask (its URL goes into edgetask's `ORIGINS` var).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { runPool, RuntimeProbe, stalledShare, summarize, timedPost, type Summary } from "./lib.ts";

export const ORIGIN_DEFAULTS = { n: 400, limit: 8, workMs: 200 };

export interface BenchOrigin {
	/** The `ORIGINS` var that names this origin "bench". */
	vars: Record<string, string>;
	/**
	 * Since the last reset: requests answered, the most ever in flight at once, and for each
	 * request that came while a slot was free, how long that slot had been free (the time from an
	 * answer to the next request: the hand-over cost as the origin sees it, while tasks wait).
	 */
	stats(): { requests: number; maxInFlight: number; slotIdleMs: number[]; slotIdleAt: number[]; firstAt: number; lastAt: number };
	reset(): void;
	stop(): Promise<void>;
}

export async function startBenchOrigin(limit: number, workMs: number): Promise<BenchOrigin> {
	let inFlight = 0;
	let maxInFlight = 0;
	let requests = 0;
	/** performance.now() of the first request and of the last answer since the reset. */
	let firstAt = 0;
	let lastAt = 0;
	// When each currently free slot was freed (oldest first); a request takes the oldest.
	let freedAt: number[] = [];
	let slotIdleMs: number[] = [];
	/** When (performance.now()) each of those requests came. */
	let slotIdleAt: number[] = [];
	const server: Server = createServer((req, res) => {
		inFlight += 1;
		maxInFlight = Math.max(maxInFlight, inFlight);
		if (!firstAt) firstAt = performance.now();
		const freed = freedAt.shift();
		if (freed !== undefined) {
			slotIdleMs.push(performance.now() - freed);
			slotIdleAt.push(performance.now());
		}
		res.on("close", () => {
			inFlight -= 1;
			lastAt = performance.now();
			if (inFlight < limit) freedAt.push(performance.now());
		});
		req.resume();
		req.on("end", () => {
			setTimeout(() => {
				requests += 1;
				res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
			}, workMs);
		});
	});
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const port = (server.address() as AddressInfo).port;
	const origins = { bench: { url: `http://127.0.0.1:${port}`, concurrency: limit, timeout_s: 60 } };
	return {
		vars: { ORIGINS: JSON.stringify(origins) },
		stats: () => ({ requests, maxInFlight, slotIdleMs, slotIdleAt, firstAt, lastAt }),
		reset: () => {
			requests = 0;
			firstAt = 0;
			lastAt = 0;
			maxInFlight = inFlight;
			freedAt = [];
			slotIdleMs = [];
			slotIdleAt = [];
		},
		stop: () =>
			new Promise<void>((resolve) => {
				server.closeAllConnections();
				server.close(() => resolve());
			}),
	};
}

export interface OriginResult {
	n: number;
	limit: number;
	workMs: number;
	ok: number;
	errors: string[];
	wallS: number;
	tasksPerS: number;
	/** limit / workMs: the most the origin itself can do. */
	ceilingPerS: number;
	originRequests: number;
	originMaxInFlight: number;
	/** Per task: started_at − created_at (time waiting for a slot included), ms. */
	wait: Summary;
	/** At the origin: from an answer to the next request on that slot, while tasks were waiting, ms. */
	slotIdle: Summary;
	/** Hand-overs slower than 500 ms: seconds into the run, how long the slot was free, and whether the runtime itself answered nothing for at least half that time. */
	slowHandOvers: { atS: number; idleMs: number; runtimeStalled: boolean }[];
	/** The runtime's own responsiveness meanwhile (see RuntimeProbe): its slowest trivial request, and how many took over 500 ms. */
	runtime: { probes: number; maxMs: number; stalls: number };
	/** Seconds into the run of the origin's first request and of its last answer. */
	originFirstS: number;
	originLastS: number;
	/** Tasks/s while the origin was working: requests / (last answer − first request). */
	originPerS: number;
}

/**
 * Submits `n` http tasks at once (each `Prefer: wait=60`, so each answer is its task's end) and
 * measures the wall time from the first submit to the last answer.
 */
export async function runOrigin(base: string, apiKey: string, origin: BenchOrigin, o = ORIGIN_DEFAULTS): Promise<OriginResult> {
	const headers = { prefer: "wait=60", authorization: `Bearer ${apiKey}` };
	// Warm the path (object creation, the first outbound connection) before counting.
	await timedPost(`${base}/v1/tasks`, JSON.stringify({ type: "http", input: { origin: "bench", path: "/warm" } }), headers, 30_000);
	origin.reset();
	const probe = new RuntimeProbe(base);
	const errors: string[] = [];
	const waits: number[] = [];
	const t0 = performance.now();
	const { results } = await runPool(o.n, o.n, 120_000, (i) =>
		timedPost(
			`${base}/v1/tasks`,
			JSON.stringify({ type: "http", input: { origin: "bench", path: "/work", body: { i } } }),
			headers,
			90_000,
		),
	);
	const wallS = (performance.now() - t0) / 1000;
	const runtime = await probe.stop();
	let ok = 0;
	for (const t of results) {
		const task = t.json as { status?: string; created_at?: string; started_at?: string | null } | null;
		if (t.status === 200 && task?.status === "succeeded") {
			ok += 1;
			if (task.created_at && task.started_at) waits.push(Date.parse(task.started_at) - Date.parse(task.created_at));
		} else if (errors.length < 5) errors.push(`HTTP ${t.status} ${task?.status ?? t.error ?? ""}`.trim());
	}
	const { requests, maxInFlight, slotIdleMs, slotIdleAt, firstAt, lastAt } = origin.stats();
	// Only hand-overs while tasks still waited: the last `limit` slots freed have nobody to take them.
	const handOvers = slotIdleMs.slice(0, Math.max(0, requests - o.limit));
	return {
		n: o.n,
		limit: o.limit,
		workMs: o.workMs,
		ok,
		errors,
		wallS,
		tasksPerS: ok / wallS,
		ceilingPerS: (o.limit * 1000) / o.workMs,
		originRequests: requests,
		originMaxInFlight: maxInFlight,
		wait: summarize(waits),
		slotIdle: summarize(handOvers),
		originFirstS: (firstAt - t0) / 1000,
		originLastS: (lastAt - t0) / 1000,
		originPerS: requests / ((lastAt - firstAt) / 1000),
		slowHandOvers: handOvers
			.map((idleMs, i) => {
				const at = slotIdleAt[i] ?? t0;
				const to = performance.timeOrigin + at;
				return {
					atS: Math.round((at - t0) / 100) / 10,
					idleMs: Math.round(idleMs),
					runtimeStalled: stalledShare(runtime.stalls, to - idleMs, to) >= 0.5,
				};
			})
			.filter((h) => h.idleMs > 500),
		runtime: { probes: runtime.probes, maxMs: runtime.max, stalls: runtime.stalls.length },
	};
}

export function describeOrigin(r: OriginResult): string {
	return (
		`${r.ok}/${r.n} ok in ${r.wallS.toFixed(1)} s: ${r.tasksPerS.toFixed(1)} tasks/s vs the origin's ceiling ${r.ceilingPerS.toFixed(0)}/s ` +
		`(${((100 * r.tasksPerS) / r.ceilingPerS).toFixed(0)} %); the origin worked from ${r.originFirstS.toFixed(1)} s to ${r.originLastS.toFixed(1)} s ` +
		`(${r.originPerS.toFixed(1)} requests/s); origin saw ${r.originRequests} requests, at most ${r.originMaxInFlight} in flight (limit ${r.limit}); ` +
		`a freed slot's next request came after p50 ${r.slotIdle.p50.toFixed(0)} p99 ${r.slotIdle.p99.toFixed(0)} ms ` +
		`(${r.slowHandOvers.length} over 500 ms${r.slowHandOvers.length ? `, at ${r.slowHandOvers.map((h) => `${h.atS} s`).join(" ")}` : ""}; ` +
		`${r.slowHandOvers.filter((h) => h.runtimeStalled).length} of them while the runtime itself answered nothing for half the time or more: ` +
		`its slowest trivial request took ${r.runtime.maxMs.toFixed(0)} ms, ${r.runtime.stalls} of ${r.runtime.probes} over 500 ms); ` +
		`wait for a slot p50 ${r.wait.p50.toFixed(0)} p99 ${r.wait.p99.toFixed(0)} ms${r.errors.length ? `; errors ${r.errors.join("; ")}` : ""}`
	);
}
