/**
 * Auth: API keys, the minimal anonymous /health, the closed-by-default mode, per-task capability
 * tokens, and tokens on the multi-task socket.
 *
 * The worker runs with API_KEYS (or AUTH_MODE "required") through `worker.fetch` with an
 * overridden env. Durable Objects keep the test bindings (AUTH_MODE "open", no API_KEYS, and a
 * TOKEN_SECRET): that only matters for the multi-task hub, which checks tokens with its own env.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { taskToken, verifyTaskToken } from "../../src/api/auth";
import { sleep } from "../shared/waits";
import { call, type EnvOverrides, errorOf, getTask, ORIGIN, send, submitTask, type TaskView, tokenOf } from "./support/api";
import { newId } from "./support/ids";
import { awayFromWindowEnd, TIGHT_LIMIT, tightLimiter } from "./support/limits";
import { connect, type RecordingSocket } from "./support/socket";
import { readSse } from "./support/sse";

const KEYED: EnvOverrides = { API_KEYS: "k1,k2", AUTH_MODE: "required" };
const CLOSED: EnvOverrides = { API_KEYS: undefined, AUTH_MODE: "required" };
const keyedEnv = { ...env, ...KEYED } as Env;
const k1 = { authorization: "Bearer k1" };
const k2 = { authorization: "Bearer k2" };

function expect401(answer: { res: Response; body: unknown }, code = "unauthorized"): void {
	expect(answer.res.status, JSON.stringify(answer.body)).toBe(401);
	expect(answer.res.headers.get("content-type")).toMatch(/application\/json/);
	expect(answer.res.headers.get("www-authenticate")).toBe('Bearer realm="edgetask"');
	expect(errorOf(answer.body).code).toBe(code);
}

/** Submits with key k1 and returns the task with its token-carrying URLs. */
async function submitKeyed(body: Record<string, unknown>): Promise<TaskView> {
	const { res, body: task } = await submitTask(body, { headers: k1, env: KEYED });
	expect([200, 202], JSON.stringify(task)).toContain(res.status);
	return task;
}

/** Path + query of a URL (the ws URL has the ws: scheme). */
function pathOf(url: string): string {
	const u = new URL(url.replace(/^ws/, "http"));
	return `${u.pathname}${u.search}`;
}

describe("API keys", () => {
	it("without a key: 401 JSON with WWW-Authenticate on every route but /health and /v1/ws", async () => {
		const id = newId("auth");
		const routes: [string, RequestInit][] = [
			["/v1/tasks", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ id, type: "echo" }) }],
			[`/v1/tasks/${id}`, {}],
			[`/v1/tasks/${id}/cancel`, { method: "POST" }],
			[`/v1/tasks/${id}/events`, {}],
			[`/v1/tasks/${id}/ws`, { headers: { upgrade: "websocket" } }],
			["/process", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ uuid: id, ms: 1 }) }],
			["/nope", {}],
		];
		for (const [path, init] of routes) expect401(await call(path, init, KEYED));
		// Nothing was created by the refused submissions.
		expect((await getTask(id)).res.status).toBe(404);
	});

	it("a wrong or malformed key is 401; Bearer k1 and Bearer k2 both work", async () => {
		const wrong = [
			"Bearer k3",
			"Bearer k1,k2",
			"Bearer k1 k2",
			"Bearer K1",
			"Bearer  ",
			"Bearer",
			"Basic k1",
			"k1",
			"Bearer k1x",
			"Token k1",
			"Bearer \u00e91",
		];
		for (const authorization of wrong) {
			const id = newId("auth");
			expect401(await submitTask({ id, type: "echo" }, { headers: { authorization }, env: KEYED }));
			expect401(await getTask(id, { headers: { authorization }, env: KEYED }));
			expect((await getTask(id)).res.status).toBe(404);
		}
		for (const headers of [k1, k2, { authorization: "bearer k2" }, { authorization: "Bearer   k1  " }]) {
			const id = newId("auth");
			const { res, body } = await submitTask({ id, type: "echo", input: "ok" }, { headers, wait: 10, env: KEYED });
			expect([200, 202], JSON.stringify(body)).toContain(res.status);
			const got = await getTask(id, { headers, env: KEYED });
			expect(got.res.status).toBe(200);
			expect(got.body.id).toBe(id);
		}
	});

	it("GET /health without a key answers exactly {status: ok}; with a key, the full counts", async () => {
		const anonymous = await call("/health", {}, KEYED);
		expect(anonymous.res.status).toBe(200);
		expect(anonymous.body).toEqual({ status: "ok" });

		const wrongKey = await call("/health", { headers: { authorization: "Bearer nope" } }, KEYED);
		expect(wrongKey.res.status).toBe(200);
		expect(wrongKey.body).toEqual({ status: "ok" });

		const full = await call("/health", { headers: k2 }, KEYED);
		expect(full.res.status).toBe(200);
		expect(full.body).toMatchObject({ status: "ok", shards: expect.any(Number) });
		for (const field of ["queue_size", "running", "results_pending"]) expect(typeof full.body[field]).toBe("number");
		expect(Object.keys(full.body.by_status).sort()).toEqual(["canceled", "failed", "queued", "running", "succeeded", "timed_out"]);
	});
});

