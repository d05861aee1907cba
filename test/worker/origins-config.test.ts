/**
 * ORIGINS and ORIGIN_TOKENS as the worker reads them: a table (an object) or a JSON string both
 * work; a bad value is a clear 500 `invalid_config` naming the var at the first request that
 * needs it (never a hang, never a silent default), and nothing is stored. The http calls
 * themselves are tested against real origin servers in test/e2e/origins.test.ts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config";
import { originLane, origins } from "../../src/origins";
import { http, httpTaskLane } from "../../src/origins/http";
import { MAX_RETRY_AFTER_S, retryAfterMs } from "../../src/origins/failures";
import { call, type EnvOverrides, errorOf, getTask, submitTask } from "./support/api";
import { newId } from "./support/ids";

const GPU = { url: "http://127.0.0.1:9/", concurrency: 2, timeout_s: 30, envelope: "seed" };

/** Object-valued vars are read by name, not typed on Env (a table or a JSON string). */
type Vars = Record<string, string>;
const overrides = (vars: Vars) => vars as EnvOverrides;

/** An env with these vars (objects stand for wrangler.toml tables). */
function withVars(vars: Record<string, unknown>): Env {
	return { ...env, ...vars } as Env;
}

describe("ORIGINS: both forms", () => {
	it("a table (object) and a JSON string give the same origins", () => {
		for (const raw of [{ gpu: GPU }, JSON.stringify({ gpu: GPU })]) {
			const gpu = origins(withVars({ ORIGINS: raw, ORIGIN_TOKENS: '{"gpu":"tok-1"}' })).get("gpu");
			expect(gpu).toEqual({ name: "gpu", url: "http://127.0.0.1:9", concurrency: 2, timeoutS: 30, envelope: "seed", token: "tok-1" });
		}
	});

	it("timeout_s and envelope have defaults; unset or empty ORIGINS is no origins", () => {
		const gpu = origins(withVars({ ORIGINS: { gpu: { url: "https://gpu.internal", concurrency: 1 } } })).get("gpu");
		expect(gpu).toMatchObject({ timeoutS: 300, envelope: "none", token: null });
		expect(origins(withVars({ ORIGINS: "" })).size).toBe(0);
		expect(origins(withVars({ ORIGINS: undefined })).size).toBe(0);
	});

	it("an http task's lane is origin:<name> with the origin's concurrency", () => {
		const e = withVars({ ORIGINS: { gpu: GPU } });
		expect(httpTaskLane(e, { origin: "gpu", path: "/process" })).toEqual({ lane: "origin:gpu", concurrency: 2 });
		expect(httpTaskLane(e, { origin: "cpu" })).toBeNull();
		// The processor's own lane hook, which the scheduler asks.
		expect(http.lane?.({ origin: "gpu" }, e)).toEqual({ lane: "origin:gpu", concurrency: 2 });
		const gpu = origins(e).get("gpu");
		expect(gpu && originLane(gpu)).toEqual({ lane: "origin:gpu", concurrency: 2 });
	});
});

