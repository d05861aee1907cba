/**
 * The OpenAPI document covers the app: every route in the app's own route table is in
 * GET /openapi.json with its method, and the answer schemas match the TypeScript types the
 * routes answer with (checked at compile time). The document's validity and its fit to real
 * answers are tested against a real server in test/e2e/openapi.test.ts.
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import type { z } from "zod";
import { app } from "../../src/index";
import { undocumentedRoutes } from "../../src/api/openapi/document";
import type * as wire from "../../src/api/openapi/wire";
import type { ErrorBody } from "../../src/api/errors";
import type { SeedEnvelope } from "../../src/api/seed";
import type { TaskEvent } from "../../src/task/events";
import type { Task } from "../../src/task/model";
import type { healthReport } from "../../src/health/summary";
import { call } from "./support/api";

describe("GET /openapi.json", () => {
	it("has every route the app serves, with its method, and no other", async () => {
		expect(undocumentedRoutes(app.routes)).toEqual([]);
		const { res, body } = await call("/openapi.json");
		expect(res.status).toBe(200);
		const documented = Object.entries(body.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
			Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
		);
		const served = [
			...new Set(app.routes.filter((r) => r.method !== "ALL").map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`)),
		];
		expect(documented.sort()).toEqual(served.sort());
		expect(served.length).toBeGreaterThanOrEqual(10);
	});

	it("is public, like /docs, even when API keys are set", async () => {
		for (const path of ["/openapi.json", "/docs"]) {
			const { res } = await call(path, {}, { API_KEYS: "secret", AUTH_MODE: "required" });
			expect(res.status, path).toBe(200);
		}
	});

	it("answer schemas match the types the routes answer with", () => {
		type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
		expectTypeOf<
			Same<Omit<z.output<typeof wire.TaskView>, "urls" | "input" | "output">, Omit<Task, "input" | "output">>
		>().toEqualTypeOf<true>();
		expectTypeOf<keyof z.output<typeof wire.TaskView>>().toEqualTypeOf<keyof Task | "urls">();
		expectTypeOf<Same<z.output<typeof wire.TaskEvent>["type"], TaskEvent["type"]>>().toEqualTypeOf<true>();
		expectTypeOf<keyof z.output<typeof wire.TaskEvent>>().toEqualTypeOf<keyof TaskEvent>();
		expectTypeOf<Same<z.output<typeof wire.ErrorBody>["error"]["code"], ErrorBody["error"]["code"]>>().toEqualTypeOf<true>();
		expectTypeOf<Same<z.output<typeof wire.SeedEnvelope>["code"], SeedEnvelope["code"]>>().toEqualTypeOf<true>();
		expectTypeOf<Awaited<ReturnType<typeof healthReport>>>().toExtend<z.output<typeof wire.Health>>();
	});
});
