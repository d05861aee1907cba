/**
 * GET /v1/ws: one socket following many tasks (subscribe / unsubscribe / ping), with error frames
 * for bad input that leave the socket usable.
 */
import { env } from "cloudflare:workers";
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../shared/waits";
import { call, cancelTask, errorOf, pollTask, settled, submitTask, warmUp } from "./support/api";
import { newId } from "./support/ids";
import { createWithoutMessage, dispatch } from "./support/objects";
import { expectIncreasingSeqs, type Frame, isEvent, isTerminalEvent } from "./support/events";
import { openSocket, type RecordingSocket } from "./support/socket";

beforeAll(warmUp);

const hubSocket = () => openSocket("/v1/ws");

function errorsAfter(socket: RecordingSocket, from: number): Extract<Frame, { type: "error" }>[] {
	return socket.frames.slice(from).filter((f): f is Extract<Frame, { type: "error" }> => f.type === "error");
}

describe("GET /v1/ws", () => {
	it("answers 426 without an Upgrade header", async () => {
		const { res, body } = await call("/v1/ws");
		expect(res.status).toBe(426);
		expect(errorOf(body).code).toBe("upgrade_required");
	});

	it("one socket gets a snapshot then the events of each of 3 tasks, through their terminal events", async () => {
		const specs = [
			{ id: newId(), type: "sleep", input: { ms: 1200 } },
			{ id: newId(), type: "fail", input: { message: "x", permanent: true } },
			{ id: newId(), type: "hang", input: {}, timeout_s: 1 },
		];
		const socket = await hubSocket();
		// Subscribed before they are submitted would be unknown; submit first, then subscribe at once.
		await Promise.all(specs.map((s) => submitTask(s)));
		socket.send({ type: "subscribe", ids: specs.map((s) => s.id) });
		for (const { id } of specs) {
			await socket.waitFor((f) => isEvent(f) && f.task_id === id && isTerminalEvent(f), `the end of ${id}`, 15_000);
		}
		const ends: Record<string, string> = {};
		for (const { id } of specs) {
			const events = socket.events(id);
			expect(events[0]!.type, id).toBe("snapshot");
			expectIncreasingSeqs(events);
			// Nothing after the terminal event.
			const end = events.findIndex(isTerminalEvent);
			expect(end).toBe(events.length - 1);
			ends[id] = events[end]!.type === "snapshot" ? String(events[end]!.data.status) : events[end]!.type;
		}
		expect(ends).toEqual({ [specs[0]!.id]: "succeeded", [specs[1]!.id]: "failed", [specs[2]!.id]: "timed_out" });
		expect(socket.frames.filter((f) => f.type === "error")).toEqual([]);
		// The hub socket outlives its tasks.
		expect(socket.close).toBeNull();
		await socket.ping();
		socket.shut();
	});

	it("a task followed from before it runs: snapshot (queued or running), running, progress…, succeeded, in seq order", async () => {
		const id = newId();
		const socket = await hubSocket();
		await submitTask({ id, type: "sleep", input: { ms: 1500 } });
		socket.send({ type: "subscribe", ids: [id] });
		await socket.waitFor((f) => isEvent(f) && f.task_id === id && f.type === "succeeded", "succeeded", 15_000);
		const events = socket.events(id);
		expect(events[0]!.type).toBe("snapshot");
		expectIncreasingSeqs(events);
		const types = events.map((e) => e.type);
		expect(types.filter((t) => t === "progress").length).toBeGreaterThanOrEqual(1);
		expect(types.at(-1)).toBe("succeeded");
		socket.shut();
	});

	it("subscribing to a finished task sends its final snapshot and nothing more", async () => {
		const id = newId();
		await submitTask({ id, type: "echo", input: { a: 1 } }, { wait: 10 });
		const socket = await hubSocket();
		socket.send({ type: "subscribe", ids: [id] });
		const snapshot = await socket.waitFor(isEvent, "snapshot");
		expect(snapshot).toMatchObject({ type: "snapshot", task_id: id, data: { status: "succeeded", output: { a: 1 } } });
		await socket.ping();
		expect(socket.events(id)).toHaveLength(1);
		socket.shut();
	});

	it("unsubscribe stops a task's events; the other task's keep coming", async () => {
		const [a, b] = [newId(), newId()];
		await Promise.all([a, b].map((id) => submitTask({ id, type: "hang", input: {}, timeout_s: 30 })));
		const socket = await hubSocket();
		socket.send({ type: "subscribe", ids: [a, b] });
		await socket.waitFor(() => socket.events(a).length > 0 && socket.events(b).length > 0, "both snapshots");

		socket.send({ type: "unsubscribe", ids: [a] });
		const ack = await socket.waitFor((f) => f.type === "unsubscribed", "unsubscribed");
		expect(ack).toEqual({ type: "unsubscribed", ids: [a] });
		const seenOfA = socket.events(a).length;

		expect((await cancelTask(a)).res.status).toBe(200);
		expect((await cancelTask(b)).res.status).toBe(200);
		await socket.waitFor((f) => isEvent(f) && f.task_id === b && f.type === "canceled", "b canceled");
		// Give a stray event of `a` time to arrive: none may.
		await sleep(500);
		expect(socket.events(a)).toHaveLength(seenOfA);
		expect(socket.events(a).some((e) => e.type === "canceled")).toBe(false);
		socket.shut();
	});

	it("unknown ids get task_not_found per id; known ids in the same frame are followed", async () => {
		const known = newId();
		const unknown = [newId(), newId()];
		await submitTask({ id: known, type: "sleep", input: { ms: 300 } });
		const socket = await hubSocket();
		socket.send({ type: "subscribe", ids: [unknown[0], known, unknown[1]] });
		await socket.waitFor((f) => isEvent(f) && f.task_id === known && isTerminalEvent(f), "the known task's end", 15_000);
		const errors = errorsAfter(socket, 0);
		expect(errors.map((e) => e.error.code)).toEqual(["task_not_found", "task_not_found"]);
		expect(new Set(errors.map((e) => e.error.id))).toEqual(new Set(unknown));
		socket.shut();
	});

	it("malformed frames get bad_frame errors and the socket keeps working", async () => {
		const socket = await hubSocket();
		const bad: (string | ArrayBuffer)[] = [
			"not json",
			new Uint8Array([123, 125]).buffer, // binary, even if it is "{}"
			"42",
			"null",
			'"subscribe"',
			'{"type":"nope"}',
			'{"type":"subscribe"}',
			'{"type":"subscribe","ids":[]}',
			'{"type":"subscribe","ids":"abc"}',
			'{"type":"subscribe","ids":[42]}',
			'{"type":"subscribe","ids":["has space"]}',
			`{"type":"subscribe","ids":["${"x".repeat(129)}"]}`,
			JSON.stringify({ type: "subscribe", ids: Array.from({ length: 1001 }, (_, i) => `t${i}`) }),
			JSON.stringify({ type: "subscribe", ids: ["a"], pad: "x".repeat(70 * 1024) }),
		];
		for (const frame of bad) socket.send(frame);
		await socket.waitFor(() => errorsAfter(socket, 0).length >= bad.length, "one error frame per bad frame");
		const errors = errorsAfter(socket, 0);
		expect(errors).toHaveLength(bad.length);
		for (const e of errors) {
			expect(e.error.code).toBe("bad_frame");
			expect(typeof e.error.message).toBe("string");
		}
		expect(socket.close).toBeNull();
		await socket.ping();

		// And it still follows tasks.
		const id = newId();
		await submitTask({ id, type: "echo", input: "ok" }, { wait: 10 });
		socket.send({ type: "subscribe", ids: [id] });
		await socket.waitFor((f) => isEvent(f) && f.task_id === id, "the snapshot");
		expect(socket.frames.filter((f) => f.type === "error")).toHaveLength(bad.length);
		socket.shut();
	});

	it("a repeated id and a re-subscribe do not duplicate events", async () => {
		const id = newId();
		await submitTask({ id, type: "hang", input: {}, timeout_s: 30 });
		await pollTask(id, (t) => t.status === "running", "running");
		const socket = await hubSocket();
		socket.send({ type: "subscribe", ids: [id, id] });
		await socket.waitFor(isEvent, "the snapshot");
		socket.send({ type: "subscribe", ids: [id] });
		await socket.ping();
		expect((await cancelTask(id)).res.status).toBe(200);
		await socket.waitFor((f) => isEvent(f) && f.type === "canceled", "canceled");
		await sleep(300);
		expect(socket.events(id).map((e) => e.type)).toEqual(["snapshot", "canceled"]);
		socket.shut();
	});

	/*
	 * Guards a fixed bug (src/SubscriptionHub.ts): a socket's subscribed ids live in its WebSocket attachment,
	 * which the runtime caps at 16 KiB. Around 390 UUID ids (or ~120 ids of the maximum 128
	 * characters) serializeAttachment throws inside webSocketMessage: the frame gets no answer at
	 * all (no snapshot, no error), and the documented 1000-per-socket limit can never be reached.
	 */
	it("one frame of 500 ids gets an answer for each id", { timeout: 20_000 }, async () => {
		const socket = await hubSocket();
		const ids = Array.from({ length: 500 }, () => newId());
		socket.send({ type: "subscribe", ids });
		await socket.waitFor(() => errorsAfter(socket, 0).length >= ids.length, "500 task_not_found errors", 10_000);
		expect(new Set(errorsAfter(socket, 0).map((e) => e.error.id))).toEqual(new Set(ids));
		await socket.ping();
		socket.shut();
	});

	it("a task's events reach every hub socket that follows it", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 800 } });
		const sockets = await Promise.all([0, 1, 2].map(() => hubSocket()));
		for (const s of sockets) s.send({ type: "subscribe", ids: [id] });
		for (const s of sockets) await s.waitFor((f) => isEvent(f) && f.task_id === id && isTerminalEvent(f), "the end", 15_000);
		expect((await settled(id)).status).toBe("succeeded");
		for (const s of sockets) {
			expect(s.events(id)[0]!.type).toBe("snapshot");
			expectIncreasingSeqs(s.events(id));
			s.shut();
		}
	});

	it("20 tasks on one socket: every task's events arrive snapshot first and in seq order", { timeout: 60_000 }, async () => {
		const ids = Array.from({ length: 20 }, () => newId());
		const socket = await hubSocket();
		await Promise.all(ids.map((id, i) => submitTask({ id, type: "sleep", input: { ms: 1000 + 50 * i } })));
		socket.send({ type: "subscribe", ids });
		for (const id of ids) await socket.waitFor((f) => isEvent(f) && f.task_id === id && isTerminalEvent(f), `the end of ${id}`, 30_000);
		for (const id of ids) {
			const events = socket.events(id);
			expect(events[0]!.type, id).toBe("snapshot");
			expectIncreasingSeqs(events);
			expect(events.at(-1)!.type === "succeeded" || events.at(-1)!.data.status === "succeeded").toBe(true);
		}
		socket.shut();
	});
});

