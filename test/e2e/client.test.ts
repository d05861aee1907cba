/**
 * The typed client (`edgetask/client`) in Node against a real `wrangler dev`: run with progress,
 * cancel through an AbortSignal, a WebSocket dropped mid-task resumed without losing or repeating
 * an event, the long-poll fallback, SSE, auth with a key and with capability URLs, 429 handling
 * and the error classes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
	createClient,
	HttpError,
	isFileRef,
	RateLimitedError,
	TaskCanceledError,
	TaskFailedError,
	TaskTimeoutError,
	type TaskEvent,
	type TaskProgress,
	type WebSocketConstructor,
	type WebSocketLike,
} from "../../clients/js/src/index";
import { SUBMIT_WINDOW_S } from "../../src/api/admission";
import { configVariant, getTask, startDevServer, tempDir, uniqueId, type DevServer } from "./helpers";

let open: DevServer;
let keyed: DevServer;
let dirs: { path: string; remove(): Promise<void> }[] = [];
const KEYS = { auth: "client-test-auth-key", rate: "client-test-rate-key" };
const RATE_LIMIT = 3;

beforeAll(async () => {
	// Each server keeps its local state in a directory of its own: two runtimes on one SQLite file lock each other out.
	dirs = await Promise.all([tempDir("client-open"), tempDir("client-keyed")]);
	[open, keyed] = await Promise.all([
		startDevServer({ persistTo: dirs[0]?.path, vars: { ENABLE_FAULT_PROCESSORS: "true" } }),
		// Two keys: submissions are rate-limited per key (a limiter of RATE_LIMIT per window), so the
		// 429 test has a budget of its own.
		startDevServer({
			persistTo: dirs[1]?.path,
			config: configVariant("client-ratelimit", (toml) =>
				toml.replace(/(name = "SUBMIT_LIMITER"[^[]*?simple = )\{[^}]*\}/, `$1{ limit = ${RATE_LIMIT}, period = ${SUBMIT_WINDOW_S} }`),
			),
			vars: { API_KEYS: `${KEYS.auth},${KEYS.rate}` },
		}),
	]);
	// The first task of a server pays for loading the consumer and the first objects.
	await createClient({ baseUrl: open.url }).run("echo", "warm-up", { timeoutMs: 30_000 });
});

afterAll(async () => {
	await Promise.all([open?.stop(), keyed?.stop()]);
	await Promise.all(dirs.map((d) => d.remove()));
});

/** A fetch that records each request's method, URL and headers before sending it. */
function recordingFetch() {
	const requests: { method: string; url: string; headers: Headers }[] = [];
	const fetchFn: typeof fetch = (input, init) => {
		const request = new Request(input, init);
		requests.push({ method: request.method, url: request.url, headers: request.headers });
		return fetch(request);
	};
	return { fetchFn, requests };
}

/** The platform WebSocket, with every socket the client opens kept for the test to close. */
function recordingWebSocket() {
	const sockets: { url: string; ws: WebSocket }[] = [];
	const WS = class extends WebSocket {
		constructor(url: string) {
			super(url);
			sockets.push({ url, ws: this });
		}
	} as unknown as WebSocketConstructor;
	return { WS, sockets };
}

function seqs(events: TaskEvent[]): number[] {
	return events.map((e) => e.seq);
}

