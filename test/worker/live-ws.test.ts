/**
 * GET /v1/tasks/{id}/ws: the per-task hibernating WebSocket. Upgrade errors, snapshot-first for
 * late and post-completion subscribers, ping/pong and bad frames, 100 subscribers on one task, and
 * sockets that survive the object's eviction.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../shared/waits";
import { call, cancelTask, errorOf, pollTask, settled, submitTask, warmUp } from "./support/api";
import { newId } from "./support/ids";
import { createWithoutMessage, dispatch } from "./support/objects";
import { expectIncreasingSeqs, isEvent, type WireEvent } from "./support/events";
import { connect, drain, taskSocket } from "./support/socket";

beforeAll(warmUp);

describe("upgrade", () => {
	it("answers 426 JSON without an Upgrade header", async () => {
		const id = newId();
		await submitTask({ id, type: "echo", input: 1 }, { wait: 10 });
		const { res, body } = await call(`/v1/tasks/${id}/ws`);
		expect(res.status).toBe(426);
		expect(res.headers.get("upgrade")).toBe("websocket");
		expect(res.headers.get("content-type")).toMatch(/application\/json/);
		expect(errorOf(body).code).toBe("upgrade_required");
	});

	it("answers 404 JSON for an unknown task", async () => {
		const { res, socket } = await connect(`/v1/tasks/${newId()}/ws`);
		expect(socket).toBeNull();
		expect(res.status).toBe(404);
		expect(errorOf(await res.json()).code).toBe("task_not_found");
	});

	it("answers 400 for a bad ?after", async () => {
		const id = newId();
		await submitTask({ id, type: "echo", input: 1 }, { wait: 10 });
		for (const after of ["-1", "x", "1.5"]) {
			const { res, socket } = await connect(`/v1/tasks/${id}/ws?after=${after}`);
			expect(socket, after).toBeNull();
			expect(res.status, after).toBe(400);
			expect(errorOf(await res.json()).code).toBe("invalid_resume");
		}
	});
});

describe("subscribers", () => {
	it("a late subscriber gets a snapshot (running) first, then the rest, then close 1000", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 2000 } });
		await pollTask(id, (t) => t.status === "running", "the task to run");
		const socket = await taskSocket(id);
		const { events, close } = await drain(socket, 20_000);
		expect(close.code).toBe(1000);
		const [snapshot, ...rest] = events;
		expect(snapshot).toMatchObject({ task_id: id, type: "snapshot", data: { id, status: "running", type: "sleep", attempts: 1 } });
		// The snapshot carries the seq of the last event it includes; everything after is newer.
		expect(snapshot!.seq).toBeGreaterThanOrEqual(2);
		expectIncreasingSeqs(events);
		expect(rest.length).toBeGreaterThanOrEqual(1);
		expect(rest.every((e) => e.type === "progress" || e.type === "succeeded")).toBe(true);
		expect(rest.at(-1)).toMatchObject({ type: "succeeded", data: { status: "succeeded", output: { slept_ms: 2000 } } });
	});

	it("a subscriber after completion gets only the final snapshot, then close 1000", async () => {
		const id = newId();
		const done = (await submitTask({ id, type: "sleep", input: { ms: 50 } }, { wait: 15 })).body;
		expect(done.status).toBe("succeeded");
		const socket = await taskSocket(id);
		const { events, close } = await drain(socket);
		expect(close.code).toBe(1000);
		expect(events).toHaveLength(1);
		const { urls: _urls, ...task } = done;
		expect(events[0]).toMatchObject({ type: "snapshot", task_id: id, data: task });
		expect(socket.frames).toHaveLength(1);
	});

	// Guards a fixed bug (src/fanout.ts acceptSocket): see live-sse.test.ts; a socket resuming a finished task
	// after its last event gets nothing and is never closed.
	it("?after=<last seq> of a finished task closes the socket at once with 1000", async () => {
		const id = newId();
		await submitTask({ id, type: "echo", input: 1 }, { wait: 10 });
		const { events } = await drain(await taskSocket(id, 0));
		const lastSeq = events.at(-1)!.seq;
		const socket = await taskSocket(id, lastSeq);
		try {
			const close = await socket.closed(5_000);
			expect(close.code).toBe(1000);
			expect(socket.frames).toEqual([]);
		} finally {
			socket.shut();
		}
	});

	it("ping gets pong, any other frame an error frame, and the socket keeps working", async () => {
		const id = newId();
		await submitTask({ id, type: "hang", input: {}, timeout_s: 30 });
		const socket = await taskSocket(id);
		await socket.waitFor(isEvent, "the snapshot");

		socket.send({ type: "ping" });
		await socket.waitFor((f) => f.type === "pong", "pong");

		const bad: (string | ArrayBuffer)[] = ["hello", '{"type":"subscribe","ids":["x"]}', new Uint8Array([1, 2, 3]).buffer];
		for (const frame of bad) socket.send(frame);
		const errors = () => socket.frames.filter((f) => f.type === "error");
		await socket.waitFor(() => errors().length >= bad.length, "an error frame per bad frame");
		for (const e of errors()) expect(e).toMatchObject({ type: "error", error: { code: "bad_frame" } });

		const before = socket.frames.length;
		socket.send({ type: "ping" });
		await socket.waitFor((f) => f.type === "pong", "a second pong", 10_000, before);
		expect(socket.close).toBeNull();

		// Still subscribed: it gets the terminal event and the close.
		expect((await cancelTask(id)).res.status).toBe(200);
		const { events, close } = await drain(socket);
		expect(close.code).toBe(1000);
		expect(events.at(-1)).toMatchObject({ type: "canceled" });
	});

	it("100 subscribers on one task all get the terminal event and close 1000", { timeout: 60_000 }, async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 2000 } });
		const sockets = await Promise.all(Array.from({ length: 100 }, () => taskSocket(id)));
		const results = await Promise.all(sockets.map((s) => drain(s, 30_000)));
		const finished = new Set<string>();
		for (const { events, close } of results) {
			expect(close.code).toBe(1000);
			expect(events[0]!.type).toBe("snapshot");
			expectIncreasingSeqs(events);
			const last = events.at(-1)!;
			expect(last).toMatchObject({ type: "succeeded", data: { status: "succeeded" } });
			finished.add(JSON.stringify(last));
		}
		// Every subscriber got the very same terminal event.
		expect(finished.size).toBe(1);
	});
});

describe("hibernation", () => {
	/*
	 * evictDurableObject waits for in-flight work and rejects when the object is not running, so it
	 * cannot evict mid-attempt (the alarm holds the object open while the task runs). What works:
	 * subscribe to a task that is stored but whose message was never sent (the object is idle,
	 * holding only hibernatable sockets), evict it, then dispatch it. The fresh instance finds the
	 * sockets with ctx.getWebSockets() and they get the rest of the task.
	 */
	it("sockets survive eviction of an idle object and receive the run that follows", async () => {
		const id = newId();
		await createWithoutMessage({ id, type: "sleep", input: { ms: 300 } });
		const fresh = await taskSocket(id);
		const resumed = await taskSocket(id, 0);
		await fresh.waitFor(isEvent, "the snapshot");
		await resumed.waitFor(isEvent, "the replayed queued event");

		// Mark the instance, evict it, and check the next instance is a new one.
		await runInDurableObject(env.TASKS.getByName(id), (instance) => {
			(instance as unknown as Record<string, unknown>).liveTestMarker = id;
		});
		await evictDurableObject(env.TASKS.getByName(id));
		const marker = await runInDurableObject(env.TASKS.getByName(id), (instance, state) => ({
			marker: (instance as unknown as Record<string, unknown>).liveTestMarker ?? null,
			sockets: state.getWebSockets().length,
		}));
		expect(marker).toEqual({ marker: null, sockets: 2 });

		// The runtime answers pings of a hibernated object itself.
		fresh.send({ type: "ping" });
		await fresh.waitFor((f) => f.type === "pong", "pong while hibernated");

		expect(await dispatch(id)).toBe("started");
		const a = await drain(fresh, 15_000);
		const b = await drain(resumed, 15_000);
		expect(a.close.code).toBe(1000);
		expect(b.close.code).toBe(1000);
		expect(a.events.map((e) => e.type)).toEqual(["snapshot", "running", "succeeded"]);
		expect(a.events[0]).toMatchObject({ seq: 1, data: { status: "queued" } });
		expect(b.events.map((e) => e.type)).toEqual(["queued", "running", "succeeded"]);
		expect(b.events.map((e) => e.seq)).toEqual([1, 2, 3]);
		expect(a.events.slice(1)).toEqual(b.events.slice(1));
		expect((await settled(id)).status).toBe("succeeded");
	});

	it("eviction of a running task waits for its run (the alarm holds the object): the socket sees the end first", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 1500 } });
		const socket = await taskSocket(id, 0);
		await socket.waitFor((f) => f.type === "running", "running");
		const evicted = await Promise.race([
			evictDurableObject(env.TASKS.getByName(id)).then(
				() => (socket.close ? "evicted after the end" : "evicted mid-run"),
				(e: unknown) => `rejected: ${String(e)}`,
			),
			sleep(10_000).then(() => "still waiting after 10 s"),
		]);
		expect(evicted).toBe("evicted after the end");
		const { events, close } = await drain(socket, 20_000);
		expect(close.code).toBe(1000);
		const types = events.map((e: WireEvent) => e.type);
		expect(types[0]).toBe("queued");
		expect(types.at(-1), `events ${JSON.stringify(types)}`).toBe("succeeded");
	});
});
