import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { concurrencyVar, ConfigError, objectVar } from "../../src/config";

/** An env with `vars` set on top of the test bindings; a fresh object, so nothing parsed is reused. */
function envWith(vars: Record<string, unknown>): Env {
	return { ...env, ...vars } as Env;
}

function configError(read: () => unknown): ConfigError {
	try {
		read();
	} catch (e) {
		if (e instanceof ConfigError) return e;
		throw e;
	}
	throw new Error("expected a ConfigError");
}

describe("object-valued vars", () => {
	it("reads a wrangler.toml table (an object) and a --var JSON string alike", () => {
		expect(concurrencyVar(envWith({ CONCURRENCY: { sleep: 2, echo: 1 } }))).toEqual({ sleep: 2, echo: 1 });
		expect(concurrencyVar(envWith({ CONCURRENCY: '{"sleep": 2, "echo": 1}' }))).toEqual({ sleep: 2, echo: 1 });
	});

	it("treats an unset or empty var as absent", () => {
		expect(concurrencyVar(envWith({ CONCURRENCY: undefined }))).toBeUndefined();
		expect(concurrencyVar(envWith({ CONCURRENCY: "  " }))).toBeUndefined();
	});

	it("names the var, the entry and the problem when a value is wrong, on every read", () => {
		const bad = envWith({ CONCURRENCY: '{"sleep": 0, "echo": 1.5}' });
		const first = configError(() => concurrencyVar(bad));
		expect(first.variable).toBe("CONCURRENCY");
		expect(first.message).toMatch(/^CONCURRENCY: /);
		expect(first.message).toContain("sleep: must be at least 1");
		expect(first.message).toContain("echo: must be a whole number");
		// Parsed once, but the error is not forgotten: the second read throws the same.
		expect(configError(() => concurrencyVar(bad)).message).toBe(first.message);
	});

	it("says when the string is not JSON or not an object", () => {
		expect(configError(() => concurrencyVar(envWith({ CONCURRENCY: "sleep=2" }))).message).toMatch(
			/CONCURRENCY: not valid JSON .*expected an object like \{"sleep": 2\}/,
		);
		expect(configError(() => concurrencyVar(envWith({ CONCURRENCY: "[1,2]" }))).message).toContain("expected a JSON object");
		expect(configError(() => concurrencyVar(envWith({ CONCURRENCY: "2" }))).message).toContain("got 2");
	});

	it("checks any schema a module gives it", () => {
		const origins = objectVar("TEST_ORIGINS", z.record(z.string(), z.strictObject({ url: z.url() })), '{"a":{"url":"http://x"}}');
		expect(origins(envWith({ TEST_ORIGINS: { a: { url: "http://127.0.0.1:9" } } }))).toEqual({ a: { url: "http://127.0.0.1:9" } });
		expect(configError(() => origins(envWith({ TEST_ORIGINS: '{"a":{"url":"nope"}}' }))).message).toMatch(/^TEST_ORIGINS: a\.url: /);
	});
});
