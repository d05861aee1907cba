/**
 * GET /openapi.json and GET /docs on a real `wrangler dev`: the document passes an independent
 * OpenAPI 3.1 validator, every reference resolves, its schemas are valid JSON Schema 2020-12,
 * and real answers of the server (tasks, events, errors, health, the seed envelope, a listing
 * page, the task types) validate
 * against them. The docs page loads no asset from anywhere: in Chromium with every request but
 * the page itself blocked, it renders whole.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser } from "./browser";
import { request, startDevServer, submit, tempDir, type DevServer } from "./helpers";

interface Doc {
	openapi: string;
	paths: Record<string, Record<string, { operationId: string; responses: Record<string, unknown> }>>;
	components: { schemas: Record<string, unknown> };
}

let server: DevServer;
let dir: { path: string; remove(): Promise<void> };
let doc: Doc;
let browser: Browser;

beforeAll(async () => {
	dir = await tempDir("openapi");
	[server, browser] = await Promise.all([
		startDevServer({ persistTo: dir.path, vars: { ENABLE_FAULT_PROCESSORS: "true" } }),
		launchBrowser(),
	]);
	const res = await request<Doc>(`${server.url}/openapi.json`);
	expect(res.status).toBe(200);
	doc = res.body;
});

afterAll(async () => {
	await browser?.close();
	await server?.stop();
	await dir?.remove();
});

/** Every `$ref` in a value. */
function refs(value: unknown, found: string[] = []): string[] {
	if (Array.isArray(value)) for (const v of value) refs(v, found);
	else if (value !== null && typeof value === "object") {
		for (const [k, v] of Object.entries(value)) {
			if (k === "$ref" && typeof v === "string") found.push(v);
			else refs(v, found);
		}
	}
	return found;
}

/** A validator of the document's component schemas, each addressable as `#/components/schemas/X`. */
function schemaValidator() {
	const ajv = new Ajv2020({ strict: false, allErrors: true });
	ajv.addSchema({ $id: "doc", components: doc.components }, "doc");
	return (name: string, value: unknown) => {
		const validate = ajv.getSchema(`doc#/components/schemas/${name}`);
		if (!validate) throw new Error(`no schema ${name}`);
		const ok = validate(value);
		return ok ? "valid" : JSON.stringify(validate.errors);
	};
}

/** Checks `value` against the JSON schema of an operation's answer (`status`), with the components beside it. */
function answerCheck(path: string, method: string, status: number, value: unknown): string {
	const op = doc.paths[path]?.[method] as { responses: Record<string, { content?: Record<string, { schema?: object }> }> } | undefined;
	const schema = op?.responses[String(status)]?.content?.["application/json"]?.schema;
	if (!schema) throw new Error(`no JSON answer ${status} for ${method.toUpperCase()} ${path}`);
	const validate = new Ajv2020({ strict: false, allErrors: true }).compile({ components: doc.components, ...schema });
	return validate(value) ? "valid" : JSON.stringify(validate.errors);
}

