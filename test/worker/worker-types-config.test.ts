import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config";
import { workerTypes } from "../../src/workers/config";

/** An env with WORKER_TYPES set; a fresh object, so nothing parsed is reused. */
function withTypes(value: unknown): Env {
	return { ...env, WORKER_TYPES: value } as Env;
}

describe("WORKER_TYPES", () => {
	it("reads a JSON string or a wrangler.toml table alike, with defaults", () => {
		for (const raw of ['{"gpu":{"lease_s":30},"cpu":{}}', { gpu: { lease_s: 30 }, cpu: {} }]) {
			const types = workerTypes(withTypes(raw));
			expect(types.get("gpu")).toMatchObject({ leaseS: 30, maxAttempts: 3, timeoutS: 900, input: null });
			expect(types.get("cpu")).toMatchObject({ leaseS: 60, maxAttempts: 3, timeoutS: 900 });
		}
		expect(workerTypes(withTypes("")).size).toBe(0);
		expect(workerTypes(withTypes(undefined)).size).toBe(0);
	});

	it("names what is wrong with a bad value, on every use: never a guess", () => {
		const cases: [unknown, RegExp][] = [
			["{gpu", /not valid JSON/],
			["[1]", /expected a JSON object/],
			['{"gpu":{"lease_s":0}}', /gpu\.lease_s/],
			['{"gpu":{"max_attempts":1.5}}', /gpu\.max_attempts/],
			['{"gpu":{"lease":60}}', /gpu/],
			['{"bad name":{}}', /bad name: Invalid key/],
			['{"gpu":{"input":{"type":"no-such-type"}}}', /gpu\.input/],
		];
		for (const [raw, message] of cases) {
			const e = withTypes(raw);
			for (let i = 0; i < 2; i++) {
				let thrown: unknown = null;
				try {
					workerTypes(e);
				} catch (error) {
					thrown = error;
				}
				expect(thrown, String(raw)).toBeInstanceOf(ConfigError);
				expect((thrown as ConfigError).variable).toBe("WORKER_TYPES");
				expect((thrown as ConfigError).message, String(raw)).toMatch(message);
			}
		}
	});

	it("compiles an input JSON Schema that submissions are checked against", () => {
		const types = workerTypes(
			withTypes({ gpu: { input: { type: "object", properties: { steps: { type: "integer", maximum: 50 } }, required: ["steps"] } } }),
		);
		const input = types.get("gpu")?.input;
		expect(input?.safeParse({ steps: 20 }).success).toBe(true);
		expect(input?.safeParse({ steps: 51 }).success).toBe(false);
		expect(input?.safeParse({}).success).toBe(false);
	});
});
