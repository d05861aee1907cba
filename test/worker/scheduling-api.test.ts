/**
 * Scheduling inputs at the API: `delay_s` bounds, `run_at`, a bad CONCURRENCY at first use, and
 * the priority rule itself with the default head start. (Limits at work: test/limits.)
 */
import { describe, expect, it } from "vitest";
import { rankOf } from "../../src/scheduling/rank";
import { cancelTask, errorOf, getTask, submitTask } from "./support/api";
import { newId } from "./support/ids";

describe("delay_s", () => {
	it.each<[unknown, string]>([
		[-1, "below 0"],
		[86_400.5, "above a day"],
		["10", "a string"],
	])("refuses delay_s %j (%s) with 400 and stores nothing", async (delay) => {
		const id = newId();
		const { res, body } = await submitTask({ id, type: "echo", input: 1, delay_s: delay });
		expect(res.status).toBe(400);
		expect(errorOf(body)).toMatchObject({ code: "invalid_request" });
		expect(JSON.stringify(errorOf(body).details)).toContain("delay_s");
		expect((await getTask(id)).res.status).toBe(404);
	});

	it("accepts up to a day: run_at = created_at + delay_s, and the task waits queued until then", async () => {
		const { res, body } = await submitTask({ type: "echo", input: 1, delay_s: 86_400 });
		expect(res.status).toBe(202);
		expect(Date.parse(body.run_at) - Date.parse(body.created_at)).toBe(86_400_000);
		expect(body).toMatchObject({ status: "queued", queue_position: null });
		// Still queued a moment later (its message has been delivered; only run_at holds it).
		await new Promise((resolve) => setTimeout(resolve, 500));
		expect((await getTask(body.id)).body).toMatchObject({ status: "queued", started_at: null });
		expect((await cancelTask(body.id)).body).toMatchObject({ status: "canceled", attempts: 0 });
	});

	it("without delay_s, run_at is created_at", async () => {
		const { body } = await submitTask({ type: "echo", input: 1 }, { wait: 10 });
		expect(body.status).toBe("succeeded");
		expect(body.run_at).toBe(body.created_at);
	});
});

describe("a bad CONCURRENCY", () => {
	it.each([
		['{"sleep": 0}', "sleep: must be at least 1"],
		['{"sleep": 2', "not valid JSON"],
		['{"slep": 2}', '"slep" is not a task type this deployment runs'],
		['{"http": 2}', "set each origin's concurrency in ORIGINS"],
	])("%s: every submission answers 500 invalid_config naming the var and the problem; nothing is stored", async (value, problem) => {
		const id = newId();
		const { res, body } = await submitTask({ id, type: "echo", input: 1 }, { env: { CONCURRENCY: value } });
		expect(res.status).toBe(500);
		const error = errorOf(body);
		expect(error.code).toBe("invalid_config");
		expect(error.message).toMatch(/^CONCURRENCY: /);
		expect(error.message).toContain(problem);
		expect(error.details).toEqual({ var: "CONCURRENCY" });
		expect((await getTask(id)).res.status).toBe(404);
	});

	it("a good one is accepted as a JSON string too (the --var form)", async () => {
		const { res } = await submitTask({ type: "echo", input: 1 }, { env: { CONCURRENCY: '{"sleep": 2}' } });
		expect(res.status).toBe(202);
	});
});

describe("the priority rule with the default PRIORITY_OFFSET_S (300)", () => {
	const T = Date.parse("2026-01-01T00:00:00Z");
	const s = 1000;
	it("high overtakes normal submitted up to 5 minutes earlier, not more", () => {
		expect(rankOf(T + 299 * s, "high", 300)).toBeLessThan(rankOf(T, "normal", 300));
		expect(rankOf(T + 301 * s, "high", 300)).toBeGreaterThan(rankOf(T, "normal", 300));
	});
	it("a low task is overtaken by a high one only if that was submitted less than 10 minutes after it: nothing starves", () => {
		expect(rankOf(T + 599 * s, "high", 300)).toBeLessThan(rankOf(T, "low", 300));
		expect(rankOf(T + 601 * s, "high", 300)).toBeGreaterThan(rankOf(T, "low", 300));
	});
	it("within a priority, first come first served", () => {
		for (const p of ["high", "normal", "low"] as const) expect(rankOf(T, p, 300)).toBeLessThan(rankOf(T + 1, p, 300));
	});
});
