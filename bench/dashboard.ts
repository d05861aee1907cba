/**
 * `npm run bench:dashboard`: what the dashboard weighs and how soon it is usable, locally.
 *
 * Builds the dashboard (scripts/buildDashboard.mjs), reports each file raw and gzip, starts
 * `wrangler dev` (fresh state, open), submits `--tasks` echo tasks, then loads the page
 * `--loads` times in headless Chromium (Debian's, through playwright-core) and times each load
 * from navigation to "Live" with every task listed, with the browser's first contentful paint.
 *
 *   npm run bench:dashboard
 *   npm run bench:dashboard -- --tasks 200 --loads 11
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { gzipSync } from "node:zlib";
import { chromium } from "playwright-core";
import { startDevServer } from "../scripts/devServer.ts";
import { summarize } from "./lib.ts";

const { values } = parseArgs({
	options: {
		tasks: { type: "string", default: "30" },
		loads: { type: "string", default: "7" },
	},
});
const TASKS = Number(values.tasks);
const LOADS = Number(values.loads);
const root = join(import.meta.dirname, "..");

execFileSync(process.execPath, [join(root, "scripts/buildDashboard.mjs")], { stdio: "inherit" });
// The built files, as the Worker serves them (a module of its bundle).
const built = (await import(pathToFileURL(join(root, "src/api/routes/dashboardFiles.js")).href)) as {
	default: Record<string, { body: string }>;
};
for (const path of ["/", "/dashboard/app.js", "/dashboard/style.css"]) {
	const bytes = Buffer.from(built.default[path]?.body ?? "");
	console.log(`${path}: ${(bytes.length / 1024).toFixed(1)} KiB raw, ${(gzipSync(bytes).length / 1024).toFixed(1)} KiB gzip`);
}

const state = mkdtempSync(join(tmpdir(), "edgetask-bench-dashboard-"));
const server = await startDevServer({ persistTo: state });
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
	for (let i = 0; i < TASKS; i++) {
		const res = await fetch(`${server.url}/v1/tasks`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: JSON.stringify({ type: "echo", input: i }),
		});
		if (res.status !== 202 && res.status !== 200) throw new Error(`submit answered ${res.status}`);
	}
	// Every task in the listing (its rows arrive off the request path) before the page is timed.
	for (let listed = 0; listed < Math.min(TASKS, 500); await new Promise((r) => setTimeout(r, 200))) {
		listed = ((await (await fetch(`${server.url}/v1/tasks?limit=500`)).json()) as { tasks: unknown[] }).tasks.length;
	}
	const rows = Math.min(TASKS, 50);
	const ready: number[] = [];
	const paint: number[] = [];
	for (let i = 0; i < LOADS; i++) {
		const page = await browser.newPage();
		const t0 = performance.now();
		await page.goto(`${server.url}/`);
		await page.waitForFunction(
			(n) => document.getElementById("connection")?.textContent === "Live" && document.querySelectorAll("#tasks tbody tr").length >= n,
			rows,
		);
		ready.push(performance.now() - t0);
		paint.push(await page.evaluate(() => performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? Number.NaN));
		await page.close();
	}
	const line = (name: string, v: number[]) => {
		const s = summarize(v);
		console.log(`${name}: p50 ${s.p50.toFixed(0)} ms, min ${s.min.toFixed(0)}, max ${s.max.toFixed(0)} (${s.n} loads)`);
	};
	line(`navigation to "Live" with ${rows} rows`, ready);
	line("first contentful paint", paint);
} finally {
	await browser.close();
	await server.stop();
	rmSync(state, { recursive: true, force: true });
}
