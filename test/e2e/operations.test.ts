/**
 * Operations, end to end against `wrangler dev`:
 * - the one JSON log line each task writes when it ends, read from the server's own output;
 * - the submission rate limit (Cloudflare's rate limiting binding) holding across a restart of
 *   the runtime: requests after it land on a fresh isolate with empty module state, which is
 *   where a per-isolate count would start over.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { SUBMIT_WINDOW_S } from "../../src/api/admission";
import { configVariant, request, sleep, startDevServer, tail, tempDir, uniqueId, type DevServer, type TaskJson } from "./helpers";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const servers: DevServer[] = [];
afterAll(async () => {
	await Promise.all(servers.map((s) => s.stop()));
});

interface TaskEndLine {
	event: string;
	id: string;
	type: string;
	status: string;
	attempts: number;
	queue_ms: number | null;
	run_ms: number | null;
	total_ms: number | null;
	error_code: string | null;
}

/** Every task.end line in a server's output. */
function taskEndLines(output: string): TaskEndLine[] {
	return output
		.split("\n")
		.map((line) => line.trim())
		.filter((line) => line.startsWith('{"event":"task.end"'))
		.map((line) => JSON.parse(line) as TaskEndLine);
}

describe("the task end log line", () => {
	it("one JSON line per finished task with its timings and error code, and never its input, output, key or token", async () => {
		const key = `key-${crypto.randomUUID()}`;
		const server = await startDevServer({ vars: { API_KEYS: key, ENABLE_FAULT_PROCESSORS: "true" } });
		servers.push(server);
		const auth = { authorization: `Bearer ${key}`, "content-type": "application/json" };
		const secretInput = `input-secret-${crypto.randomUUID()}`;
		const submit = async (body: Record<string, unknown>, wait?: number) => {
			const headers: Record<string, string> = { ...auth };
			if (wait) headers.prefer = `wait=${wait}`;
			const answer = await request<TaskJson & { urls: { get: string } }>(`${server.url}/v1/tasks`, {
				method: "POST",
				headers,
				body: JSON.stringify(body),
			});
			expect(answer.status, JSON.stringify(answer.body)).toBeLessThan(300);
			return answer.body;
		};

		const ok = await submit({ id: uniqueId("log-ok"), type: "echo", input: { secret: secretInput } }, 10);
		const failed = await submit({ id: uniqueId("log-fail"), type: "fail", input: { message: secretInput, permanent: true } }, 10);
		const hung = await submit({ id: uniqueId("log-cancel"), type: "sleep", input: { ms: 30_000, secret: secretInput } });
		const cancel = await request(`${server.url}/v1/tasks/${hung.id}/cancel`, { method: "POST", headers: auth });
		expect(cancel.status).toBe(200);
		const token = new URL(ok.urls.get).searchParams.get("token");
		expect(token).toBeTruthy();

		const finals = new Map<string, TaskJson>();
		for (const task of [ok, failed, hung]) {
			const answer = await request<TaskJson>(`${server.url}/v1/tasks/${task.id}`, { headers: auth });
			finals.set(task.id, answer.body);
		}
		expect([...finals.values()].map((t) => t.status)).toEqual(["succeeded", "failed", "canceled"]);

		// The line is written as the task ends; give the runtime's log pipe a moment.
		let lines: TaskEndLine[] = [];
		for (let i = 0; i < 50; i++) {
			lines = taskEndLines(server.output()).filter((l) => finals.has(l.id));
			if (lines.length >= 3) break;
			await sleep(100);
		}
		for (const [id, task] of finals) {
			const mine = lines.filter((l) => l.id === id);
			expect(mine, tail(server.output())).toHaveLength(1);
			expect(mine[0]).toEqual({
				event: "task.end",
				id,
				type: task.type,
				status: task.status,
				attempts: task.attempts,
				queue_ms: task.metrics.queue_ms,
				run_ms: task.metrics.run_ms,
				total_ms: task.metrics.total_ms,
				error_code: task.error?.code ?? null,
			});
		}
		expect(lines.find((l) => l.id === failed.id)?.error_code).toBe("processor_error");
		expect(lines.find((l) => l.id === hung.id)?.error_code).toBe("canceled");

		const output = server.output();
		expect(output).not.toContain(secretInput);
		expect(output).not.toContain(key);
		expect(output).not.toContain(token);
	});
	it("writes none with TASK_END_LOGS=false", async () => {
		const server = await startDevServer({ vars: { TASK_END_LOGS: "false" } });
		servers.push(server);
		const answer = await request<TaskJson>(`${server.url}/v1/tasks`, {
			method: "POST",
			headers: { "content-type": "application/json", prefer: "wait=10" },
			body: JSON.stringify({ type: "echo", input: 1 }),
		});
		expect(answer.body.status).toBe("succeeded");
		await sleep(1000);
		expect(taskEndLines(server.output())).toEqual([]);
	});
});

