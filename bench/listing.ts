/**
 * `npm run bench:listing`: how GET /v1/tasks behaves with many live tasks, locally.
 *
 * Starts `wrangler dev` (fresh state, trace recorder off), submits `--tasks` no-op tasks (10,000
 * by default; 5 % of them `fail`, so a status filter has something rare to find), waits until the
 * health shards hold every one, then times listing requests from outside: a default page, the
 * largest page, a rare status, a type and status together, a deep cursor walk over everything.
 * Prints a table and, with `--json FILE`, writes the numbers.
 *
 *   npm run bench:listing                 # 10,000 tasks
 *   npm run bench:listing -- --tasks 2000 --rounds 20
 */
import { writeFileSync } from "node:fs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { startDevServer } from "../scripts/devServer.ts";
import { summarize, type Summary } from "./lib.ts";

const { values } = parseArgs({
	options: {
		tasks: { type: "string", default: "10000" },
		concurrency: { type: "string", default: "50" },
		rounds: { type: "string", default: "30" },
		json: { type: "string" },
		/** Measure a server that already holds tasks (skips starting one and filling it). */
		url: { type: "string" },
	},
});
const TASKS = Number(values.tasks);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
const FAIL_EVERY = 20;

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T; ms: number }> {
	const t0 = performance.now();
	const res = await fetch(url, init);
	const body = (await res.json()) as T;
	return { status: res.status, body, ms: performance.now() - t0 };
}

const state = values.url ? null : mkdtempSync(join(tmpdir(), "edgetask-bench-listing-"));
const server = state ? await startDevServer({ persistTo: state, vars: { ENABLE_FAULT_PROCESSORS: "true" } }) : null;
const base = values.url ?? server?.url ?? "";
try {
	let expected = 0;
	if (server) {
		console.log(`wrangler dev on ${base}; submitting ${TASKS} tasks at concurrency ${CONCURRENCY}`);
		const fillStart = performance.now();
		let next = 0;
		let refused = 0;
		const statuses = new Map<number, number>();
		await Promise.all(
			Array.from({ length: CONCURRENCY }, async () => {
				while (next < TASKS) {
					const i = next++;
					const body = i % FAIL_EVERY === 0 ? { type: "fail", input: { permanent: true } } : { type: "sleep", input: { ms: 0 } };
					for (;;) {
						const res = await fetch(`${base}/v1/tasks`, {
							method: "POST",
							headers: { "content-type": "application/json", prefer: "wait=30" },
							body: JSON.stringify(body),
						});
						const text = await res.text();
						if (res.status === 429) {
							refused++;
							await new Promise((r) => setTimeout(r, 1000));
							continue;
						}
						statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
						if (res.status >= 300) console.error(`submission answered ${res.status}: ${text.slice(0, 300)}`);
						break;
					}
				}
			}),
		);
		const fillS = (performance.now() - fillStart) / 1000;
		expected = (statuses.get(200) ?? 0) + (statuses.get(202) ?? 0);
		console.log(
			`submitted in ${fillS.toFixed(1)} s (${(TASKS / fillS).toFixed(1)} tasks/s, ${refused} rate-limited retries, answers ${JSON.stringify(Object.fromEntries(statuses))})`,
		);
		if (expected < TASKS) console.error(`server log tail:\n${server.output().slice(-4000)}`);
		// Wait until the shards hold every created task as finished (reports go out off the request path).
		for (;;) {
			const { body } = await json<{ results_pending: number }>(`${base}/health`);
			if (body.results_pending >= expected) break;
			await new Promise((r) => setTimeout(r, 500));
		}
	}

	const cases: [string, string][] = [
		["default page (50)", ""],
		["largest page (limit=500)", "?limit=500"],
		["rare status (status=failed, 5 %)", "?status=failed"],
		["no match (status=running)", "?status=running"],
		["type + status (type=sleep&status=succeeded)", "?type=sleep&status=succeeded"],
	];
	const results: Record<string, Summary & { rows: number }> = {};
	for (const [name, query] of cases) {
		const times: number[] = [];
		let rows = 0;
		for (let i = 0; i < ROUNDS; i++) {
			const { status, body, ms } = await json<{ tasks: unknown[] }>(`${base}/v1/tasks${query}`);
			if (status !== 200) throw new Error(`${query}: ${status} ${JSON.stringify(body)}`);
			rows = body.tasks.length;
			times.push(ms);
		}
		results[name] = { ...summarize(times), rows };
	}
	// A walk over every task, 500 a page.
	const walkStart = performance.now();
	let cursor: string | null = null;
	let walked = 0;
	let pages = 0;
	do {
		const page: { body: { tasks: unknown[]; next_cursor: string | null } } = await json(
			`${base}/v1/tasks?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
		);
		walked += page.body.tasks.length;
		pages++;
		cursor = page.body.next_cursor;
	} while (cursor);
	const walkMs = performance.now() - walkStart;

	console.log(`\nGET /v1/tasks, ${ROUNDS} requests each (ms):`);
	console.log("| request | rows | p50 | p90 | p99 | max |\n| --- | ---: | ---: | ---: | ---: | ---: |");
	for (const [name, s] of Object.entries(results)) {
		console.log(`| ${name} | ${s.rows} | ${s.p50.toFixed(1)} | ${s.p90.toFixed(1)} | ${s.p99.toFixed(1)} | ${s.max.toFixed(1)} |`);
	}
	console.log(`| walk every page (limit=500) | ${walked} in ${pages} pages | total ${walkMs.toFixed(0)} ms | | | |`);
	if (walked < expected) throw new Error(`the walk saw ${walked} of ${expected} tasks`);
	if (values.json) writeFileSync(values.json, JSON.stringify({ tasks: walked, results, walk: { walked, pages, ms: walkMs } }, null, 2));
} finally {
	await server?.stop();
	if (state) rmSync(state, { recursive: true, force: true });
}