describe("run", () => {
	it("returns the output and reports progress and every event in order over a WebSocket", async () => {
		const { WS, sockets } = recordingWebSocket();
		const client = createClient({ baseUrl: open.url, WebSocket: WS });
		const progress: TaskProgress[] = [];
		const events: TaskEvent[] = [];
		const output = await client.run(
			"sleep",
			{ ms: 1500 },
			{ onProgress: (p) => progress.push(p), onEvent: (e) => events.push(e), timeoutMs: 30_000 },
		);
		expect(output).toEqual({ slept_ms: 1500 });
		expect(sockets.length).toBe(1);
		// sleep reports 10 steps, at most 4 progress events a second reach subscribers, then 100 at success.
		const percents = progress.map((p) => p.percent);
		expect(percents.length).toBeGreaterThanOrEqual(3);
		expect(percents).toEqual([...percents].sort((a, b) => a - b));
		expect(new Set(percents).size).toBe(percents.length);
		expect(percents.at(-1)).toBe(100);
		expect(events[0]?.type).toBe("snapshot");
		expect(events.at(-1)?.type).toBe("succeeded");
		expect(events.some((e) => e.type === "progress")).toBe(true);
		const after = seqs(events.slice(1));
		expect(after).toEqual(after.map((_, i) => (events[0]?.seq ?? 0) + 1 + i));
	});

	it("a failing task throws TaskFailedError with the task", async () => {
		const client = createClient({ baseUrl: open.url });
		const error = await client.run("fail", { message: "nope", permanent: true }, { timeoutMs: 30_000 }).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(TaskFailedError);
		const task = (error as TaskFailedError).task;
		expect(task.status).toBe("failed");
		expect(task.error).toEqual({ code: "processor_error", message: "nope" });
	});

	it("throws HttpError with the server's error body for a refused submission", async () => {
		const client = createClient({ baseUrl: open.url });
		const error = await client.run("no-such-type", {}).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(HttpError);
		expect((error as HttpError).status).toBe(422);
		expect((error as HttpError).body.error.code).toBe("unknown_type");
	});

	it("stops waiting after timeoutMs with TaskTimeoutError; the task goes on", async () => {
		const client = createClient({ baseUrl: open.url });
		const t0 = Date.now();
		const error = await client.run("sleep", { ms: 3000 }, { timeoutMs: 700 }).catch((e: unknown) => e);
		expect(Date.now() - t0).toBeLessThan(2900);
		expect(error).toBeInstanceOf(TaskTimeoutError);
		const { taskId } = error as TaskTimeoutError;
		const later = await client.wait(taskId, { timeoutMs: 30_000 });
		expect(later.status).toBe("succeeded");
	});

	it("cancels the task when its AbortSignal aborts, and rejects with the signal's reason", async () => {
		const client = createClient({ baseUrl: open.url });
		const controller = new AbortController();
		const id = uniqueId("client-abort");
		const reason = new Error("user pressed stop");
		const run = client.run(
			"sleep",
			{ ms: 20_000 },
			{
				id,
				signal: controller.signal,
				onProgress: () => controller.abort(reason),
			},
		);
		await expect(run).rejects.toBe(reason);
		const { body } = await getTask(open.url, id);
		expect(body.status).toBe("canceled");
		// Canceled by someone else: wait reports it, run-style callers get TaskCanceledError.
		const other = await client.submit("sleep", { ms: 20_000 });
		const waiting = client.run("sleep", { ms: 20_000 }, { id: other.id, timeoutMs: 30_000 }).catch((e: unknown) => e);
		await client.cancel(other.id);
		expect(await waiting).toBeInstanceOf(TaskCanceledError);
	});
});

describe("resuming after a dropped connection", () => {
	it("a socket closed mid-task is reopened with after=<seq> and every event arrives exactly once", async () => {
		const { WS, sockets } = recordingWebSocket();
		const client = createClient({ baseUrl: open.url, WebSocket: WS });
		const task = await client.submit("sleep", { ms: 2500 });
		// An undisturbed subscriber on its own socket sees what was sent.
		const reference: TaskEvent[] = [];
		const watching = (async () => {
			for await (const e of createClient({ baseUrl: open.url }).events(task)) reference.push(e);
		})();
		const events: TaskEvent[] = [];
		let dropped = false;
		const final = await client.wait(task, {
			timeoutMs: 30_000,
			onEvent: (e) => {
				events.push(e);
				// Mid-task, after the second progress event, the connection goes away under the client.
				if (!dropped && events.filter((x) => x.type === "progress").length === 2) {
					dropped = true;
					sockets[0]?.ws.close(4001, "dropped by the test");
				}
			},
		});
		await watching;
		expect(final.status).toBe("succeeded");
		expect(final.output).toEqual({ slept_ms: 2500 });
		expect(dropped).toBe(true);
		expect(sockets.length).toBeGreaterThanOrEqual(2);
		const resumedAt = Number(new URL(sockets[1]?.url ?? "").searchParams.get("after"));
		const lastBeforeDrop = events.filter((e) => e.type === "progress")[1]?.seq;
		expect(resumedAt).toBe(lastBeforeDrop);

		const from = Math.max(events[0]?.seq ?? 0, reference[0]?.seq ?? 0);
		const got = events.filter((e) => e.type !== "snapshot" && e.seq > from);
		const sent = reference.filter((e) => e.type !== "snapshot" && e.seq > from);
		// None twice, in order, and each one as the server sent it.
		expect(seqs(got)).toEqual([...new Set(seqs(got))].sort((a, b) => a - b));
		for (const e of got) expect(e).toEqual(sent.find((r) => r.seq === e.seq));
		// None lost: the task stores superseded progress only as its latest value, so a progress event
		// sent while the client was away may be replaced by a newer one; every other event must be there.
		expect(got.filter((e) => e.type !== "progress")).toEqual(sent.filter((e) => e.type !== "progress"));
		expect(got.filter((e) => e.type === "progress").length).toBeGreaterThanOrEqual(sent.filter((e) => e.type === "progress").length - 1);
		expect(got.at(-1)?.type).toBe("succeeded");
	});

	it("events() resumes too, from a given seq, and ends at the terminal event", async () => {
		const { WS, sockets } = recordingWebSocket();
		const client = createClient({ baseUrl: open.url, WebSocket: WS });
		const task = await client.submit("sleep", { ms: 2000 });
		const seen: TaskEvent[] = [];
		for await (const e of client.events(task)) {
			seen.push(e);
			if (seen.length === 3) sockets[0]?.ws.close(4001, "dropped by the test");
		}
		expect(sockets.length).toBeGreaterThanOrEqual(2);
		expect(seen[0]?.type).toBe("snapshot");
		expect(seen.at(-1)?.type).toBe("succeeded");
		const rest = seqs(seen.slice(1));
		expect(rest).toEqual(rest.map((_, i) => (seen[0]?.seq ?? 0) + 1 + i));
	});
});

