/**
 * `npm run bench:lane`: the ceiling of one lane object (src/scheduling/Scheduler.ts, issue 9's
 * limiter). A `wrangler dev` of bench/lane/ (fresh state, no trace recorder) runs the real
 * Scheduler with stand-in task objects that take every slot they are offered, hold it for 0 ms and
 * give it back (bench/lane/worker.ts), so all the time goes to the lane and its calls:
 *
 *   free       limit never reached: each grant is acquire (granted at once) + release = 2 lane calls
 *   contended  limit 8, 200 holders asking: each grant is acquire (wait) + a pushed slot
 *              (slotOffered) + release = 3 lane calls, one of them the lane's own outgoing push
 *   chain      limit 1, 50 holders: every grant waits for the previous release (a lane of one GPU)
 *
 * Reports grants/s and the runtime's CPU per grant (lane, holders and driver share one workerd
 * thread locally; deployed the lane is an object of its own and only its own calls count).
 * Options: --n N (grants per run, 4000), --rounds N (2), --json FILE. Plain Node 24, like bench/run.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startDevServer } from "../scripts/devServer.ts";
import { cpuMsByRole, fmt, sampleTree, timedPost } from "./lib.ts";

const here = dirname(fileURLToPath(import.meta.url));

function option(name: string, fallback: number): number {
	const i = process.argv.indexOf(name);
	return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const N = option("--n", 4000);
const ROUNDS = option("--rounds", 2);
const jsonAt = process.argv.indexOf("--json");
const JSON_FILE = jsonAt >= 0 ? process.argv[jsonAt + 1] : undefined;

const MODES = [
	{ mode: "free", limit: 1_000_000, conc: 50, laneCalls: 2 },
	{ mode: "contended", limit: 8, conc: 200, laneCalls: 3 },
	{ mode: "chain", limit: 1, conc: 50, laneCalls: 3 },
] as const;

interface Run {
	mode: string;
	limit: number;
	conc: number;
	grants: number;
	elapsedMs: number;
	grantsPerS: number;
	laneCallsPerS: number;
	runtimeCpuMsPerGrant: number;
	left: { holders: number; waiting: number };
}

async function main() {
	const load0 = loadavg();
	console.log(
		`edgetask lane bench — node ${process.version}, ${cpus().length} cores, load avg ${load0.map((x) => x.toFixed(2)).join(" ")}`,
	);
	const state = mkdtempSync(join(tmpdir(), "edgetask-bench-lane-"));
	const server = await startDevServer({ config: join(here, "lane/wrangler.toml"), persistTo: state, readyTimeoutMs: 120_000 });
	const runs: Run[] = [];
	try {
		const call = async (body: object) => {
			const r = await timedPost(`${server.url}/run`, JSON.stringify(body), {}, 600_000);
			if (r.status !== 200) throw new Error(`/run answered ${r.status}: ${r.error}`);
			return { ...(r.json as { grants: number; left: Run["left"] }), elapsedMs: r.elapsedMs };
		};
		// Warm the runtime and the holders' objects.
		for (const m of MODES) await call({ n: 200, conc: m.conc, limit: m.limit });
		for (let round = 0; round < ROUNDS; round++) {
			for (const m of MODES) {
				const before = sampleTree(server.child.pid!, server.port);
				const r = await call({ n: N, conc: m.conc, limit: m.limit });
				const cpu = cpuMsByRole(before, sampleTree(server.child.pid!, server.port))["workerd-runtime"] ?? Number.NaN;
				const run: Run = {
					mode: m.mode,
					limit: m.limit,
					conc: m.conc,
					grants: r.grants,
					elapsedMs: r.elapsedMs,
					grantsPerS: r.grants / (r.elapsedMs / 1000),
					laneCallsPerS: (m.laneCalls * r.grants) / (r.elapsedMs / 1000),
					runtimeCpuMsPerGrant: cpu / r.grants,
					left: r.left,
				};
				runs.push(run);
				console.log(
					`  ${m.mode.padEnd(9)} limit ${String(m.limit).padEnd(7)} ${m.conc} holders: ${run.grants} grants in ${fmt(run.elapsedMs / 1000, 2)} s = ${fmt(run.grantsPerS, 0)} grants/s (${fmt(run.laneCallsPerS, 0)} lane calls/s), runtime CPU ${fmt(run.runtimeCpuMsPerGrant, 2)} ms per grant; left held ${run.left.holders}, waiting ${run.left.waiting}`,
				);
			}
		}
	} finally {
		await server.stop();
		rmSync(state, { recursive: true, force: true });
	}
	const load1 = loadavg();
	console.log(`load avg at the end ${load1.map((x) => x.toFixed(2)).join(" ")}`);
	if (JSON_FILE) writeFileSync(JSON_FILE, JSON.stringify({ at: new Date().toISOString(), load: [load0, load1], n: N, runs }, null, 2));
}

await main();
