/**
 * README "Add your own task type": the example there is src/processors/checksum.ts, and this file
 * imports that very module. It runs through the API like any type (registered in the one list),
 * its definition's fields do what the README says, and defineProcessor enforces an output schema.
 * Expected digests were computed independently (Python's hashlib).
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { checksum } from "../../src/processors/checksum";
import { defineProcessor } from "../../src/processors";
import { errorOf, getTask, settled, submitTask } from "./support/api";
import { newId } from "./support/ids";
import readme from "../../README.md?raw";
import checksumSource from "../../src/processors/checksum.ts?raw";
import registrySource from "../../src/processors/index.ts?raw";

describe("the README's example type (src/processors/checksum.ts)", () => {
	it('is shown in README "Add your own task type" exactly as it is in the file', () => {
		const section = readme.slice(readme.indexOf("## Add your own task type"));
		expect(section).toContain(["```ts", checksumSource.trimEnd(), "```"].join("\n"));
		const registration =
			'const TASK_TYPES = { sleep, echo, http, checksum, "image.resize": imageResize } satisfies Record<string, Processor>;';
		expect(section).toContain(registration);
		expect(registrySource).toContain(registration);
	});

	it("is registered: a submitted checksum task returns the digest", async () => {
		const res = await submitTask({ type: "checksum", input: { text: "abc" } }, { wait: 10 });
		expect(res.body.status, JSON.stringify(res.body)).toBe("succeeded");
		expect(res.body.output).toEqual({
			algorithm: "SHA-256",
			rounds: 1,
			hex: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		});
	});

	it("hashes round after round and reports progress on the way", async () => {
		const id = newId("checksum");
		await submitTask({ id, type: "checksum", input: { text: "edgetask", rounds: 1000 } });
		const done = await settled(id);
		expect(done.output).toEqual({
			algorithm: "SHA-256",
			rounds: 1000,
			hex: "0514cfa5df13c0220ed8fb2ba5df2ac90c0c94cbe634cf784b50f3873fafed92",
		});
		expect(done.progress).toEqual({ percent: 100, message: "round 1000 of 1000" });
	});

	it("takes the definition's fields: timeout_s 60, max_attempts 1, concurrency 2", async () => {
		expect(checksum.defaultTimeoutS).toBe(60);
		expect(checksum.maxAttempts).toBe(1);
		expect(checksum.concurrency).toBe(2);
		const res = await submitTask({ type: "checksum", input: { text: "abc", algorithm: "SHA-512" } }, { wait: 10 });
		expect(res.body.timeout_s).toBe(60);
		expect(res.body.output).toMatchObject({
			hex: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
		});
	});

	it("its input schema is checked at submit: 400 with the field's path, nothing stored", async () => {
		const id = newId("checksum-bad");
		const res = await submitTask({ id, type: "checksum", input: { text: "abc", rounds: 0, algorithm: "MD5" } });
		expect(res.res.status).toBe(400);
		const paths = (errorOf(res.body).details as { path: string }[]).map((d) => d.path).sort();
		expect(paths).toEqual(["input.algorithm", "input.rounds"]);
		expect((await getTask(id)).res.status).toBe(404);
	});
});

describe("defineProcessor", () => {
	const ctx = {
		taskId: "t",
		attempt: 1,
		signal: new AbortController().signal,
		env: {} as Env,
		progress: () => {},
		// These processors use no files: any call would fail the test.
		files: {
			put: () => Promise.reject(new Error("no files in this test")),
			open: () => Promise.reject(new Error("no files in this test")),
		},
	};

	it("an output that breaks the output schema fails the attempt as invalid_output, not retried", async () => {
		const liar = defineProcessor({
			input: z.object({}),
			output: z.object({ hex: z.string() }),
			// A processor that returns the wrong shape (only a cast gets it past the compiler).
			run: async () => ({ hex: 42 }) as unknown as { hex: string },
		});
		await expect(liar.run({}, ctx)).rejects.toMatchObject({
			name: "PermanentError",
			code: "invalid_output",
			details: [{ path: "hex", message: expect.any(String) }],
		});
	});

	it("defaults: the longest timeout an attempt may have (840 s), 3 attempts, no concurrency limit", () => {
		const plain = defineProcessor({ input: z.unknown(), run: async (x) => x });
		expect(plain).toMatchObject({ defaultTimeoutS: 840, maxAttempts: 3, concurrency: undefined });
	});
});
