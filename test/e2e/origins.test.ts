/**
 * The `http` task type against real origins: Node HTTP servers started here, called by the
 * worker that `wrangler dev` serves (ORIGINS and ORIGIN_TOKENS given as `--var` JSON strings, as
 * a user of `wrangler dev` gives them). What each origin saw is recorded by the origin itself.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { json, startOrigin, trickle, type OriginServer } from "./originServer";
import {
	getTask,
	request,
	sleep,
	startDevServer,
	submit,
	TERMINAL,
	uniqueId,
	waitTerminal,
	type DevServer,
	type ErrorJson,
	type TaskJson,
} from "./helpers";

type HttpTask = TaskJson & { error: { code: string; message: string; details?: Record<string, unknown> } | null };

let origin: OriginServer;
let server: DevServer;
let base: string;
/** The server's MAX_OUTPUT_BYTES: 256 KiB. */
const MAX_OUTPUT_BYTES = 256 * 1024;
/** A port nothing listens on: connections are refused. */
let deadPort: number;

beforeAll(async () => {
	origin = await startOrigin();
	const dead = await startOrigin();
	deadPort = dead.port;
	await dead.stop();
	const origins = {
		main: { url: origin.url, concurrency: 20, timeout_s: 30 },
		// The same server, with a short per-request deadline.
		quick: { url: `${origin.url}/`, concurrency: 5, timeout_s: 1 },
		// The seed template's envelope, set on the origin.
		seedlike: { url: origin.url, concurrency: 2, timeout_s: 30, envelope: "seed" },
		dead: { url: `http://127.0.0.1:${deadPort}`, concurrency: 1, timeout_s: 5 },
	};
	server = await startDevServer({
		vars: {
			ORIGINS: JSON.stringify(origins),
			ORIGIN_TOKENS: JSON.stringify({ main: "secret-main-token" }),
			// Below the 1 MiB default, so a test can show that this one var bounds origin answers too.
			MAX_OUTPUT_BYTES: String(MAX_OUTPUT_BYTES),
		},
	});
	base = server.url;
});

afterAll(async () => {
	await server?.stop();
	await origin?.stop();
});

/** Submits an http task; `extra` adds fields to the submit body (id, timeout_s, …). */
function submitHttp(input: Record<string, unknown>, extra: Record<string, unknown> = {}, wait?: number) {
	return submit(base, "http", input, { extra, wait });
}

async function finished(id: string, budgetMs = 30_000): Promise<HttpTask> {
	const answer = await waitTerminal(base, id, budgetMs);
	expect(answer.status).toBe(200);
	expect(TERMINAL, JSON.stringify(answer.body)).toContain(answer.body.status);
	return answer.body as HttpTask;
}

interface SseEvent {
	type: string;
	data: { data: Record<string, unknown> };
}

/** Reads the task's SSE stream (GET /v1/tasks/{id}/events) until it closes; every event, parsed. */
async function readEvents(id: string, budgetMs = 30_000): Promise<SseEvent[]> {
	const res = await fetch(`${base}/v1/tasks/${id}/events`, { signal: AbortSignal.timeout(budgetMs) });
	expect(res.status).toBe(200);
	const text = await res.text();
	const events: SseEvent[] = [];
	for (const block of text.split("\n\n")) {
		const type = /^event: (.*)$/m.exec(block)?.[1];
		const data = /^data: (.*)$/m.exec(block)?.[1];
		if (type && data) events.push({ type, data: JSON.parse(data) as SseEvent["data"] });
	}
	return events;
}

describe("http: a 2xx JSON answer", () => {
	it("is the output; the request carries the body, Idempotency-Key, X-Edgetask-Attempt and the origin's token", async () => {
		origin.on("/v1/predict?model=a", (req, res) => json(res, 200, { echoed: req.body, ok: true }));
		const id = uniqueId("http-ok");
		const res = await submitHttp({ origin: "main", path: "/v1/predict?model=a", body: { prompt: "a cat", n: [1, 2] } }, { id }, 20);
		expect(res.status, JSON.stringify(res.body)).toBe(200);
		expect(res.body.status).toBe("succeeded");
		expect(res.body.output).toEqual({ echoed: { prompt: "a cat", n: [1, 2] }, ok: true });
		const [seen] = origin.seen.filter((r) => r.headers["idempotency-key"] === id);
		expect(seen.path).toBe("/v1/predict?model=a");
		expect(seen.headers["x-edgetask-attempt"]).toBe("1");
		expect(seen.headers["content-type"]).toBe("application/json");
		expect(seen.headers.authorization).toBe("Bearer secret-main-token");
	});

	it("path defaults to /, body to {}, and an origin without a token gets no Authorization", async () => {
		origin.on("/", (_req, res) => json(res, 200, [1, "two"]));
		const id = uniqueId("http-root");
		const res = await submitHttp({ origin: "quick" }, { id }, 20);
		expect(res.body.status, JSON.stringify(res.body)).toBe("succeeded");
		expect(res.body.output).toEqual([1, "two"]);
		const [seen] = origin.seen.filter((r) => r.headers["idempotency-key"] === id);
		expect(seen.path).toBe("/");
		expect(seen.body).toEqual({});
		expect(seen.headers.authorization).toBeUndefined();
	});
});

