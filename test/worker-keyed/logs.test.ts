/**
 * Logs carry task ids and error codes, never an API key, a task token or a task's input. Every
 * console call made in this runtime (the worker, the consumer, the task objects, the hubs) is
 * captured while requests that handle all three go through paths that do log: refused keys and
 * tokens, a failing processor whose error repeats its input, a killed object under a long-poll,
 * a malformed queue message, a result the storage refuses, a hub given a forged token.
 */
import { env } from "cloudflare:workers";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { taskToken } from "../../src/api/auth";
import { eventually, sleep } from "../shared/waits";
import { call, getTask, submitTask, type TaskView, tokenOf } from "../worker/support/api";
import { isEvent } from "../worker/support/events";
import { newId } from "../worker/support/ids";
import { createWithoutMessage, refuseSucceededWrites, runInObject, taskStub } from "../worker/support/objects";
import { connect, openSocket } from "../worker/support/socket";
import { AUTH, KEYED_API_KEYS } from "./keys";

const lines: string[] = [];
const MARKER = `input-marker-${crypto.randomUUID()}`;

beforeAll(() => {
	for (const level of ["log", "info", "warn", "error", "debug"] as const) {
		vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
			lines.push(
				args.map((a) => (a instanceof Error ? `${a.message} ${a.stack ?? ""}` : typeof a === "string" ? a : JSON.stringify(a))).join(" "),
			);
		});
	}
});
afterAll(() => vi.restoreAllMocks());

describe("logs", () => {
	it("never carry a key, a token or an input, on paths that do log", { timeout: 60_000 }, async () => {
		const tokens: string[] = [];
		// A task whose processor fails with a message made of its input.
		const failing = await submitTask(
			{ type: "fail", input: { message: `failed on ${MARKER}`, permanent: true } },
			{ wait: 10, headers: AUTH },
		);
		expect(failing.body).toMatchObject({ status: "failed", error: { message: `failed on ${MARKER}` } });
		tokens.push(tokenOf(failing.body.urls.get));
		// Read with its token, and refused with wrong keys and forged tokens.
		expect((await call(`/v1/tasks/${failing.body.id}?token=${tokens[0]}`)).res.status).toBe(200);
		expect((await getTask(failing.body.id, { headers: { authorization: `Bearer ${KEYED_API_KEYS[1]}x` } })).res.status).toBe(401);
		const forged = await taskToken({ ...env, API_KEYS: "another" } as Env, failing.body.id, 600);
		expect((await call(`/v1/tasks/${failing.body.id}?token=${forged}`)).res.status).toBe(401);

		// A result the storage refuses (logged), from a task whose input and progress carry the marker.
		const refusedId = newId("logs");
		await createWithoutMessage({
			id: refusedId,
			type: "misbehave",
			input: { output: "bytes", bytes: 10, progress: [{ percent: 1, message: MARKER }] },
		});
		await runInObject(taskStub(refusedId), (_instance, state) => refuseSucceededWrites(state));
		const refused = await submitTask(
			{ id: refusedId, type: "misbehave", input: { output: "bytes", bytes: 10, progress: [{ percent: 1, message: MARKER }] } },
			{ headers: AUTH },
		);
		tokens.push(tokenOf(refused.body.urls.get));
		await env.TASK_QUEUE.send({ id: refusedId, reason: "submit" });
		expect((await getTask(refusedId, { wait: 20, headers: AUTH })).body.error?.code).toBe("storage_error");

		// A long-poll (with a token) whose task object is killed under it: the API logs its retry.
		const waited = await submitTask({ type: "sleep", input: { ms: 20_000, note: MARKER } }, { headers: AUTH });
		tokens.push(tokenOf(waited.body.urls.get));
		const poll = call(`/v1/tasks/${waited.body.id}?token=${tokenOf(waited.body.urls.get)}`, { headers: { prefer: "wait=5" } });
		await sleep(300);
		await runInObject(taskStub(waited.body.id), (_instance, state) => state.abort("killed under a long-poll")).catch(() => undefined);
		expect((await poll).res.status).toBeLessThan(500);

		// A hub given a forged token, then a genuine one.
		const hub = await openSocket("/v1/ws");
		hub.send({ type: "subscribe", ids: [waited.body.id], tokens: { [waited.body.id]: forged } });
		await hub.waitFor((f) => f.type === "error", "forbidden");
		hub.send({ type: "subscribe", ids: [waited.body.id], tokens: { [waited.body.id]: tokenOf(waited.body.urls.get) } });
		await hub.waitFor(isEvent, "the snapshot");
		hub.shut();
		const ws = await connect(`/v1/tasks/${waited.body.id}/ws?token=${forged}`);
		expect(ws.res.status).toBe(401);

		// A malformed queue message.
		await env.TASK_QUEUE.send({ id: `not a task id ${MARKER}` });
		await call(`/v1/tasks/${waited.body.id}/cancel`, { method: "POST", headers: AUTH });

		// The paths above did log (so the capture works), naming tasks by id.
		await eventually(
			async () => (lines.some((l) => l.includes("dropping malformed message")) ? true : undefined),
			"the consumer's log line",
			10_000,
		);
		expect(lines.some((l) => l.includes(`task ${refused.body.id}:`) && l.includes("could not be stored"))).toBe(true);
		expect(lines.some((l) => l.includes(`task ${waited.body.id}: object call failed`))).toBe(true);
		// And none of them carries a secret or an input.
		const secrets = [...KEYED_API_KEYS, ...tokens.filter(Boolean), forged, MARKER];
		const leaks = lines.filter((l) => secrets.some((s) => l.includes(s) || l.includes(s.split(".")[1] ?? s)));
		expect(leaks, `${lines.length} lines captured`).toEqual([]);
	});
});