describe("the submission rate limit", () => {
	const LIMIT = 4;
	const PERIOD_S = 60;

	it("wrangler.toml's limiter period is the Retry-After the API gives", () => {
		const toml = readFileSync(join(root, "wrangler.toml"), "utf8");
		const block = /\[\[ratelimits\]\]\s*\nname = "SUBMIT_LIMITER"[^[]*?period = (\d+)/.exec(toml);
		expect(Number(block?.[1])).toBe(SUBMIT_WINDOW_S);
	});

	it("holds for an API key across requests landing on a fresh isolate (the runtime restarted), and keys have their own budgets", async () => {
		const config = configVariant("ratelimit-tight", (toml) =>
			toml.replace(/(name = "SUBMIT_LIMITER"[^[]*?simple = )\{[^}]*\}/, `$1{ limit = ${LIMIT}, period = ${PERIOD_S} }`),
		);
		const state = await tempDir("edgetask-e2e-ratelimit");
		const keys = [`a-${crypto.randomUUID()}`, `b-${crypto.randomUUID()}`];
		const options = { config, persistTo: state.path, vars: { API_KEYS: keys.join(",") } };
		try {
			let server = await startDevServer(options);
			servers.push(server);
			const submitAs = (base: string, key: string) =>
				request<unknown>(`${base}/v1/tasks`, {
					method: "POST",
					headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
					body: JSON.stringify({ type: "echo", input: null }),
				});

			// The local limiter counts in windows aligned to the clock; the scenario (fill the
			// window, restart, submit again) must fit in one. A restart on a loaded machine takes up
			// to ~30 s, so start with 40 s of a window left, and run it again if a window still ended midway.
			for (let round = 1; ; round++) {
				const leftInWindow = PERIOD_S * 1000 - (Date.now() % (PERIOD_S * 1000));
				if (leftInWindow < 40_000) await sleep(leftInWindow + 100);
				const windowOf = () => Math.floor(Date.now() / (PERIOD_S * 1000));
				const window = windowOf();
				const [a, b] = keys as [string, string];
				const admitted = [];
				for (let i = 0; i < LIMIT; i++) admitted.push((await submitAs(server.url, a)).status);
				const refused = await submitAs(server.url, a);

				await server.stop();
				server = await startDevServer(options);
				servers.push(server);

				const afterRestart = await submitAs(server.url, a);
				const otherKey = await submitAs(server.url, b);
				if (windowOf() !== window && round < 3) continue;
				expect(windowOf(), "the scenario did not fit in one limiter window").toBe(window);
				expect(admitted).toEqual(admitted.map(() => 202));
				expect(refused.status).toBe(429);
				expect(refused.headers.get("retry-after")).toBe(String(SUBMIT_WINDOW_S));
				expect(refused.body).toMatchObject({ error: { code: "rate_limited" } });
				// A fresh isolate has no memory of the key: only a count kept outside it refuses this.
				expect(afterRestart.status, JSON.stringify(afterRestart.body)).toBe(429);
				expect(otherKey.status).toBe(202);
				break;
			}
		} finally {
			await Promise.all(servers.splice(0).map((s) => s.stop()));
			await state.remove();
		}
	}, 200_000);
});
