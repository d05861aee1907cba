/**
 * Helpers for bench/run.ts: statistics, a bounded request pool, timed HTTP calls, and /proc
 * readers (process tree, RSS, CPU time, listening ports) for the `wrangler dev` children.
 * Plain Node 24 (type stripping): erasable TypeScript only, `.ts` import extensions.
 */
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

// ---------------------------------------------------------------- statistics

/**
 * Nearest-rank percentile (the smallest sample with at least p% of the samples at or below
 * it), so every reported value is one that was actually observed. `sorted` must be ascending.
 * With n = 100, p99 is the 99th smallest value; with n <= 100, p99 is the maximum.
 */
export function percentile(sorted: readonly number[], p: number): number {
	if (sorted.length === 0) return Number.NaN;
	const rank = Math.ceil((p / 100) * sorted.length);
	return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export interface Summary {
	n: number;
	min: number;
	p50: number;
	p90: number;
	p99: number;
	max: number;
	mean: number;
}

export function summarize(values: readonly number[]): Summary {
	const sorted = [...values].sort((a, b) => a - b);
	const n = sorted.length;
	return {
		n,
		min: n ? sorted[0]! : Number.NaN,
		p50: percentile(sorted, 50),
		p90: percentile(sorted, 90),
		p99: percentile(sorted, 99),
		max: n ? sorted[n - 1]! : Number.NaN,
		mean: n ? sorted.reduce((a, b) => a + b, 0) / n : Number.NaN,
	};
}

/** Small seeded PRNG (mulberry32) so every target gets the same random durations. */
export function prng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Wall-clock epoch milliseconds with sub-millisecond resolution. */
export const epochNow = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- HTTP

export interface Timed {
	ok: boolean;
	status: number;
	/** Client-side elapsed time from just before fetch() to the full body read. */
	elapsedMs: number;
	sentEpoch: number;
	recvEpoch: number;
	json: unknown;
	error?: string;
}

/** One POST with a JSON body, timed on the client, bounded by `timeoutMs`. Never throws. */
export async function timedPost(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<Timed> {
	const sentEpoch = epochNow();
	const t0 = performance.now();
	try {
		const res = await fetch(url, {
			method: "POST",
			headers: { "content-type": "application/json", ...headers },
			body,
			signal: AbortSignal.timeout(timeoutMs),
		});
		const text = await res.text();
		const elapsedMs = performance.now() - t0;
		let json: unknown = null;
		try {
			json = JSON.parse(text);
		} catch {
			/* not JSON: left null, the caller's check fails it */
		}
		return {
			ok: res.ok,
			status: res.status,
			elapsedMs,
			sentEpoch,
			recvEpoch: sentEpoch + elapsedMs,
			json,
			error: res.ok ? undefined : text.slice(0, 200),
		};
	} catch (e) {
		const elapsedMs = performance.now() - t0;
		return { ok: false, status: 0, elapsedMs, sentEpoch, recvEpoch: sentEpoch + elapsedMs, json: null, error: String(e) };
	}
}

/**
 * Runs `fn(i)` for i = 0 … count-1 with at most `concurrency` in flight. Stops issuing new
 * calls once `deadlineMs` has passed (calls in flight still finish: each must bound itself).
 * `onDone` sees the number completed so far after each call.
 */
export async function runPool<T>(
	count: number,
	concurrency: number,
	deadlineMs: number,
	fn: (i: number) => Promise<T>,
	onDone?: (completed: number) => void | Promise<void>,
): Promise<{ results: T[]; issued: number; timedOut: boolean }> {
	const stopAt = performance.now() + deadlineMs;
	const results: T[] = [];
	let next = 0;
	let completed = 0;
	let timedOut = false;
	const worker = async () => {
		for (;;) {
			if (next >= count) return;
			if (performance.now() > stopAt) {
				timedOut = true;
				return;
			}
			const i = next++;
			results[i] = await fn(i);
			completed++;
			await onDone?.(completed);
		}
	};
	await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, worker));
	return { results: results.filter((r) => r !== undefined), issued: next, timedOut };
}

// ---------------------------------------------------------------- /proc

interface ProcStat {
	pid: number;
	ppid: number;
	comm: string;
	/** utime + stime, in clock ticks. */
	cpuTicks: number;
}

function readStat(pid: number): ProcStat | null {
	try {
		const s = readFileSync(`/proc/${pid}/stat`, "utf8");
		const close = s.lastIndexOf(")");
		const comm = s.slice(s.indexOf("(") + 1, close);
		const f = s.slice(close + 2).split(" ");
		// f[0] = state, f[1] = ppid, f[11] = utime, f[12] = stime (fields 3, 4, 14, 15 of proc(5)).
		return { pid, ppid: Number(f[1]), comm, cpuTicks: Number(f[11]) + Number(f[12]) };
	} catch {
		return null;
	}
}

/** `root` and all its descendants. */
export function processTree(root: number): ProcStat[] {
	const all: ProcStat[] = [];
	for (const d of readdirSync("/proc")) {
		if (!/^\d+$/.test(d)) continue;
		const st = readStat(Number(d));
		if (st) all.push(st);
	}
	const children = new Map<number, ProcStat[]>();
	for (const st of all) {
		const list = children.get(st.ppid);
		if (list) list.push(st);
		else children.set(st.ppid, [st]);
	}
	const out: ProcStat[] = [];
	const rootStat = all.find((s) => s.pid === root);
	if (!rootStat) return out;
	const stack = [rootStat];
	while (stack.length) {
		const st = stack.pop()!;
		out.push(st);
		stack.push(...(children.get(st.pid) ?? []));
	}
	return out;
}