describe("http: failures", () => {
	it("a 503 with Retry-After is retried after the time it asks for, with the same Idempotency-Key", async () => {
		const id = uniqueId("http-503");
		const path = `/busy/${id}`;
		origin.on(path, (req, res) => {
			if (req.headers["x-edgetask-attempt"] === "1") json(res, 503, { detail: "warming up" }, { "retry-after": "3" });
			else json(res, 200, { attempt: req.headers["x-edgetask-attempt"] });
		});
		await submitHttp({ origin: "main", path }, { id });
		const task = await finished(id);
		expect(task.status, JSON.stringify(task)).toBe("succeeded");
		expect(task.output).toEqual({ attempt: "2" });
		expect(task.attempts).toBe(2);
		const [first, second] = origin.requestsTo(path);
		expect(second.headers["idempotency-key"]).toBe(id);
		// Without Retry-After the first retry waits at most 1 s (full jitter); 3 s proves it was honoured.
		expect(second.at - first.at).toBeGreaterThanOrEqual(2900);
	});

	it("a 422 fails at once, not retried, with the status and the first 2 KiB of the body", async () => {
		const id = uniqueId("http-422");
		const path = `/reject/${id}`;
		const body = `{"detail":"${"x".repeat(5000)}"}`;
		origin.on(path, (_req, res) => void res.writeHead(422, { "content-type": "application/json" }).end(body));
		const res = await submitHttp({ origin: "main", path }, { id }, 20);
		const task = res.body as HttpTask;
		expect(task.status, JSON.stringify(task).slice(0, 500)).toBe("failed");
		expect(task.attempts).toBe(1);
		expect(task.error?.code).toBe("origin_http_error");
		expect(task.error?.message).toMatch(/Origin "main" answered 422/);
		expect(task.error?.details).toEqual({ status: 422, body: body.slice(0, 2048) });
		await sleep(1500);
		expect(origin.requestsTo(path)).toHaveLength(1);
	});

	it("a 429 and a 500 are retried; the last error is kept when attempts run out", async () => {
		const id = uniqueId("http-500");
		const path = `/broken/${id}`;
		origin.on(path, (req, res) => {
			if (req.headers["x-edgetask-attempt"] === "1") json(res, 429, { detail: "slow down" }, { "retry-after": "0" });
			else json(res, 500, { detail: `boom ${req.headers["x-edgetask-attempt"]}` }, { "retry-after": "0" });
		});
		await submitHttp({ origin: "main", path }, { id });
		const task = await finished(id);
		expect(task.status).toBe("failed");
		expect(task.attempts).toBe(5);
		expect(origin.requestsTo(path).map((r) => r.headers["x-edgetask-attempt"])).toEqual(["1", "2", "3", "4", "5"]);
		expect(task.error?.details).toEqual({ status: 500, body: '{"detail":"boom 5"}' });
	});

	it("the origin's timeout_s aborts the request (the origin sees its connection close) and retries it", async () => {
		const id = uniqueId("http-slow");
		const path = `/hang/${id}`;
		origin.on(path, () => {
			/* never answers */
		});
		await submitHttp({ origin: "quick", path }, { id });
		await vi.waitFor(() => expect(origin.requestsTo(path).length).toBeGreaterThanOrEqual(2), { timeout: 20_000, interval: 100 });
		const [first] = origin.requestsTo(path);
		expect(first.abortedByCaller).toBe(true);
		expect(first.endedAt).not.toBeNull();
		// timeout_s is 1: closed after about a second (generous bound for a loaded machine).
		expect((first.endedAt ?? 0) - first.at).toBeGreaterThanOrEqual(900);
		expect((first.endedAt ?? 0) - first.at).toBeLessThan(4000);
		const now = (await getTask(base, id)).body as HttpTask;
		expect(now.error?.code).toBe("origin_timeout");
		await request(`${base}/v1/tasks/${id}/cancel`, { method: "POST" });
	});

	it("the task's own timeout_s ends it timed_out and aborts the request", async () => {
		const id = uniqueId("http-deadline");
		const path = `/hang/${id}`;
		origin.on(path, () => {});
		await submitHttp({ origin: "main", path }, { id, timeout_s: 1 });
		const task = await finished(id);
		expect(task.status).toBe("timed_out");
		await vi.waitFor(() => expect(origin.requestsTo(path)[0]?.abortedByCaller).toBe(true), { timeout: 5000, interval: 100 });
		const [seen] = origin.requestsTo(path);
		expect((seen.endedAt ?? 0) - seen.at).toBeLessThan(4000);
	});

	it("cancel aborts the request in flight", async () => {
		const id = uniqueId("http-cancel");
		const path = `/hang/${id}`;
		origin.on(path, () => {});
		await submitHttp({ origin: "main", path }, { id });
		await vi.waitFor(() => expect(origin.requestsTo(path)).toHaveLength(1), { timeout: 15_000, interval: 100 });
		const canceledAt = Date.now();
		const res = await request<TaskJson>(`${base}/v1/tasks/${id}/cancel`, { method: "POST" });
		expect(res.body.status).toBe("canceled");
		await vi.waitFor(() => expect(origin.requestsTo(path)[0].abortedByCaller).toBe(true), { timeout: 5000, interval: 100 });
		expect((origin.requestsTo(path)[0].endedAt ?? 0) - canceledAt).toBeLessThan(3000);
		await sleep(1500);
		expect(origin.requestsTo(path)).toHaveLength(1);
	});

	it("a refused connection is retried as origin_unreachable", async () => {
		const id = uniqueId("http-dead");
		await submitHttp({ origin: "dead", path: "/x" }, { id });
		await vi.waitFor(
			async () => {
				const task = (await getTask(base, id)).body as HttpTask;
				expect(task.attempts).toBeGreaterThanOrEqual(1);
				expect(task.error?.code).toBe("origin_unreachable");
				expect(task.status).not.toBe("failed");
			},
			{ timeout: 15_000, interval: 100 },
		);
		await request(`${base}/v1/tasks/${id}/cancel`, { method: "POST" });
	});
});