describe("without WebSockets", () => {
	it("falls back to long-polling with Prefer: wait, still reporting progress", async () => {
		const { fetchFn, requests } = recordingFetch();
		const client = createClient({ baseUrl: open.url, WebSocket: null, fetch: fetchFn });
		const progress: number[] = [];
		const output = await client.run("sleep", { ms: 2500 }, { onProgress: (p) => progress.push(p.percent), timeoutMs: 30_000 });
		expect(output).toEqual({ slept_ms: 2500 });
		const polls = requests.filter((r) => r.method === "GET" && r.headers.get("prefer")?.startsWith("wait="));
		expect(polls.length).toBeGreaterThanOrEqual(2);
		expect(requests.some((r) => r.url.includes("/ws") || r.url.includes("/events"))).toBe(false);
		expect(progress.length).toBeGreaterThanOrEqual(2);
		expect(progress.at(-1)).toBe(100);
	});

	it("a waiter that only wants the end holds one long-poll, not one a second", async () => {
		const { fetchFn, requests } = recordingFetch();
		const client = createClient({ baseUrl: open.url, WebSocket: null, fetch: fetchFn });
		await client.run("sleep", { ms: 2500 }, { timeoutMs: 30_000 });
		expect(requests.filter((r) => r.method === "GET").length).toBe(1);
	});

	it("streams exact events over SSE with transport 'sse', and events() uses SSE", async () => {
		const { fetchFn, requests } = recordingFetch();
		const client = createClient({ baseUrl: open.url, WebSocket: null, fetch: fetchFn, transport: "sse" });
		const events: TaskEvent[] = [];
		expect(await client.run("sleep", { ms: 1200 }, { onEvent: (e) => events.push(e), timeoutMs: 30_000 })).toEqual({ slept_ms: 1200 });
		expect(requests.some((r) => r.url.includes("/events"))).toBe(true);
		expect(events[0]?.type).toBe("snapshot");
		expect(events.at(-1)?.type).toBe("succeeded");
		const replay: string[] = [];
		for await (const e of client.events(events[0]?.task_id ?? "", { after: 0 })) replay.push(e.type);
		expect(replay[0]).toBe("queued");
		expect(replay.at(-1)).toBe("succeeded");
	});
});