describe("AUTH_MODE required without API_KEYS (closed by default)", () => {
	it("refuses every API route with 401 auth_not_configured, even with a Bearer header; /health stays 200 {status: ok}", async () => {
		const id = newId("auth");
		expect401(await submitTask({ id, type: "echo" }, { env: CLOSED }), "auth_not_configured");
		expect401(
			await submitTask({ id, type: "echo" }, { headers: { authorization: "Bearer anything" }, env: CLOSED }),
			"auth_not_configured",
		);
		expect401(await getTask(id, { env: CLOSED }), "auth_not_configured");
		expect401(await call(`/v1/tasks/${id}/events`, {}, CLOSED), "auth_not_configured");
		expect((await getTask(id)).res.status).toBe(404);

		const health = await call("/health", {}, CLOSED);
		expect(health.res.status).toBe(200);
		expect(health.body).toEqual({ status: "ok" });
	});

	it("a task token is worth nothing without API keys (its signing secret would be public)", async () => {
		const id = newId("auth");
		await submitTask({ id, type: "echo", input: "x" }, { wait: 10 });
		const forged = await taskToken({ ...env, API_KEYS: undefined, TOKEN_SECRET: undefined } as Env, id, 3600);
		expect401(await call(`/v1/tasks/${id}?token=${forged}`, {}, CLOSED), "auth_not_configured");
		expect401(await call(`/v1/tasks/${id}/events?token=${forged}`, {}, CLOSED), "auth_not_configured");
	});

	/**
	 * Guards a fixed bug (src/auth.ts + src/SubscriptionHub.ts): with AUTH_MODE "required" and no API_KEYS (the
	 * deployed default until keys are set) `GET /v1/ws` is still let in anonymously, and the hub
	 * accepts any token that verifyTaskToken accepts; without API_KEYS or TOKEN_SECRET the token
	 * secret is the public constant "edgetask-task-token:", so anyone can mint a token for any task
	 * id and read its snapshot (input, output) and live events.
	 */
	it("/v1/ws in the closed mode does not let an anonymous client follow a task with a self-minted token", async () => {
		const id = newId("auth");
		const done = await submitTask({ id, type: "echo", input: { secret: "s3cr3t" } }, { wait: 10 });
		expect(done.body.status).toBe("succeeded");
		// The hub's env here is the test bindings: no API_KEYS, no TOKEN_SECRET, like a deployment
		// with AUTH_MODE "required" whose keys were not set yet.
		const forged = await taskToken({ ...env, API_KEYS: undefined, TOKEN_SECRET: undefined } as Env, id, 3600);

		const { res, socket } = await connect("/v1/ws", { env: CLOSED });
		if (res.status === 401) return; // refused at the door: fine
		expect(res.status).toBe(101);
		socket!.send({ type: "subscribe", ids: [id], tokens: { [id]: forged } });
		const first = await socket!.waitFor((f) => f.type === "snapshot" || f.type === "error", "an answer to subscribe", 10_000);
		socket!.shut();
		expect(first, "the hub handed the task to a forged token").toMatchObject({ type: "error", error: { code: "forbidden" } });
	});
});