describe("http: answers that must not wedge a task", () => {
	it("a 3 MB answer fails output_too_large at once, and the rest is not read", async () => {
		const id = uniqueId("http-huge");
		const path = `/huge/${id}`;
		origin.on(path, (_req, res) => {
			res.writeHead(200, { "content-type": "application/json" });
			res.end(`"${"a".repeat(3 * 1024 * 1024)}"`);
		});
		const res = await submitHttp({ origin: "main", path }, { id }, 20);
		const task = res.body as HttpTask;
		expect(task.status).toBe("failed");
		expect(task.error?.code).toBe("output_too_large");
		expect(task.attempts).toBe(1);
	});

	it("MAX_OUTPUT_BYTES bounds answers as it bounds any output: just under it is the output, just over it fails, streamed lines too", async () => {
		const answer = (bytes: number) => `"${"b".repeat(bytes - 2)}"`;
		const paths = { under: `/under/${uniqueId("cap")}`, over: `/over/${uniqueId("cap")}`, line: `/line/${uniqueId("cap")}` };
		origin.on(
			paths.under,
			(_req, res) => void res.writeHead(200, { "content-type": "application/json" }).end(answer(MAX_OUTPUT_BYTES - 16)),
		);
		origin.on(
			paths.over,
			(_req, res) => void res.writeHead(200, { "content-type": "application/json" }).end(answer(MAX_OUTPUT_BYTES + 16)),
		);
		origin.on(paths.line, (_req, res) => {
			res.writeHead(200, { "content-type": "application/x-ndjson" });
			res.end(`{"progress": 10}\n{"output": ${answer(MAX_OUTPUT_BYTES + 16)}}\n`);
		});
		const [under, over, line] = await Promise.all(
			[paths.under, paths.over, paths.line].map(async (path) => (await submitHttp({ origin: "main", path }, {}, 30)).body as HttpTask),
		);
		expect(under.status, JSON.stringify(under.error)).toBe("succeeded");
		// Past 64 KiB a JSON output is kept in R2: the task names it, with its size.
		expect(under.output).toMatchObject({ bytes: MAX_OUTPUT_BYTES - 16, content_type: "application/json" });
		for (const task of [over, line]) {
			expect(task).toMatchObject({ status: "failed", attempts: 1, error: { code: "output_too_large" } });
			expect(task.error?.message).toContain(`${MAX_OUTPUT_BYTES} bytes (MAX_OUTPUT_BYTES)`);
		}
	});

	it("an endless answer is cut at the cap instead of being buffered", async () => {
		const id = uniqueId("http-endless");
		const path = `/endless/${id}`;
		origin.on(path, (_req, res) => {
			res.writeHead(200, { "content-type": "application/json" });
			const chunk = "a".repeat(64 * 1024);
			const pump = () => {
				while (!res.destroyed && res.write(chunk));
				if (!res.destroyed) res.once("drain", pump);
			};
			pump();
		});
		const res = await submitHttp({ origin: "main", path }, { id }, 20);
		expect((res.body as HttpTask).error?.code).toBe("output_too_large");
		await vi.waitFor(() => expect(origin.requestsTo(path)[0].abortedByCaller).toBe(true), { timeout: 5000, interval: 100 });
	});

	it("an answer that stalls after its headers is cut by the origin's timeout_s and retried", async () => {
		const id = uniqueId("http-stall");
		const path = `/stall/${id}`;
		origin.on(path, (_req, res) => {
			res.writeHead(200, { "content-type": "application/json" });
			res.write('{"partial": ');
		});
		await submitHttp({ origin: "quick", path }, { id });
		await vi.waitFor(() => expect(origin.requestsTo(path)[0]?.abortedByCaller).toBe(true), { timeout: 10_000, interval: 100 });
		const [first] = origin.requestsTo(path);
		expect((first.endedAt ?? 0) - first.at).toBeLessThan(4000);
		await vi.waitFor(async () => expect(((await getTask(base, id)).body as HttpTask).error?.code).toBe("origin_timeout"), {
			timeout: 10_000,
			interval: 200,
		});
		await request(`${base}/v1/tasks/${id}/cancel`, { method: "POST" });
	});

	it("a 2xx that is not JSON fails origin_bad_response with the start of the body", async () => {
		const id = uniqueId("http-html");
		const path = `/html/${id}`;
		origin.on(path, (_req, res) => void res.writeHead(200, { "content-type": "text/html" }).end("<html>proxy error</html>"));
		const res = await submitHttp({ origin: "main", path }, { id }, 20);
		const task = res.body as HttpTask;
		expect(task.status).toBe("failed");
		expect(task.error?.code).toBe("origin_bad_response");
		expect(task.error?.details).toMatchObject({ status: 200, body: "<html>proxy error</html>" });
	});
});

