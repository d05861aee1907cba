/**
 * edgetask benchmark: `npm run bench [-- --quick] [-- --json out.json] [-- --soak N]`.
 *
 * Starts edgetask (the project's wrangler.toml) and the floor worker (bench/floor/wrangler.toml)
 * with scripts/devServer.ts, each with fresh persisted state in a temp dir, and talks real HTTP
 * to 127.0.0.1 only. Every workload runs against edgetask and the two floors on the same runtime:
 *   floor (a)  plain Hono route that sleeps `ms`                      (POST /sleep)
 *   floor (b)  the sleep inside a fresh Durable Object per request     (POST /do-sleep)
 *   edgetask, direct (--targets …,edgetaskDirect) a second edgetask server with DISPATCH=direct:
 *              the task's object starts the task itself, no queue message
 *   contract floor (--targets …,floorContract) the design floor plus what edgetask's own rules ask
 *              of a task: event rows, the running state stored before the run, the terminal
 *              status reported to a health shard before the alarm moves to the TTL (POST /contract)
 *   design floor  the least any build of edgetask's design can do: a fresh object per task stores
 *              it and sets a recovery alarm, sends one queue message whose consumer hands it to
 *              the object, which runs it, stores the result with a TTL alarm and releases the
 *              request; no events, counters or fan-out                   (POST /design)
 * Targets against the design floor, measured in the same run: W2 ≥ 0.95 × its tasks/s, c1 no-op
 * p50 ≤ its p50 + 1 ms, W1 no more tasks > 500 ms late than it.
 * Workloads (overhead = client elapsed − the task's own duration):
 *   W3    5 s task, then 1 s task 100 ms later, both `Prefer: wait=60`: when each came back
 *         (3 rounds one after another, 1 with --quick; the short task must pass in every round).
 *   W1    100 concurrent tasks of random 100–3000 ms (same seeded durations for every target).
 *   W2    2,000 no-op tasks (sleep 0) at concurrency 100: tasks/s and overhead.
 *   c1    sequential: 50 × sleep 0 and 20 × sleep 100.
 *   L1    live results (bench/live.ts; edgetask only): 1,000 tasks, each with one WebSocket and
 *         one `Prefer: wait=60` long-poll, all held at once (100 with --quick); every one must be
 *         released within 1 s of its task's end; delay from result stored (`finished_at`) to
 *         event received, p50/p99 per delivery (target p99 ≤ 50 ms).
 *   origin  (bench/origin.ts; edgetask only): 400 `http` tasks against a local origin that takes
 *         200 ms a request, limit 8 (ceiling 40 tasks/s): tasks/s, and the origin's own count of
 *         requests in flight (40 with --quick).
 *   F1    files (bench/files.ts; edgetask only): a 20 MiB file uploaded and downloaded 10 times
 *         (3 with --quick): MiB/s each way, sha256 checked every time.
 *   I1    image.resize of a fixed 1920×1080 JPEG to 256 px (bench/files.ts; edgetask only):
 *         resizes/s at concurrency 1 and 4 (40 each; 10 with --quick).
 *   limited  (bench/limited.ts; edgetask only, on a second server with CONCURRENCY set) limit 4,
 *         40 tasks of 500 ms at once: wall time and each task's start delay after its slot was
 *         freed; and 2,000 no-op tasks through a lane whose limit is never reached, against the
 *         same burst of an unlimited type: the limiter's cost and one lane's calls/s.
 *   soak  (--soak N) N sleep-0 tasks at concurrency 50 against edgetask; workerd RSS over time
 *         (--soak-floor: the same against floor (b), for the runtime's own growth).
 * Diagnostics (not in the main table): edgetask's server-side breakdown of its overhead, CPU
 * per task by process, the proxy hop measured directly, and a DO-with-SQLite-writes floor.
 *
 * Both workers are served from a snapshot copied to a temp dir at start (src/, wrangler.toml, the
 * floor worker, and copies of the runtime dependencies they import), because `wrangler dev`
 * reloads a worker whenever a watched file changes, node_modules included, and drops the
 * requests in flight ("Your worker restarted mid-request"): edits or an `npm install` made while
 * the benchmark runs must not land in the middle of it. `--live` serves edgetask from the
 * working tree. A reload that happens anyway is detected and flagged in the output.
 *
 * Options: --quick (small counts), --json FILE, --soak N, --targets edgetask,floorA,floorB,
 * --no-diag (skip diagnostics), --seed N, --live, --soak-only (with --soak: skip everything else),
 * --soak-floor, --code DIR (benchmark DIR/src + DIR/wrangler.toml instead of this checkout's,
 * e.g. another worktree), --before DIR (W2 on DIR's edgetask and on this one's, alternating --before-rounds times (3) in
 * the same run: e.g. a worktree at the commit before a change, to show the change costs nothing),
 * --edge-var NAME=VALUE (extra edgetask var, repeatable),
 * --workloads W3,c1,W1,W2,L1,F1,I1 (a subset), --rounds N (c1, W1 and W2 N times, the targets'
 * order rotated each round; each target's table value is its median round, and the same-run
 * targets compare each round's pair, then take the median: a machine shared with other work
 * drifts by tens of percent within minutes), --l1-n N (L1's task count), --l1-stream (L1 tasks of
 * 1–3 s from their submission instead of ends held in one window), --l1-hold-ms / --l1-window-ms
 * (L1's schedule), --l1-conc N (L1 submissions in flight).
 * Every loop is bounded in count and in time.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startDevServer, type DevServer } from "../scripts/devServer.ts";
import { runF1, runI1, type F1Result, type I1Result } from "./files.ts";
import { NO_OP, runBurst, runLimited, type BurstResult, type LimitedResult } from "./limited.ts";
import { describeL1, l1Defaults, runL1, type L1Result } from "./live.ts";
import { describeOrigin, ORIGIN_DEFAULTS, runOrigin, startBenchOrigin, type BenchOrigin, type OriginResult } from "./origin.ts";
import {
	cpuMsByRole,
	epochNow,
	fmt,
	listeningPorts,
	machineTicks,
	prng,
	runPool,
	sampleTree,
	sleep,
	summarize,
	timedPost,
	workerdRssKb,
	type ProcSample,
	type Summary,
	type Timed,
} from "./lib.ts";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");

// ---------------------------------------------------------------- options

interface Options {
	quick: boolean;
	json: string | null;
	soak: number;
	targets: TargetKey[];
	diag: boolean;
	seed: number;
	live: boolean;
	soakOnly: boolean;
	soakFloor: boolean;
	/** Project dir whose src/ and wrangler.toml are benchmarked instead of this checkout's. */
	code: string | null;
	/** A project dir (e.g. a worktree at an older commit) whose edgetask W2 runs beside this one's, alternating (`--before DIR`). */
	before: string | null;
	/** How many times the limited workload's 40 tasks run (`--limited-rounds N`, default 1). */
	limitedRounds: number;
	/** How many times --before alternates the two (`--before-rounds N`, default 3). */
	beforeRounds: number;
	/** Extra `[vars]` for edgetask (`--edge-var NAME=VALUE`, repeatable). */
	edgeVars: Record<string, string>;
	workloads: string[];
	/** c1, W1 and W2 run this many times, each round starting with the next target (--rounds N). */
	rounds: number;
	l1: { n: number | null; stream: boolean; holdMs: number | null; windowMs: number | null; conc: number };
}

type TargetKey = "edgetask" | "edgetaskDirect" | "edgetaskBefore" | "floorA" | "floorB" | "floorDesign" | "floorContract" | "floorStore";
const WORKLOADS = ["W3", "c1", "W1", "W2", "L1", "origin", "F1", "I1", "limited"];
const MAIN_TARGETS: TargetKey[] = ["edgetask", "edgetaskDirect", "floorA", "floorB", "floorDesign", "floorContract"];
/** The targets that are edgetask itself (the rest are floors on the floor worker). */
const EDGE_TARGETS: TargetKey[] = ["edgetask", "edgetaskDirect"];
/** Targets run unless --targets says otherwise (edgetask with DISPATCH=direct and the contract floor are asked for by name). */
const DEFAULT_TARGETS: TargetKey[] = ["edgetask", "floorA", "floorB", "floorDesign"];