describe("GET /openapi.json", () => {
	it("is a valid OpenAPI 3.1 document (an independent validator) whose references all resolve", async () => {
		expect(doc.openapi).toBe("3.1.0");
		const result = await new Validator().validate(doc as unknown as Record<string, unknown>);
		expect(result.errors ?? [], JSON.stringify(result.errors)).toEqual([]);
		expect(result.valid).toBe(true);
		for (const ref of refs(doc)) {
			expect(ref).toMatch(/^#\/components\/schemas\//);
			expect(doc.components.schemas, ref).toHaveProperty([ref.replace("#/components/schemas/", "")]);
		}
		const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
		expect(new Set(ids).size).toBe(ids.length);
	});

	it("describes the task types, the request body and the error shape, with schemas valid as JSON Schema 2020-12", () => {
		for (const name of ["Task", "TaskEvent", "Error", "Health", "SubmitRequest", "TaskInput.sleep", "TaskInput.echo"]) {
			expect(doc.components.schemas, name).toHaveProperty([name]);
		}
		const ajv = new Ajv2020({ strict: false });
		for (const [name, schema] of Object.entries(doc.components.schemas)) {
			expect(() => ajv.compile({ $id: `check-${name}`, components: doc.components, ...(schema as object) }), name).not.toThrow();
		}
		const submitOp = doc.paths["/v1/tasks"]?.post;
		expect(Object.keys(submitOp?.responses ?? {}).sort()).toEqual([
			"200",
			"202",
			"400",
			"401",
			"409",
			"413",
			"415",
			"422",
			"429",
			"500",
			"503",
		]);
	});

	it("real answers of the server validate against its schemas", async () => {
		const check = schemaValidator();
		const queued = await submit(server.url, "sleep", { ms: 1200 });
		expect(queued.status).toBe(202);
		expect(check("Task", queued.body)).toBe("valid");
		const done = await request(`${server.url}/v1/tasks/${queued.body.id}`, { headers: { prefer: "wait=20" } });
		expect(check("Task", done.body)).toBe("valid");
		const failed = await submit(server.url, "fail", { message: "x", permanent: true }, { wait: 10 });
		expect(check("Task", failed.body)).toBe("valid");

		// Events, as the SSE stream of a finished task replays them.
		const sse = await fetch(`${server.url}/v1/tasks/${queued.body.id}/events?after=0`);
		const events = (await sse.text())
			.split("\n")
			.filter((l) => l.startsWith("data:"))
			.map((l) => JSON.parse(l.slice(5)) as unknown);
		expect(events.length).toBeGreaterThanOrEqual(3);
		for (const event of events) expect(check("TaskEvent", event)).toBe("valid");

		for (const [path, init] of [
			["/v1/tasks/nope", {}],
			["/v1/tasks", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }],
			["/v1/tasks", { method: "POST", headers: { "content-type": "application/json" }, body: '{"type":"nope"}' }],
			["/v1/tasks/ bad", {}],
		] as const) {
			const res = await request(`${server.url}${path}`, init);
			expect(res.status).toBeGreaterThanOrEqual(400);
			expect(check("Error", res.body), path).toBe("valid");
		}
		expect(check("Health", (await request(`${server.url}/health`)).body)).toBe("valid");
		const seed = await request(`${server.url}/process`, {
			method: "POST",
			headers: { "content-type": "application/json" },
			body: '{"ms":10}',
		});
		expect(check("SeedEnvelope", seed.body)).toBe("valid");
		// The listing and the task types, as the dashboard reads them.
		const page = await request(`${server.url}/v1/tasks?limit=5`);
		expect(answerCheck("/v1/tasks", "get", 200, page.body)).toBe("valid");
		const types = await request<{ types: unknown[] }>(`${server.url}/v1/types`);
		expect(types.body.types.length).toBeGreaterThan(5);
		expect(answerCheck("/v1/types", "get", 200, types.body)).toBe("valid");
		expect(answerCheck("/v1/types", "get", 200, { types: [{ type: "x", runs: "somewhere", input_schema: null }] })).not.toBe("valid");
		// And a wrong answer does not pass: the check can fail.
		expect(check("Task", { ...queued.body, status: "sleeping" })).not.toBe("valid");
	});
});

describe("GET /docs", () => {
	it("documents every operation and references no asset outside the page", async () => {
		const res = await fetch(`${server.url}/docs`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/text\/html/);
		const html = await res.text();
		for (const ops of Object.values(doc.paths)) for (const op of Object.values(ops)) expect(html).toContain(`id="${op.operationId}"`);
		expect(html).not.toMatch(/<(script|link|img|iframe)\b/i);
		expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
		expect(html).not.toMatch(/@import|url\(/i);
	});

	it("renders in a browser with the network cut off but for the page itself", async () => {
		const page = await browser.newPage();
		const others: string[] = [];
		await page.route("**/*", async (route) => {
			if (route.request().url() === `${server.url}/docs`) return route.continue();
			others.push(route.request().url());
			return route.abort("internetdisconnected");
		});
		await page.goto(`${server.url}/docs`);
		expect(others).toEqual([]);
		await expect(page.locator("h1").textContent()).resolves.toMatch(/edgetask API/);
		const operations = await page.locator("section.op").count();
		const expected = Object.values(doc.paths).reduce((n, ops) => n + Object.keys(ops).length, 0);
		expect(operations).toBe(expected);
		// Styled by its own inline CSS: a method badge has its colour.
		const badge = await page
			.locator(".method")
			.first()
			.evaluate((el) => getComputedStyle(el).color);
		expect(badge).toBe("rgb(255, 255, 255)");
		// Links to schemas lead somewhere on the page.
		const target = await page.locator('pre a[href^="#schema-"]').first().getAttribute("href");
		expect(await page.locator(target ?? "#missing").count()).toBe(1);
		await page.close();
	});
});
