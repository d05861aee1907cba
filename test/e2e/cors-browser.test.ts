/**
 * CORS from a real browser: a page on another origin (its own port) calls a keyed `wrangler dev`
 * whose CORS_ORIGINS lists it — fetch with a preflight, exposed headers, a readable 401,
 * EventSource and WebSocket on a task's capability URL, and the client bundle itself — while a
 * page on an origin not listed is refused.
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildClient, launchBrowser, serveSite, type Site } from "./browser";
import { startDevServer, tempDir, type DevServer } from "./helpers";

const KEY = "cors-browser-key";
let server: DevServer;
let dir: { path: string; remove(): Promise<void> };
let app: Site;
let stranger: Site;
let browser: Browser;

beforeAll(async () => {
	buildClient();
	[app, stranger] = await Promise.all([
		serveSite({
			"/": "<!doctype html><title>app</title>",
			// The client as a web app loads it: a module script importing the bundle.
			"/client.html": '<!doctype html><script type="module">import * as edgetask from "/client.js"; window.edgetask = edgetask;</script>',
		}),
		serveSite({ "/": "<!doctype html><title>stranger</title>" }),
	]);
	dir = await tempDir("cors-browser");
	[server, browser] = await Promise.all([
		startDevServer({ persistTo: dir.path, vars: { API_KEYS: KEY, CORS_ORIGINS: app.origin } }),
		launchBrowser(),
	]);
});

afterAll(async () => {
	await browser?.close();
	await Promise.all([server?.stop(), app?.close(), stranger?.close()]);
	await dir?.remove();
});

async function pageOn(site: Site, path = "/"): Promise<Page> {
	const page = await browser.newPage();
	await page.goto(`${site.origin}${path}`);
	return page;
}

type ClientModule = typeof import("../../clients/js/src/index");

describe("a page on an allowed origin", () => {
	it("submits with a preflight (Authorization, Prefer) and reads the exposed headers and a 401's body", async () => {
		const page = await pageOn(app);
		const result = await page.evaluate(
			async ({ api, key }) => {
				const res = await fetch(`${api}/v1/tasks`, {
					method: "POST",
					headers: { authorization: `Bearer ${key}`, "content-type": "application/json", prefer: "wait=10" },
					body: JSON.stringify({ type: "echo", input: { from: "browser" } }),
				});
				const task = (await res.json()) as { id: string; output: unknown };
				const denied = await fetch(`${api}/v1/tasks/${task.id}`);
				return {
					status: res.status,
					location: res.headers.get("location"),
					applied: res.headers.get("preference-applied"),
					output: task.output,
					id: task.id,
					deniedStatus: denied.status,
					deniedBody: (await denied.json()) as unknown,
				};
			},
			{ api: server.url, key: KEY },
		);
		expect(result.status).toBe(200);
		expect(result.output).toEqual({ from: "browser" });
		expect(result.location).toBe(`/v1/tasks/${result.id}`);
		expect(result.applied).toBe("wait=10");
		expect(result.deniedStatus).toBe(401);
		expect(result.deniedBody).toMatchObject({ error: { code: "unauthorized" } });
		await page.close();
	});

	it("follows a task with EventSource and with a WebSocket on its capability URLs, without the key", async () => {
		const submitted = await fetch(`${server.url}/v1/tasks`, {
			method: "POST",
			headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
			body: JSON.stringify({ type: "sleep", input: { ms: 1500 } }),
		});
		const task = (await submitted.json()) as { urls: { events: string; ws: string } };
		expect(task.urls.events).toContain("token=");
		const page = await pageOn(app);
		const seen = await page.evaluate(async ({ events, ws }) => {
			const viaSse = new Promise<string[]>((resolve, reject) => {
				const types: string[] = [];
				const source = new EventSource(events);
				const take = (e: MessageEvent<string>) => {
					const event = JSON.parse(e.data) as { type: string };
					types.push(event.type);
					if (event.type === "succeeded") {
						source.close();
						resolve(types);
					}
				};
				for (const type of ["snapshot", "running", "progress", "succeeded"]) source.addEventListener(type, take as EventListener);
				source.onerror = () => (types.length === 0 ? reject(new Error("EventSource failed")) : undefined);
			});
			const viaSocket = new Promise<{ types: string[]; code: number }>((resolve) => {
				const types: string[] = [];
				const socket = new WebSocket(ws);
				socket.onmessage = (e) => types.push((JSON.parse(e.data as string) as { type: string }).type);
				socket.onclose = (e) => resolve({ types, code: e.code });
			});
			return { sse: await viaSse, socket: await viaSocket };
		}, task.urls);
		expect(seen.sse[0]).toBe("snapshot");
		expect(seen.sse).toContain("progress");
		expect(seen.sse.at(-1)).toBe("succeeded");
		expect(seen.socket.code).toBe(1000);
		expect(seen.socket.types).toContain("succeeded");
		await page.close();
	});

	it("runs the client bundle in the page: run with progress over the browser's WebSocket", async () => {
		const page = await pageOn(app, "/client.html");
		await page.waitForFunction(() => "edgetask" in window);
		const result = await page.evaluate(
			async ({ api, key }) => {
				const { createClient } = (window as unknown as { edgetask: ClientModule }).edgetask;
				const client = createClient({ baseUrl: api, apiKey: key });
				const progress: number[] = [];
				const output = await client.run("sleep", { ms: 1200 }, { onProgress: (p) => progress.push(p.percent), timeoutMs: 30_000 });
				return { output, progress };
			},
			{ api: server.url, key: KEY },
		);
		expect(result.output).toEqual({ slept_ms: 1200 });
		expect(result.progress.at(-1)).toBe(100);
		expect(result.progress.length).toBeGreaterThanOrEqual(2);
		await page.close();
	});
});

describe("a page on an origin not listed", () => {
	it("cannot read answers, and its WebSocket is refused", async () => {
		const submitted = await fetch(`${server.url}/v1/tasks`, {
			method: "POST",
			headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
			body: JSON.stringify({ type: "sleep", input: { ms: 3000 } }),
		});
		const task = (await submitted.json()) as { urls: { get: string; ws: string } };
		const page = await pageOn(stranger);
		const result = await page.evaluate(async ({ get, ws }) => {
			const read = await fetch(get).then(
				(r) => `read ${r.status}`,
				(e: Error) => `refused: ${e.name}`,
			);
			const socket = await new Promise<string>((resolve) => {
				const s = new WebSocket(ws);
				s.onopen = () => resolve("opened");
				s.onclose = (e) => resolve(`closed ${e.code}`);
			});
			return { read, socket };
		}, task.urls);
		expect(result.read).toBe("refused: TypeError");
		expect(result.socket).toBe("closed 1006");
		await page.close();
	});
});