function cmdline(pid: number): string {
	try {
		return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
	} catch {
		return "";
	}
}

function rssKb(pid: number): number {
	try {
		const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
		return m ? Number(m[1]) : 0;
	} catch {
		return 0;
	}
}

/**
 * Role of a process under `wrangler dev`: the workerd that owns the public port is wrangler's
 * proxy ("workerd-proxy"); the workerd started with an inspector runs the worker
 * ("workerd-runtime"); wrangler's own Node processes are "wrangler".
 */
export function roleOf(pid: number, comm: string, publicPort: number): string {
	const cmd = cmdline(pid);
	if (comm === "workerd" || /\bworkerd serve\b/.test(cmd)) {
		if (cmd.includes(`entry=127.0.0.1:${publicPort} `) || cmd.endsWith(`entry=127.0.0.1:${publicPort}`)) return "workerd-proxy";
		return "workerd-runtime";
	}
	if (cmd.includes("esbuild")) return "esbuild";
	return "wrangler";
}

export interface ProcSample {
	pid: number;
	role: string;
	rssKb: number;
	cpuTicks: number;
}

/** RSS and CPU time of every process under `root` (the wrangler child), with roles. */
export function sampleTree(root: number, publicPort: number): ProcSample[] {
	return processTree(root).map((st) => ({
		pid: st.pid,
		role: roleOf(st.pid, st.comm, publicPort),
		rssKb: rssKb(st.pid),
		cpuTicks: st.cpuTicks,
	}));
}

export const workerdRssKb = (samples: ProcSample[]) => samples.filter((s) => s.role.startsWith("workerd")).reduce((a, s) => a + s.rssKb, 0);

/** CPU milliseconds spent per role between two samples (clock ticks are 10 ms on Linux). */
export function cpuMsByRole(before: ProcSample[], after: ProcSample[]): Record<string, number> {
	const ticksPerS = 100;
	const out: Record<string, number> = {};
	for (const a of after) {
		const b = before.find((x) => x.pid === a.pid);
		const d = a.cpuTicks - (b?.cpuTicks ?? 0);
		out[a.role] = (out[a.role] ?? 0) + (d * 1000) / ticksPerS;
	}
	return out;
}

/** TCP ports that `pid` listens on (IPv4), via its socket inodes and /proc/net/tcp. */
export function listeningPorts(pid: number): number[] {
	const listening = new Map<string, number>();
	try {
		for (const line of readFileSync("/proc/net/tcp", "utf8").split("\n").slice(1)) {
			const f = line.trim().split(/\s+/);
			if (f[3] === "0A" && f[9]) listening.set(f[9], parseInt(f[1]!.split(":")[1]!, 16));
		}
	} catch {
		return [];
	}
	const ports: number[] = [];
	try {
		for (const fd of readdirSync(`/proc/${pid}/fd`)) {
			try {
				const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
				const port = m ? listening.get(m[1]!) : undefined;
				if (port !== undefined && !ports.includes(port)) ports.push(port);
			} catch {
				/* fd closed meanwhile */
			}
		}
	} catch {
		/* process gone */
	}
	return ports;
}

// ---------------------------------------------------------------- formatting

export function fmt(v: number | null | undefined, digits = 1): string {
	if (v === null || v === undefined || Number.isNaN(v)) return "n/a";
	return v.toFixed(digits);
}

/** Machine-wide busy and total CPU ticks from /proc/stat (all cores). */
export function machineTicks(): { busy: number; total: number } {
	try {
		const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
		const f = line.trim().split(/\s+/).slice(1).map(Number);
		// user nice system idle iowait irq softirq steal guest guest_nice
		const idle = (f[3] ?? 0) + (f[4] ?? 0);
		const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
		return { busy: total - idle, total };
	} catch {
		return { busy: 0, total: 0 };
	}
}

// ---------------------------------------------------------------- the runtime's own stalls

/**
 * The floor under a hand-over: while a workload runs, a trivial request (one the Worker answers
 * without touching any object: an unauthenticated GET, 401) is sent every `everyMs`. When it
 * takes a second, the whole runtime (one workerd thread for the Worker and every object) was
 * busy or starved for that second, and no slot could have been handed over faster.
 */
export class RuntimeProbe {
	private readonly samples: { at: number; ms: number }[] = [];
	private running = true;
	private readonly loop: Promise<void>;

	constructor(base: string, everyMs = 50) {
		this.loop = (async () => {
			while (this.running) {
				const at = epochNow();
				try {
					const res = await fetch(`${base}/v1/tasks/runtime-probe`, { signal: AbortSignal.timeout(60_000) });
					await res.arrayBuffer();
				} catch {
					/* a timeout counts as its full length */
				}
				this.samples.push({ at, ms: epochNow() - at });
				await sleep(everyMs);
			}
		})();
	}

	/** Stops probing; every probe that took over `slowMs`: when it was sent (epoch ms) and how long it took. */
	async stop(slowMs = 500): Promise<{ probes: number; max: number; stalls: { at: number; ms: number }[] }> {
		this.running = false;
		await this.loop;
		const stalls = this.samples.filter((s) => s.ms > slowMs);
		return { probes: this.samples.length, max: Math.max(0, ...this.samples.map((s) => s.ms)), stalls };
	}
}

/** The share of [from, to] (epoch ms) during which the runtime answered nothing (probes never overlap each other). */
export function stalledShare(stalls: readonly { at: number; ms: number }[], from: number, to: number): number {
	if (to <= from) return 0;
	let covered = 0;
	for (const s of stalls) covered += Math.max(0, Math.min(to, s.at + s.ms) - Math.max(from, s.at));
	return covered / (to - from);
}