describe("per-task capability tokens", () => {
	it("the submit response's URLs carry ?token=, and only when API keys are on", async () => {
		const task = await submitKeyed({ id: newId("auth"), type: "echo", input: 1 });
		for (const url of Object.values(task.urls))
			expect(new URL(url.replace(/^ws/, "http")).searchParams.get("token")).toMatch(/^\d+\.[A-Za-z0-9_-]{43}$/);
		expect(task.urls.ws).toMatch(/^wss?:\/\//);

		const open = await submitTask({ id: newId("auth"), type: "echo", input: 1 });
		for (const url of Object.values(open.body.urls)) expect(url).not.toContain("token=");
	});

	it("a task's token opens its GET, events (SSE), ws and cancel without the API key", async () => {
		const id = newId("auth");
		const task = await submitKeyed({ id, type: "sleep", input: { ms: 20_000 } });
		const { urls } = task;

		const got = await call(pathOf(urls.get), {}, KEYED);
		expect(got.res.status).toBe(200);
		expect(got.body).toMatchObject({ id, type: "sleep" });
		// The token also works with a wrong key presented.
		expect((await call(pathOf(urls.get), { headers: { authorization: "Bearer wrong" } }, KEYED)).res.status).toBe(200);

		// A live stream: read up to its snapshot, then let go.
		const stream = await send(new Request(`${ORIGIN}${pathOf(urls.events)}`), KEYED);
		expect(stream.status).toBe(200);
		expect(stream.headers.get("content-type")).toMatch(/^text\/event-stream/);
		const frames = await readSse(stream.body!, (f) => f.some((x) => x.event === "snapshot"));
		expect(JSON.parse(frames.find((f) => f.event === "snapshot")!.data!)).toMatchObject({ task_id: id, type: "snapshot" });

		const ws = await connect(pathOf(urls.ws), { env: KEYED });
		expect(ws.res.status).toBe(101);
		const snapshot = await ws.socket!.waitFor((f) => f.type === "snapshot", "the ws snapshot");
		expect(snapshot.task_id).toBe(id);

		const canceled = await call(pathOf(urls.cancel), { method: "POST" }, KEYED);
		expect(canceled.res.status).toBe(200);
		expect(canceled.body).toMatchObject({ id, status: "canceled" });
		await ws.socket!.waitFor((f) => f.type === "canceled", "the canceled event on the token's socket");
		ws.socket!.shut();
	});

	it("a token opens nothing else: another task, the task list, other routes, wrong methods", async () => {
		const a = await submitKeyed({ id: newId("auth"), type: "echo", input: "a" });
		const b = await submitKeyed({ id: newId("auth"), type: "sleep", input: { ms: 10_000 } });
		const token = tokenOf(a.urls.get);
		const bPath = `/v1/tasks/${encodeURIComponent(b.id)}`;

		expect401(await call(`${bPath}?token=${token}`, {}, KEYED));
		expect401(await call(`${bPath}/events?token=${token}`, {}, KEYED));
		expect401(await call(`${bPath}/ws?token=${token}`, { headers: { upgrade: "websocket" } }, KEYED));
		expect401(await call(`${bPath}/cancel?token=${token}`, { method: "POST" }, KEYED));
		expect((await getTask(b.id)).body.status).not.toBe("canceled");
		expect401(
			await call(
				`/v1/tasks?token=${token}`,
				{ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "echo" }) },
				KEYED,
			),
		);
		expect401(await call(`/v1/tasks/${a.id}/other?token=${token}`, {}, KEYED));
		expect401(
			await call(`/process?token=${token}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }, KEYED),
		);
		// /health with a token is still the anonymous view.
		expect((await call(`/health?token=${token}`, {}, KEYED)).body).toEqual({ status: "ok" });
		// A token in a header is not a key.
		expect401(await call(`/v1/tasks/${a.id}`, { headers: { authorization: `Bearer ${token}` } }, KEYED));
		// Wrong method on the task's own path: authorized by the token, refused as 405 (not 500, not 200).
		const put = await call(`/v1/tasks/${a.id}?token=${token}`, { method: "PUT" }, KEYED);
		expect(put.res.status).toBe(405);
		await call(`${bPath}/cancel`, { method: "POST", headers: k1 }, KEYED);
	});

	it("tampered, truncated, expired, foreign or missing tokens are 401", async () => {
		const task = await submitKeyed({ id: newId("auth"), type: "echo", input: "t" });
		const path = `/v1/tasks/${encodeURIComponent(task.id)}`;
		const token = tokenOf(task.urls.get);
		const [exp, sig] = token.split(".") as [string, string];
		const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "A" ? "B" : "A") + s.slice(i + 1);

		const bad = [
			`${exp}.${flip(sig, 0)}`,
			// (Not the last character: its 2 low bits are padding, so some flips there decode to the same MAC.)
			`${exp}.${flip(sig, sig.length - 2)}`,
			`${exp}.${flip(sig, 21)}`,
			`${Number(exp) + 1}.${sig}`,
			`${Number(exp) + 86_400 * 365}.${sig}`,
			`${exp}.${sig.slice(0, -1)}`,
			`${exp}.${sig}A`,
			`${exp}${sig}`,
			sig,
			exp,
			`${exp}.`,
			`.${sig}`,
			"",
			`${exp}.${sig}.${sig}`,
			`-${exp}.${sig}`,
			// Standard base64 instead of base64url (only a different token when the MAC has - or _).
			...(/[-_]/.test(sig) ? [encodeURIComponent(`${exp}.${sig.replace(/-/g, "+").replace(/_/g, "/")}`)] : []),
			// Signed with another secret.
			await taskToken({ ...env, TOKEN_SECRET: "another-secret" } as Env, task.id, 3600),
			// Expired.
			await taskToken(keyedEnv, task.id, -10),
			await taskToken(keyedEnv, task.id, -86_400),
		];
		for (const t of bad) expect401(await call(`${path}?token=${t}`, {}, KEYED));
		// The id alone grants nothing.
		expect401(await call(path, {}, KEYED));
		// And the genuine one still works.
		expect((await call(`${path}?token=${token}`, {}, KEYED)).res.status).toBe(200);
	});

	/**
	 * Guards a fixed bug (minor, src/index.ts withUrls): the comment promises a token for "the task's whole life,
	 * with a day to spare", but the lifetime is DEFAULT_TTL_S + 1 day whatever the task's own
	 * ttl_s: a task kept 30 days hands out URLs that stop working after 25 hours. Use the task's
	 * ttl (and time left) instead of settings.defaultTtlS.
	 */
	it("a task's token lives as long as the task itself (its ttl_s), plus the day of slack", async () => {
		const ttl = 30 * 86_400;
		const before = Math.floor(Date.now() / 1000);
		const task = await submitKeyed({ id: newId("auth"), type: "echo", input: "long-lived", ttl_s: ttl });
		const exp = Number(tokenOf(task.urls.get).split(".")[0]);
		expect(exp).toBeGreaterThanOrEqual(before + ttl);
	});

	it("verifyTaskToken: valid until its expiry, bound to its id", async () => {
		const id = newId("auth");
		const fresh = await taskToken(keyedEnv, id, 60);
		expect(await verifyTaskToken(keyedEnv, id, fresh)).toBe(true);
		expect(await verifyTaskToken(keyedEnv, `${id}x`, fresh)).toBe(false);
		expect(await verifyTaskToken(keyedEnv, id, await taskToken(keyedEnv, id, -1))).toBe(false);
		// A token whose expiry has just passed.
		const short = await taskToken(keyedEnv, id, 1);
		await sleep(2100);
		expect(await verifyTaskToken(keyedEnv, id, short)).toBe(false);
	});
});

describe("/v1/ws without an API key", () => {
	async function anonymousHub(): Promise<RecordingSocket> {
		const { res, socket } = await connect("/v1/ws", { env: KEYED });
		expect(res.status).toBe(101);
		return socket!;
	}

	it("each subscription needs that task's token: none, another task's, or a tampered one is `forbidden`", async () => {
		const a = await submitKeyed({ id: newId("auth"), type: "sleep", input: { ms: 10_000 } });
		const b = await submitKeyed({ id: newId("auth"), type: "echo", input: "b" });
		const hub = await anonymousHub();

		hub.send({ type: "subscribe", ids: [a.id] });
		expect(await hub.waitFor((f) => f.type === "error" || f.type === "snapshot", "an answer")).toMatchObject({
			type: "error",
			error: { code: "forbidden", id: a.id },
		});

		let from = hub.frames.length;
		hub.send({ type: "subscribe", ids: [a.id], tokens: { [a.id]: tokenOf(b.urls.get) } });
		expect(await hub.waitFor((f) => f.type === "error" || f.type === "snapshot", "an answer", 10_000, from)).toMatchObject({
			type: "error",
			error: { code: "forbidden", id: a.id },
		});

		from = hub.frames.length;
		hub.send({ type: "subscribe", ids: [a.id], tokens: { [a.id]: `${tokenOf(a.urls.get)}x` } });
		expect(await hub.waitFor((f) => f.type === "error" || f.type === "snapshot", "an answer", 10_000, from)).toMatchObject({
			type: "error",
			error: { code: "forbidden" },
		});

		// Still usable afterwards.
		await hub.ping();
		expect(hub.events()).toEqual([]);
		hub.shut();
		await call(`/v1/tasks/${a.id}/cancel`, { method: "POST", headers: k1 }, KEYED);
	});

	it("a valid token subscribes (signed with the TOKEN_SECRET that every object shares)", async () => {
		const id = newId("auth");
		await submitTask({ id, type: "sleep", input: { ms: 300 } });
		const hub = await anonymousHub();
		hub.send({ type: "subscribe", ids: [id], tokens: { [id]: await taskToken(env, id, 600) } });
		const snapshot = await hub.waitFor((f) => f.type === "snapshot" || f.type === "error", "the snapshot");
		expect(snapshot).toMatchObject({ type: "snapshot", task_id: id });
		await hub.waitFor((f) => f.type === "succeeded" && f.task_id === id, "the task's end", 10_000);
		hub.shut();
	});

	it("with an API key, /v1/ws subscribes without tokens", async () => {
		const task = await submitKeyed({ id: newId("auth"), type: "echo", input: "k" });
		const { res, socket } = await connect("/v1/ws", { headers: k1, env: KEYED });
		expect(res.status).toBe(101);
		socket!.send({ type: "subscribe", ids: [task.id] });
		expect(await socket!.waitFor((f) => f.type === "snapshot" || f.type === "error", "the snapshot")).toMatchObject({
			type: "snapshot",
			task_id: task.id,
		});
		socket!.shut();
	});
});

describe("rate limiting by API key", () => {
	/**
	 * Guards a fixed bug (src/admission.ts clientKey): the bucket is keyed on the raw Authorization header, but
	 * auth accepts the same key spelled many ways ("Bearer k1", "bearer k1", "BEARER  k1 ", …), so
	 * one key holder gets a fresh burst for each spelling. Key the bucket on the key itself.
	 */
	it("one API key is one client however its Authorization header is spelled", async () => {
		await awayFromWindowEnd();
		const key = newId("key");
		const limits: EnvOverrides = { ...KEYED, ...tightLimiter, API_KEYS: `k1,k2,${key}` };
		for (let i = 0; i < TIGHT_LIMIT; i++) {
			const { res } = await submitTask({ id: newId("auth"), type: "echo" }, { headers: { authorization: `Bearer ${key}` }, env: limits });
			expect(res.status).toBeLessThan(300);
		}
		const spellings = [`Bearer ${key}`, `bearer ${key}`, `BEARER ${key}`, `Bearer  ${key}`, `Bearer ${key} `];
		const statuses: number[] = [];
		for (const authorization of spellings) {
			const id = newId("auth");
			const { res } = await submitTask({ id, type: "echo" }, { headers: { authorization }, env: limits });
			statuses.push(res.status);
		}
		expect(statuses).toEqual(spellings.map(() => 429));
	});

	it("different keys have separate budgets", async () => {
		await awayFromWindowEnd();
		const keys = [newId("key"), newId("key")];
		const limits: EnvOverrides = { ...KEYED, ...tightLimiter, API_KEYS: keys.join(",") };
		for (const key of keys) {
			for (let i = 0; i < TIGHT_LIMIT; i++) {
				const { res } = await submitTask({ id: newId("auth"), type: "echo" }, { headers: { authorization: `Bearer ${key}` }, env: limits });
				expect(res.status).toBeLessThan(300);
			}
		}
		const { res } = await submitTask({ id: newId("auth"), type: "echo" }, { headers: { authorization: `Bearer ${keys[0]}` }, env: limits });
		expect(res.status).toBe(429);
	});
});
