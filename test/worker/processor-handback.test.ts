/**
 * Nothing a processor hands back may wedge its task: outputs that cannot be stored (3 MB, a
 * BigInt, a cycle), progress calls with any percent and messages of any size or type, thrown
 * huge messages and thrown values that cannot be shown. Each task ends (failed with a clear code,
 * or as it should), releases a parked long-poll and closes its WebSocket, and reads back the same
 * after its object is evicted: what storage holds is what the task said.
 */
import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_ERROR_MESSAGE, MAX_PROGRESS_MESSAGE } from "../../src/task/storable";
import { sleep } from "../shared/waits";
import { getTask, warmUp, type Answer, type TaskView } from "./support/api";
import { isEvent, type WireEvent } from "./support/events";
import { newId } from "./support/ids";
import { createWithoutMessage, dispatch, refuseSucceededWrites, storedState, taskStub } from "./support/objects";
import { drain, taskSocket } from "./support/socket";

beforeAll(warmUp);

interface Ended {
	id: string;
	/** The long-poll parked before the run started. */
	waiter: Answer<TaskView>;
	/** When the waiter was answered, epoch ms. */
	releasedAt: number;
	events: WireEvent[];
	close: { code: number; reason: string };
}

/**
 * Stores a `misbehave` task, parks a long-poll and a WebSocket on it, starts it, and collects
 * what both were told. `prepare` runs in the task's object before the start.
 */
async function runMisbehaving(
	input: Record<string, unknown>,
	prepare?: (instance: any, state: DurableObjectState) => void,
): Promise<Ended> {
	const id = newId("handback");
	await createWithoutMessage({ id, type: "misbehave", input });
	if (prepare) await runInDurableObject(taskStub(id), (instance, state) => prepare(instance, state));
	const socket = await taskSocket(id);
	let releasedAt = 0;
	const waiter = getTask(id, { wait: 20 }).then((answer) => {
		releasedAt = Date.now();
		return answer;
	});
	await sleep(200); // the long-poll is parked in the object
	expect(await dispatch(id)).toBe("started");
	const { events, close } = await drain(socket, 25_000);
	return { id, waiter: await waiter, releasedAt, events, close };
}

/** The task ended `status` (with `code`), everyone was released within 1 s of its end, and eviction changes nothing. */
async function expectEndedAndReadable(ended: Ended, status: string, code: string | null): Promise<TaskView> {
	const { id, waiter, releasedAt, events, close } = ended;
	expect(waiter.res.status).toBe(200);
	expect(waiter.body).toMatchObject({ id, status });
	expect(waiter.body.error?.code ?? null).toBe(code);
	const finishedAt = Date.parse(waiter.body.finished_at ?? "");
	expect(releasedAt - finishedAt, "the long-poll was released by the end, not by its 20 s cap").toBeLessThan(1000);

	expect(close.code).toBe(1000);
	const last = events.at(-1);
	expect(last?.type).toBe(status);
	expect(last?.data.error?.code ?? null).toBe(code);

	await evictDurableObject(taskStub(id));
	const again = await getTask(id);
	expect(again.res.status).toBe(200);
	expect(again.body).toEqual(waiter.body);
	const { record, alarm } = await storedState(id);
	expect(record?.status).toBe(status);
	// A terminal task keeps an alarm: its health report's retry, or its expiry.
	expect(alarm).not.toBeNull();
	return again.body;
}

describe("outputs that cannot be stored", () => {
	it("3 MB of output ends the task failed output_too_large within 1 s of the run", async () => {
		const ended = await runMisbehaving({ output: "bytes", bytes: 3_000_000, hold_ms: 300 });
		const task = await expectEndedAndReadable(ended, "failed", "output_too_large");
		expect(task.output).toBeNull();
		expect(task.error?.message).toContain("3000002 bytes");
		expect(task.error?.message).toContain("MAX_OUTPUT_BYTES");
		expect(task.attempts).toBe(1);
		expect(task.metrics.run_ms).toBeLessThan(300 + 1000);
	});

	it("an output of exactly MAX_OUTPUT_BYTES (1 MiB) is kept whole (in R2, past 64 KiB)", async () => {
		// A JSON string of n characters is n + 2 bytes.
		const ended = await runMisbehaving({ output: "bytes", bytes: 1_048_576 - 2 });
		const task = await expectEndedAndReadable(ended, "succeeded", null);
		expect(task.output).toEqual({ $file: expect.any(String), bytes: 1_048_576, content_type: "application/json" });
	});

	it("a BigInt in the output ends the task failed output_invalid", async () => {
		const ended = await runMisbehaving({ output: "bigint", hold_ms: 300 });
		const task = await expectEndedAndReadable(ended, "failed", "output_invalid");
		expect(task.error?.message).toMatch(/BigInt/i);
		expect(task.attempts).toBe(1);
	});

	it("a cycle in the output ends the task failed output_invalid", async () => {
		const ended = await runMisbehaving({ output: "cycle", hold_ms: 300 });
		const task = await expectEndedAndReadable(ended, "failed", "output_invalid");
		expect(task.error?.message).toMatch(/circular/i);
	});

	it("a result the storage itself refuses fails the task storage_error; memory never says more than storage", async () => {
		// The storage refuses the write of the succeeded record (a trigger raises, as the row limit
		// or a full disk would): the task must not look succeeded anywhere.
		const ended = await runMisbehaving({ output: "bytes", bytes: 100, hold_ms: 300 }, (_instance, state) => {
			refuseSucceededWrites(state);
		});
		const task = await expectEndedAndReadable(ended, "failed", "storage_error");
		expect(task.output).toBeNull();
		expect(task.error?.message.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE);
		expect(ended.events.filter((e) => e.type === "succeeded")).toEqual([]);
	});
});

