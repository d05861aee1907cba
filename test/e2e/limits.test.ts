/**
 * Concurrency limits end to end: a `wrangler dev` given CONCURRENCY and ORIGINS as `--var` JSON
 * strings (as in `wrangler dev --var 'CONCURRENCY:{"sleep":2}'`), a real HTTP origin that counts
 * its own requests in flight, and a restart of the server on its persisted state while both
 * slots of a lane are held.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { json, startOrigin, type OriginServer } from "./originServer";
import {
	getTask,
	sleep,
	startDevServer,
	submit,
	submitSleep,
	tail,
	tempDir,
	uniqueId,
	waitTerminal,
	type DevServer,
	type TaskJson,
} from "./helpers";

let origin: OriginServer;
let dir: Awaited<ReturnType<typeof tempDir>>;
let server: DevServer;

const VARS = {
	CONCURRENCY: JSON.stringify({ sleep: 2 }),
	ORIGINS: JSON.stringify({ gpu: { url: "", concurrency: 3, timeout_s: 30 } }),
};

beforeAll(async () => {
	origin = await startOrigin();
	origin.on("/slow", async (req, res) => {
		await sleep(300);
		json(res, 200, { echoed: req.body });
	});
	dir = await tempDir("edgetask-e2e-limits");
	VARS.ORIGINS = JSON.stringify({ gpu: { url: origin.url, concurrency: 3, timeout_s: 30 } });
	server = await startDevServer({ persistTo: dir.path, vars: VARS });
});

afterAll(async () => {
	await server?.stop();
	await origin?.stop();
	await dir?.remove();
});

/** Most intervals [started_at, finished_at) open at one instant (an end and a start at the same ms do not overlap). */
function maxOverlap(tasks: TaskJson[]): number {
	const edges = tasks.flatMap((t) => [[Date.parse(t.started_at ?? ""), 1] as const, [Date.parse(t.finished_at ?? ""), -1] as const]);
	edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
	let open = 0;
	let most = 0;
	for (const [, d] of edges) most = Math.max(most, (open += d));
	return most;
}

it("an origin with concurrency 3 never has more than 3 requests in flight under 50 concurrent submissions (its own count)", async () => {
	origin.resetMax();
	const answers = await Promise.all(
		Array.from({ length: 50 }, (_, i) => submit(server.url, "http", { origin: "gpu", path: "/slow", body: i }, { wait: 60 })),
	);
	for (const a of answers) expect(a.body, JSON.stringify(a.body)).toMatchObject({ status: "succeeded" });
	expect(answers.map((a) => (a.body.output as { echoed: number }).echoed).sort((x, y) => x - y)).toEqual([...Array(50).keys()]);
	expect(origin.requestsTo("/slow")).toHaveLength(50);
	expect(origin.maxInFlight()).toBe(3);
}, 90_000);

it('`--var CONCURRENCY:{"sleep":2}` limits the built-in sleep: 50 concurrent tasks, never more than 2 running', async () => {
	const answers = await Promise.all(Array.from({ length: 50 }, () => submitSleep(server.url, 100, { wait: 60 })));
	for (const a of answers) expect(a.body.status).toBe("succeeded");
	expect(maxOverlap(answers.map((a) => a.body))).toBe(2);
}, 90_000);

it("after a restart with both slots held, the dead holders lose their slots, the waiting tasks start, and all finish within the limit", async () => {
	const holders = [uniqueId("holder"), uniqueId("holder")];
	for (const id of holders) expect((await submitSleep(server.url, 4000, { id })).status).toBe(202);
	const waiting = [uniqueId("waiter"), uniqueId("waiter"), uniqueId("waiter")];
	for (const id of waiting) expect((await submitSleep(server.url, 200, { id })).status).toBe(202);
	// Both holders running, the others in line.
	const deadline = Date.now() + 20_000;
	for (;;) {
		const tasks = await Promise.all([...holders, ...waiting].map(async (id) => (await getTask(server.url, id)).body));
		const held = tasks.slice(0, 2).every((t) => t.status === "running");
		const inLine = tasks
			.slice(2)
			.every((t) => t.status === "queued" && typeof (t as { queue_position?: unknown }).queue_position === "number");
		if (held && inLine) break;
		if (Date.now() > deadline) throw new Error(`not placed in time: ${JSON.stringify(tasks.map((t) => [t.status, t.started_at]))}`);
		await sleep(100);
	}

	// The runtime dies under the holders; the lane and the tasks come back from their storage.
	await server.stop();
	server = await startDevServer({ persistTo: dir.path, vars: VARS });
	const readyAt = Date.now();

	const done = await Promise.all([...holders, ...waiting].map((id) => waitTerminal(server.url, id, 60_000)));
	const tasks = done.map((a) => a.body);
	for (const t of tasks) expect(t.status, `${t.id}: ${JSON.stringify(t.error)}\n${tail(server.output())}`).toBe("succeeded");
	// The holders' attempts died with the runtime and ran again; the tasks in line ran once.
	for (const t of tasks.slice(0, 2)) expect(t.attempts).toBe(2);
	for (const t of tasks.slice(2)) expect(t.attempts).toBe(1);
	expect(maxOverlap(tasks)).toBeLessThanOrEqual(2);
	// Within the documented bound (one lease check, 20 s) of the server being back.
	const firstWaiterStart = Math.min(...tasks.slice(2).map((t) => Date.parse(t.started_at ?? "")));
	expect(firstWaiterStart - readyAt).toBeLessThan(25_000);
}, 150_000);