describe("http: streamed progress", () => {
	const steps = [25, 50, 75];

	for (const [format, contentType, frame] of [
		["NDJSON", "application/x-ndjson", (m: unknown) => `${JSON.stringify(m)}\n`],
		["SSE", "text/event-stream", (m: unknown) => `: keep-alive\nevent: message\ndata: ${JSON.stringify(m)}\n\n`],
	] as const) {
		it(`${format}: progress lines become task progress, and the output line ends the task`, async () => {
			const id = uniqueId(`http-${format}`);
			const path = `/stream/${id}`;
			origin.on(path, async (_req, res) => {
				// Let the subscriber connect first, then report 3 steps, 400 ms apart (beyond the 4/s coalescing).
				await sleep(800);
				const parts = [...steps.map((p) => frame({ progress: p, message: `step ${p}` })), frame({ output: { image: "done" } })];
				await trickle(res, contentType, parts, 400);
			});
			await submitHttp({ origin: "main", path }, { id });
			const events = await readEvents(id);
			const progress = events.filter((e) => e.type === "progress").map((e) => e.data.data.progress as { percent: number; message: string });
			expect(progress.length, JSON.stringify(events)).toBeGreaterThanOrEqual(2);
			for (const p of progress) expect(p.message).toBe(`step ${p.percent}`);
			expect(progress.map((p) => p.percent)).toEqual([...progress.map((p) => p.percent)].sort((a, b) => a - b));
			const end = events.at(-1);
			expect(end?.type).toBe("succeeded");
			expect(end?.data.data.output).toEqual({ image: "done" });
		});
	}

	it('an {"error": …} line fails the task with its message, not retried', async () => {
		const id = uniqueId("http-stream-error");
		const path = `/stream-error/${id}`;
		origin.on(path, (_req, res) =>
			trickle(res, "application/x-ndjson", ['{"progress": 10}\n', '{"error": {"message": "CUDA out of memory", "gpu": 0}}\n'], 50),
		);
		await submitHttp({ origin: "main", path }, { id });
		const task = await finished(id);
		expect(task.status).toBe("failed");
		expect(task.attempts).toBe(1);
		expect(task.error).toEqual({ code: "origin_error", message: "CUDA out of memory", details: { message: "CUDA out of memory", gpu: 0 } });
	});

	it("a stream that closes without an output is retried (origin_stream_ended)", async () => {
		const id = uniqueId("http-stream-cut");
		const path = `/stream-cut/${id}`;
		origin.on(path, (req, res) => {
			if (req.headers["x-edgetask-attempt"] === "1") return trickle(res, "application/x-ndjson", ['{"progress": 10}\n'], 10);
			return trickle(res, "application/x-ndjson", ['{"output": "second time lucky"}\n'], 10);
		});
		await submitHttp({ origin: "main", path }, { id });
		const task = await finished(id);
		expect(task.status, JSON.stringify(task)).toBe("succeeded");
		expect(task.output).toBe("second time lucky");
		expect(task.attempts).toBe(2);
	});
});