describe("hibernation of /v1/ws", () => {
	it("a hub socket keeps its subscriptions across eviction of the hub and of the task's object", async () => {
		const id = newId();
		await createWithoutMessage({ id, type: "sleep", input: { ms: 300 } });
		const socket = await hubSocket();
		socket.send({ type: "subscribe", ids: [id] });
		await socket.waitFor((f) => isEvent(f) && f.task_id === id, "the snapshot");

		// This socket's hub is named per connection by the API; the task's object lists it as a follower.
		const hubs = await runInDurableObject(env.TASKS.getByName(id), (_instance, state) =>
			state.storage.sql
				.exec<{ hub: string }>("SELECT hub FROM followers")
				.toArray()
				.map((row) => row.hub),
		);
		expect(hubs).toHaveLength(1);
		await evictDurableObject(env.HUBS.getByName(hubs[0]!));
		await evictDurableObject(env.TASKS.getByName(id));

		expect(await dispatch(id)).toBe("started");
		await socket.waitFor((f) => isEvent(f) && f.task_id === id && f.type === "succeeded", "succeeded after eviction", 15_000);
		expect(socket.events(id).map((e) => e.type)).toEqual(["snapshot", "running", "succeeded"]);
		expect(socket.close).toBeNull();
		await socket.ping();
		socket.shut();
	});
});
