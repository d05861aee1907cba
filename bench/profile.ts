/**
 * Where the runtime's time goes under load: `node bench/profile.ts [-- --tasks N --conc C] [--var NAME:VALUE …]`
 * (`--var DISPATCH:direct` profiles the direct dispatch; any `[vars]` override, repeatable), or
 * `--floor contract|design` to profile a floor of bench/floor/worker.ts the same way, for comparison.
 *
 * Starts `wrangler dev` on this checkout (fresh state in a temp dir; do not edit src/ while it
 * runs: wrangler would reload), attaches to its DevTools inspector, samples the worker's V8 CPU
 * profile while N no-op tasks run at concurrency C, and prints the functions with the most self
 * time, then the same by bundle line. Samples inside a native call (a Durable Object stub call,
 * a SQLite statement) count to the JavaScript function that made it.
 * Plain Node 24 (type stripping): erasable TypeScript only.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDevServer } from "../scripts/devServer.ts";
import { runPool } from "./lib.ts";

interface CallFrame {
	functionName: string;
	url: string;
	lineNumber: number;
}
interface ProfileNode {
	id: number;
	callFrame: CallFrame;
	children?: number[];
}
interface Profile {
	nodes: ProfileNode[];
	samples: number[];
}

function option(name: string, fallback: number): number {
	const i = process.argv.indexOf(name);
	const v = i >= 0 ? Number(process.argv[i + 1]) : Number.NaN;
	return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

/** A minimal Chrome DevTools protocol client: numbered calls, answers matched by id. */
async function inspector(port: number) {
	// The inspector proxy wants an Origin on loopback; Node's WebSocket (undici) takes `{ headers }`.
	const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { origin: "http://127.0.0.1" } } as unknown as string[]);
	const answers = new Map<number, (result: unknown) => void>();
	let next = 0;
	ws.addEventListener("message", (e: MessageEvent<string>) => {
		const m = JSON.parse(e.data) as { id?: number; result?: unknown };
		if (m.id !== undefined) answers.get(m.id)?.(m.result);
	});
	await new Promise<void>((resolve, reject) => {
		ws.addEventListener("open", () => resolve());
		ws.addEventListener("error", () => reject(new Error(`cannot attach to the inspector on port ${port}`)));
	});
	return {
		call<T>(method: string, params: object = {}): Promise<T> {
			const id = ++next;
			ws.send(JSON.stringify({ id, method, params }));
			return new Promise<T>((resolve) => answers.set(id, resolve as (r: unknown) => void));
		},
		close: () => ws.close(),
	};
}

function printTop(title: string, samples: Map<string, number>, total: number, rows = 25): void {
	console.log(`\n${title} (share of ${total} samples)`);
	for (const [key, n] of [...samples].sort((a, b) => b[1] - a[1]).slice(0, rows)) {
		console.log(`${((100 * n) / total).toFixed(1).padStart(6)} %  ${key}`);
	}
}

/** Every `--var NAME:VALUE`, as `[vars]` overrides for wrangler dev. */
function varOverrides(): Record<string, string> {
	const vars: Record<string, string> = {};
	process.argv.forEach((arg, i) => {
		const pair = arg === "--var" ? process.argv[i + 1] : undefined;
		const colon = pair?.indexOf(":") ?? -1;
		if (pair && colon > 0) vars[pair.slice(0, colon)] = pair.slice(colon + 1);
	});
	return vars;
}

const tasks = option("--tasks", 1000);
const conc = option("--conc", 50);
const stateDir = mkdtempSync(join(tmpdir(), "edgetask-profile-"));
const vars = varOverrides();
/** `--floor NAME`: profile the floor worker's `POST /NAME` (bench/floor/worker.ts) instead of edgetask. */
const floorIndex = process.argv.indexOf("--floor");
const floor = floorIndex >= 0 ? (process.argv[floorIndex + 1] ?? "contract") : null;
const server = await startDevServer({
	persistTo: stateDir,
	vars,
	...(floor ? { config: join(import.meta.dirname, "floor", "wrangler.toml") } : {}),
});
try {
	const submit = async () => {
		const res = floor
			? await fetch(`${server.url}/${floor}`, {
					method: "POST",
					headers: { "content-type": "application/json" },
					body: JSON.stringify({ ms: 0 }),
				})
			: await fetch(`${server.url}/v1/tasks`, {
					method: "POST",
					headers: { "content-type": "application/json", prefer: "wait=30" },
					body: JSON.stringify({ type: "sleep", input: { ms: 0 } }),
				});
		await res.text();
		return res.status;
	};
	await runPool(50, 10, 30_000, submit); // warm up: bundle loaded, shards open
	const devtools = await inspector(server.inspectorPort);
	await devtools.call("Profiler.enable");
	await devtools.call("Profiler.setSamplingInterval", { interval: 200 });
	await devtools.call("Profiler.start");
	const t0 = performance.now();
	const { results } = await runPool(tasks, conc, 300_000, submit);
	const seconds = (performance.now() - t0) / 1000;
	const { profile } = await devtools.call<{ profile: Profile }>("Profiler.stop");
	devtools.close();
	if (floor) console.log(`floor worker: POST /${floor}`);
	if (Object.keys(vars).length > 0) console.log(`vars: ${JSON.stringify(vars)}`);
	console.log(`${results.length} tasks at concurrency ${conc} in ${seconds.toFixed(1)} s (${(results.length / seconds).toFixed(1)}/s)`);

	const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
	const parents = new Map<number, number>();
	for (const n of profile.nodes) for (const child of n.children ?? []) parents.set(child, n.id);
	const name = (f: CallFrame) => {
		const file = f.url ? f.url.replace(/^.*\//, "") : "(runtime)";
		return `${f.functionName || "(anonymous)"}  ${file}:${f.lineNumber + 1}`;
	};
	const byFunction = new Map<string, number>();
	const byFile = new Map<string, number>();
	/** Runtime (native) calls made from our code, by the JavaScript function that made them. */
	const nativeByCaller = new Map<string, number>();
	for (const id of profile.samples) {
		const f = nodes.get(id)!;
		byFunction.set(name(f), (byFunction.get(name(f)) ?? 0) + 1);
		const file = f.url ? f.url.replace(/^.*\//, "") : "(runtime)";
		byFile.set(file, (byFile.get(file) ?? 0) + 1);
		const parent = parents.get(id);
		if (!f.url && f.functionName && parent !== undefined && nodes.get(parent)!.url) {
			const key = `${f.functionName} ← ${name(nodes.get(parent)!)}`;
			nativeByCaller.set(key, (nativeByCaller.get(key) ?? 0) + 1);
		}
	}
	/** Total time per function: samples with it anywhere on their stack (counted once per sample). */
	const inclusive = new Map<string, number>();
	for (const id of profile.samples) {
		const seen = new Set<string>();
		for (let node: number | undefined = id; node !== undefined; node = parents.get(node)) {
			const f = nodes.get(node)!;
			if (f.url) seen.add(name(f));
		}
		for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + 1);
	}
	printTop("self time by function (bundle line numbers: .wrangler/tmp/dev-*/index.js)", byFunction, profile.samples.length);
	printTop("runtime calls (SQLite exec, setAlarm, …) by caller", nativeByCaller, profile.samples.length, 15);
	printTop("self time by file", byFile, profile.samples.length, 10);
	printTop("total time (self + callees) by bundle function", inclusive, profile.samples.length, 60);
} finally {
	await server.stop();
	rmSync(stateDir, { recursive: true, force: true });
}