function parseArgs(argv: string[]): Options {
	const o: Options = {
		quick: false,
		json: null,
		soak: 0,
		targets: [...DEFAULT_TARGETS],
		diag: true,
		seed: 42,
		live: false,
		soakOnly: false,
		soakFloor: false,
		code: null,
		before: null,
		beforeRounds: 3,
		limitedRounds: 1,
		edgeVars: {},
		workloads: [...WORKLOADS],
		rounds: 1,
		l1: { n: null, stream: false, holdMs: null, windowMs: null, conc: 25 },
	};
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i]!;
		const value = () => {
			const v = argv[++i];
			if (v === undefined) throw new Error(`${a} needs a value`);
			return v;
		};
		if (a === "--quick") o.quick = true;
		else if (a === "--json") o.json = value();
		else if (a === "--soak") o.soak = Math.max(0, Math.floor(Number(value())) || 0);
		else if (a === "--seed") o.seed = Number(value()) || 42;
		else if (a === "--no-diag") o.diag = false;
		else if (a === "--live") o.live = true;
		else if (a === "--soak-only") o.soakOnly = true;
		else if (a === "--soak-floor") o.soakFloor = true;
		else if (a === "--code") o.code = value();
		else if (a === "--before") o.before = value();
		else if (a === "--limited-rounds") o.limitedRounds = Math.max(1, Math.floor(Number(value())) || 1);
		else if (a === "--before-rounds") o.beforeRounds = Math.max(1, Math.floor(Number(value())) || 1);
		else if (a === "--rounds") o.rounds = Math.max(1, Math.floor(Number(value())) || 1);
		else if (a === "--workloads") {
			o.workloads = value()
				.split(",")
				.map((w) => w.trim());
			for (const w of o.workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w} (${WORKLOADS.join(", ")})`);
		} else if (a === "--l1-n") o.l1.n = Math.max(1, Math.floor(Number(value())) || 1);
		else if (a === "--l1-stream") o.l1.stream = true;
		else if (a === "--l1-hold-ms") o.l1.holdMs = Math.max(0, Number(value()) || 0);
		else if (a === "--l1-window-ms") o.l1.windowMs = Math.max(1, Number(value()) || 1);
		else if (a === "--l1-conc") o.l1.conc = Math.max(1, Math.floor(Number(value())) || 1);
		else if (a === "--edge-var") {
			const [name, ...rest] = value().split("=");
			if (!name || rest.length === 0) throw new Error("--edge-var needs NAME=VALUE");
			o.edgeVars[name] = rest.join("=");
		} else if (a === "--targets") {
			const list = value()
				.split(",")
				.map((s) => s.trim()) as TargetKey[];
			for (const t of list) if (!MAIN_TARGETS.includes(t)) throw new Error(`unknown target ${t} (${MAIN_TARGETS.join(", ")})`);
			o.targets = list;
		} else if (a === "--help" || a === "-h") {
			console.log(
				"npm run bench -- [--quick] [--json FILE] [--soak N] [--targets edgetask,edgetaskDirect,floorA,floorB,floorDesign,floorContract] [--no-diag] [--seed N] [--live] [--soak-only] [--soak-floor] [--code DIR] [--before DIR] [--before-rounds N] [--limited-rounds N] [--edge-var NAME=VALUE] [--workloads W3,c1,W1,W2,L1,F1,I1] [--rounds N] [--l1-n N] [--l1-stream] [--l1-hold-ms MS] [--l1-window-ms MS] [--l1-conc N]",
			);
			process.exit(0);
		} else throw new Error(`unknown option ${a}`);
	}
	if (o.soakOnly) {
		if (o.soak <= 0) throw new Error("--soak-only needs --soak N");
		o.targets = [];
		o.diag = false;
	}
	return o;
}

const opts = parseArgs(process.argv.slice(2));

const COUNTS = opts.quick
	? {
			w3Rounds: 1,
			warmup: 10,
			w1: 30,
			w2: 300,
			w2Conc: 100,
			c1Zero: 15,
			c1Hundred: 5,
			hop: 30,
			diagW2: 200,
			l1: opts.l1.n ?? 100,
			origin: 40,
			f1: 3,
			i1: 10,
			lane: 300,
		}
	: {
			w3Rounds: 3,
			warmup: 30,
			w1: 100,
			w2: 2000,
			w2Conc: 100,
			c1Zero: 50,
			c1Hundred: 20,
			hop: 100,
			diagW2: 2000,
			l1: opts.l1.n ?? 1000,
			origin: ORIGIN_DEFAULTS.n,
			f1: 10,
			i1: 40,
			lane: 2000,
		};
/** The "limited" workload: the issue's numbers. */
const LIMITED = { limit: 4, n: 40, ms: 500 };
const SOAK_CONC = 50;
/** Per request: edgetask may hold a request for `wait=60`; nothing legitimate takes longer. */
const REQUEST_TIMEOUT_MS = 70_000;
const LATE_MS = 500;
/**
 * edgetask runs as deployed (AUTH_MODE "required"), with an API key passed as a var and sent as a
 * bearer token, so the auth check and the per-task URL token are part of the measured path.
 */
const API_KEY = "edgetask-bench-key";

// ---------------------------------------------------------------- targets

interface Breakdown {
	/** Client send → task created in its object (proxy, Hono, validation, create RPC). */
	ingress: number;
	/** Created → attempt started (create's save, queue send, broker, consumer, dispatch). */
	queue: number;
	/** Attempt run time beyond the requested sleep (the `running` save, timer slop). */
	runExcess: number;
	/** Finished → client has the whole response (finish save, waiter release, RPC + HTTP back). */
	egress: number;
}

interface Sample {
	ms: number;
	elapsed: number;
	overhead: number;
	ok: boolean;
	status: number;
	error?: string;
	breakdown?: Breakdown;
}

interface Target {
	key: TargetKey;
	label: string;
	server: DevServer;
	url: string;
	headers: Record<string, string>;
	body(ms: number): string;
	/** Null when the response is a correct, finished answer for a task of `ms`; else why not. */
	check(t: Timed, ms: number): string | null;
}

function edgetaskTarget(server: DevServer, key: TargetKey = "edgetask", label = "edgetask"): Target {
	return {
		key,
		label,
		server,
		url: `${server.url}/v1/tasks`,
		headers: { prefer: "wait=60", authorization: `Bearer ${API_KEY}` },
		body: (ms) => JSON.stringify({ type: "sleep", input: { ms } }),
		check(t, ms) {
			if (t.status !== 200) return `HTTP ${t.status} ${t.error ?? ""}`.trim();
			const task = t.json as { status?: string; output?: { slept_ms?: number } } | null;
			if (task?.status !== "succeeded") return `task ${task?.status ?? "?"}`;
			if (task.output?.slept_ms !== ms) return "wrong output";
			return null;
		},
	};
}

function floorTarget(server: DevServer, key: TargetKey, path: string, label: string): Target {
	return {
		key,
		label,
		server,
		url: `${server.url}${path}`,
		headers: {},
		body: (ms) => JSON.stringify({ ms }),
		check(t, ms) {
			if (t.status !== 200) return `HTTP ${t.status} ${t.error ?? ""}`.trim();
			if ((t.json as { slept_ms?: number } | null)?.slept_ms !== ms) return "wrong output";
			return null;
		},
	};
}

function breakdownOf(t: Timed, ms: number): Breakdown | undefined {
	const task = t.json as {
		created_at?: string;
		started_at?: string | null;
		finished_at?: string | null;
		metrics?: { run_ms?: number | null };
	} | null;
	if (!task?.created_at || !task.started_at || !task.finished_at || typeof task.metrics?.run_ms !== "number") return undefined;
	const created = Date.parse(task.created_at);
	const started = Date.parse(task.started_at);
	const finished = Date.parse(task.finished_at);
	return {
		ingress: created - t.sentEpoch,
		queue: started - created,
		runExcess: task.metrics.run_ms - ms,
		egress: t.recvEpoch - finished,
	};
}

async function call(target: Target, ms: number): Promise<Sample> {
	const t = await timedPost(target.url, target.body(ms), target.headers, REQUEST_TIMEOUT_MS);
	const error = target.check(t, ms) ?? undefined;
	return {
		ms,
		elapsed: t.elapsedMs,
		overhead: t.elapsedMs - ms,
		ok: error === undefined,
		status: t.status,
		error,
		breakdown: EDGE_TARGETS.includes(target.key) && !error ? breakdownOf(t, ms) : undefined,
	};
}

// ---------------------------------------------------------------- the code under test

interface Snapshot {
	config: string;
	/** Short hash of the copied src/ and wrangler.toml, to tell runs of different code apart. */
	digest: string;
	commit: string;
	/** True when src/ or wrangler.toml differ from the commit. */
	dirty: boolean;
}

function listFiles(dir: string, base = dir): string[] {
	const out: string[] = [];
	for (const e of readdirSync(dir, { withFileTypes: true })) {
		const p = join(dir, e.name);
		if (e.isDirectory()) out.push(...listFiles(p, base));
		else if (e.isFile()) out.push(p.slice(base.length + 1));
	}
	return out.sort();
}

function git(args: string[]): string {
	try {
		return execFileSync("git", args, { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
	} catch {
		return "";
	}
}

/** Copies `name` and, recursively, its runtime dependencies from the project's node_modules. */
function copyPackage(name: string, into: string, seen = new Set<string>()): void {
	if (seen.has(name)) return;
	seen.add(name);
	const src = join(root, "node_modules", name);
	if (!existsSync(src)) return;
	cpSync(src, join(into, name), { recursive: true, dereference: true });
	const pkg = JSON.parse(readFileSync(join(src, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
	for (const dep of Object.keys(pkg.dependencies ?? {})) copyPackage(dep, into, seen);
}

/**
 * Copies the worker sources to `dir` (see the header comment): src/, wrangler.toml, the floor
 * worker, and the runtime dependencies the bundles import (package.json "dependencies"), so
 * nothing `wrangler dev` watches can change under the benchmark, `npm install` included.
 * `--live` serves edgetask from the working tree instead (the floor is still copied).
 */
function snapshotProject(dir: string, live: boolean, codeDir: string): Snapshot & { floorConfig: string } {
	const commit = git(["-C", codeDir, "rev-parse", "--short", "HEAD"]) || "unknown";
	const dirty = git(["-C", codeDir, "status", "--porcelain", "--", "src", "wrangler.toml"]) !== "";
	mkdirSync(join(dir, "node_modules"), { recursive: true });
	const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
	for (const dep of Object.keys(pkg.dependencies ?? {})) copyPackage(dep, join(dir, "node_modules"));
	cpSync(join(here, "floor"), join(dir, "bench-floor"), { recursive: true, filter: (f) => !f.includes(".wrangler") });
	if (!live) {
		// The dashboard's built files, which wrangler.toml's [build] makes (a fresh clone has none yet):
		// a module in src/ (an older checkout: public/, which its [assets] serves).
		const buildDashboard = join(codeDir, "scripts", "buildDashboard.mjs");
		if (existsSync(buildDashboard)) execFileSync(process.execPath, [buildDashboard], { stdio: "inherit" });
		cpSync(join(codeDir, "src"), join(dir, "src"), { recursive: true });
		for (const f of ["wrangler.toml", "tsconfig.json", "package.json"])
			if (existsSync(join(codeDir, f))) cpSync(join(codeDir, f), join(dir, f));
		if (existsSync(join(codeDir, "public"))) cpSync(join(codeDir, "public"), join(dir, "public"), { recursive: true });
	}
	const from = live ? codeDir : dir;
	const h = createHash("sha256");
	for (const f of listFiles(join(from, "src")))
		h.update(f)
			.update("\0")
			.update(readFileSync(join(from, "src", f)))
			.update("\0");
	h.update(readFileSync(join(from, "wrangler.toml")));
	return {
		config: join(from, "wrangler.toml"),
		floorConfig: join(dir, "bench-floor", "wrangler.toml"),
		digest: h.digest("hex").slice(0, 12),
		commit,
		dirty,
	};
}

/** How many times wrangler reloaded the worker since it became ready (each drops requests in flight). */
const reloadsOf = (s: DevServer) => (s.output().match(/Reloading local server/g) ?? []).length;

// ---------------------------------------------------------------- environment sampling

/** CPU used on the machine by processes other than this benchmark and its servers. */
class Interference {
	private m0 = machineTicks();
	private servers: DevServer[];
	private procs0: Map<number, number>;
	private self0 = process.cpuUsage();
	constructor(servers: DevServer[]) {
		this.servers = servers;
		this.procs0 = this.serverTicks();
	}
	private serverTicks(): Map<number, number> {
		const m = new Map<number, number>();
		for (const s of this.servers) for (const p of sampleTree(s.child.pid!, s.port)) m.set(p.pid, p.cpuTicks);
		return m;
	}
	/** Average cores busy with foreign work since construction, and with our own. */
	read(): { foreignCores: number; ownCores: number } {
		const m1 = machineTicks();
		const total = m1.total - this.m0.total;
		const cores = cpus().length;
		if (total <= 0) return { foreignCores: 0, ownCores: 0 };
		const busy = m1.busy - this.m0.busy;
		// Per process, so a server process that exited (a reload) does not count negative.
		let own = 0;
		for (const [pid, ticks] of this.serverTicks()) own += Math.max(0, ticks - (this.procs0.get(pid) ?? 0));
		const self = process.cpuUsage(this.self0);
		own += (self.user + self.system) / 10_000;
		const clamp = (x: number) => Math.min(cores, Math.max(0, x));
		return { foreignCores: clamp(((busy - own) / total) * cores), ownCores: clamp((own / total) * cores) };
	}
}

// ---------------------------------------------------------------- workloads

/** Failed answers, plus requests never issued because a loop hit its time bound. */
function errorsOf(samples: Sample[], expected = samples.length): { count: number; examples: string[] } {
	const bad = samples.filter((s) => !s.ok);
	const examples = [...new Set(bad.map((s) => s.error ?? "?"))].slice(0, 3);
	const missing = Math.max(0, expected - samples.length);
	if (missing > 0) examples.push(`${missing} not issued (time bound reached)`);
	return { count: bad.length + missing, examples };
}

/** CPU per task summed over the server's processes (runtime, proxy, wrangler). */
function cpuTotal(byRole: Record<string, number>): number {
	return Object.values(byRole).reduce((a, b) => a + b, 0);
}

function breakdownSummary(samples: Sample[]) {
	const b = samples.map((s) => s.breakdown).filter((x): x is Breakdown => x !== undefined);
	if (b.length === 0) return null;
	return {
		n: b.length,
		ingress: summarize(b.map((x) => x.ingress)),
		queue: summarize(b.map((x) => x.queue)),
		runExcess: summarize(b.map((x) => x.runExcess)),
		egress: summarize(b.map((x) => x.egress)),
	};
}

async function warmup(t: Target) {
	for (let i = 0; i < 5; i++) await call(t, 0);
	await runPool(COUNTS.warmup, 20, 60_000, () => call(t, 0));
}

async function runW3Round(t: Target) {
	const t0 = performance.now();
	const long = call(t, 5000);
	await sleep(100);
	const shortOffset = performance.now() - t0;
	const short = call(t, 1000);
	const [l, s] = await Promise.all([long, short]);
	return {
		long: { elapsed: l.elapsed, backAt: l.elapsed, ok: l.ok, error: l.error, breakdown: l.breakdown },
		short: {
			submittedAt: shortOffset,
			elapsed: s.elapsed,
			backAt: shortOffset + s.elapsed,
			ok: s.ok,
			error: s.error,
			breakdown: s.breakdown,
		},
		shortFirst: shortOffset + s.elapsed < l.elapsed,
	};
}

/** W3 `rounds` times in a row; a failed request counts as +Infinity (so it fails the target). */
async function runW3(t: Target, rounds: number) {
	const list: Awaited<ReturnType<typeof runW3Round>>[] = [];
	for (let i = 0; i < rounds; i++) {
		list.push(await runW3Round(t));
		if (i < rounds - 1) await sleep(500);
	}
	const longs = summarize(list.map((r) => (r.long.ok ? r.long.elapsed : Number.POSITIVE_INFINITY)));
	const shorts = summarize(list.map((r) => (r.short.ok ? r.short.elapsed : Number.POSITIVE_INFINITY)));
	const errors = list.flatMap((r) => [r.long.error, r.short.error]).filter((e): e is string => e !== undefined);
	return { rounds: list, long: longs, short: shorts, errors, shortAlwaysFirst: list.every((r) => r.shortFirst) };
}

async function runW1(t: Target, n: number, seed: number) {
	const rnd = prng(seed);
	const durations = Array.from({ length: n }, () => 100 + Math.floor(rnd() * 2901));
	const t0 = performance.now();
	const { results, issued } = await runPool(n, n, 60_000, (i) => call(t, durations[i]!));
	const wallMs = performance.now() - t0;
	const ok = results.filter((r) => r.ok);
	return {
		n,
		issued,
		wallMs,
		overhead: summarize(ok.map((r) => r.overhead)),
		late: results.filter((r) => !r.ok || r.overhead > LATE_MS).length + (n - results.length),
		errors: errorsOf(results, n),
		breakdown: breakdownSummary(ok),
	};
}

async function runW2(t: Target, n: number, conc: number, deadlineMs: number) {
	const before = sampleTree(t.server.child.pid!, t.server.port);
	const t0 = performance.now();
	const { results, issued, timedOut } = await runPool(n, conc, deadlineMs, () => call(t, 0));
	const wallMs = performance.now() - t0;
	const after = sampleTree(t.server.child.pid!, t.server.port);
	const ok = results.filter((r) => r.ok);
	const cpu = cpuMsByRole(before, after);
	const cpuPerTask: Record<string, number> = {};
	for (const [role, msTotal] of Object.entries(cpu)) cpuPerTask[role] = ok.length ? msTotal / ok.length : Number.NaN;
	return {
		n,
		conc,
		issued,
		timedOut,
		wallMs,
		tasksPerS: ok.length / (wallMs / 1000),
		overhead: summarize(ok.map((r) => r.overhead)),
		errors: errorsOf(results, n),
		cpuMsPerTask: cpuPerTask,
		breakdown: breakdownSummary(ok),
	};
}

async function runC1(t: Target, nZero: number, nHundred: number) {
	const deadline = performance.now() + 120_000;
	const zero: Sample[] = [];
	const hundred: Sample[] = [];
	for (let i = 0; i < nZero && performance.now() < deadline; i++) zero.push(await call(t, 0));
	for (let i = 0; i < nHundred && performance.now() < deadline; i++) hundred.push(await call(t, 100));
	const okZ = zero.filter((s) => s.ok);
	const okH = hundred.filter((s) => s.ok);
	return {
		zero: {
			n: zero.length,
			overhead: summarize(okZ.map((s) => s.overhead)),
			errors: errorsOf(zero, nZero),
			breakdown: breakdownSummary(okZ),
		},
		hundred: {
			n: hundred.length,
			overhead: summarize(okH.map((s) => s.overhead)),
			errors: errorsOf(hundred, nHundred),
			breakdown: breakdownSummary(okH),
		},
	};
}

async function runSoak(t: Target, n: number) {
	const samples: { completed: number; atS: number; workerdRssKb: number; byPid: { pid: number; role: string; rssKb: number }[] }[] = [];
	const t0 = performance.now();
	const take = (completed: number) => {
		const s = sampleTree(t.server.child.pid!, t.server.port).filter((p) => p.role.startsWith("workerd"));
		samples.push({
			completed,
			atS: (performance.now() - t0) / 1000,
			workerdRssKb: workerdRssKb(s),
			byPid: s.map((p) => ({ pid: p.pid, role: p.role, rssKb: p.rssKb })),
		});
	};
	take(0);
	const every = Math.max(1, Math.floor(n / 10));
	let lastLog = performance.now();
	// Bounded: stop issuing after 2 min + 50 ms per task, whichever the run reaches first.
	const deadlineMs = 120_000 + n * 50;
	const { results, issued, timedOut } = await runPool(
		n,
		SOAK_CONC,
		deadlineMs,
		() => call(t, 0),
		(done) => {
			if (done % every === 0 || done === Math.floor(n / 2)) {
				if (!samples.some((s) => s.completed === done)) take(done);
			}
			if (performance.now() - lastLog > 10_000) {
				lastLog = performance.now();
				console.log(`  soak: ${done}/${n} done, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
			}
		},
	);
	const wallMs = performance.now() - t0;
	if (!samples.some((s) => s.completed === results.length)) take(results.length);
	await sleep(5000);
	take(results.length); // after 5 s idle
	samples[samples.length - 1]!.completed = -1;
	const alive = t.server.child.exitCode === null && t.server.child.signalCode === null;
	let healthOk = false;
	let health: unknown = null;
	try {
		const res = await fetch(`${t.server.url}/health`, {
			headers: { authorization: `Bearer ${API_KEY}` },
			signal: AbortSignal.timeout(10_000),
		});
		healthOk = res.ok;
		health = await res.json();
	} catch (e) {
		health = String(e);
	}
	const ok = results.filter((r) => r.ok);
	const mid = samples.reduce(
		(best, s) => (s.completed >= 0 && Math.abs(s.completed - n / 2) < Math.abs(best.completed - n / 2) ? s : best),
		samples[0]!,
	);
	const endRun = samples[samples.length - 2]!;
	return {
		n,
		concurrency: SOAK_CONC,
		issued,
		timedOut,
		wallMs,
		tasksPerS: ok.length / (wallMs / 1000),
		errors: errorsOf(results, n),
		overhead: summarize(ok.map((r) => r.overhead)),
		alive,
		healthOk,
		health,
		rss: {
			startKb: samples[0]!.workerdRssKb,
			midKb: mid.workerdRssKb,
			endKb: endRun.workerdRssKb,
			idleAfter5sKb: samples[samples.length - 1]!.workerdRssKb,
		},
		samples,
	};
}