describe('http: "envelope": "seed"', () => {
	it("unwraps data.result, on the origin's config or in the input", async () => {
		const path = `/process/${uniqueId("seed")}`;
		origin.on(path, (req, res) => {
			const uuid = String((req.body as { uuid?: string }).uuid);
			json(res, 200, { success: true, code: 0, msg: "处理成功", data: { uuid, result: `result_for_${uuid}` } });
		});
		const onOrigin = await submitHttp({ origin: "seedlike", path, body: { uuid: "a1" } }, {}, 20);
		expect(onOrigin.body.status, JSON.stringify(onOrigin.body)).toBe("succeeded");
		expect(onOrigin.body.output).toBe("result_for_a1");
		const inInput = await submitHttp({ origin: "main", path, body: { uuid: "a2" }, envelope: "seed" }, {}, 20);
		expect(inInput.body.output).toBe("result_for_a2");
		const raw = await submitHttp({ origin: "seedlike", path, body: { uuid: "a3" }, envelope: "none" }, {}, 20);
		expect(raw.body.output).toMatchObject({ success: true, data: { result: "result_for_a3" } });
	});

	it("success: false fails the task with msg, not retried", async () => {
		const path = `/process/${uniqueId("seed-fail")}`;
		origin.on(path, (_req, res) =>
			json(res, 200, { success: false, code: 1, msg: "处理失败: bad input", data: { uuid: "u", result: "" } }),
		);
		const res = await submitHttp({ origin: "seedlike", path }, {}, 20);
		const task = res.body as HttpTask;
		expect(task.status).toBe("failed");
		expect(task.attempts).toBe(1);
		expect(task.error?.code).toBe("origin_error");
		expect(task.error?.message).toBe("处理失败: bad input");
	});
});

describe("http: at submit", () => {
	it("an unknown origin is a 400 naming the configured ones, and nothing is stored", async () => {
		const id = uniqueId("http-unknown");
		const res = await submitHttp({ origin: "gpu", path: "/x" }, { id });
		expect(res.status).toBe(400);
		const error = (res.body as unknown as ErrorJson).error;
		expect(error.code).toBe("unknown_origin");
		expect(error.message).toContain("main");
		expect(error.details).toEqual([{ path: "input.origin", message: error.message }]);
		expect((await getTask(base, id)).status).toBe(404);
	});

	it("a path that could leave the origin, or an unknown field, is a 400", async () => {
		for (const input of [
			{ origin: "main", path: "//evil.example/x" },
			{ origin: "main", path: "relative" },
			{ origin: "main", path: "/a b" },
			{ origin: "main", bodyy: {} },
		]) {
			const res = await submitHttp(input);
			expect(res.status, JSON.stringify(input)).toBe(400);
			expect((res.body as unknown as ErrorJson).error.code).toBe("invalid_input");
		}
	});
});