describe("progress calls of any kind", () => {
	it("percent is clamped to 0-100, non-numbers are ignored, messages are cut at 256 and non-strings dropped", async () => {
		const id = newId("handback");
		await createWithoutMessage({
			id,
			type: "misbehave",
			input: {
				progress: [
					{ percent: "NaN", message: "ignored" },
					{ percent: "text", message: "ignored" },
					{ percent: "Infinity" },
					{ percent: -5, message_as: "object", message: "an object" },
				],
				hold_ms: 700,
			},
		});
		const socket = await taskSocket(id);
		expect(await dispatch(id)).toBe("started");
		const first = await socket.waitFor((f) => isEvent(f) && f.type === "progress", "the first progress event");
		expect(first.data.progress).toEqual({ percent: 0, message: null });
		expect((await getTask(id)).body.progress).toEqual({ percent: 0, message: null });
		const { events } = await drain(socket);
		expect(events.filter((e) => e.type === "progress").map((e) => e.data.progress)).toEqual([{ percent: 0, message: null }]);
		expect(events.at(-1)?.type).toBe("succeeded");

		// A 5 MB message over 100 percent, then one whose 256th character is half of an emoji.
		const big = newId("handback");
		await createWithoutMessage({
			id: big,
			type: "misbehave",
			input: { progress: [{ percent: 150, message: "m", repeat: 1_000_000 }], hold_ms: 400 },
		});
		expect(await dispatch(big)).toBe("started");
		await sleep(200);
		expect((await getTask(big)).body.progress).toEqual({ percent: 100, message: "m".repeat(MAX_PROGRESS_MESSAGE) });
		expect((await getTask(big, { wait: 10 })).body.status).toBe("succeeded");

		const emoji = newId("handback");
		await createWithoutMessage({
			id: emoji,
			type: "misbehave",
			input: { progress: [{ percent: 42.5, message: `${"a".repeat(MAX_PROGRESS_MESSAGE - 1)}\u{1F600}b` }], hold_ms: 400 },
		});
		const emojiSocket = await taskSocket(emoji);
		expect(await dispatch(emoji)).toBe("started");
		const progress = await emojiSocket.waitFor((f) => isEvent(f) && f.type === "progress", "the progress event");
		// Cut before the emoji rather than through it.
		expect(progress.data.progress).toEqual({ percent: 42.5, message: "a".repeat(MAX_PROGRESS_MESSAGE - 1) });
		await drain(emojiSocket);
	});
});

describe("what a processor throws", () => {
	it("a 5 MB error message is cut to 1,024 characters, retried, and the task ends failed", async () => {
		const ended = await runMisbehaving({ throws: "huge_message" });
		const task = await expectEndedAndReadable(ended, "failed", "processor_error");
		// misbehave allows 2 attempts: the cut error was stored with the retry, then with the end.
		expect(task.attempts).toBe(2);
		expect(task.error?.message).toBe("e".repeat(MAX_ERROR_MESSAGE));
		expect(ended.events.filter((e) => e.type === "retrying")).toHaveLength(1);
	});

	it("a thrown value that cannot be turned into text ends the task failed, not stuck", async () => {
		const ended = await runMisbehaving({ throws: "unprintable" });
		const task = await expectEndedAndReadable(ended, "failed", "processor_error");
		expect(task.attempts).toBe(2);
		expect(task.error?.message).toBe("(the processor threw a value that cannot be shown)");
	});
});