/** Plain-route latency through wrangler's proxy vs straight to the runtime workerd (floor a, sleep 0). */
async function runHop(floor: DevServer, n: number) {
	const tree = sampleTree(floor.child.pid!, floor.port);
	const runtime = tree.find((p) => p.role === "workerd-runtime");
	if (!runtime) return { error: "no runtime workerd found" };
	let direct: string | null = null;
	for (const port of listeningPorts(runtime.pid)) {
		const t = await timedPost(`http://127.0.0.1:${port}/sleep`, '{"ms":0}', {}, 2000);
		if (t.status === 200 && (t.json as { slept_ms?: number } | null)?.slept_ms === 0) {
			direct = `http://127.0.0.1:${port}`;
			break;
		}
	}
	if (!direct) return { error: "runtime entry port not found" };
	const viaProxy: number[] = [];
	const straight: number[] = [];
	const deadline = performance.now() + 60_000;
	for (let i = 0; i < n && performance.now() < deadline; i++) {
		const a = await timedPost(`${floor.url}/sleep`, '{"ms":0}', {}, 10_000);
		if (a.status === 200) viaProxy.push(a.elapsedMs);
		const b = await timedPost(`${direct}/sleep`, '{"ms":0}', {}, 10_000);
		if (b.status === 200) straight.push(b.elapsedMs);
	}
	const p = summarize(viaProxy);
	const d = summarize(straight);
	return { viaProxy: p, direct: d, proxyHopP50: p.p50 - d.p50 };
}

