/**
 * CORS_ORIGINS on the real runtime: preflights on every route, the headers on answers (errors
 * included) for allowed origins only, and the Origin check on WebSocket upgrades. The browser
 * side is test/e2e/cors-browser.test.ts.
 */
import { describe, expect, it } from "vitest";
import { call, submitTask, type EnvOverrides } from "./support/api";

const APP = "https://app.example.com";
const LISTED: EnvOverrides = { CORS_ORIGINS: `${APP}, http://localhost:5173/` };
/** One path per route the app serves (ids filled in). */
const PATHS = [
	"/v1/tasks",
	"/v1/tasks/some-id",
	"/v1/tasks/some-id/cancel",
	"/v1/tasks/some-id/ws",
	"/v1/tasks/some-id/events",
	"/v1/ws",
	"/process",
	"/health",
	"/openapi.json",
	"/docs",
];

function preflight(path: string, origin: string, env: EnvOverrides, method = "POST") {
	return call(
		path,
		{
			method: "OPTIONS",
			headers: { origin, "access-control-request-method": method, "access-control-request-headers": "authorization, content-type, prefer" },
		},
		env,
	);
}

describe("preflight", () => {
	it("answers 204 on every route for an allowed origin, before authentication", async () => {
		for (const path of PATHS) {
			// API keys on: the preflight still passes (browsers never send credentials on it).
			const { res, text } = await preflight(path, APP, { ...LISTED, API_KEYS: "k" });
			expect(res.status, `${path}: ${text}`).toBe(204);
			expect(res.headers.get("access-control-allow-origin")).toBe(APP);
			expect(res.headers.get("access-control-allow-methods")?.split(", ").sort()).toEqual(["GET", "OPTIONS", "POST"]);
			expect(res.headers.get("access-control-allow-headers")).toBe("authorization, content-type, prefer, last-event-id");
			expect(Number(res.headers.get("access-control-max-age"))).toBeGreaterThan(0);
			expect(res.headers.get("vary")).toMatch(/Origin/);
		}
	});

	it("matches origins as browsers spell them (no trailing slash, any case in the list)", async () => {
		const { res } = await preflight("/v1/tasks", "http://localhost:5173", LISTED);
		expect(res.status).toBe(204);
		expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
	});

	it("refuses an origin not listed, and every origin when CORS_ORIGINS is unset", async () => {
		for (const env of [LISTED, { CORS_ORIGINS: "" }, { CORS_ORIGINS: undefined }]) {
			const { res, body } = await preflight("/v1/tasks", "https://evil.example", env);
			expect(res.status).toBe(403);
			expect(body.error.code).toBe("origin_not_allowed");
			expect(res.headers.get("access-control-allow-origin")).toBeNull();
		}
	});

	it("answers * for CORS_ORIGINS=*", async () => {
		const { res } = await preflight("/v1/tasks/x", "https://anyone.example", { CORS_ORIGINS: "*" }, "GET");
		expect(res.status).toBe(204);
		expect(res.headers.get("access-control-allow-origin")).toBe("*");
	});

	it("an OPTIONS that is not a preflight is still a 405", async () => {
		const { res } = await call("/v1/tasks", { method: "OPTIONS" }, LISTED);
		expect(res.status).toBe(405);
	});
});

describe("answers", () => {
	it("carry Access-Control-Allow-Origin and the exposed headers for an allowed origin only", async () => {
		const ok = await submitTask({ type: "echo", input: 1 }, { wait: 5, headers: { origin: APP }, env: LISTED });
		expect(ok.res.status).toBe(200);
		expect(ok.res.headers.get("access-control-allow-origin")).toBe(APP);
		expect(ok.res.headers.get("access-control-expose-headers")).toBe("location, retry-after, preference-applied");
		expect(ok.res.headers.get("vary")).toMatch(/Origin/);

		const other = await submitTask({ type: "echo", input: 1 }, { headers: { origin: "https://evil.example" }, env: LISTED });
		expect(other.res.status).toBe(202);
		expect(other.res.headers.get("access-control-allow-origin")).toBeNull();
		const unset = await submitTask({ type: "echo", input: 1 }, { headers: { origin: APP } });
		expect(unset.res.headers.get("access-control-allow-origin")).toBeNull();
	});

	it("errors carry them too, so a page can read why (401, 404, 429)", async () => {
		const unauthorized = await call("/v1/tasks/x", { headers: { origin: APP } }, { ...LISTED, API_KEYS: "k" });
		expect(unauthorized.res.status).toBe(401);
		expect(unauthorized.res.headers.get("access-control-allow-origin")).toBe(APP);
		const missing = await call("/nope", { headers: { origin: APP } }, LISTED);
		expect(missing.res.status).toBe(404);
		expect(missing.res.headers.get("access-control-allow-origin")).toBe(APP);
	});

	it("a WebSocket upgrade from a foreign origin not allowed is refused; same origin and no Origin are not", async () => {
		const task = await submitTask({ type: "echo", input: 1 }, { wait: 5 });
		const path = `/v1/tasks/${task.body.id}/ws`;
		const foreign = await call(path, { headers: { upgrade: "websocket", origin: "https://evil.example" } }, LISTED);
		expect(foreign.res.status).toBe(403);
		expect(foreign.body.error.code).toBe("origin_not_allowed");
		for (const headers of [{ origin: APP }, { origin: "http://edgetask.test" }, {}] as Record<string, string>[]) {
			const { res } = await call(path, { headers: { upgrade: "websocket", ...headers } }, LISTED);
			expect(res.status, JSON.stringify(headers)).toBe(101);
			res.webSocket?.accept();
			res.webSocket?.close(1000);
		}
	});
});