describe("files", () => {
	it("uploads a file, reads it back, and reads a task's file output as bytes", async () => {
		const client = createClient({ baseUrl: open.url });
		const bytes = new TextEncoder().encode("edgetask file\n".repeat(100));
		const stored = await client.files.upload(bytes, { contentType: "text/plain" });
		expect(stored).toMatchObject({ bytes: bytes.length, content_type: "text/plain" });
		expect(stored.id).toMatch(/^file_[0-9a-f]{32}$/);
		const back = await client.files.get(stored.id);
		expect(new Uint8Array(await back.arrayBuffer())).toEqual(bytes);

		// `emit` writes a file whose byte i is i % 251: the task's output is a file reference.
		const output = await client.run("emit", { file_bytes: 5000 }, { timeoutMs: 30_000 });
		expect(isFileRef(output)).toBe(true);
		const task = await client.submit("emit", { file_bytes: 3000 });
		const res = await client.output(task, { wait: 20 });
		const got = new Uint8Array(await res.arrayBuffer());
		expect(got.length).toBe(3000);
		expect(got.every((b, i) => b === i % 251)).toBe(true);
		await expect(client.files.get("file_00000000000000000000000000000000")).rejects.toMatchObject({ status: 404 });
	});
});

describe("auth", () => {
	it("needs the key; with it, runs over a WebSocket using the task's capability token", async () => {
		const anonymous = createClient({ baseUrl: keyed.url });
		const refused = await anonymous.submit("echo", 1).catch((e: unknown) => e);
		expect(refused).toBeInstanceOf(HttpError);
		expect((refused as HttpError).status).toBe(401);

		const { WS, sockets } = recordingWebSocket();
		const client = createClient({ baseUrl: keyed.url, apiKey: KEYS.auth, WebSocket: WS });
		expect(await client.run("sleep", { ms: 300 }, { timeoutMs: 30_000 })).toEqual({ slept_ms: 300 });
		// A browser WebSocket cannot send the key: the socket URL carries the task's token instead.
		expect(new URL(sockets[0]?.url ?? "").searchParams.get("token")).toMatch(/^\d+\./);
		expect((await client.health()).queue_size).toBeTypeOf("number");
		expect(await anonymous.health()).toEqual({ status: "ok" });
	});

	it("a task's capability URLs work without the key: get, wait, events, cancel", async () => {
		const owner = createClient({ baseUrl: keyed.url, apiKey: KEYS.auth });
		const task = await owner.submit("sleep", { ms: 1000 });
		const stranger = createClient({ baseUrl: keyed.url });
		expect((await stranger.get(task.urls.get)).id).toBe(task.id);
		// Same id without the token: 401.
		await expect(stranger.get(task.id)).rejects.toMatchObject({ status: 401 });
		const done = await stranger.wait(task.urls.ws, { timeoutMs: 30_000 });
		expect(done.status).toBe("succeeded");
		const types: string[] = [];
		for await (const e of stranger.events(task.urls.events, { after: 0 })) types.push(e.type);
		expect(types.at(-1)).toBe("succeeded");

		const long = await owner.submit("sleep", { ms: 20_000 });
		expect((await stranger.cancel(long.urls.cancel)).status).toBe("canceled");
	});
});

describe("429", () => {
	it("is retried after Retry-After by default, and thrown as RateLimitedError when retries are off", async () => {
		const eager = createClient({ baseUrl: keyed.url, apiKey: KEYS.rate, maxRetries: 0 });
		// The local limiter counts in windows aligned to the clock: start early in one, so that
		// spending the budget and being refused happen in the same window.
		const windowMs = SUBMIT_WINDOW_S * 1000;
		const leftInWindow = windowMs - (Date.now() % windowMs);
		if (leftInWindow < windowMs / 2) await new Promise((resolve) => setTimeout(resolve, leftInWindow + 100));
		for (let i = 0; i < RATE_LIMIT; i++) await eager.submit("echo", i);
		const error = await eager.submit("echo", RATE_LIMIT).catch((e: unknown) => e);
		expect(error).toBeInstanceOf(RateLimitedError);
		expect((error as RateLimitedError).status).toBe(429);
		expect((error as RateLimitedError).retryAfter).toBeGreaterThanOrEqual(1);

		const { fetchFn, requests } = recordingFetch();
		const patient = createClient({ baseUrl: keyed.url, apiKey: KEYS.rate, fetch: fetchFn });
		const t0 = Date.now();
		const task = await patient.submit("echo", RATE_LIMIT + 1, { wait: 10 });
		expect(task.status).toBe("succeeded");
		expect(requests.filter((r) => r.method === "POST").length).toBeGreaterThanOrEqual(2);
		expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
	});
});

/** Keeps the WebSocketLike type honest: the platform's WebSocket must fit it. */
const _fits: WebSocketLike | null = null as WebSocket | null;
void _fits;