// ---------------------------------------------------------------- table

interface Row {
	workload: string;
	metric: string;
	values: Partial<Record<TargetKey, number | string>>;
	target: string;
	pass: string;
}

function passOf(v: number | string | undefined, test: ((v: number) => boolean) | null): string {
	if (!test) return "—";
	if (typeof v !== "number" || Number.isNaN(v)) return "n/a";
	return test(v) ? "pass" : "FAIL";
}

/** The pass column: edgetask's, and with DISPATCH=direct measured too, both ("queue / direct"). */
function passOfEdge(values: Row["values"], test: ((v: number) => boolean) | null): string {
	const queue = passOf(values.edgetask, test);
	return values.edgetaskDirect === undefined || !test ? queue : `${queue} / ${passOf(values.edgetaskDirect, test)}`;
}

function cell(v: number | string | undefined, digits: number): string {
	if (v === undefined) return "—";
	return typeof v === "number" ? fmt(v, digits) : v;
}

function markdownTable(rows: Row[], digitsOf: (r: Row) => number): string {
	const direct = rows.some((r) => r.values.edgetaskDirect !== undefined);
	const head = `| workload | metric | edgetask |${direct ? " edgetask, direct |" : ""} floor (a) | floor (b) | design floor | contract floor | target | pass?${direct ? " (queue / direct)" : ""} |`;
	const sep = `|---|---|---:|${direct ? "---:|" : ""}---:|---:|---:|---:|---|---|`;
	const lines = rows.map((r) => {
		const d = digitsOf(r);
		return `| ${r.workload} | ${r.metric} | ${cell(r.values.edgetask, d)} |${direct ? ` ${cell(r.values.edgetaskDirect, d)} |` : ""} ${cell(r.values.floorA, d)} | ${cell(r.values.floorB, d)} | ${cell(r.values.floorDesign, d)} | ${cell(r.values.floorContract, d)} | ${r.target} | ${r.pass} |`;
	});
	return [head, sep, ...lines].join("\n");
}

// ---------------------------------------------------------------- main

