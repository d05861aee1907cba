/**
 * Files end to end against `wrangler dev` (local R2, the Images binding through sharp): a 20 MiB
 * upload and download over real HTTP with its sha256, a multipart submit of a real JPEG resized
 * and decoded here with sharp, `curl`-style ranges, and real time passing: an upload no task used
 * expires after UPLOAD_TTL_S (2 s here), one a task uses lives until the task's TTL.
 */
import { createHash } from "node:crypto";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quadrants } from "../shared/imageOrigin";
import { request, sleep, startDevServer, submit, type DevServer, type TaskJson } from "./helpers";

let server: DevServer;
let base: string;

beforeAll(async () => {
	server = await startDevServer({ vars: { UPLOAD_TTL_S: "2" } });
	base = server.url;
});

afterAll(async () => {
	await server?.stop();
});

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

async function uploadBytes(bytes: Uint8Array, contentType: string): Promise<{ id: string; bytes: number; sha256: string }> {
	const res = await fetch(`${base}/v1/files`, { method: "POST", headers: { "content-type": contentType }, body: bytes });
	expect(res.status).toBe(201);
	return (await res.json()) as { id: string; bytes: number; sha256: string };
}

async function status(path: string): Promise<number> {
	const res = await fetch(`${base}${path}`, { method: "HEAD" });
	return res.status;
}

describe("files over real HTTP", () => {
	it("uploads 20 MiB and downloads it back with the same sha256", async () => {
		const bytes = new Uint8Array(20 * 1024 * 1024);
		for (let i = 0; i < bytes.length; i += 4096) bytes[i] = (i / 4096) % 256;
		const file = await uploadBytes(bytes, "application/octet-stream");
		expect(file.bytes).toBe(bytes.length);
		expect(file.sha256).toBe(sha256(bytes));
		const res = await fetch(`${base}/v1/files/${file.id}`);
		expect(res.headers.get("content-length")).toBe(String(bytes.length));
		expect(sha256(new Uint8Array(await res.arrayBuffer()))).toBe(file.sha256);
		const range = await fetch(`${base}/v1/files/${file.id}`, { headers: { range: "bytes=4096-8191" } });
		expect(range.status).toBe(206);
		expect(new Uint8Array(await range.arrayBuffer())).toEqual(bytes.slice(4096, 8192));
	});

	it("resizes a JPEG sent with its task in one multipart request; the output decodes as the asked WebP", async () => {
		const jpeg = await quadrants(1200, 900, "jpeg");
		const form = new FormData();
		form.set(
			"json",
			JSON.stringify({
				type: "image.resize",
				input: { image: { $file: "photo" }, width: 300, fit: "contain", format: "webp", quality: 80 },
			}),
		);
		form.set("photo", new File([jpeg], "photo.jpg", { type: "image/jpeg" }));
		const { status: code, body } = await request<TaskJson>(`${base}/v1/tasks`, {
			method: "POST",
			body: form,
			headers: { prefer: "wait=30" },
		});
		expect(code).toBe(200);
		expect(body.status).toBe("succeeded");
		expect(body.output).toMatchObject({ content_type: "image/webp", width: 300, height: 225 });
		const res = await fetch(`${base}/v1/tasks/${body.id}/output`);
		expect(res.headers.get("content-type")).toBe("image/webp");
		const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
		expect([meta.format, meta.width, meta.height]).toEqual(["webp", 300, 225]);
	});
});

describe("expiry in real time", () => {
	it("deletes an unused upload after UPLOAD_TTL_S; keeps a used one while its task lives, then deletes it", async () => {
		const unused = await uploadBytes(new TextEncoder().encode("unused"), "text/plain");
		const used = await uploadBytes(new TextEncoder().encode("used"), "text/plain");
		const task = await submit(base, "echo", { $file: used.id }, { wait: 10, extra: { ttl_s: 12 } });
		expect(task.body.status).toBe("succeeded");
		const t0 = Date.now();
		// The unused upload goes once its 2 s are up (its lease's alarm), long before the task.
		for (;;) {
			if ((await status(`/v1/files/${unused.id}`)) === 404) break;
			expect(Date.now() - t0).toBeLessThan(15_000);
			await sleep(250);
		}
		// Past its own 2 s, the used upload lives exactly as long as the task that holds it.
		let heldPastItsTtl = false;
		for (;;) {
			const fileStatus = await status(`/v1/files/${used.id}`);
			const taskStatus = await status(`/v1/tasks/${task.body.id}`);
			if (fileStatus === 404) {
				expect(taskStatus, "the upload went before the task that uses it").toBe(404);
				break;
			}
			if (taskStatus === 200) heldPastItsTtl = true;
			expect(Date.now() - t0).toBeLessThan(45_000);
			await sleep(250);
		}
		expect(heldPastItsTtl).toBe(true);
	});
});