describe("bad ORIGINS / ORIGIN_TOKENS: a clear error at first use", () => {
	const cases: { name: string; vars: Vars; says: RegExp }[] = [
		{ name: "not JSON", vars: { ORIGINS: "{gpu: 1" }, says: /^ORIGINS: not valid JSON .*expected an object like \{"gpu"/ },
		{ name: "an array", vars: { ORIGINS: "[1]" }, says: /^ORIGINS: expected a JSON object like .*, got \[1\]/ },
		{ name: "a bad url", vars: { ORIGINS: '{"gpu":{"url":"ftp://x","concurrency":1}}' }, says: /^ORIGINS: gpu\.url: must be an http/ },
		{ name: "no concurrency", vars: { ORIGINS: '{"gpu":{"url":"http://x"}}' }, says: /^ORIGINS: gpu\.concurrency: / },
		{
			name: "concurrency 0",
			vars: { ORIGINS: '{"gpu":{"url":"http://x","concurrency":0}}' },
			says: /^ORIGINS: gpu\.concurrency: must be at least 1/,
		},
		{
			name: "timeout_s past 840, the longest attempt",
			vars: { ORIGINS: '{"gpu":{"url":"http://x","concurrency":1,"timeout_s":841}}' },
			says: /^ORIGINS: gpu\.timeout_s: /,
		},
		{
			name: "a misspelt key",
			vars: { ORIGINS: '{"gpu":{"url":"http://x","concurency":1}}' },
			says: /^ORIGINS: .*gpu: Unrecognized key: "concurency"/,
		},
		{
			name: "a bad name",
			vars: { ORIGINS: '{"g p u":{"url":"http://x","concurrency":1}}' },
			says: /^ORIGINS: "g p u": origin names are 1-64 characters/,
		},
		{
			name: "a token for no origin",
			vars: { ORIGINS: '{"gpu":{"url":"http://x","concurrency":1}}', ORIGIN_TOKENS: '{"cpu":"t"}' },
			says: /^ORIGIN_TOKENS: has tokens for "cpu"/,
		},
		{
			name: "a token with a space",
			vars: { ORIGINS: '{"gpu":{"url":"http://x","concurrency":1}}', ORIGIN_TOKENS: '{"gpu":"Bearer abc"}' },
			says: /^ORIGIN_TOKENS: the token of "gpu"/,
		},
	];

	for (const { name, vars, says } of cases) {
		it(`${name}: 500 invalid_config, nothing stored`, async () => {
			const id = newId("badcfg");
			const res = await submitTask({ id, type: "http", input: { origin: "gpu" } }, { env: overrides(vars), wait: 5 });
			expect(res.res.status, JSON.stringify(res.body)).toBe(500);
			const error = errorOf(res.body);
			expect(error.code).toBe("invalid_config");
			expect(error.message).toMatch(says);
			expect(res.elapsed).toBeLessThan(3000);
			expect((await getTask(id)).res.status).toBe(404);
			expect(() => origins(withVars(vars))).toThrow(ConfigError);
		});
	}

	it("a token never appears in the error, even when ORIGIN_TOKENS is a bare token instead of JSON", async () => {
		for (const ORIGIN_TOKENS of ['{"gpu":"sk live 123"}', "sk-live-123", '"sk-live-123"']) {
			const vars = { ORIGINS: '{"gpu":{"url":"http://x","concurrency":1}}', ORIGIN_TOKENS };
			const res = await submitTask({ type: "http", input: { origin: "gpu" } }, { env: overrides(vars) });
			expect(res.res.status).toBe(500);
			expect(errorOf(res.body).message).toMatch(/^ORIGIN_TOKENS: /);
			expect(res.text).not.toMatch(/sk.live/);
		}
	});

	it("POST /process answers a bad config in the seed's envelope", async () => {
		const res = await call(
			"/process",
			{ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ uuid: newId("p") }) },
			overrides({ PROCESS_ORIGIN: "gpu", ORIGINS: "nope" }),
		);
		expect(res.res.status).toBe(500);
		expect(res.body).toMatchObject({ success: false, code: 1, msg: expect.stringMatching(/^ORIGINS: /) });
	});

	it("types that need no origin still run", async () => {
		const res = await submitTask({ type: "echo", input: 1 }, { env: overrides({ ORIGINS: "{gpu: 1" }), wait: 10 });
		expect(res.body.status).toBe("succeeded");
	});
});

describe("unknown origin", () => {
	it("with no origins configured: 400 unknown_origin, nothing stored", async () => {
		const id = newId("noorigin");
		const res = await submitTask({ id, type: "http", input: { origin: "gpu", body: { a: 1 } } });
		expect(res.res.status).toBe(400);
		const error = errorOf(res.body);
		expect(error.code).toBe("unknown_origin");
		expect(error.message).toMatch(/none is configured/);
		expect(error.details).toEqual([{ path: "input.origin", message: error.message }]);
		expect((await getTask(id)).res.status).toBe(404);
	});
});

describe("Retry-After", () => {
	const now = Date.parse("2026-11-30T12:00:00Z");
	it("reads seconds and HTTP dates, caps them, and ignores what it cannot read", () => {
		expect(retryAfterMs("3", now)).toBe(3000);
		expect(retryAfterMs(" 0 ", now)).toBe(0);
		expect(retryAfterMs("Mon, 30 Nov 2026 12:00:10 GMT", now)).toBe(10_000);
		expect(retryAfterMs("Mon, 30 Nov 2026 11:00:00 GMT", now)).toBe(0);
		expect(retryAfterMs("999999", now)).toBe(MAX_RETRY_AFTER_S * 1000);
		expect(retryAfterMs("soon", now)).toBeUndefined();
		expect(retryAfterMs("-5", now)).toBeUndefined();
		expect(retryAfterMs(null, now)).toBeUndefined();
	});
});
