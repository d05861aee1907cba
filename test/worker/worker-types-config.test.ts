import { describe, expect, it } from "vitest";
import { ApiError } from "../../src/api/errors";
import { parseWorkerTypes } from "../../src/workers/config";

describe("WORKER_TYPES", () => {
	it("reads a JSON string or a wrangler.toml table alike, with defaults", () => {
		for (const raw of ['{"gpu":{"lease_s":30},"cpu":{}}', { gpu: { lease_s: 30 }, cpu: {} }]) {
			const types = parseWorkerTypes(raw);
			if (types instanceof ApiError) throw types;
			expect(types.get("gpu")).toMatchObject({ leaseS: 30, maxAttempts: 3, timeoutS: 900, input: null });
			expect(types.get("cpu")).toMatchObject({ leaseS: 60, maxAttempts: 3, timeoutS: 900 });
		}
		expect(parseWorkerTypes("")).toEqual(new Map());
		expect(parseWorkerTypes(undefined)).toEqual(new Map());
	});

	it("names what is wrong with a bad value: a 500 invalid_config, never a guess", () => {
		const cases: [unknown, RegExp][] = [
			["{gpu", /not valid JSON/],
			["[1]", /expected an object/],
			['{"gpu":{"lease_s":0}}', /gpu\.lease_s/],
			['{"gpu":{"max_attempts":1.5}}', /gpu\.max_attempts/],
			['{"gpu":{"lease":60}}', /gpu/],
			['{"bad name":{}}', /type name/],
			['{"gpu":{"input":{"type":"no-such-type"}}}', /gpu\.input/],
		];
		for (const [raw, message] of cases) {
			const result = parseWorkerTypes(raw);
			expect(result, String(raw)).toBeInstanceOf(ApiError);
			const error = result as ApiError;
			expect(error.status).toBe(500);
			expect(error.code).toBe("invalid_config");
			expect(error.message, String(raw)).toMatch(message);
		}
	});

	it("compiles an input JSON Schema that submissions are checked against", () => {
		const types = parseWorkerTypes({
			gpu: { input: { type: "object", properties: { steps: { type: "integer", maximum: 50 } }, required: ["steps"] } },
		});
		if (types instanceof ApiError) throw types;
		const input = types.get("gpu")?.input;
		expect(input?.safeParse({ steps: 20 }).success).toBe(true);
		expect(input?.safeParse({ steps: 51 }).success).toBe(false);
		expect(input?.safeParse({}).success).toBe(false);
	});
});