async function main() {
	const started = new Date();
	const loadStart = loadavg();
	console.log(
		`edgetask bench ${opts.quick ? "(quick) " : ""}— node ${process.version}, ${cpus().length} cores, load avg ${loadStart.map((x) => x.toFixed(2)).join(" ")}`,
	);
	const stateDir = mkdtempSync(join(tmpdir(), "edgetask-bench-"));
	const servers: DevServer[] = [];
	let stopOrigin = async () => {};
	let stopping = false;
	const stopAll = async () => {
		if (stopping) return;
		stopping = true;
		await Promise.allSettled([...servers.map((s) => s.stop()), stopOrigin()]);
		try {
			rmSync(stateDir, { recursive: true, force: true });
		} catch {
			/* best effort */
		}
	};
	for (const sig of ["SIGINT", "SIGTERM"] as const) {
		process.once(sig, () => {
			console.error(`\n${sig}: stopping servers`);
			void stopAll().then(() => process.exit(130));
		});
	}
	// Whole-run watchdog, on top of each loop's own bounds.
	const watchdogMs = (opts.quick ? 10 : 30) * 60_000 + opts.soak * (opts.soakFloor ? 200 : 100);
	const watchdog = setTimeout(() => {
		console.error(`watchdog: benchmark exceeded ${watchdogMs / 60_000} min, stopping`);
		void stopAll().then(() => process.exit(3));
	}, watchdogMs);
	watchdog.unref();

	try {
		const wantEdge = opts.targets.includes("edgetask") || opts.soak > 0;
		const wantDirect = opts.targets.includes("edgetaskDirect");
		const wantFloor = opts.targets.some((t) => !EDGE_TARGETS.includes(t)) || opts.diag || (opts.soak > 0 && opts.soakFloor);
		const codeDir = opts.code ? resolve(opts.code) : root;
		const snap = snapshotProject(join(stateDir, "code"), opts.live, codeDir);
		if (wantEdge || wantDirect)
			console.log(
				`edgetask code: ${opts.live ? "working tree (--live)" : "snapshot"} of ${opts.code ? `${codeDir} @ ` : ""}${snap.commit}${snap.dirty ? " + uncommitted changes" : ""}, digest ${snap.digest}${Object.keys(opts.edgeVars).length ? `, vars ${JSON.stringify(opts.edgeVars)}` : ""}`,
			);
		// The origin workload's backend must exist before edgetask starts: its URL is in ORIGINS.
		const benchOrigin: BenchOrigin | null =
			wantEdge && opts.workloads.includes("origin") ? await startBenchOrigin(ORIGIN_DEFAULTS.limit, ORIGIN_DEFAULTS.workMs) : null;
		if (benchOrigin) stopOrigin = () => benchOrigin.stop();
		const t0 = performance.now();
		const [edge, edgeDirect, floor] = await Promise.all([
			wantEdge
				? startDevServer({
						config: snap.config,
						persistTo: join(stateDir, "edgetask"),
						vars: { API_KEYS: API_KEY, ...benchOrigin?.vars, ...opts.edgeVars },
						readyTimeoutMs: 120_000,
					})
				: Promise.resolve(null),
			// The same code, its objects starting their own tasks (no queue message).
			wantDirect
				? startDevServer({
						config: snap.config,
						persistTo: join(stateDir, "edgetask-direct"),
						vars: { API_KEYS: API_KEY, ...opts.edgeVars, DISPATCH: "direct" },
						readyTimeoutMs: 120_000,
					})
				: Promise.resolve(null),
			wantFloor ? startDevServer({ config: snap.floorConfig, persistTo: join(stateDir, "floor") }) : Promise.resolve(null),
		]);
		if (edge) servers.push(edge);
		if (edgeDirect) servers.push(edgeDirect);
		if (floor) servers.push(floor);
		console.log(`servers ready in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${servers.map((s) => s.url).join(", ")}`);

		const all: Partial<Record<TargetKey, Target>> = {};
		if (edge) all.edgetask = edgetaskTarget(edge);
		if (edgeDirect) all.edgetaskDirect = edgetaskTarget(edgeDirect, "edgetaskDirect", "edgetask, DISPATCH=direct");
		if (floor) {
			all.floorA = floorTarget(floor, "floorA", "/sleep", "floor (a) plain route");
			all.floorB = floorTarget(floor, "floorB", "/do-sleep", "floor (b) DO per request");
			all.floorDesign = floorTarget(floor, "floorDesign", "/design", "design floor (object + queue hop)");
			all.floorContract = floorTarget(floor, "floorContract", "/contract", "contract floor (design + events, health)");
			all.floorStore = floorTarget(floor, "floorStore", "/do-store", "floor (b+store) DO + 2 commits + 2 alarms");
		}
		const targets = opts.targets.map((k) => all[k]!).filter(Boolean);

		for (const t of targets) await warmup(t);
		if (opts.diag && all.floorStore) await warmup(all.floorStore);

		const results: Record<string, Partial<Record<TargetKey, unknown>>> = {
			W3: {},
			c1: {},
			W1: {},
			W2: {},
			L1: {},
			F1: {},
			I1: {},
			limited: {},
		};
		const interference: Record<string, { foreignCores: number; ownCores: number }> = {};
		const reloadWarnings: string[] = [];
		const settle = () => sleep(1000);
		const each = async (name: string, fn: (t: Target) => Promise<unknown>, describe: (r: never) => string, list = targets) => {
			for (const t of list) {
				const probe = new Interference(servers);
				const reloads0 = reloadsOf(t.server);
				const r = await fn(t);
				// With --rounds, the busiest round's figure stands.
				const load = probe.read();
				const before = interference[`${name}/${t.key}`];
				interference[`${name}/${t.key}`] = before && before.foreignCores > load.foreignCores ? before : load;
				if (reloadsOf(t.server) > reloads0) {
					reloadWarnings.push(`${name}/${t.key}`);
					console.log(`  WARNING: wrangler reloaded ${t.label} during ${name}; its requests in flight were dropped`);
				}
				(results[name] ??= {})[t.key] = r;
				console.log(
					`  ${name.padEnd(4)} ${t.label.padEnd(34)} ${describe(r as never)}  [other load ${load.foreignCores.toFixed(2)} cores]`,
				);
				await settle();
			}
		};

		/** Every round's result of c1, W1 and W2, by target (results[name] holds the median round). */
		const rounds: Record<string, Partial<Record<TargetKey, unknown[]>>> = {};
		const eachRound = async <R>(name: string, fn: (t: Target) => Promise<R>, describe: (r: never) => string, metric: (r: R) => number) => {
			for (let round = 0; round < opts.rounds; round++) {
				const order = targets.map((_, i) => targets[(i + round) % targets.length]!);
				if (opts.rounds > 1) console.log(`  round ${round + 1} of ${opts.rounds}`);
				await each(name, fn, describe, order);
				for (const t of order) ((rounds[name] ??= {})[t.key] ??= []).push(results[name]?.[t.key]);
			}
			for (const t of targets) {
				const list = (rounds[name]?.[t.key] ?? []) as R[];
				const sorted = [...list].sort((a, b) => metric(a) - metric(b));
				(results[name] ??= {})[t.key] = sorted[Math.floor((sorted.length - 1) / 2)];
			}
		};
		const s = (x: Summary) => `p50 ${fmt(x.p50)} p99 ${fmt(x.p99)} max ${fmt(x.max)} ms (n=${x.n})`;
		if (targets.length) {
			const want = (w: string) => opts.workloads.includes(w);
			if (want("W3")) console.log(`W3: 5 s task, 1 s task 100 ms later (${COUNTS.w3Rounds} round${COUNTS.w3Rounds > 1 ? "s" : ""})`);
			if (want("W3"))
				await each(
					"W3",
					(t) => runW3(t, COUNTS.w3Rounds),
					(r: Awaited<ReturnType<typeof runW3>>) =>
						`long back after ${r.rounds.map((x) => fmt(x.long.elapsed)).join(", ")} ms; short back ${r.rounds.map((x) => fmt(x.short.elapsed)).join(", ")} ms after its submit${r.errors.length ? ` ERR ${r.errors.join("; ")}` : ""}`,
				);
			if (want("c1")) console.log(`c1: sequential ${COUNTS.c1Zero} × sleep 0, ${COUNTS.c1Hundred} × sleep 100`);
			if (want("c1"))
				await eachRound(
					"c1",
					(t) => runC1(t, COUNTS.c1Zero, COUNTS.c1Hundred),
					(r: Awaited<ReturnType<typeof runC1>>) =>
						`sleep0 ${s(r.zero.overhead)}; sleep100 ${s(r.hundred.overhead)}; errors ${r.zero.errors.count + r.hundred.errors.count}`,
					(r) => r.zero.overhead.p50,
				);
			if (want("W1")) console.log(`W1: ${COUNTS.w1} concurrent tasks of 100–3000 ms`);
			if (want("W1"))
				await eachRound(
					"W1",
					(t) => runW1(t, COUNTS.w1, opts.seed),
					(r: Awaited<ReturnType<typeof runW1>>) =>
						`overhead ${s(r.overhead)}; late>${LATE_MS} ${r.late}; errors ${r.errors.count} ${r.errors.examples.join("; ")}`,
					(r) => r.late + r.overhead.p50 / 1e6,
				);
			if (want("W2")) console.log(`W2: ${COUNTS.w2} × sleep 0 at concurrency ${COUNTS.w2Conc}`);
			if (want("W2"))
				await eachRound(
					"W2",
					(t) => runW2(t, COUNTS.w2, COUNTS.w2Conc, opts.quick ? 60_000 : 300_000),
					(r: Awaited<ReturnType<typeof runW2>>) =>
						`${fmt(r.tasksPerS)} tasks/s; CPU per task ${fmt(cpuTotal(r.cpuMsPerTask), 2)} ms; overhead ${s(r.overhead)}; errors ${r.errors.count} ${r.errors.examples.join("; ")}`,
					(r) => r.tasksPerS,
				);
			if (want("L1") && all.edgetask && targets.includes(all.edgetask)) {
				const d = l1Defaults(COUNTS.l1);
				const l1Mode = opts.l1.stream ? "stream" : "hold";
				const holdMs = opts.l1.holdMs ?? d.holdMs;
				const windowMs = opts.l1.windowMs ?? d.windowMs;
				console.log(
					`L1: ${COUNTS.l1} tasks × (1 WebSocket + 1 long-poll), ` +
						(l1Mode === "hold"
							? `ends spread over ${fmt(windowMs / 1000)} s from ${fmt(holdMs / 1000)} s after the first submission`
							: "sleep 1000–3000 ms from each submission") +
						`, submissions at concurrency ${opts.l1.conc} (edgetask only)`,
				);
				const edge = all.edgetask;
				await each(
					"L1",
					(t) =>
						runL1({
							base: t.server.url,
							apiKey: API_KEY,
							n: COUNTS.l1,
							seed: opts.seed,
							submitConcurrency: opts.l1.conc,
							mode: l1Mode,
							holdMs,
							windowMs,
							submitDeadlineMs: 60_000 + COUNTS.l1 * 100,
							log: (line) => console.log(line),
						}),
					(r: L1Result) => describeL1(r).join("\n         "),
					[edge],
				);
			}
			if (want("origin") && all.edgetask && targets.includes(all.edgetask) && benchOrigin) {
				const o = { ...ORIGIN_DEFAULTS, n: COUNTS.origin };
				console.log(`origin: ${o.n} http tasks, origin takes ${o.workMs} ms a request, limit ${o.limit} (edgetask only)`);
				await each("origin", (t) => runOrigin(t.server.url, API_KEY, benchOrigin, o), describeOrigin, [all.edgetask]);
			}
		}

		if (all.edgetask && targets.includes(all.edgetask)) {
			const edge = all.edgetask;
			const want = (w: string) => opts.workloads.includes(w);
			if (want("F1")) {
				console.log(`F1: a 20 MiB file uploaded and downloaded ${COUNTS.f1} times (edgetask only)`);
				await each(
					"F1",
					(t) => runF1(t.server.url, API_KEY, COUNTS.f1, 180_000),
					(r: F1Result) =>
						`upload p50 ${fmt(r.uploadMiBps.p50)} MiB/s (min ${fmt(r.uploadMiBps.min)}), download p50 ${fmt(r.downloadMiBps.p50)} MiB/s (min ${fmt(r.downloadMiBps.min)}); n ${r.n}; errors ${r.errors.length} ${r.errors.slice(0, 3).join("; ")}`,
					[edge],
				);
			}
			if (want("I1")) {
				console.log(`I1: image.resize of a 1920×1080 JPEG to 256 px, ${COUNTS.i1} at concurrency 1 then 4 (edgetask only)`);
				await each(
					"I1",
					(t) => runI1(t.server.url, API_KEY, COUNTS.i1, 180_000),
					(r: I1Result) =>
						`${fmt(r.c1.perS)} resizes/s at c1 (p50 ${fmt(r.c1.ms.p50)} ms), ${fmt(r.c4.perS)} at c4 (p50 ${fmt(r.c4.ms.p50)} ms); JPEG ${r.image.bytes} bytes; errors ${r.errors.length} ${r.errors.slice(0, 3).join("; ")}`,
					[edge],
				);
			}
		}

		if (opts.workloads.includes("limited") && all.edgetask && targets.includes(all.edgetask)) {
			const { limit, n, ms } = LIMITED;
			console.log(
				`limited: a second edgetask with CONCURRENCY {"sleep": ${limit}, "echo": 1000000}: ${n} × sleep ${ms} at once; ${COUNTS.lane} no-op tasks at conc 100 through a lane (echo) and without (flaky, 0 failures, 0 ms), alternating twice`,
			);
			const limitedServer = await startDevServer({
				config: snap.config,
				persistTo: join(stateDir, "edgetask-limited"),
				vars: {
					API_KEYS: API_KEY,
					...opts.edgeVars,
					CONCURRENCY: JSON.stringify({ sleep: limit, echo: 1_000_000 }),
					// flaky with 0 failures and 0 ms is the unlimited no-op to compare with.
					ENABLE_FAULT_PROCESSORS: "true",
				},
				readyTimeoutMs: 120_000,
			});
			servers.push(limitedServer);
			const auth = { authorization: `Bearer ${API_KEY}` };
			await runBurst(limitedServer.url, auth, COUNTS.warmup, 10, NO_OP.lane);
			await runBurst(limitedServer.url, auth, COUNTS.warmup, 10, NO_OP.free);
			const limitedRuns: LimitedResult[] = [];
			for (let round = 0; round < opts.limitedRounds; round++) {
				if (round > 0) await settle();
				const limited = await runLimited(limitedServer.url, auth, limit, n, ms);
				limitedRuns.push(limited);
				console.log(
					`  limited: wall ${fmt(limited.wallMs)} ms (ideal ${fmt(limited.idealMs)}), at most ${limited.maxRunning} running, start delay after a slot freed ${s(limited.startDelay)}, over 200 ms: ${limited.over200}; first start at ${fmt(limited.firstStartMs)} ms, last end at ${fmt(limited.lastFinishMs)} ms, run_ms ${s(limited.runMs)}; hand-overs' share of the wall ${fmt(limited.handOverShareMs)} ms; the runtime's slowest trivial request meanwhile ${fmt(limited.runtime.maxMs)} ms (${limited.runtime.stalls} of ${limited.runtime.probes} over 500 ms); errors ${limited.errors.length} ${limited.errors.slice(0, 3).join("; ")}`,
				);
			}
			await settle();
			const free: BurstResult[] = [];
			const lane: BurstResult[] = [];
			for (let round = 0; round < 2; round++) {
				free.push(await runBurst(limitedServer.url, auth, COUNTS.lane, 100, NO_OP.free));
				await settle();
				lane.push(await runBurst(limitedServer.url, auth, COUNTS.lane, 100, NO_OP.lane));
				await settle();
			}
			const list = (rs: BurstResult[]) => rs.map((r) => `${fmt(r.tasksPerS)}${r.errors ? ` (${r.errors} errors)` : ""}`).join(", ");
			console.log(
				`  lane: ${COUNTS.lane} no-op tasks: unlimited ${list(free)} tasks/s; through a lane ${list(lane)} tasks/s = ${list(lane.map((r) => ({ ...r, tasksPerS: 2 * r.tasksPerS })))} lane calls/s`,
			);
			results.limited = { edgetask: { runs: limitedRuns, free, lane } };
		}

		// ---- W2 before/after: another checkout's edgetask beside this one, alternating, same run
		if (opts.before && all.edgetask && targets.includes(all.edgetask) && opts.workloads.includes("W2")) {
			const beforeDir = resolve(opts.before);
			const beforeSnap = snapshotProject(join(stateDir, "code-before"), false, beforeDir);
			console.log(
				`W2 before/after: ${COUNTS.w2} × sleep 0 at concurrency ${COUNTS.w2Conc}, alternating ${opts.beforeRounds} times; before = ${beforeDir} @ ${beforeSnap.commit}${beforeSnap.dirty ? " + uncommitted changes" : ""} (digest ${beforeSnap.digest}), after = this run's edgetask`,
			);
			const beforeServer = await startDevServer({
				config: beforeSnap.config,
				persistTo: join(stateDir, "edgetask-before"),
				vars: { API_KEYS: API_KEY, ...opts.edgeVars },
				readyTimeoutMs: 120_000,
			});
			servers.push(beforeServer);
			const beforeTarget = edgetaskTarget(beforeServer, "edgetaskBefore", `edgetask before (${beforeSnap.commit})`);
			await warmup(beforeTarget);
			// As warm as this run's edgetask, which has run W2 already: one burst not counted.
			await runW2(beforeTarget, Math.min(COUNTS.w2, 500), COUNTS.w2Conc, 120_000);
			await settle();
			const rounds: Record<"before" | "after", Awaited<ReturnType<typeof runW2>>[]> = { before: [], after: [] };
			for (let round = 0; round < opts.beforeRounds; round++) {
				for (const [side, t] of [
					["before", beforeTarget],
					["after", all.edgetask],
				] as const) {
					const r = await runW2(t, COUNTS.w2, COUNTS.w2Conc, opts.quick ? 60_000 : 300_000);
					rounds[side].push(r);
					console.log(
						`  W2 ${side.padEnd(6)} ${fmt(r.tasksPerS)} tasks/s; overhead ${s(r.overhead)}; runtime CPU ${fmt(r.cpuMsPerTask["workerd-runtime"], 2)} ms per task; errors ${r.errors.count}`,
					);
					await settle();
				}
			}
			results.W2BeforeAfter = { edgetask: { beforeDir, beforeCommit: beforeSnap.commit, ...rounds } };
		}

		// ---- diagnostics
		const diag: Record<string, unknown> = {};
		if (opts.diag && floor && all.floorStore) {
			console.log("diagnostics: floor (b+store), proxy hop");
			await each(
				"c1",
				(t) => runC1(t, COUNTS.c1Zero, COUNTS.c1Hundred),
				(r: Awaited<ReturnType<typeof runC1>>) => `sleep0 ${s(r.zero.overhead)}; sleep100 ${s(r.hundred.overhead)}`,
				[all.floorStore],
			);
			await each(
				"W1",
				(t) => runW1(t, COUNTS.w1, opts.seed),
				(r: Awaited<ReturnType<typeof runW1>>) => `overhead ${s(r.overhead)}; late>${LATE_MS} ${r.late}; errors ${r.errors.count}`,
				[all.floorStore],
			);
			await each(
				"W2",
				(t) => runW2(t, COUNTS.diagW2, COUNTS.w2Conc, 120_000),
				(r: Awaited<ReturnType<typeof runW2>>) =>
					`${fmt(r.tasksPerS)} tasks/s (n=${COUNTS.diagW2}); overhead ${s(r.overhead)}; errors ${r.errors.count}`,
				[all.floorStore],
			);
			diag.hop = await runHop(floor, COUNTS.hop);
			const h = diag.hop as Awaited<ReturnType<typeof runHop>>;
			if ("error" in h) console.log(`  hop: ${h.error}`);
			else
				console.log(
					`  hop: floor (a) sleep 0 via wrangler proxy p50 ${fmt(h.viaProxy.p50, 2)} ms, direct to runtime p50 ${fmt(h.direct.p50, 2)} ms → proxy hop ≈ ${fmt(h.proxyHopP50, 2)} ms`,
				);
		}

		type SoakR = Awaited<ReturnType<typeof runSoak>>;
		const soaks: Partial<Record<TargetKey, SoakR>> = {};
		const soakTargets =
			opts.soak > 0 ? [all.edgetask, opts.soakFloor ? all.floorB : undefined].filter((t): t is Target => t !== undefined) : [];
		for (const t of soakTargets) {
			console.log(`soak: ${opts.soak} × sleep 0 at concurrency ${SOAK_CONC} (${t.label})`);
			if (!targets.includes(t)) await warmup(t);
			const probe = new Interference(servers);
			const reloads0 = reloadsOf(t.server);
			const r = await runSoak(t, opts.soak);
			soaks[t.key] = r;
			interference[`soak/${t.key}`] = probe.read();
			if (reloadsOf(t.server) > reloads0) reloadWarnings.push(`soak/${t.key}`);
			console.log(
				`  soak ${t.label}: ${r.n - r.errors.count}/${r.n} ok, ${fmt(r.tasksPerS)} tasks/s, overhead ${s(r.overhead)}, alive ${r.alive}, /health ${r.healthOk}, workerd RSS MB start ${fmt(r.rss.startKb / 1024)} mid ${fmt(r.rss.midKb / 1024)} end ${fmt(r.rss.endKb / 1024)} (+5 s idle ${fmt(r.rss.idleAfter5sKb / 1024)})`,
			);
			await settle();
		}

		// ---- the table
		type L1R = L1Result;
		type W3R = Awaited<ReturnType<typeof runW3>>;
		type W1R = Awaited<ReturnType<typeof runW1>>;
		type W2R = Awaited<ReturnType<typeof runW2>>;
		type C1R = Awaited<ReturnType<typeof runC1>>;
		const pick = <R>(name: string, f: (r: R) => number | string): Partial<Record<TargetKey, number | string>> => {
			const out: Partial<Record<TargetKey, number | string>> = {};
			for (const k of MAIN_TARGETS) {
				const r = results[name]?.[k];
				if (r !== undefined) out[k] = f(r as R);
			}
			return out;
		};
		const rows: Row[] = [];
		const add = (workload: string, metric: string, values: Row["values"], target: string, test: ((v: number) => boolean) | null) => {
			if (Object.keys(values).length > 0) rows.push({ workload, metric, values, target, pass: passOfEdge(values, test) });
		};
		const w1Name = `W1 (${COUNTS.w1} × 100–3000 ms, concurrent)`;
		const w2Name = `W2 (${COUNTS.w2} × sleep 0, conc ${COUNTS.w2Conc})`;
		const w3Name = `W3 (5 s, then 1 s +100 ms; ${COUNTS.w3Rounds} round${COUNTS.w3Rounds > 1 ? "s" : ""})`;
		const w3v = (x: number) => (Number.isFinite(x) ? x : "error");
		if (COUNTS.w3Rounds > 1)
			add(
				w3Name,
				"long task back after its submit, ms (median)",
				pick<W3R>("W3", (r) => w3v(r.long.p50)),
				"—",
				null,
			);
		add(
			w3Name,
			`long task back after its submit, ms${COUNTS.w3Rounds > 1 ? " (worst)" : ""}`,
			pick<W3R>("W3", (r) => w3v(r.long.max)),
			"—",
			null,
		);
		if (COUNTS.w3Rounds > 1)
			add(
				w3Name,
				"short task back after its submit, ms (median)",
				pick<W3R>("W3", (r) => w3v(r.short.p50)),
				"≤ 1050",
				(v) => v <= 1050,
			);
		add(
			w3Name,
			`short task back after its submit, ms${COUNTS.w3Rounds > 1 ? " (worst)" : ""}`,
			pick<W3R>("W3", (r) => w3v(r.short.max)),
			"≤ 1050",
			(v) => v <= 1050,
		);
		add(
			w1Name,
			"overhead p50, ms",
			pick<W1R>("W1", (r) => r.overhead.p50),
			"—",
			null,
		);
		add(
			w1Name,
			"overhead p99, ms",
			pick<W1R>("W1", (r) => r.overhead.p99),
			"—",
			null,
		);
		add(
			w1Name,
			`returned > ${LATE_MS} ms late or failed (count)`,
			pick<W1R>("W1", (r) => r.late),
			"0",
			(v) => v === 0,
		);
		add(
			w2Name,
			"throughput, tasks/s",
			pick<W2R>("W2", (r) => r.tasksPerS),
			"—",
			null,
		);
		add(
			w2Name,
			"overhead p50, ms",
			pick<W2R>("W2", (r) => r.overhead.p50),
			"—",
			null,
		);
		add(
			w2Name,
			"overhead p99, ms",
			pick<W2R>("W2", (r) => r.overhead.p99),
			"—",
			null,
		);
		add(
			w2Name,
			"errors",
			pick<W2R>("W2", (r) => r.errors.count),
			"0",
			(v) => v === 0,
		);
		add(
			`c1 (${COUNTS.c1Zero} × sleep 0, sequential)`,
			"overhead p50, ms",
			pick<C1R>("c1", (r) => r.zero.overhead.p50),
			"≤ 10",
			(v) => v <= 10,
		);
		add(
			`c1 (${COUNTS.c1Zero} × sleep 0, sequential)`,
			"overhead p99, ms",
			pick<C1R>("c1", (r) => r.zero.overhead.p99),
			"≤ 10",
			(v) => v <= 10,
		);
		add(
			`c1 (${COUNTS.c1Hundred} × sleep 100, sequential)`,
			"overhead p50, ms",
			pick<C1R>("c1", (r) => r.hundred.overhead.p50),
			"≤ 10",
			(v) => v <= 10,
		);
		add(
			`c1 (${COUNTS.c1Hundred} × sleep 100, sequential)`,
			"overhead p99, ms",
			pick<C1R>("c1", (r) => r.hundred.overhead.p99),
			"≤ 10",
			(v) => v <= 10,
		);
		add(
			"c1 (all)",
			"errors",
			pick<C1R>("c1", (r) => r.zero.errors.count + r.hundred.errors.count),
			"0",
			(v) => v === 0,
		);
		const originR = results.origin?.edgetask as OriginResult | undefined;
		if (originR) {
			const name = `origin (${originR.n} http tasks, origin ${originR.workMs} ms/request, limit ${originR.limit})`;
			add(name, `throughput, tasks/s (the origin's ceiling: ${fmt(originR.ceilingPerS, 0)})`, { edgetask: originR.tasksPerS }, "—", null);
			add(name, "throughput, % of the ceiling", { edgetask: (100 * originR.tasksPerS) / originR.ceilingPerS }, "—", null);
			add(
				name,
				"requests in flight at the origin, max (count)",
				{ edgetask: originR.originMaxInFlight },
				`≤ ${originR.limit}`,
				(v) => v <= originR.limit,
			);
			add(name, "a freed slot's next request at the origin after, p50 ms", { edgetask: originR.slotIdle.p50 }, "—", null);
			add(name, "a freed slot's next request at the origin after, p99 ms", { edgetask: originR.slotIdle.p99 }, "—", null);
			add(name, "wait for a slot (created → started), p50 ms", { edgetask: originR.wait.p50 }, "—", null);
			add(name, "wait for a slot (created → started), p99 ms", { edgetask: originR.wait.p99 }, "—", null);
			add(name, "hand-overs over 500 ms (count)", { edgetask: originR.slowHandOvers.length }, "—", null);
			add(
				name,
				"…of them while the runtime itself answered nothing (count)",
				{ edgetask: originR.slowHandOvers.filter((h) => h.runtimeStalled).length },
				"—",
				null,
			);
			add(name, "the runtime's slowest trivial request meanwhile, ms", { edgetask: originR.runtime.maxMs }, "—", null);
			add(name, "errors", { edgetask: originR.n - originR.ok }, "0", (v) => v === 0);
		}
		// The issue's targets, against the design's own floor measured in this same run.
		// The contract floor's own figure says whether any build that keeps edgetask's rules could pass.
		// With --rounds, each round's pair is compared (both measured minutes apart at most), then the median taken.
		const vsDesign = <R>(name: string, f: (e: R, d: R) => number): Row["values"] => {
			const d = (rounds[name]?.floorDesign ?? []) as R[];
			if (d.length === 0) return {};
			const out: Row["values"] = {};
			for (const k of ["edgetask", "edgetaskDirect", "floorContract"] as const) {
				const e = (rounds[name]?.[k] ?? []) as R[];
				if (e.length === 0) continue;
				const pairs = e.map((r, i) => f(r, d[i]!)).sort((a, b) => a - b);
				out[k] = pairs[Math.floor((pairs.length - 1) / 2)]!;
			}
			return out;
		};
		add(
			"vs design floor, same run",
			"W2 throughput ÷ design floor's",
			vsDesign<W2R>("W2", (e, d) => e.tasksPerS / d.tasksPerS),
			"≥ 0.95",
			(v) => v >= 0.95,
		);
		// What throughput on a saturated runtime comes down to, and what other load on the machine
		// hardly moves: the CPU the server's processes spend per task.
		add(
			"vs design floor, same run",
			"W2 CPU per task (all server processes) ÷ design floor's",
			vsDesign<W2R>("W2", (e, d) => cpuTotal(e.cpuMsPerTask) / cpuTotal(d.cpuMsPerTask)),
			"—",
			null,
		);
		add(
			"vs design floor, same run",
			"c1 sleep 0 overhead p50 − design floor's, ms",
			vsDesign<C1R>("c1", (e, d) => e.zero.overhead.p50 - d.zero.overhead.p50),
			"≤ 1",
			(v) => v <= 1,
		);
		add(
			"vs design floor, same run",
			`W1 returned > ${LATE_MS} ms late − design floor's (count)`,
			vsDesign<W1R>("W1", (e, d) => e.late - d.late),
			"≤ 0",
			(v) => v <= 0,
		);
		const l1r = results.L1?.edgetask as L1R | undefined;
		if (l1r) {
			const l1Name = `L1 (${l1r.n} tasks × 1 WS + 1 long-poll${l1r.mode === "stream" ? ", 1–3 s each" : ""})`;
			add(
				l1Name,
				"connections held at once, peak (count)",
				pick<L1R>("L1", (r) => r.peakHeld.total),
				l1r.mode === "hold" ? `${2 * l1r.n}` : "—",
				l1r.mode === "hold" ? (v) => v === 2 * l1r.n : null,
			);
			add(
				l1Name,
				"WS: result stored → terminal frame, p50 ms",
				pick<L1R>("L1", (r) => r.ws.delay.p50),
				"—",
				null,
			);
			add(
				l1Name,
				"WS: result stored → terminal frame, p99 ms",
				pick<L1R>("L1", (r) => r.ws.delay.p99),
				"≤ 50",
				(v) => v <= 50,
			);
			add(
				l1Name,
				"WS: result stored → terminal frame, max ms",
				pick<L1R>("L1", (r) => r.ws.delay.max),
				"—",
				null,
			);
			add(
				l1Name,
				"long-poll: result stored → answer, p50 ms",
				pick<L1R>("L1", (r) => r.lp.delay.p50),
				"—",
				null,
			);
			// The ≤ 50 ms target is for events (WebSocket frames); a long-poll must be released within 1 s.
			add(
				l1Name,
				"long-poll: result stored → answer, p99 ms",
				pick<L1R>("L1", (r) => r.lp.delay.p99),
				"—",
				null,
			);
			add(
				l1Name,
				"long-poll: result stored → answer, max ms",
				pick<L1R>("L1", (r) => r.lp.delay.max),
				"≤ 1000",
				(v) => v <= 1000,
			);
			add(
				l1Name,
				"released > 1 s after the end or never, WS + long-poll (count)",
				pick<L1R>("L1", (r) => r.releasedLateOrNever),
				"0",
				(v) => v === 0,
			);
			add(
				l1Name,
				"WS: result stored → close frame, max ms",
				pick<L1R>("L1", (r) => r.ws.closeFrameDelay.max),
				"≤ 1000",
				(v) => v <= 1000,
			);
			add(
				l1Name,
				"WS: result stored → close event (TCP closed), p50 ms",
				pick<L1R>("L1", (r) => r.ws.closeDelay.p50),
				"—",
				null,
			);
			add(
				l1Name,
				"sockets not closed with 1000 by the server (count)",
				pick<L1R>("L1", (r) => r.ws.notClosed1000),
				"0",
				(v) => v === 0,
			);
			add(
				l1Name,
				"subscribed only after the task ended, WS + long-poll (count)",
				pick<L1R>("L1", (r) => r.ws.lateSubscriptions + r.lp.lateSubscriptions),
				"0",
				(v) => v === 0,
			);
		}
		if (results.F1?.edgetask) {
			const f1Name = `F1 (20 MiB file, ${(results.F1.edgetask as F1Result).n} round trips)`;
			add(
				f1Name,
				"upload MiB/s, p50 / min",
				pick<F1Result>("F1", (r) => `${fmt(r.uploadMiBps.p50)} / ${fmt(r.uploadMiBps.min)}`),
				"—",
				null,
			);
			add(
				f1Name,
				"download MiB/s, p50 / min",
				pick<F1Result>("F1", (r) => `${fmt(r.downloadMiBps.p50)} / ${fmt(r.downloadMiBps.min)}`),
				"—",
				null,
			);
			add(
				f1Name,
				"errors (sha256 mismatches included)",
				pick<F1Result>("F1", (r) => r.errors.length),
				"0",
				(v) => v === 0,
			);
		}
		if (results.I1?.edgetask) {
			const i1Name = "I1 (image.resize 1920×1080 JPEG → 256 px)";
			add(
				i1Name,
				"resizes/s at concurrency 1 (p50 ms)",
				pick<I1Result>("I1", (r) => `${fmt(r.c1.perS)} (${fmt(r.c1.ms.p50)})`),
				"—",
				null,
			);
			add(
				i1Name,
				"resizes/s at concurrency 4 (p50 ms)",
				pick<I1Result>("I1", (r) => `${fmt(r.c4.perS)} (${fmt(r.c4.ms.p50)})`),
				"—",
				null,
			);
			add(
				i1Name,
				"errors",
				pick<I1Result>("I1", (r) => r.errors.length),
				"0",
				(v) => v === 0,
			);
		}
		const anySoak = soaks.edgetask ?? soaks.floorB;
		if (anySoak) {
			const sw = `soak (${anySoak.n} × sleep 0, conc ${SOAK_CONC})`;
			const sv = (f: (r: SoakR) => number) => {
				const out: Row["values"] = {};
				for (const k of ["edgetask", "floorB"] as const) if (soaks[k]) out[k] = f(soaks[k]!);
				return out;
			};
			add(
				sw,
				"completed ok",
				sv((r) => r.n - r.errors.count),
				`${anySoak.n}`,
				(v) => v === anySoak.n,
			);
			add(
				sw,
				"server alive and /health ok after",
				sv((r) => (r.alive && r.healthOk ? 1 : 0)),
				"1",
				(v) => v === 1,
			);
			add(
				sw,
				"throughput, tasks/s",
				sv((r) => r.tasksPerS),
				"—",
				null,
			);
			add(
				sw,
				"overhead p50, ms",
				sv((r) => r.overhead.p50),
				"—",
				null,
			);
			add(
				sw,
				"overhead p99, ms",
				sv((r) => r.overhead.p99),
				"—",
				null,
			);
			add(
				sw,
				"workerd RSS start, MB",
				sv((r) => r.rss.startKb / 1024),
				"—",
				null,
			);
			add(
				sw,
				"workerd RSS middle, MB",
				sv((r) => r.rss.midKb / 1024),
				"—",
				null,
			);
			add(
				sw,
				"workerd RSS end, MB",
				sv((r) => r.rss.endKb / 1024),
				"—",
				null,
			);
			add(
				sw,
				"workerd RSS 5 s after, MB",
				sv((r) => r.rss.idleAfter5sKb / 1024),
				"—",
				null,
			);
		}
		const ba = results.W2BeforeAfter?.edgetask as { beforeCommit: string; before: W2R[]; after: W2R[] } | undefined;
		if (ba) {
			// Medians: one round starved by the machine's other load must not decide it.
			const median = (xs: number[]) => {
				const sorted = [...xs].sort((a, b) => a - b);
				const mid = Math.floor(sorted.length / 2);
				return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
			};
			const rate = (rs: W2R[]) => median(rs.map((r) => r.tasksPerS));
			const cpu = (rs: W2R[]) => median(rs.map((r) => r.cpuMsPerTask["workerd-runtime"] ?? Number.NaN));
			const each = (rs: W2R[]) => rs.map((r) => fmt(r.tasksPerS)).join(", ");
			const name = `W2 before (${ba.beforeCommit}) / after, same run, alternating`;
			add(name, "tasks/s before, each round", { edgetask: each(ba.before) }, "—", null);
			add(name, "tasks/s after, each round", { edgetask: each(ba.after) }, "—", null);
			// Each round's pair ran back to back under the same load: their ratio is the fair comparison.
			const ratios = ba.after.map((r, i) => r.tasksPerS / (ba.before[i]?.tasksPerS ?? Number.NaN));
			add(name, "tasks/s after ÷ before, each round", { edgetask: ratios.map((x) => fmt(x, 2)).join(", ") }, "—", null);
			add(name, "tasks/s after ÷ before, median of the rounds", { edgetask: median(ratios) }, "not slower (≥ 0.95)", (v) => v >= 0.95);
			add(name, "tasks/s before / after, medians", { edgetask: `${fmt(rate(ba.before))} / ${fmt(rate(ba.after))}` }, "—", null);
			add(
				name,
				"runtime CPU per task before / after, ms (medians)",
				{ edgetask: `${fmt(cpu(ba.before), 2)} / ${fmt(cpu(ba.after), 2)}` },
				"—",
				null,
			);
			add(name, "errors", { edgetask: [...ba.before, ...ba.after].reduce((a, r) => a + r.errors.count, 0) }, "0", (v) => v === 0);
		}
		const digits = (r: Row) => (/÷/.test(r.metric) ? 3 : /count|errors|ok|alive/.test(r.metric) ? 0 : 1);

		const lim = results.limited?.edgetask as { runs: LimitedResult[]; free: BurstResult[]; lane: BurstResult[] } | undefined;
		for (const [k, limited] of (lim?.runs ?? []).entries()) {
			const ln = `limited (limit ${LIMITED.limit}, ${LIMITED.n} × ${LIMITED.ms} ms)${lim && lim.runs.length > 1 ? `, run ${k + 1}` : ""}`;
			add(ln, "wall time, ms", { edgetask: limited.wallMs }, "≤ 5500", (v) => v <= 5500);
			add(ln, "most running at once", { edgetask: limited.maxRunning }, `${LIMITED.limit}`, (v) => v === LIMITED.limit);
			add(ln, "start delay after a slot freed p50, ms", { edgetask: limited.startDelay.p50 }, "—", null);
			add(ln, "start delay after a slot freed p99, ms", { edgetask: limited.startDelay.p99 }, "—", null);
			add(ln, "start delay after a slot freed max, ms", { edgetask: limited.startDelay.max }, "≤ 200", (v) => v <= 200);
			// Where the wall time goes: the first start is the submissions and the queue hop, run_ms the
			// tasks' own attempts; the hand-overs' share is all the limiter adds to them.
			add(ln, "first start after the first submit, ms", { edgetask: limited.firstStartMs }, "—", null);
			add(ln, "run_ms p50 (500 ms sleep + the attempt's own cost)", { edgetask: limited.runMs.p50 }, "—", null);
			add(ln, "hand-overs' share of the wall (Σ start delays / limit), ms", { edgetask: limited.handOverShareMs }, "—", null);
			add(ln, "the runtime's slowest trivial request meanwhile, ms", { edgetask: limited.runtime.maxMs }, "—", null);
			add(ln, "errors", { edgetask: limited.errors.length }, "0", (v) => v === 0);
		}
		if (lim) {
			const best = (rs: BurstResult[]) => Math.max(...rs.map((r) => r.tasksPerS));
			const lw = `lane (${COUNTS.lane} no-op tasks, conc 100, best of 2)`;
			add(lw, "unlimited type, tasks/s", { edgetask: best(lim.free) }, "—", null);
			add(lw, "through a lane (limit never reached), tasks/s", { edgetask: best(lim.lane) }, "—", null);
			add(
				lw,
				"lane calls/s (2 a task: the runtime's task rate bounds it, not the lane; see npm run bench:lane)",
				{ edgetask: 2 * best(lim.lane) },
				"—",
				null,
			);
			add(lw, "errors", { edgetask: [...lim.free, ...lim.lane].reduce((a, r) => a + r.errors, 0) }, "0", (v) => v === 0);
		}
		const table = markdownTable(rows, digits);
		const foreignMax = Math.max(0, ...Object.values(interference).map((x) => x.foreignCores));
		const loadEnd = loadavg();

		// ---- diagnostics tables
		const diagLines: string[] = [];
		const eb = (name: string, r: { breakdown: ReturnType<typeof breakdownSummary> } | undefined) => {
			const b = r?.breakdown;
			if (!b) return;
			diagLines.push(
				`| ${name} | ${b.n} | ${fmt(b.ingress.p50)} / ${fmt(b.ingress.p99)} | ${fmt(b.queue.p50)} / ${fmt(b.queue.p99)} | ${fmt(b.runExcess.p50)} / ${fmt(b.runExcess.p99)} | ${fmt(b.egress.p50)} / ${fmt(b.egress.p99)} |`,
			);
		};
		for (const k of EDGE_TARGETS) {
			if (!results.c1?.[k] && !results.W1?.[k] && !results.W2?.[k]) continue;
			diagLines.push(
				`${all[k]?.label ?? k} overhead by stage, ms, p50 / p99 (from the task's own created/started/finished stamps; workerd ms clock):`,
				"",
				"| workload | n | ingress: send → created | queue: created → started | run − ms | egress: finished → client |",
				"|---|---:|---:|---:|---:|---:|",
			);
			const c1e = results.c1?.[k] as C1R | undefined;
			eb("c1 sleep 0", c1e?.zero);
			eb("c1 sleep 100", c1e?.hundred);
			eb("W1", results.W1?.[k] as W1R | undefined);
			eb("W2", results.W2?.[k] as W2R | undefined);
			diagLines.push("");
		}
		const cpuRows: string[] = [];
		for (const k of [...MAIN_TARGETS, "floorStore"] as TargetKey[]) {
			const r = results.W2?.[k] as W2R | undefined;
			if (!r) continue;
			const c = r.cpuMsPerTask;
			cpuRows.push(
				`| ${all[k]!.label} | ${r.n} | ${fmt(c["workerd-runtime"], 2)} | ${fmt(c["workerd-proxy"], 2)} | ${fmt(c.wrangler, 2)} | ${fmt(r.tasksPerS)} |`,
			);
		}
		if (cpuRows.length) {
			diagLines.push(
				"W2 CPU per task, ms (utime+stime of the server's processes ÷ tasks ok; 10 ms tick resolution):",
				"",
				"| target | n | workerd runtime | workerd proxy | wrangler (node) | tasks/s |",
				"|---|---:|---:|---:|---:|---:|",
				...cpuRows,
				"",
			);
		}
		const fs = results.c1?.floorStore as C1R | undefined;
		if (fs) {
			diagLines.push(
				`floor (b+store), a fresh DO per request that stores the task and sets an alarm before the sleep and again after it: c1 sleep 0 overhead p50 ${fmt(fs.zero.overhead.p50)} / p99 ${fmt(fs.zero.overhead.p99)} ms; sleep 100 p50 ${fmt(fs.hundred.overhead.p50)} / p99 ${fmt(fs.hundred.overhead.p99)} ms.`,
			);
		}
		const hop = diag.hop as Awaited<ReturnType<typeof runHop>> | undefined;
		if (hop && !("error" in hop)) {
			diagLines.push(
				`Per hop, idle, sequential (floor a, sleep 0, n=${hop.viaProxy.n}): via wrangler's proxy p50 ${fmt(hop.viaProxy.p50, 2)} ms (p99 ${fmt(hop.viaProxy.p99, 2)}), straight to the runtime workerd p50 ${fmt(hop.direct.p50, 2)} ms (p99 ${fmt(hop.direct.p99, 2)}): proxy hop ≈ ${fmt(hop.proxyHopP50, 2)} ms.`,
			);
		}
		diagLines.push(
			`Other load on the machine during the runs (cores busy outside this benchmark): max ${foreignMax.toFixed(2)} of ${cpus().length}; load avg start ${loadStart.map((x) => x.toFixed(2)).join(" ")}, end ${loadEnd.map((x) => x.toFixed(2)).join(" ")}.`,
		);
		const perRun = ["W3", "c1", "W1", "W2", "L1", "F1", "I1", "soak"]
			.filter((w) => MAIN_TARGETS.some((k) => interference[`${w}/${k}`]))
			.map(
				(w) =>
					`${w} ${MAIN_TARGETS.map((k) => (interference[`${w}/${k}`] ? interference[`${w}/${k}`]!.foreignCores.toFixed(2) : "—")).join(" / ")}`,
			);
		if (perRun.length)
			diagLines.push(`Other load per run (with --rounds, the busiest round), cores (${MAIN_TARGETS.join(" / ")}): ${perRun.join("; ")}.`);
		diagLines.push("Percentiles are nearest-rank (with n ≤ 100, p99 is the maximum). Overhead = client elapsed − the task's own sleep.");
		if (l1r) {
			diagLines.push(
				`L1: delay = client Date.now() as the terminal WebSocket frame / the whole long-poll body arrived − the task's finished_at (workerd's ms clock, set as the object commits the result; same machine). Subscriptions that began after their task ended are left out of the percentiles and counted in their own row. ${l1r.mode === "hold" ? `Each task's ms was chosen at submission so that ends fall in a ${fmt(l1r.windowMs / 1000)} s window opening ${fmt(l1r.holdMs / 1000)} s after the first submission.` : "Each task slept 1000–3000 ms (seeded) from its submission."} Client event-loop delay during L1: p99 ${fmt(l1r.clientLoopDelayMs.p99)} ms, max ${fmt(l1r.clientLoopDelayMs.max)} ms.`,
			);
		}

		if (wantEdge || wantDirect)
			diagLines.push(
				`edgetask code: ${opts.live ? "working tree" : "snapshot"} of ${opts.code ? `${codeDir} @ ` : ""}${snap.commit}${snap.dirty ? " + uncommitted changes" : ""}, digest ${snap.digest}${Object.keys(opts.edgeVars).length ? `, vars ${JSON.stringify(opts.edgeVars)}` : ""}.`,
			);
		if (reloadWarnings.length)
			diagLines.push(`WARNING: wrangler reloaded a worker during ${reloadWarnings.join(", ")}: those numbers include dropped requests.`);
		console.log(`\n## edgetask benchmark ${opts.quick ? "(--quick) " : ""}— ${started.toISOString()}\n`);
		console.log(table);
		console.log("");
		console.log(diagLines.join("\n"));

		if (opts.json) {
			writeFileSync(
				opts.json,
				JSON.stringify(
					{
						startedAt: started.toISOString(),
						finishedAt: new Date().toISOString(),
						argv: process.argv.slice(2),
						options: opts,
						counts: COUNTS,
						environment: { node: process.version, cores: cpus().length, loadStart, loadEnd, interference, reloadWarnings },
						code: wantEdge || wantDirect ? snap : null,
						table: rows,
						results,
						rounds,
						diagnostics: diag,
						soak: soaks,
					},
					null,
					2,
				),
			);
			console.log(`\nresults written to ${opts.json}`);
		}
		const failed = servers.filter((s) => s.child.exitCode !== null);
		if (failed.length) console.error(`server(s) exited during the run:\n${failed.map((s) => s.output().slice(-2000)).join("\n")}`);
	} finally {
		clearTimeout(watchdog);
		await stopAll();
	}
}

main().then(
	() => process.exit(0),
	(e: unknown) => {
		console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
		process.exit(1);
	},
);
