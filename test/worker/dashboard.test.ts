/**
 * The dashboard's server side: its files (built into the Worker's bundle) with strict headers and ETags,
 * open without a key while the API stays closed, and GET /v1/types, which its submit form reads.
 * (The page itself is tested in a real browser: test/e2e/dashboard.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { call, errorOf, type EnvOverrides } from "./support/api";

const KEYED: EnvOverrides = { API_KEYS: "dash-k1", AUTH_MODE: "required" };
/** WORKER_TYPES is unset in wrangler.toml (so not in the generated Env): set it for one request. */
const withWorkerTypes = (value: string) => ({ WORKER_TYPES: value }) as EnvOverrides;

interface Types {
	types: { type: string; runs: "worker" | "pull"; input_schema: Record<string, unknown> | null }[];
}

describe("the dashboard's files", () => {
	it("GET / is the page, with a policy that lets it load only its own script and talk only to this origin", async () => {
		const { res, text } = await call("/");
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toMatch(/^text\/html/);
		expect(text).toContain('<script type="module" src="/dashboard/app.js"></script>');
		const csp = res.headers.get("content-security-policy") ?? "";
		expect(csp).toContain("default-src 'none'");
		expect(csp).toContain("script-src 'self'");
		expect(csp).toContain("connect-src 'self'");
		expect(res.headers.get("x-content-type-options")).toBe("nosniff");
	});

	it("serves its script and stylesheet, and a JSON 404 for what it does not have", async () => {
		const js = await call("/dashboard/app.js");
		expect(js.res.status).toBe(200);
		expect(js.res.headers.get("content-type")).toMatch(/javascript/);
		expect(js.text.length).toBeGreaterThan(1000);
		const css = await call("/dashboard/style.css");
		expect(css.res.status).toBe(200);
		expect(css.res.headers.get("content-type")).toMatch(/^text\/css/);
		// Revalidated on every load (a deploy shows at once), and unchanged files cost no bytes.
		expect(js.res.headers.get("cache-control")).toBe("no-cache");
		const etag = js.res.headers.get("etag");
		expect(etag).toBeTruthy();
		const again = await call("/dashboard/app.js", { headers: { "if-none-match": etag ?? "" } });
		expect(again.res.status).toBe(304);
		expect(again.text).toBe("");
		const missing = await call("/dashboard/nope.js");
		expect(missing.res.status).toBe(404);
		expect(errorOf(missing.body).code).toBe("not_found");
	});

	it("answers each file's ETag with 304 (strong, weak or in a list), and a different one with the file", async () => {
		for (const [path, type] of [
			["/", /^text\/html; charset=utf-8$/],
			["/dashboard/app.js", /^text\/javascript; charset=utf-8$/],
			["/dashboard/style.css", /^text\/css; charset=utf-8$/],
			["/dashboard/app.js.map", /^application\/json$/],
		] as const) {
			const first = await call(path);
			expect(first.res.status, path).toBe(200);
			expect(first.res.headers.get("content-type"), path).toMatch(type);
			const etag = first.res.headers.get("etag") ?? "";
			expect(etag, path).toMatch(/^"[0-9a-f]{32}"$/);
			for (const ifNoneMatch of [etag, `W/${etag}`, `"0000", ${etag}`, "*"]) {
				const again = await call(path, { headers: { "if-none-match": ifNoneMatch } });
				expect(again.res.status, `${path} ${ifNoneMatch}`).toBe(304);
				expect(again.text).toBe("");
				expect(again.res.headers.get("etag")).toBe(etag);
				expect(again.res.headers.get("content-security-policy")).toContain("default-src 'none'");
			}
			const stale = await call(path, { headers: { "if-none-match": '"0123456789abcdef0123456789abcdef"' } });
			expect(stale.res.status, path).toBe(200);
			expect(stale.text).toBe(first.text);
			const head = await call(path, { method: "HEAD" });
			expect(head.res.status, path).toBe(200);
			expect(head.res.headers.get("etag")).toBe(etag);
			expect(head.text).toBe("");
		}
		// Each file its own ETag, and the page links the files served here.
		const tags = await Promise.all(
			["/", "/dashboard/app.js", "/dashboard/style.css"].map(async (p) => (await call(p)).res.headers.get("etag")),
		);
		expect(new Set(tags).size).toBe(3);
		const page = (await call("/")).text;
		expect(page).toContain('href="/dashboard/style.css"');
		const script = (await call("/dashboard/app.js")).text;
		expect(script).toMatch(/\/\/# sourceMappingURL=app\.js\.map\s*$/);
		const map = (await call("/dashboard/app.js.map")).body as { version: number; sources: string[] };
		expect(map.version).toBe(3);
		expect(map.sources.some((f) => f.endsWith("dashboard/app.ts"))).toBe(true);
	});

	it("needs no key (it holds no data) while the API it calls does", async () => {
		expect((await call("/", {}, KEYED)).res.status).toBe(200);
		expect((await call("/dashboard/app.js", {}, KEYED)).res.status).toBe(200);
		expect((await call("/v1/tasks", {}, KEYED)).res.status).toBe(401);
		expect((await call("/v1/types", {}, KEYED)).res.status).toBe(401);
		// Only reading: the page's path takes no other method.
		const post = await call("/", { method: "POST" }, KEYED);
		expect(post.res.status).toBe(401);
	});
});

describe("GET /v1/types", () => {
	it("lists every type offered here with its input's JSON Schema", async () => {
		const { res, body } = await call<Types>("/v1/types");
		expect(res.status).toBe(200);
		const byName = new Map(body.types.map((t) => [t.type, t]));
		for (const name of ["sleep", "echo", "http", "checksum", "image.resize"]) expect(byName.get(name)?.runs, name).toBe("worker");
		// The test bindings turn the fault processors on.
		expect(byName.has("fail")).toBe(true);
		expect(body.types.map((t) => t.type)).toEqual([...body.types.map((t) => t.type)].sort((a, b) => a.localeCompare(b)));
		const checksum = byName.get("checksum")?.input_schema as { properties: Record<string, unknown>; required: string[] };
		expect(Object.keys(checksum.properties)).toEqual(expect.arrayContaining(["text", "algorithm", "rounds"]));
		expect(checksum.required).toContain("text");
		// image.resize takes a file reference: the schema says where.
		const image = JSON.stringify(byName.get("image.resize")?.input_schema);
		expect(image).toContain('"$file"');
	});

	it("includes pull-worker types, with the input schema they declare", async () => {
		const types = JSON.stringify({
			"gpu.resize": { lease_s: 30, input: { type: "object", required: ["width"], properties: { width: { type: "integer" } } } },
		});
		const { res, body } = await call<Types>("/v1/types", {}, withWorkerTypes(types));
		expect(res.status).toBe(200);
		const pull = body.types.find((t) => t.type === "gpu.resize");
		expect(pull?.runs).toBe("pull");
		expect(pull?.input_schema).toMatchObject({ type: "object", required: ["width"] });
	});

	it("answers a bad WORKER_TYPES with 500 invalid_config, as every route that reads it", async () => {
		const { res, body } = await call("/v1/types", {}, withWorkerTypes("{not json"));
		expect(res.status).toBe(500);
		expect(errorOf(body).code).toBe("invalid_config");
	});
});
