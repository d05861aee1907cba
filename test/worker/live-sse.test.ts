/**
 * GET /v1/tasks/{id}/events: Server-Sent Events. Headers, framing (`retry:`, `id:`, `event:`,
 * `data:`), snapshot first, Last-Event-ID / ?after resume, close after the terminal event,
 * keep-alive comments.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { cancelTask, errorOf, pollTask, submitTask, warmUp } from "./support/api";
import { newId } from "./support/ids";
import { expectIncreasingSeqs, TERMINAL_TYPES } from "./support/events";
import { openSse, type SseFrame } from "./support/sse";

beforeAll(warmUp);

/** Each frame's `id:` and `event:` agree with the JSON it carries. */
function expectConsistent(frames: SseFrame[], id: string) {
	for (const f of frames.filter((x) => x.data !== null)) {
		const event = JSON.parse(f.data!);
		expect(event.task_id).toBe(id);
		expect(f.id).toBe(String(event.seq));
		expect(f.event).toBe(event.type);
	}
}

describe("SSE", () => {
	it("streams retry, a snapshot, then live events with id/event fields, and ends after the terminal event", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 1200 } });
		const { res, reader } = await openSse(id);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
		expect(res.headers.get("cache-control")).toBe("no-cache");
		const frames = await reader!.readAll(20_000);
		expect(reader!.done).toBe(true);
		expect(reader!.leftover()).toBe("");

		expect(frames[0]).toMatchObject({ retry: 1000, data: null });
		const events = reader!.events();
		expectConsistent(frames, id);
		expect(events[0]).toMatchObject({ type: "snapshot", task_id: id, data: { id, type: "sleep" } });
		expect(["queued", "running"]).toContain(events[0]!.data.status);
		expectIncreasingSeqs(events);
		const last = events.at(-1)!;
		expect(last).toMatchObject({ type: "succeeded", data: { status: "succeeded", output: { slept_ms: 1200 } } });
		expect(events.filter((e) => TERMINAL_TYPES.includes(e.type))).toHaveLength(1);
	});

	it("Last-Event-ID resumes after that seq; ?after does the same; a finished task's stream closes at once", async () => {
		const id = newId();
		await submitTask({ id, type: "sleep", input: { ms: 1200 } });
		const first = await openSse(id, { query: "?after=0" });
		const all = (await first.reader!.readAll(20_000), first.reader!.events());
		// ?after=0: the full stored history, no snapshot.
		expect(all.map((e) => e.type)[0]).toBe("queued");
		expect(all[0]!.seq).toBe(1);
		expect(all.at(-1)!.type).toBe("succeeded");
		expectIncreasingSeqs(all);

		for (const opts of [{ headers: { "last-event-id": "2" } }, { query: "?after=2" }]) {
			const t0 = Date.now();
			const again = await openSse(id, opts);
			expect(again.res.status).toBe(200);
			const frames = await again.reader!.readAll(10_000);
			expect(Date.now() - t0).toBeLessThan(5000);
			expectConsistent(frames, id);
			const events = again.reader!.events();
			expect(events.length).toBeGreaterThanOrEqual(1);
			expect(events.every((e) => e.seq > 2)).toBe(true);
			// Stored history after 2: the latest progress (only that one is kept) and the end.
			expect(events.map((e) => e.type)).toEqual(["progress", "succeeded"]);
			expect(events.at(-1)).toEqual(all.at(-1));
		}
	});

	/*
	 * Guards a fixed bug (src/fanout.ts openStream, same in acceptSocket): a stream is closed at once only when
	 * its replay contains a terminal event. Resuming a finished task with Last-Event-ID = its last
	 * seq (what a client that saw everything and reconnected sends) replays nothing, so the stream
	 * is kept open with keep-alives forever, though no event will ever come.
	 */
	it("resuming a finished task after its last event answers 204, so EventSource stops reconnecting", async () => {
		const id = newId();
		const done = await submitTask({ id, type: "echo", input: 1 }, { wait: 10 });
		expect(done.body.status).toBe("succeeded");
		const history = await openSse(id, { query: "?after=0" });
		await history.reader!.readAll(10_000);
		const lastSeq = history.reader!.events().at(-1)!.seq;
		for (const after of [lastSeq, lastSeq + 5]) {
			const past = await openSse(id, { headers: { "last-event-id": String(after) } });
			expect(past.res.status).toBe(204);
			expect(await past.res.text()).toBe("");
		}
	});

	it("a subscriber after completion gets the final snapshot and the stream ends", async () => {
		const id = newId();
		await submitTask({ id, type: "echo", input: { x: 1 } }, { wait: 10 });
		const { reader } = await openSse(id);
		await reader!.readAll(10_000);
		const events = reader!.events();
		expect(events).toHaveLength(1);
		expect(events[0]).toMatchObject({ type: "snapshot", data: { status: "succeeded", output: { x: 1 } } });
	});

	it("resuming mid-run replays only what the client missed, then continues live", async () => {
		const id = newId();
		await submitTask({ id, type: "hang", input: {}, timeout_s: 30 });
		await pollTask(id, (t) => t.status === "running", "running");
		const { reader } = await openSse(id, { headers: { "last-event-id": "1" } });
		const running = await reader!.until((f) => f.event === "running", 10_000);
		expect(JSON.parse(running!.data!)).toMatchObject({ seq: 2, type: "running" });
		expect((await cancelTask(id)).res.status).toBe(200);
		await reader!.readAll(10_000);
		expect(reader!.events().map((e) => e.type)).toEqual(["running", "canceled"]);
	});

	it("answers 404 JSON for an unknown task and 400 for a bad Last-Event-ID", async () => {
		const unknown = await openSse(newId());
		expect(unknown.res.status).toBe(404);
		expect(errorOf(await unknown.res.json()).code).toBe("task_not_found");

		const id = newId();
		await submitTask({ id, type: "echo", input: 1 }, { wait: 10 });
		for (const bad of ["abc", "-1", "2.5"]) {
			const { res } = await openSse(id, { headers: { "last-event-id": bad } });
			expect(res.status, bad).toBe(400);
			expect(errorOf(await res.json()).code).toBe("invalid_resume");
		}
	});

	it("sends keep-alive comments every 15 s while the task is quiet", { timeout: 40_000 }, async () => {
		const id = newId();
		await submitTask({ id, type: "hang", input: {}, timeout_s: 60 });
		const { reader } = await openSse(id);
		const t0 = Date.now();
		const keepAlive = await reader!.until((f) => f.comments.includes("keep-alive"), 25_000);
		const waited = Date.now() - t0;
		expect(keepAlive).not.toBeNull();
		expect(waited).toBeGreaterThanOrEqual(14_000);
		expect((await cancelTask(id)).res.status).toBe(200);
		await reader!.readAll(10_000);
		expect(reader!.events().at(-1)!.type).toBe("canceled");
	});
});
