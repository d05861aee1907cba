/**
 * Files in and out through the real local R2: uploads (raw, chunked, multipart submit), file
 * references in inputs, ctx.files.put, large JSON outputs moved to R2, the output route with
 * Range / ETag, token access, and the limits.
 */
import { env } from "cloudflare:workers";
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { call, errorOf, getTask, ORIGIN, send, settled, submitTask } from "./support/api";
import { chunked, fetchBytes, fileCount, fileExists, pattern, sha256Hex, upload } from "./support/files";
import { newId } from "./support/ids";

const MiB = 1024 * 1024;

describe("uploads", () => {
	it("takes a 20 MiB upload and streams it back, same bytes, same sha256", async () => {
		const bytes = pattern(20 * MiB, 7);
		const expected = await sha256Hex(bytes);
		const file = await upload(bytes, "application/x-test");
		expect(file).toEqual({
			id: expect.stringMatching(/^file_[0-9a-f]{32}$/),
			bytes: 20 * MiB,
			content_type: "application/x-test",
			sha256: expected,
		});
		const { res, bytes: back } = await fetchBytes(`/v1/files/${file.id}`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-length")).toBe(String(20 * MiB));
		expect(res.headers.get("content-type")).toBe("application/x-test");
		expect(res.headers.get("etag")).toMatch(/^".+"$/);
		expect(await sha256Hex(back)).toBe(expected);
	});

	it("takes an upload of unknown length (chunked) in parts, same sha256", async () => {
		const bytes = pattern(20 * MiB + 12345, 3);
		const res = await send(
			new Request(`${ORIGIN}/v1/files`, { method: "POST", body: chunked(bytes), headers: { "content-type": "application/octet-stream" } }),
		);
		const file = (await res.json()) as { id: string; bytes: number; sha256: string };
		expect(res.status).toBe(201);
		expect(file.bytes).toBe(bytes.byteLength);
		expect(file.sha256).toBe(await sha256Hex(bytes));
		const object = await env.FILES.get(`files/${file.id}`);
		expect(object?.size).toBe(bytes.byteLength);
		expect(await sha256Hex(await object!.arrayBuffer())).toBe(file.sha256);
	});

	it("refuses a body over MAX_UPLOAD_BYTES with 413 and stores nothing, declared or chunked", async () => {
		const before = await fileCount();
		const small = { MAX_UPLOAD_BYTES: String(MiB) };
		const declared = await call("/v1/files", { method: "POST", body: pattern(MiB + 1) }, small);
		expect(declared.res.status).toBe(413);
		expect(errorOf(declared.body).code).toBe("payload_too_large");
		const streamed = await send(new Request(`${ORIGIN}/v1/files`, { method: "POST", body: chunked(pattern(3 * MiB), 64 * 1024) }), small);
		expect(streamed.status).toBe(413);
		expect(await fileCount()).toBe(before);
	});

	it("answers 404 for an unknown file and 400 for a malformed id", async () => {
		const unknown = await call("/v1/files/file_00000000000000000000000000000000");
		expect(unknown.res.status).toBe(404);
		expect(errorOf(unknown.body).code).toBe("file_not_found");
		const bad = await call("/v1/files/not-a-file");
		expect(bad.res.status).toBe(400);
		expect(errorOf(bad.body).code).toBe("invalid_file_id");
	});
});

describe("ranges and revalidation", () => {
	it("serves one byte range (206), a suffix, an open end, 416 past the end, 304 on a matching ETag, HEAD", async () => {
		const bytes = pattern(100_000);
		const { id } = await upload(bytes);
		const path = `/v1/files/${id}`;

		const first = await fetchBytes(path, { headers: { range: "bytes=0-99" } });
		expect(first.res.status).toBe(206);
		expect(first.res.headers.get("content-range")).toBe("bytes 0-99/100000");
		expect(first.res.headers.get("content-length")).toBe("100");
		expect(first.bytes).toEqual(bytes.slice(0, 100));

		const suffix = await fetchBytes(path, { headers: { range: "bytes=-10" } });
		expect(suffix.res.status).toBe(206);
		expect(suffix.res.headers.get("content-range")).toBe("bytes 99990-99999/100000");
		expect(suffix.bytes).toEqual(bytes.slice(99_990));

		const open = await fetchBytes(path, { headers: { range: "bytes=50000-" } });
		expect(open.res.status).toBe(206);
		expect(open.bytes).toEqual(bytes.slice(50_000));

		const past = await fetchBytes(path, { headers: { range: "bytes=100000-" } });
		expect(past.res.status).toBe(416);
		expect(past.res.headers.get("content-range")).toBe("bytes */100000");

		const whole = await fetchBytes(path);
		const etag = whole.res.headers.get("etag") ?? "";
		const cached = await fetchBytes(path, { headers: { "if-none-match": etag } });
		expect(cached.res.status).toBe(304);
		expect(cached.bytes.byteLength).toBe(0);

		const stale = await fetchBytes(path, { headers: { range: "bytes=0-9", "if-range": '"some-other-etag"' } });
		expect(stale.res.status).toBe(200);
		expect(stale.bytes.byteLength).toBe(100_000);

		const head = await fetchBytes(path, { method: "HEAD" });
		expect(head.res.status).toBe(200);
		expect(head.res.headers.get("content-length")).toBe("100000");
		expect(head.bytes.byteLength).toBe(0);
	});
});

describe("file references in inputs", () => {
	it("refuses an unknown file id at submit with 400 and creates no task", async () => {
		const id = newId("ref");
		const missing = "file_0123456789abcdef0123456789abcdef";
		const { res, body } = await submitTask({ id, type: "echo", input: { doc: { $file: missing } } });
		expect(res.status).toBe(400);
		expect(errorOf(body)).toMatchObject({ code: "file_not_found", details: { files: [missing] } });
		expect((await getTask(id)).res.status).toBe(404);
	});

	it("passes a known file to the task and holds the upload for it", async () => {
		const file = await upload("hello");
		const task = await settled((await submitTask({ type: "echo", input: { docs: [{ $file: file.id }] } })).body.id);
		expect(task.status).toBe("succeeded");
		expect(task.output).toEqual({ docs: [{ $file: file.id }] });
		const lease = await env.FILE_LEASES.getByName(file.id).describe();
		expect(lease?.holders).toBe(1);
	});

	it("deletes an upload no task used once UPLOAD_TTL_S has passed, and keeps one a task holds", async () => {
		const unused = await upload("nobody wants me");
		const used = await upload("a task wants me");
		const task = await settled((await submitTask({ type: "echo", input: { $file: used.id } })).body.id);
		expect(task.status).toBe("succeeded");
		for (const id of [unused.id, used.id]) {
			const stub = env.FILE_LEASES.getByName(id);
			// Move the lease's deadline into the past, then run its alarm as the runtime would.
			await runInDurableObject(stub, async (_instance, state) => {
				const lease = await state.storage.get<{ expiresAt: number }>("lease");
				await state.storage.put("lease", { ...lease, expiresAt: Date.now() - 1 });
				await state.storage.setAlarm(Date.now() + 60_000);
			});
			expect(await runDurableObjectAlarm(stub)).toBe(true);
		}
		expect(await fileExists(unused.id)).toBe(false);
		expect(await env.FILE_LEASES.getByName(unused.id).describe()).toBeNull();
		expect(await fileExists(used.id)).toBe(true);
		// A task that refers to an expired upload is refused at submit.
		const late = await submitTask({ type: "echo", input: { $file: unused.id } });
		expect(late.res.status).toBe(400);
		expect(errorOf(late.body).code).toBe("file_not_found");
	});
});

describe("multipart submit", () => {
	function form(json: unknown, parts: Record<string, Uint8Array | string>): FormData {
		const f = new FormData();
		f.set("json", JSON.stringify(json));
		for (const [name, value] of Object.entries(parts)) f.set(name, new File([value], `${name}.bin`, { type: "application/x-part" }));
		return f;
	}

	it("stores the file parts and gives the task their ids, in one request; the same submit again finds the task", async () => {
		const id = newId("multi");
		const body = { id, type: "echo", input: { a: { $file: "first" }, b: [{ $file: "second" }] } };
		const parts = { first: pattern(300_000), second: "second part" };
		const res = await send(new Request(`${ORIGIN}/v1/tasks`, { method: "POST", body: form(body, parts), headers: { prefer: "wait=10" } }));
		const task = (await res.json()) as { status: string; output: { a: { $file: string }; b: { $file: string }[] } };
		expect(res.status).toBe(200);
		expect(task.status).toBe("succeeded");
		const first = await fetchBytes(`/v1/files/${task.output.a.$file}`);
		expect(first.res.headers.get("content-type")).toBe("application/x-part");
		expect(first.bytes).toEqual(parts.first);
		expect(new TextDecoder().decode((await fetchBytes(`/v1/files/${task.output.b[0]!.$file}`)).bytes)).toBe("second part");

		const again = await send(new Request(`${ORIGIN}/v1/tasks`, { method: "POST", body: form(body, parts) }));
		expect(again.status).toBe(200);
		expect(((await again.json()) as { output: unknown }).output).toEqual(task.output);
	});

	it("refuses bad multipart submits with 400 and stores nothing", async () => {
		const before = await fileCount();
		const cases: [FormData, string][] = [
			[form({ type: "echo", input: {} }, { stray: "x" }), "invalid_multipart"],
			[form({ type: "echo", input: { $file: "nope" } }, {}), "file_not_found"],
			[form({ type: "image.resize", input: { image: { $file: "nope" }, width: 5, fit: "contain", format: "png" } }, {}), "invalid_input"],
			[
				form({ type: "echo", input: { a: { $file: "a" }, b: { $file: "file_0123456789abcdef0123456789abcdef" } } }, { a: "x" }),
				"file_not_found",
			],
			[form({ type: "no-such-type", input: { $file: "a" } }, { a: "x" }), "unknown_type"],
		];
		const noJson = new FormData();
		noJson.set("a", new File(["x"], "a"));
		cases.push([noJson, "invalid_multipart"]);
		for (const [body, code] of cases) {
			const res = await send(new Request(`${ORIGIN}/v1/tasks`, { method: "POST", body }));
			expect(errorOf(await res.json()).code).toBe(code);
			expect(res.status).toBe(code === "unknown_type" ? 422 : 400);
		}
		const big = await send(
			new Request(`${ORIGIN}/v1/tasks`, { method: "POST", body: form({ type: "echo", input: { $file: "a" } }, { a: pattern(2 * MiB) }) }),
			{ MAX_UPLOAD_BYTES: String(MiB) },
		);
		expect(big.status).toBe(413);
		expect(await fileCount()).toBe(before);
	});
});

describe("outputs", () => {
	it("ctx.files.put from bytes: the output is the file, and GET /output streams it with its type and length", async () => {
		const task = await settled(
			(await submitTask({ type: "emit", input: { file_bytes: 3 * MiB, content_type: "application/x-emit" } })).body.id,
		);
		expect(task.output).toEqual({ $file: expect.stringMatching(/^file_/), bytes: 3 * MiB, content_type: "application/x-emit" });
		const { res, bytes } = await fetchBytes(`/v1/tasks/${task.id}/output`);
		expect(res.status).toBe(200);
		expect(res.headers.get("content-type")).toBe("application/x-emit");
		expect(res.headers.get("content-length")).toBe(String(3 * MiB));
		expect(await sha256Hex(bytes)).toBe(await sha256Hex(pattern(3 * MiB)));
		const range = await fetchBytes(`/v1/tasks/${task.id}/output`, { headers: { range: "bytes=1000-1999" } });
		expect(range.res.status).toBe(206);
		expect(range.bytes).toEqual(pattern(1000, 1000));
	});

	it("ctx.files.put from a 20 MiB stream of unknown length", async () => {
		const task = await settled((await submitTask({ type: "emit", input: { file_bytes: 20 * MiB, stream: true } })).body.id, 30);
		expect(task.status).toBe("succeeded");
		const { bytes } = await fetchBytes(`/v1/tasks/${task.id}/output`);
		expect(bytes.byteLength).toBe(20 * MiB);
		expect(await sha256Hex(bytes)).toBe(await sha256Hex(pattern(20 * MiB)));
	});

	it("keeps JSON up to 64 KiB inline and moves larger JSON to R2, served back as the same JSON", async () => {
		const small = await settled((await submitTask({ type: "emit", input: { json_bytes: 60_000 } })).body.id);
		expect(small.output).toEqual({ data: "x".repeat(60_000) });
		const inline = await fetchBytes(`/v1/tasks/${small.id}/output`);
		expect(inline.res.headers.get("content-type")).toBe("application/json");
		expect(JSON.parse(new TextDecoder().decode(inline.bytes))).toEqual({ data: "x".repeat(60_000) });

		const large = await settled((await submitTask({ type: "emit", input: { json_bytes: 200_000 } })).body.id);
		expect(large.status).toBe("succeeded");
		expect(large.output).toEqual({ $file: expect.stringMatching(/^file_/), bytes: 200_000 + 11, content_type: "application/json" });
		const moved = await fetchBytes(`/v1/tasks/${large.id}/output`);
		expect(moved.res.headers.get("content-type")).toBe("application/json");
		expect(JSON.parse(new TextDecoder().decode(moved.bytes))).toEqual({ data: "x".repeat(200_000) });
	});

	it("fails an output over MAX_OUTPUT_BYTES (output_too_large) and one that is not JSON (output_invalid), storing neither", async () => {
		const before = await fileCount();
		const big = await settled((await submitTask({ type: "emit", input: { json_bytes: 2 * MiB } })).body.id);
		expect(big.status).toBe("failed");
		expect(big.error?.code).toBe("output_too_large");
		const bigint = await settled((await submitTask({ type: "emit", input: { bigint: true } })).body.id);
		expect(bigint.status).toBe("failed");
		expect(bigint.error?.code).toBe("output_invalid");
		expect(await fileCount()).toBe(before);
	});

	it("GET /output: 409 before the end and for a task that failed, waits with Prefer, serves inline JSON with an ETag and ranges", async () => {
		const running = (await submitTask({ type: "sleep", input: { ms: 1500 } })).body;
		const early = await call(`/v1/tasks/${running.id}/output`);
		expect(early.res.status).toBe(409);
		expect(errorOf(early.body)).toMatchObject({ code: "output_not_ready", details: { status: expect.stringMatching(/queued|running/) } });
		const waited = await call(`/v1/tasks/${running.id}/output`, { headers: { prefer: "wait=10" } });
		expect(waited.res.status).toBe(200);
		expect(waited.body).toEqual({ slept_ms: 1500 });
		const etag = waited.res.headers.get("etag") ?? "";
		expect((await call(`/v1/tasks/${running.id}/output`, { headers: { "if-none-match": etag } })).res.status).toBe(304);
		const part = await call(`/v1/tasks/${running.id}/output`, { headers: { range: "bytes=0-0" } });
		expect(part.res.status).toBe(206);
		expect(part.text).toBe("{");

		const failed = await settled((await submitTask({ type: "fail", input: { permanent: true } })).body.id);
		const none = await call(`/v1/tasks/${failed.id}/output`);
		expect(none.res.status).toBe(409);
		expect(errorOf(none.body)).toMatchObject({ code: "task_not_succeeded", details: { status: "failed" } });
		expect((await call("/v1/tasks/no-such-task/output")).res.status).toBe(404);
	});

	it("opens a task's output with the task's token when API keys are on, and nothing else with it", async () => {
		const keys = { API_KEYS: "file-test-key" };
		const auth = { authorization: "Bearer file-test-key" };
		const mine = await submitTask({ type: "emit", input: { file_bytes: 1000 } }, { headers: auth, env: keys, wait: 10 });
		const other = await submitTask({ type: "echo", input: 1 }, { headers: auth, env: keys, wait: 10 });
		const token = new URL(mine.body.urls.get).searchParams.get("token");
		expect(token).toBeTruthy();
		const outputUrl = new URL((mine.body.urls as { output?: string }).output ?? "");
		expect(outputUrl.pathname).toBe(`/v1/tasks/${mine.body.id}/output`);
		expect(outputUrl.searchParams.get("token")).toBe(token);
		const withToken = await fetchBytes(`/v1/tasks/${mine.body.id}/output?token=${token}`, {}, keys);
		expect(withToken.res.status).toBe(200);
		expect(withToken.bytes).toEqual(pattern(1000));
		expect((await fetchBytes(`/v1/tasks/${mine.body.id}/output`, {}, keys)).res.status).toBe(401);
		expect((await fetchBytes(`/v1/tasks/${other.body.id}/output?token=${token}`, {}, keys)).res.status).toBe(401);
		const fileId = (mine.body.output as { $file: string }).$file;
		expect((await fetchBytes(`/v1/files/${fileId}?token=${token}`, {}, keys)).res.status).toBe(401);
		expect((await fetchBytes(`/v1/files/${fileId}`, { headers: auth }, keys)).res.status).toBe(200);
	});

	it("deletes a task's files with the task at its TTL and lets go of the uploads it used", async () => {
		const input = await upload("input of a short-lived task");
		const task = await settled((await submitTask({ type: "emit", ttl_s: 1, input: { file_bytes: 5000, json_bytes: 70_000 } })).body.id);
		const echo = await settled((await submitTask({ type: "echo", ttl_s: 1, input: { $file: input.id } })).body.id);
		// The output ({file, data}) is over 64 KiB, so it was moved to R2 too: two files of the task.
		const moved = (task.output as { $file: string }).$file;
		const inner = (await call(`/v1/tasks/${task.id}/output`)).body as { file: { $file: string } };
		const outputs = [moved, inner.file.$file];
		expect(await Promise.all(outputs.map(fileExists))).toEqual([true, true]);
		expect((await env.FILE_LEASES.getByName(input.id).describe())?.holders).toBe(1);
		for (const id of [task.id, echo.id]) await eventuallyGone(id);
		expect(await Promise.all(outputs.map(fileExists))).toEqual([false, false]);
		// The upload's own TTL has not passed: it stays, held by no one, until its lease expires.
		expect((await env.FILE_LEASES.getByName(input.id).describe())?.holders).toBe(0);
		expect(await fileExists(input.id)).toBe(true);
	});
});

async function eventuallyGone(id: string): Promise<void> {
	const deadline = Date.now() + 15_000;
	while (Date.now() < deadline) {
		if ((await getTask(id)).res.status === 404) return;
		await new Promise((r) => setTimeout(r, 200));
	}
	throw new Error(`task ${id} still exists after its TTL`);
}
