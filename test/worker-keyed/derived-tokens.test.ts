/**
 * Task tokens when API_KEYS is set and TOKEN_SECRET is not: they are signed with a key derived
 * from API_KEYS, by the worker that issues them and by the hub that checks them on /v1/ws (both
 * run with this project's env, no per-request overrides). Each forged token below is refused only
 * because its signature is checked: skip the check and every one of them opens the task.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { taskToken } from "../../src/api/auth";
import { call, errorOf, getTask, submitTask, type TaskView, tokenOf } from "../worker/support/api";
import { isEvent } from "../worker/support/events";
import { newId } from "../worker/support/ids";
import { connect, openSocket } from "../worker/support/socket";
import { AUTH, KEYED_API_KEYS } from "./keys";

beforeAll(async () => {
	const { body } = await submitTask({ type: "echo", input: "warm-up" }, { wait: 20, headers: AUTH });
	expect(body.status).toBe("succeeded");
});

/** Tokens for `id` signed every way but the right one. */
async function forgedTokens(id: string): Promise<Record<string, string>> {
	return {
		"the public key of a deployment without keys": await taskToken(
			{ ...env, API_KEYS: undefined, TOKEN_SECRET: undefined } as Env,
			id,
			3600,
		),
		"a TOKEN_SECRET this deployment does not have": await taskToken({ ...env, TOKEN_SECRET: "test-token-secret" } as Env, id, 3600),
		"other API keys": await taskToken({ ...env, API_KEYS: "someone-else's-key" } as Env, id, 3600),
		"one of the keys alone": await taskToken({ ...env, API_KEYS: KEYED_API_KEYS[0] } as Env, id, 3600),
	};
}

describe("task tokens signed with the key derived from API_KEYS", () => {
	it("open the task's GET, events, ws and cancel without a key", async () => {
		const id = newId("keyed");
		const { res, body: task } = await submitTask({ id, type: "hang", input: {}, timeout_s: 60 }, { headers: AUTH });
		expect(res.status).toBe(202);
		const token = tokenOf(task.urls.get);
		expect(token).toBe(await taskToken(env, id, Number(token.split(".")[0]) - Math.floor(Date.now() / 1000)));

		expect((await getTask(id)).res.status).toBe(401);
		const got = await call(`/v1/tasks/${id}?token=${token}`);
		expect(got.res.status).toBe(200);
		expect(got.body).toMatchObject({ id, status: expect.stringMatching(/queued|running/) });
		const socket = await openSocket(`/v1/tasks/${id}/ws?token=${token}`);
		await socket.waitFor(isEvent, "the snapshot");
		const events = await call(`/v1/tasks/${id}/events?token=${token}`, { signal: AbortSignal.timeout(300) }).catch((e: unknown) => e);
		expect(events).toBeInstanceOf(Error); // a live stream: still open when the client gives up
		expect((await call(`/v1/tasks/${id}/cancel?token=${token}`, { method: "POST" })).body).toMatchObject({ status: "canceled" });
		await socket.waitFor((f) => f.type === "canceled", "the end on the token's socket");
	});

	it("a token signed any other way is 401 on every task route; the genuine one still works", async () => {
		const id = newId("keyed");
		const { body: task } = await submitTask({ id, type: "echo", input: "t" }, { wait: 10, headers: AUTH });
		for (const [how, forged] of Object.entries(await forgedTokens(id))) {
			for (const [path, init] of [
				[`/v1/tasks/${id}?token=${forged}`, {}],
				[`/v1/tasks/${id}/events?token=${forged}`, {}],
				[`/v1/tasks/${id}/cancel?token=${forged}`, { method: "POST" }],
			] as const) {
				const answer = await call(path, init);
				expect(answer.res.status, `${how}: ${path}`).toBe(401);
				expect(errorOf(answer.body).code).toBe("unauthorized");
			}
			const ws = await connect(`/v1/tasks/${id}/ws?token=${forged}`);
			expect(ws.res.status, how).toBe(401);
		}
		expect((await call(`/v1/tasks/${id}?token=${tokenOf(task.urls.get)}`)).res.status).toBe(200);
	});

	it("rotating API_KEYS invalidates the tokens derived from the old ones", async () => {
		const id = newId("keyed");
		const { body: task } = await submitTask({ id, type: "echo", input: "r" }, { wait: 10, headers: AUTH });
		const rotated = { API_KEYS: `${KEYED_API_KEYS[0]},a-new-key` };
		expect((await call(`/v1/tasks/${id}?token=${tokenOf(task.urls.get)}`, {}, rotated)).res.status).toBe(401);
		expect((await call(`/v1/tasks/${id}?token=${tokenOf(task.urls.get)}`)).res.status).toBe(200);
	});
});

describe("/v1/ws without a key: each subscription checked by the hub with the derived key", () => {
	it("a genuine token subscribes; every forged one is forbidden and sees nothing of the task", async () => {
		const id = newId("keyed");
		const { body: task } = await submitTask({ id, type: "hang", input: {}, timeout_s: 60 }, { headers: AUTH });
		const hub = await openSocket("/v1/ws");
		for (const [how, forged] of Object.entries(await forgedTokens(id))) {
			const from = hub.frames.length;
			hub.send({ type: "subscribe", ids: [id], tokens: { [id]: forged } });
			const answer = await hub.waitFor((f) => f.type === "error" || isEvent(f), `the answer to ${how}`, 10_000, from);
			expect(answer, how).toMatchObject({ type: "error", error: { code: "forbidden", id } });
		}
		expect(hub.events()).toEqual([]);

		hub.send({ type: "subscribe", ids: [id], tokens: { [id]: tokenOf(task.urls.get) } });
		const snapshot = await hub.waitFor(isEvent, "the snapshot");
		expect(snapshot).toMatchObject({ type: "snapshot", task_id: id, data: { input: {} } });
		await call(`/v1/tasks/${id}/cancel`, { method: "POST", headers: AUTH });
		await hub.waitFor((f) => isEvent(f) && f.type === "canceled", "the end");
		hub.shut();
	});
});
